import Foundation

/// Parser for mosquitto.conf(5) files (Eclipse Mosquitto 2.0 syntax and semantics).
///
/// Syntax: one `directive value...` per line, separated by spaces or tabs; lines whose first
/// non-blank character is `#` are comments; blank lines are ignored; CR/LF line endings are both
/// accepted. Single-valued options accept exactly one value, optionally followed by a `#` comment
/// (`port 1883 # default`); any other extra word is an error (Mosquitto silently ignores it).
/// Options whose value is free text (`auto_id_prefix`, `log_timestamp_format`, `include_dir`,
/// `log_dest file`) take the rest of the line, trimmed, exactly as Mosquitto does.
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

    /// Directives that Mosquitto 2.0 knows and Midge will implement in a later stage.
    static let notSupportedYet: Set<String> = [
        // Authentication / access control
        "psk_file", "psk_hint", "auth_plugin", "plugin",
        "auth_plugin_deny_special_chars",
        // TLS (the certificate-based options are supported: TLSSettings.swift)
        "tls_engine", "tls_engine_kpass_sha1", "tls_keyform", "dhparamfile",
        // Other listener options
        "use_username_as_clientid", "mount_point", "max_qos", "maximum_qos", "http_dir",
        // Persistence
        "persistence", "retained_persistence", "persistence_file", "persistence_location",
        "autosave_interval", "autosave_on_changes",
        // Bridges
        "connection", "address", "addresses", "topic", "bridge_alpn", "bridge_attempt_unsubscribe",
        "bridge_bind_address", "bridge_cafile", "bridge_capath", "bridge_certfile", "bridge_identity",
        "bridge_insecure", "bridge_keyfile", "bridge_max_packet_size", "bridge_outgoing_retain",
        "bridge_protocol_version", "bridge_psk", "bridge_require_ocsp", "bridge_tls_version",
        "cleansession", "local_cleansession", "clientid", "remote_clientid", "local_clientid",
        "password", "remote_password", "local_password", "username", "remote_username",
        "local_username", "idle_timeout", "keepalive_interval", "notifications",
        "notifications_local_only", "notification_topic", "restart_timeout", "round_robin",
        "start_type", "threshold", "try_private",
        // Miscellaneous
        "websockets_log_level", "websockets_headers_size", "sys_interval", "memory_limit", "pid_file",
        "user", "clientid_prefixes",
    ]

    /// Directive-name prefixes that are not supported yet (`auth_opt_*`, `plugin_opt_*`).
    static let notSupportedYetPrefixes = ["auth_opt_", "plugin_opt_"]

    /// Mosquitto's include_dir ordering (src/conf_includedir.c `scmp_p`): compare ASCII letters
    /// case-insensitively first, and only if equal, by byte value (so "A.conf" < "a.conf" < "B.conf").
    static func mosquittoIncludeOrder(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var i = 0
        while i < x.count && i < y.count {
            let ux = asciiUpper(x[i]), uy = asciiUpper(y[i])
            if ux != uy { return ux < uy }
            if x[i] != y[i] { return x[i] < y[i] }
            i += 1
        }
        return x.count < y.count
    }

    private static func asciiUpper(_ c: UInt8) -> UInt8 {
        (c >= 0x61 && c <= 0x7A) ? c - 0x20 : c
    }

    /// Reads a config file, with Mosquitto's checks (not a directory, readable).
    static func readConfigFile(_ path: String, errorFile: String, errorLine: Int) throws -> [UInt8] {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw ConfigError(file: errorFile, line: errorLine, message: "Config file \(path) is a directory.")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: errorFile, line: errorLine, message: "Unable to open config file \(path).")
        }
        return [UInt8](data)
    }
}

// MARK: - Implementation

/// One non-comment line, split into words.
private struct MosquittoConfLine {
    let file: String
    let number: Int
    let text: Substring
    /// Words separated by spaces/tabs, as ranges of `text`.
    let words: [Range<String.Index>]

    init(file: String, number: Int, text: Substring) {
        self.file = file
        self.number = number
        self.text = text
        var words: [Range<String.Index>] = []
        var i = text.startIndex
        while i < text.endIndex {
            while i < text.endIndex, MosquittoConfLine.isBlank(text[i]) { i = text.index(after: i) }
            if i == text.endIndex { break }
            let start = i
            while i < text.endIndex, !MosquittoConfLine.isBlank(text[i]) { i = text.index(after: i) }
            words.append(start..<i)
        }
        self.words = words
    }

    static func isBlank(_ c: Character) -> Bool { c == " " || c == "\t" }

    var directive: String { String(text[words[0]]) }

    /// Value words (after the directive) up to, not including, a word starting with `#`.
    var values: [String] {
        var result: [String] = []
        for r in words.dropFirst() {
            let w = text[r]
            if w.hasPrefix("#") { break }
            result.append(String(w))
        }
        return result
    }

    /// Everything after word `index`, trimmed of whitespace (no comment stripping, like Mosquitto).
    func rest(after index: Int) -> String {
        guard index < words.count else { return "" }
        return String(text[words[index].upperBound...]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func error(_ message: String) -> ConfigError {
        ConfigError(file: file, line: number, message: message)
    }

    var source: ConfigSource { ConfigSource(file: file, line: number) }

    /// Exactly one value (a trailing `# comment` is allowed).
    func single() throws -> String {
        let v = values
        if v.isEmpty { throw error("Missing value for \(directive).") }
        if v.count > 1 {
            throw error("Unexpected extra value \"\(v[1])\" for \(directive) (it takes a single value).")
        }
        return v[0]
    }

    /// The rest of the line as one free-text value; must not be empty.
    func freeText(_ what: String? = nil) throws -> String {
        let r = rest(after: 0)
        if r.isEmpty { throw error("Missing value for \(what ?? directive).") }
        return r
    }

    func bool() throws -> Bool {
        let v = try single()
        switch v {
        case "true", "1": return true
        case "false", "0": return false
        default: throw error("Invalid value for \(directive): \"\(v)\" (expected true or false).")
        }
    }

    /// A decimal integer within Int32 (Mosquitto reads values into a C int).
    func int(_ token: String? = nil) throws -> Int {
        let v = try token ?? single()
        var digits = Substring(v)
        if digits.first == "+" || digits.first == "-" { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw error("Invalid value for \(directive): \"\(v)\" (expected an integer).")
        }
        guard let n = Int(v), n >= Int(Int32.min), n <= Int(Int32.max) else {
            throw error("Invalid value for \(directive): \"\(v)\" (number out of range).")
        }
        return n
    }

    func int(in range: ClosedRange<Int>) throws -> Int {
        let n = try int()
        guard range.contains(n) else {
            throw error("Invalid \(directive) value \(n) (must be between \(range.lowerBound) and \(range.upperBound)).")
        }
        return n
    }
}

private struct MosquittoConfReader {
    var config = BrokerConfiguration()

    /// Listeners created by `listener` lines, in order.
    var listeners: [ListenerConfiguration] = []
    /// The deprecated default listener (`port`, `bind_address`, listener options before any `listener`).
    var defaultListener = ListenerConfiguration(port: 0, source: ConfigSource(file: "", line: 0))
    var defaultPortSource: ConfigSource?
    var defaultBindAddressSource: ConfigSource?
    /// First listener option that applied to the default listener (for its `source` and warnings).
    var defaultTouched: (name: String, source: ConfigSource)?
    /// Mosquitto's `local_only`: true until a `listener`, `port` or `bind_address` is seen.
    var localOnly = true

    /// Mosquitto's `cur_security_options != NULL`: a security option has been seen.
    var securityOptionSeen = false
    /// Which security-settings targets already have an auto_id_prefix (duplicates are errors).
    var autoIDPrefixSet: Set<SecurityTarget> = []

    /// Order of the last `max_topic_alias` line for each listener (nil key = default listener).
    var topicAliasOrder: [Int?: Int] = [:]
    var directiveCount = 0

    var logTypes: Set<LogType>?
    var logDestinations: [LogDestination]?
    var logFileSeen = false

    enum SecurityTarget: Hashable {
        case global
        case defaultListener
        case listener(Int)
    }

    /// Current listener of the file being read: nil = the default listener.
    typealias ListenerCursor = Int?

    // MARK: Files

    mutating func parseFile(bytes: [UInt8], fileName: String, level: Int) throws {
        var cursor: ListenerCursor = nil
        var lineNumber = 0
        var start = 0
        // Skip a UTF-8 byte order mark.
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { start = 3 }
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            lineNumber += 1
            var lineEnd = end
            while lineEnd > start && (bytes[lineEnd - 1] == 0x0D || bytes[lineEnd - 1] == 0x0A) { lineEnd -= 1 }
            try parseLine(bytes[start..<lineEnd], file: fileName, number: lineNumber, level: level, cursor: &cursor)
            start = end + 1
        }
    }

    mutating func parseLine(_ raw: ArraySlice<UInt8>, file: String, number: Int, level: Int,
                            cursor: inout ListenerCursor) throws {
        // Comment or blank?
        var i = raw.startIndex
        while i < raw.endIndex && (raw[i] == 0x20 || raw[i] == 0x09) { i += 1 }
        if i == raw.endIndex || raw[i] == UInt8(ascii: "#") { return }
        guard let text = String(bytes: raw, encoding: .utf8) else {
            throw ConfigError(file: file, line: number, message: "Malformed UTF-8 in configuration.")
        }
        let line = MosquittoConfLine(file: file, number: number, text: Substring(text))
        if line.words.isEmpty { return }
        try apply(line, level: level, cursor: &cursor)
    }

    // MARK: Directives

    mutating func apply(_ line: MosquittoConfLine, level: Int, cursor: inout ListenerCursor) throws {
        let name = line.directive
        switch name {
        // --- Listeners ---
        case "listener":
            try parseListener(line, cursor: &cursor)
        case "port":
            warn(line, "The 'port' option is deprecated; use 'listener' instead.")
            localOnly = false
            let port = try line.int()
            guard (1...65535).contains(port) else {
                throw line.error("Invalid port value \(port) (must be between 1 and 65535).")
            }
            if defaultPortSource != nil {
                warn(line, "Default listener port specified multiple times. Only the latest will be used.")
            }
            defaultListener.port = port
            defaultPortSource = line.source
        case "bind_address":
            warn(line, "The 'bind_address' option is deprecated; use 'listener PORT ADDRESS' instead.")
            localOnly = false
            let address = try line.single()
            if defaultListener.bindAddress != nil {
                throw line.error("Duplicate bind_address value (bind_address applies to the default listener only).")
            }
            defaultListener.bindAddress = address
            defaultBindAddressSource = line.source
        case "bind_interface":
            let value = try line.single()
            try updateListener(line, cursor) { l in
                if l.bindInterface != nil { throw line.error("Duplicate bind_interface value for this listener.") }
                l.bindInterface = value
            }
        case "socket_domain":
            let value = try line.single()
            guard let domain = SocketDomain(rawValue: value) else {
                throw line.error("Invalid value for socket_domain: \"\(value)\" (expected ipv4 or ipv6).")
            }
            try updateListener(line, cursor) { $0.socketDomain = domain }
        case "max_connections":
            let n = try line.int()
            try updateListener(line, cursor) { $0.maxConnections = n < 0 ? -1 : n }
        case "protocol":
            let value = try line.single()
            guard value == "mqtt" || value == "websockets" else {
                throw line.error("Invalid value for protocol: \"\(value)\" (expected mqtt or websockets).")
            }
            try updateListener(line, cursor) { $0.protocolName = value }
        case "max_topic_alias":
            let n = try line.int(in: 0...65535)
            try updateListener(line, cursor) { $0.maxTopicAlias = n }
            directiveCount += 1
            topicAliasOrder[cursor] = directiveCount

        // --- Certificate-based TLS: always options of the current listener, as in Mosquitto ---
        case "certfile", "keyfile", "cafile", "capath", "crlfile", "ciphers", "ciphers_tls1.3", "tls_version",
             "require_certificate", "use_identity_as_username", "use_subject_as_username":
            try parseTLSOption(line, cursor: cursor)

        // --- Security (global or per listener) ---
        case "per_listener_settings":
            let value = try line.bool()
            if value && securityOptionSeen {
                throw line.error("per_listener_settings must be set before any other security settings "
                                 + "(allow_anonymous, allow_zero_length_clientid, auto_id_prefix, check_retain_source, ...).")
            }
            config.perListenerSettings = value
        case "allow_anonymous":
            let value = try line.bool()
            try updateSecurity(line, cursor) { $0.allowAnonymous = value }
        case "allow_zero_length_clientid":
            let value = try line.bool()
            try updateSecurity(line, cursor) { $0.allowZeroLengthClientID = value }
        case "auto_id_prefix":
            let value = try line.freeText()
            let target = securityTarget(cursor)
            if autoIDPrefixSet.contains(target) {
                throw line.error("Duplicate auto_id_prefix value in configuration.")
            }
            autoIDPrefixSet.insert(target)
            try updateSecurity(line, cursor) { $0.autoIDPrefix = value }
        case "password_file":
            let value = try line.freeText()
            try updateSecurity(line, cursor) { $0.passwordFile = value }
        case "acl_file":
            let value = try line.freeText()
            try updateSecurity(line, cursor) { $0.aclFile = value }
        case "auth_failure_limit":
            config.authFailureLimit = try line.int(in: 0...1_000_000)
        case "auth_failure_window":
            config.authFailureWindow = try line.int(in: 1...86_400)
        case "auth_ban_time":
            config.authBanTime = try line.int(in: 1...86_400)
        case "connection_rate_limit":
            config.connectionRateLimit = try line.int(in: 0...1_000_000)
        case "connect_timeout":
            config.connectTimeout = try line.int(in: 0...86_400)
        case "check_retain_source":
            // Global, but Mosquitto counts it as a security option for per_listener_settings ordering.
            let value = try line.bool()
            securityOptionSeen = true
            config.checkRetainSource = value

        // --- Global limits and behaviour ---
        case "max_keepalive":
            config.maxKeepalive = try line.int(in: 0...65535)
        case "max_packet_size":
            let n = try line.int()
            guard n >= 20 else {
                throw line.error("Invalid max_packet_size value \(n) (must be at least 20 bytes).")
            }
            config.maxPacketSize = n
        case "message_size_limit":
            warn(line, "It is recommended to replace 'message_size_limit' with 'max_packet_size'.")
            config.messageSizeLimit = try line.int(in: 0...268_435_455)
        case "max_inflight_messages":
            let n = try line.int()
            if n > 65535 { throw line.error("Invalid max_inflight_messages value \(n) (must be at most 65535).") }
            config.maxInflightMessages = (n < 0 || n == 65535) ? 0 : n
        case "max_inflight_bytes":
            config.maxInflightBytes = max(0, try line.int())
        case "max_queued_messages":
            config.maxQueuedMessages = max(0, try line.int())
        case "max_queued_bytes":
            config.maxQueuedBytes = max(0, try line.int())
        case "queue_qos0_messages":
            config.queueQoS0Messages = try line.bool()
        case "retain_available":
            config.retainAvailable = try line.bool()
        case "upgrade_outgoing_qos":
            config.upgradeOutgoingQoS = try line.bool()
        case "persistent_client_expiration":
            config.persistentClientExpiration = try parseExpiration(line)
        case "set_tcp_nodelay":
            config.setTCPNoDelay = try line.bool()
        case "connection_messages":
            config.connectionMessages = try line.bool()
        case "allow_duplicate_messages":
            _ = try line.bool()
            warn(line, "The 'allow_duplicate_messages' option is deprecated and ignored (duplicates are always allowed).")
        case "retry_interval":
            // Mosquitto 2.0 ignores the option (and its value) with a warning.
            warn(line, "The retry_interval option is no longer available; ignored.")

        // --- Logging ---
        case "log_dest":
            try parseLogDest(line)
        case "log_type":
            try parseLogType(line)
        case "log_timestamp":
            config.logTimestamp = try line.bool()
        case "log_timestamp_format":
            let value = try line.freeText()
            if config.logTimestampFormat != nil {
                throw line.error("Duplicate log_timestamp_format value in configuration.")
            }
            config.logTimestampFormat = value
        case "log_facility":
            // Only meaningful for syslog; validated like Mosquitto (local0...local7), then ignored.
            _ = try line.int(in: 0...7)

        // --- Includes ---
        case "include_dir":
            try includeDirectory(line, level: level)

        default:
            if ConfigFileParser.notSupportedYet.contains(name)
                || ConfigFileParser.notSupportedYetPrefixes.contains(where: { name.hasPrefix($0) }) {
                throw line.error("directive '\(name)' is not supported yet")
            }
            throw line.error("Unknown configuration variable \"\(name)\".")
        }
    }

    mutating func warn(_ line: MosquittoConfLine, _ message: String) {
        config.warnings.append("\(line.file):\(line.number): \(message)")
    }

    // MARK: Listeners

    mutating func parseListener(_ line: MosquittoConfLine, cursor: inout ListenerCursor) throws {
        localOnly = false
        let values = line.values
        guard let portText = values.first else {
            throw line.error("Missing port for listener (expected: listener PORT [BIND_ADDRESS|UNIX_SOCKET_PATH]).")
        }
        if values.count > 2 {
            throw line.error("Unexpected extra value \"\(values[2])\" for listener (expected: listener PORT [BIND_ADDRESS|UNIX_SOCKET_PATH]).")
        }
        let port = try line.int(portText)
        guard (0...65535).contains(port) else {
            throw line.error("Invalid listener port \(port) (must be between 1 and 65535, or 0 with a Unix socket path).")
        }
        var listener = ListenerConfiguration(port: port, source: line.source)
        if values.count == 2 {
            if port == 0 {
                listener.unixSocketPath = values[1]
            } else {
                listener.bindAddress = values[1]
            }
        } else if port == 0 {
            throw line.error("A listener with port 0 must provide a Unix socket path.")
        }
        listeners.append(listener)
        cursor = listeners.count - 1
    }

    mutating func updateListener(_ line: MosquittoConfLine, _ cursor: ListenerCursor,
                                 _ body: (inout ListenerConfiguration) throws -> Void) throws {
        if let index = cursor {
            try body(&listeners[index])
        } else {
            try body(&defaultListener)
            if defaultTouched == nil { defaultTouched = (line.directive, line.source) }
        }
    }

    // MARK: TLS

    /// One certificate-based TLS option (values checked here; the files are loaded at start-up).
    mutating func parseTLSOption(_ line: MosquittoConfLine, cursor: ListenerCursor) throws {
        let name = line.directive
        let apply: (inout TLSSettings) -> Void
        var isString = true
        switch name {
        case "require_certificate", "use_identity_as_username", "use_subject_as_username":
            let value = try line.bool()
            isString = false
            switch name {
            case "require_certificate": apply = { $0.requireCertificate = value }
            case "use_identity_as_username": apply = { $0.useIdentityAsUsername = value }
            default: apply = { $0.useSubjectAsUsername = value }
            }
        case "tls_version":
            let value = try line.single()
            guard let version = TLSSettings.Version(rawValue: value) else {
                throw line.error("Invalid tls_version value \"\(value)\" (expected tlsv1.3, tlsv1.2 or tlsv1.1).")
            }
            apply = { $0.minimumVersion = version }
        case "ciphers":
            let value = try line.single()
            apply = { $0.ciphers = value }
        case "ciphers_tls1.3":
            let value = try line.single()
            apply = { $0.ciphersTLS13 = value }
        default:
            // File names take the rest of the line, like Mosquitto's string options.
            let value = try line.freeText()
            switch name {
            case "certfile": apply = { $0.certFile = value }
            case "keyfile": apply = { $0.keyFile = value }
            case "cafile": apply = { $0.caFile = value }
            case "capath": apply = { $0.caPath = value }
            default: apply = { $0.crlFile = value }
            }
        }
        try updateListener(line, cursor) { listener in
            if isString && listener.tls.sources[name] != nil {
                throw line.error("Duplicate \(name) value in configuration.")
            }
            apply(&listener.tls)
            listener.tls.sources[name] = line.source
        }
    }

    // MARK: Security

    func securityTarget(_ cursor: ListenerCursor) -> SecurityTarget {
        guard config.perListenerSettings else { return .global }
        if let index = cursor { return .listener(index) }
        return .defaultListener
    }

    mutating func updateSecurity(_ line: MosquittoConfLine, _ cursor: ListenerCursor,
                                 _ body: (inout SecuritySettings) -> Void) throws {
        securityOptionSeen = true
        switch securityTarget(cursor) {
        case .global:
            body(&config.security)
        case .listener(let index):
            body(&listeners[index].security)
        case .defaultListener:
            body(&defaultListener.security)
            if defaultTouched == nil { defaultTouched = (line.directive, line.source) }
        }
    }

    // MARK: Values

    func parseExpiration(_ line: MosquittoConfLine) throws -> Int {
        let value = try line.single()
        let invalid = line.error("Invalid persistent_client_expiration value \"\(value)\" "
                                 + "(expected a positive number followed by h, d, w, m or y, e.g. 14d).")
        guard let unit = value.last else { throw invalid }
        let multiplier: Int
        switch unit {
        case "h": multiplier = 3600
        case "d": multiplier = 86400
        case "w": multiplier = 86400 * 7
        case "m": multiplier = 86400 * 30
        case "y": multiplier = 86400 * 365
        default: throw invalid
        }
        let number = value.dropLast()
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && $0.isNumber }),
              let n = Int(number), n > 0, n <= Int(Int32.max) else { throw invalid }
        return n * multiplier
    }

    mutating func parseLogDest(_ line: MosquittoConfLine) throws {
        let values = line.values
        guard let kind = values.first else { throw line.error("Missing value for log_dest.") }
        var dests = logDestinations ?? []
        let dest: LogDestination
        switch kind {
        case "file":
            if logFileSeen { throw line.error("Duplicate \"log_dest file\" value (only one log file may be configured).") }
            let path = line.rest(after: 1)
            if path.isEmpty { throw line.error("Missing file name for \"log_dest file\".") }
            logFileSeen = true
            dest = .file(path)
        case "none":
            if values.count > 1 { throw line.error("Unexpected extra value \"\(values[1])\" for log_dest (it takes a single value).") }
            logDestinations = []
            return
        case "stdout", "stderr", "syslog", "topic", "dlt":
            if values.count > 1 { throw line.error("Unexpected extra value \"\(values[1])\" for log_dest (it takes a single value).") }
            switch kind {
            case "stdout": dest = .stdout
            case "stderr": dest = .stderr
            case "syslog": dest = .syslog
            case "topic": dest = .topic
            default: dest = .dlt
            }
        default:
            throw line.error("Invalid value for log_dest: \"\(kind)\" (expected stdout, stderr, syslog, topic, dlt, file PATH or none).")
        }
        if !dests.contains(dest) { dests.append(dest) }
        logDestinations = dests
    }

    mutating func parseLogType(_ line: MosquittoConfLine) throws {
        let value = try line.single()
        var types = logTypes ?? []
        switch value {
        case "none":
            types = []
        case "all":
            types = Set(LogType.allCases).subtracting([.none])
        case "internal":
            // Accepted by Mosquitto (internal debugging); Midge has no such messages.
            warn(line, "log_type internal is accepted but has no effect.")
        default:
            guard let type = LogType(rawValue: value) else {
                throw line.error("Invalid value for log_type: \"\(value)\" (expected debug, error, warning, notice, "
                                 + "information, subscribe, unsubscribe, websockets, none or all).")
            }
            types.insert(type)
        }
        logTypes = types
    }

    // MARK: include_dir

    mutating func includeDirectory(_ line: MosquittoConfLine, level: Int) throws {
        let dir = try line.freeText()
        guard level == 0 else {
            // Mosquitto only processes include_dir in the main configuration file.
            warn(line, "include_dir is only processed in the main configuration file; ignored.")
            return
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue,
              let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
            throw line.error("Unable to open include_dir '\(dir)'.")
        }
        let files = names
            .filter { $0.utf8.count > 5 && $0.hasSuffix(".conf") }
            .sorted(by: ConfigFileParser.mosquittoIncludeOrder)
        for name in files {
            let path = dir.hasSuffix("/") ? dir + name : dir + "/" + name
            let bytes = try ConfigFileParser.readConfigFile(path, errorFile: line.file, errorLine: line.number)
            try parseFile(bytes: bytes, fileName: path, level: level + 1)
        }
    }

    // MARK: Finish

    mutating func finish() -> BrokerConfiguration {
        var result = config
        var all = listeners
        var lastTopicAlias: (order: Int, value: Int)?
        for (index, listener) in listeners.enumerated() {
            if let order = topicAliasOrder[index], order > (lastTopicAlias?.order ?? 0) {
                lastTopicAlias = (order, listener.maxTopicAlias)
            }
        }

        let d = defaultListener
        let configured = defaultPortSource != nil || d.bindAddress != nil || d.bindInterface != nil
            || d.socketDomain != nil || d.maxConnections != -1 || d.protocolName != "mqtt"
            || d.security.allowZeroLengthClientID != true || d.tls.isConfigured
        if !localOnly && configured {
            var listener = d
            if defaultPortSource == nil { listener.port = 1883 }
            listener.source = defaultPortSource ?? defaultBindAddressSource ?? defaultTouched?.source ?? listener.source
            all.append(listener)
            if let order = topicAliasOrder[nil], order > (lastTopicAlias?.order ?? 0) {
                lastTopicAlias = (order, listener.maxTopicAlias)
            }
        } else if let touched = defaultTouched {
            let reason = localOnly
                ? "no listener is defined, so the broker runs in local-only mode"
                : "the default listener is not defined (no 'port' or 'bind_address')"
            result.warnings.append("\(touched.source.file):\(touched.source.line): '\(touched.name)' appears before any "
                                   + "'listener' line and so applies to the default listener, but \(reason); it has no effect.")
        }
        result.listeners = all
        result.maxTopicAlias = lastTopicAlias?.value ?? 10

        if let types = logTypes {
            result.logTypes = types.isEmpty ? [.none] : types
        }
        if let dests = logDestinations {
            result.logDestinations = dests.isEmpty ? [.none] : dests
        }
        return result
    }
}
