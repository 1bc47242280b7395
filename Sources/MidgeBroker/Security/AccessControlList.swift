import Foundation
import MQTTCodec

/// A Mosquitto ACL file (mosquitto.conf(5), `acl_file`):
///
/// ```
/// topic read public/#          # before any `user` line: rules for anonymous clients
/// user ciel
/// topic readwrite home/#       # rules for user ciel
/// topic deny home/secret
/// pattern write devices/%c/#   # for every client: %c = client id, %u = user name
/// ```
///
/// A `deny` rule that matches wins; otherwise access needs a rule that grants it. With an ACL
/// file configured, anything not granted is denied.
public struct AccessControlList: Equatable, Sendable {
    public enum Access: String, Sendable { case read, write, readwrite, deny }

    public struct Rule: Equatable, Sendable {
        public var access: Access
        /// The topic filter; in a pattern it may hold %c and %u.
        public var filter: String
    }

    /// What a client asks to do.
    public enum Operation: Sendable { case read, write, subscribe }

    public private(set) var anonymousRules: [Rule] = []
    public private(set) var userRules: [String: [Rule]] = [:]
    public private(set) var patterns: [Rule] = []

    public init() {}

    public static func load(path: String) throws -> AccessControlList {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: 0, message: "Unable to open acl_file \(path).")
        }
        return try parse(text, fileName: path)
    }

    public static func parse(_ text: String, fileName: String) throws -> AccessControlList {
        var acl = AccessControlList()
        var currentUser: String?
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            func fail(_ message: String) -> ConfigError { ConfigError(file: fileName, line: lineNumber, message: message) }
            let (keyword, rest) = Self.splitFirstWord(line)
            switch keyword {
            case "user":
                guard !rest.isEmpty else { throw fail("'user' needs a user name") }
                currentUser = rest
                if acl.userRules[rest] == nil { acl.userRules[rest] = [] }
            case "topic", "pattern":
                guard !rest.isEmpty else { throw fail("'\(keyword)' needs a topic") }
                var access = Access.readwrite
                var filter = rest
                let (first, remainder) = Self.splitFirstWord(rest)
                if let explicit = Access(rawValue: first) {
                    guard !remainder.isEmpty else { throw fail("'\(keyword) \(first)' needs a topic") }
                    access = explicit
                    filter = remainder
                }
                let checked = filter.replacingOccurrences(of: "%c", with: "c").replacingOccurrences(of: "%u", with: "u")
                guard Topic.isValidFilter(checked) else { throw fail("invalid topic filter '\(filter)'") }
                let rule = Rule(access: access, filter: filter)
                if keyword == "pattern" {
                    acl.patterns.append(rule)
                } else if let user = currentUser {
                    acl.userRules[user, default: []].append(rule)
                } else {
                    acl.anonymousRules.append(rule)
                }
            default:
                throw fail("unknown ACL keyword '\(keyword)' (expected user, topic or pattern)")
            }
        }
        return acl
    }

    private static func splitFirstWord(_ text: String) -> (String, String) {
        guard let space = text.firstIndex(where: { $0 == " " || $0 == "\t" }) else { return (text, "") }
        return (String(text[..<space]), text[space...].trimmingCharacters(in: .whitespaces))
    }

    /// Whether a client may read (receive), write (publish) a topic, or subscribe to a filter.
    public func allows(_ operation: Operation, topic: String, clientID: String, username: String?) -> Bool {
        var rules: [Rule] = []
        if let username { rules = userRules[username] ?? [] } else { rules = anonymousRules }
        for pattern in patterns {
            guard let filter = Self.expand(pattern.filter, clientID: clientID, username: username) else { continue }
            rules.append(Rule(access: pattern.access, filter: filter))
        }
        let covers: (String) -> Bool = operation == .subscribe
            ? { Self.filter(topic, isWithin: $0) }
            : { Topic.matches(name: topic, filter: $0) }
        // A matching deny rule wins over any grant.
        for rule in rules where rule.access == .deny && covers(rule.filter) { return false }
        for rule in rules where covers(rule.filter) {
            switch (rule.access, operation) {
            case (.readwrite, _), (.read, .read), (.read, .subscribe), (.write, .write): return true
            default: continue
            }
        }
        return false
    }

    /// Substitutes %c and %u; nil when the value would change the filter's structure (contains
    /// `/`, `+` or `#`) or %u is needed for an anonymous client.
    static func expand(_ filter: String, clientID: String, username: String?) -> String? {
        var result = filter
        if result.contains("%c") {
            guard !clientID.contains(where: { "/+#".contains($0) }) else { return nil }
            result = result.replacingOccurrences(of: "%c", with: clientID)
        }
        if result.contains("%u") {
            guard let username, !username.contains(where: { "/+#".contains($0) }) else { return nil }
            result = result.replacingOccurrences(of: "%u", with: username)
        }
        return result
    }

    /// Is every topic `subscription` can match also matched by `rule`? (`a/+` is within `a/#`
    /// and `+/+`; `#` is within `#` only.)
    static func filter(_ subscription: String, isWithin rule: String) -> Bool {
        let sub = Topic.levels(subscription)
        let acl = Topic.levels(rule)
        for (index, level) in acl.enumerated() {
            if level == "#" { return true }
            guard index < sub.count else { return false }
            let wanted = sub[index]
            if wanted == "#" { return false }
            if level == "+" { continue }
            // Byte comparison, no Unicode normalisation [MQTT-4.7.3-4].
            if wanted == "+" || !wanted.utf8.elementsEqual(level.utf8) { return false }
        }
        return sub.count == acl.count
    }
}
