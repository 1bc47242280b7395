import Foundation
import MidgeBroker

/// The handler of one directive: reads `line`'s values and applies them to the reader. `scope`
/// is where the line stands (its file's include level and current listener).
typealias DirectiveHandler = @Sendable (inout MosquittoConfReader, MosquittoConfLine, inout DirectiveScope) throws -> Void

/// Where a line is read: the include level of its file (0 = the main file) and the file's
/// current listener (nil = the default listener), which `listener` lines move.
struct DirectiveScope {
    let level: Int
    var cursor: MosquittoConfReader.ListenerCursor
}

/// Reads mosquitto.conf files line by line and hands each line to its directive's handler. The
/// handlers live by area, one table per file: ListenerDirectives, TLSDirectives,
/// SecurityDirectives, LimitDirectives, LoggingDirectives, IncludeDirectives,
/// PersistenceDirectives, and (empty for now) BridgeDirectives; names Midge knows but refuses are
/// in PendingDirectives.
struct MosquittoConfReader {
    var config = BrokerConfiguration()

    // Listener scoping (ListenerDirectives.swift)

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
    /// Order of the last `max_topic_alias` line for each listener (nil key = default listener).
    var topicAliasOrder: [Int?: Int] = [:]
    var directiveCount = 0

    // Security ordering (SecurityDirectives.swift)

    /// Mosquitto's `cur_security_options != NULL`: a security option has been seen.
    var securityOptionSeen = false
    /// Which security-settings targets already have an auto_id_prefix (duplicates are errors).
    var autoIDPrefixSet: Set<SecurityTarget> = []
    /// An `auth_plugin` line has been read (`auth_plugin_deny_special_chars` needs one before it).
    var authPluginSeen = false

    // Logging (LoggingDirectives.swift)
    var logging = LoggingState()

    // Persistence (PersistenceDirectives.swift)

    /// `persistence_file` and `persistence_location` once seen (a second one is an error).
    var persistencePathsSeen: Set<String> = []

    /// Current listener of the file being read: nil = the default listener.
    typealias ListenerCursor = Int?

    /// Every directive Midge reads, name -> handler. A name in two tables is a programming error.
    static let directives: [String: DirectiveHandler] = {
        let tables = [listenerDirectives, tlsDirectives, securityDirectives, limitDirectives,
                      loggingDirectives, includeDirectives, bridgeDirectives, persistenceDirectives,
                      processDirectives]
        return tables.reduce(into: [:]) { all, table in
            all.merge(table) { _, _ in preconditionFailure("a mosquitto.conf directive is in two tables") }
        }
    }()

    // MARK: Files and lines

    mutating func parseFile(bytes: [UInt8], fileName: String, level: Int) throws {
        var scope = DirectiveScope(level: level, cursor: nil)
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
            try parseLine(bytes[start..<lineEnd], file: fileName, number: lineNumber, scope: &scope)
            start = end + 1
        }
    }

    mutating func parseLine(_ raw: ArraySlice<UInt8>, file: String, number: Int, scope: inout DirectiveScope) throws {
        // Comment or blank?
        var i = raw.startIndex
        while i < raw.endIndex && (raw[i] == 0x20 || raw[i] == 0x09) { i += 1 }
        if i == raw.endIndex || raw[i] == UInt8(ascii: "#") { return }
        guard let text = String(bytes: raw, encoding: .utf8) else {
            throw ConfigError(file: file, line: number, message: "Malformed UTF-8 in configuration.")
        }
        let line = MosquittoConfLine(file: file, number: number, text: Substring(text))
        if line.words.isEmpty { return }
        try apply(line, scope: &scope)
    }

    // MARK: Dispatch

    mutating func apply(_ line: MosquittoConfLine, scope: inout DirectiveScope) throws {
        let name = line.directive
        if let handler = Self.directives[name] {
            try handler(&self, line, &scope)
        } else if Self.isNotSupportedYet(name) {
            throw line.error("directive '\(name)' is not supported yet")
        } else if let refusal = Self.mosquitto21Refusal(name) {
            throw line.error(refusal)
        } else {
            throw line.error("Unknown configuration variable \"\(name)\".")
        }
    }

    mutating func warn(_ line: MosquittoConfLine, _ message: String) {
        config.warnings.append("\(line.file):\(line.number): \(message)")
    }

    // MARK: Finish

    mutating func finish() -> BrokerConfiguration {
        var result = config
        finishListeners(into: &result)
        logging.finish(into: &result)
        return result
    }
}
