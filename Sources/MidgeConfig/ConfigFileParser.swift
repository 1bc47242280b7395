import Foundation
import MidgeBroker

/// Parser for mosquitto.conf(5) files (Eclipse Mosquitto 2.0 syntax and semantics).
///
/// Syntax: one `directive value...` per line, separated by spaces or tabs; lines whose first
/// non-blank character is `#` are comments; blank lines are ignored; CR/LF line endings are both
/// accepted. Single-valued options accept exactly one value, optionally followed by a `#` comment
/// (`port 1883 # default`); any other extra word is an error (Mosquitto silently ignores it).
/// Options whose value is free text (`auto_id_prefix`, `log_timestamp_format`, `include_dir`,
/// `log_dest file`, `persistence_file`, `persistence_location`) take the rest of the line,
/// trimmed, exactly as Mosquitto does.
///
/// Scoping follows Mosquitto's reader (src/conf.c):
/// - Listener options (`bind_interface`, `socket_domain`, `max_connections`, `protocol`,
///   `max_topic_alias`, and the TLS options `certfile`, `cafile`, `require_certificate`, ...) apply to the current listener: the most recent `listener` line *of the same
///   file*. Every file (the main file and each included file) starts with the *default listener* as
///   the current one, and the including file's current listener is restored after `include_dir`.
/// - The default listener is the deprecated one configured by `port` and `bind_address` (these two
///   always configure it, wherever they appear). As in Mosquitto it is appended after all `listener`
///   sections when the file is not "local only" (i.e. contains a `listener`, `port` or
///   `bind_address`) and it has been configured: a port, bind address, bind interface, socket domain,
///   max_connections other than -1, protocol other than mqtt, or (per-listener mode)
///   `allow_zero_length_clientid false`. Its port defaults to 1883. Options that applied to a
///   default listener that is not created have no effect (a warning is recorded).
/// - With no `listener`, `port` or `bind_address` at all, `listeners` is empty (Mosquitto >= 2.0.12
///   then listens on loopback only, whatever listener options were given).
/// - Security options (`allow_anonymous`, `allow_zero_length_clientid`, `auto_id_prefix`) go to the
///   global settings, or to the current listener (default listener before any `listener` line) when
///   `per_listener_settings` is true *at that point in the file*. `per_listener_settings true` after
///   any security option (including `check_retain_source`) is an error, like in Mosquitto.
///
/// Where things are: `ConfigLine.swift` splits a line into words and reads values;
/// `ConfigReader.swift` reads files line by line and dispatches each directive through one table
/// (name -> handler) merged from the tables of the areas: `ListenerDirectives.swift` (and listener
/// scoping), `TLSDirectives.swift`, `SecurityDirectives.swift`, `LimitDirectives.swift`,
/// `LoggingDirectives.swift`, `IncludeDirectives.swift` (files and include_dir),
/// `PersistenceDirectives.swift`, and, empty until bridges are implemented,
/// `BridgeDirectives.swift`. Names refused as "not supported yet" are listed in
/// `PendingDirectives.swift` and beside the empty bridge table.
public enum ConfigFileParser {
    /// Parse a file (and any include_dir it names). Throws ConfigError for the first problem.
    public static func parse(contentsOf path: String) throws -> BrokerConfiguration {
        let bytes = try readConfigFile(path, errorFile: path, errorLine: 0)
        var parser = MosquittoConfReader()
        try parser.parseFile(bytes: bytes, fileName: path, level: 0)
        return parser.finish()
    }

    /// Parse text, `fileName` used in errors. Relative `include_dir` paths are resolved relative to
    /// the current directory, like Mosquitto.
    public static func parse(_ text: String, fileName: String) throws -> BrokerConfiguration {
        var parser = MosquittoConfReader()
        try parser.parseFile(bytes: Array(text.utf8), fileName: fileName, level: 0)
        return parser.finish()
    }

    /// Directives that Mosquitto 2.0 knows and Midge will implement in a later stage: refused with
    /// "directive 'NAME' is not supported yet" (see PendingDirectives.swift and
    /// BridgeDirectives.swift).
    static var notSupportedYet: Set<String> { MosquittoConfReader.notSupportedYet }
}
