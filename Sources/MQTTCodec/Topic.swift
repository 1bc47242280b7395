/// Topic name and topic filter rules (spec 4.7).
public enum Topic {
    /// A Topic Name: at least one character [MQTT-4.7.3-1], no wildcard characters [MQTT-3.3.2-2] [MQTT-4.7.0-1].
    public static func isValidName(_ name: String) -> Bool {
        if name.isEmpty { return false }
        for byte in name.utf8 where byte == UInt8(ascii: "+") || byte == UInt8(ascii: "#") { return false }
        return true
    }

    /// A Topic Filter: at least one character; `#` only as the whole last level [MQTT-4.7.1-1];
    /// `+` only as a whole level [MQTT-4.7.1-2].
    public static func isValidFilter(_ filter: String) -> Bool {
        let bytes = Array(filter.utf8)
        if bytes.isEmpty { return false }
        let plus = UInt8(ascii: "+"), hash = UInt8(ascii: "#"), slash = UInt8(ascii: "/")
        for (index, byte) in bytes.enumerated() {
            if byte == plus || byte == hash {
                if index > 0 && bytes[index - 1] != slash { return false }
                if index + 1 < bytes.count && bytes[index + 1] != slash { return false }
                if byte == hash && index != bytes.count - 1 { return false }
            }
        }
        return true
    }

    /// True when the filter contains `+` or `#`.
    public static func hasWildcard(_ filter: String) -> Bool {
        filter.utf8.contains { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") }
    }

    /// Splits `$share/GROUP/FILTER` (spec 4.8.2). Returns nil when `filter` is not a shared
    /// subscription; throws when it starts with `$share/` but is not well formed: the ShareName
    /// must be at least one character, contain no `/`, `+` or `#`, and be followed by `/` and a
    /// filter [MQTT-4.8.2-1] [MQTT-4.8.2-2].
    public static func parseShared(_ filter: String) -> SharedFilter? {
        // Byte-wise: a "/" followed by a combining mark is still a separator [MQTT-4.7.3-4].
        let prefix = "$share/".utf8
        guard filter.utf8.starts(with: prefix) else { return nil }
        let rest = filter.utf8.dropFirst(prefix.count)
        guard let slash = rest.firstIndex(of: UInt8(ascii: "/")) else {
            return SharedFilter(group: String(Substring(rest)), filter: "", isValid: false)
        }
        let groupBytes = rest[rest.startIndex..<slash]
        let group = String(Substring(groupBytes))
        let inner = String(Substring(rest[rest.index(after: slash)...]))
        let groupValid = !groupBytes.isEmpty && !groupBytes.contains(UInt8(ascii: "+")) && !groupBytes.contains(UInt8(ascii: "#"))
        return SharedFilter(group: group, filter: inner, isValid: groupValid && isValidFilter(inner))
    }

    /// The levels of a topic name or filter: split at every "/" byte, empty levels kept
    /// [MQTT-4.7.1-1]. Splits the UTF-8 bytes, not Characters: the separator is the code point
    /// U+002F itself (even before a combining mark), and grapheme breaking cost ~6 000
    /// instructions per routed PUBLISH (callgrind, docs/benchmarks.md).
    public static func levels(_ topic: String) -> [Substring] {
        var levels: [Substring] = []
        levels.reserveCapacity(8)
        let utf8 = topic.utf8
        var start = utf8.startIndex
        var index = start
        while index != utf8.endIndex {
            if utf8[index] == UInt8(ascii: "/") {
                levels.append(topic[start..<index])
                start = utf8.index(after: index)
            }
            index = utf8.index(after: index)
        }
        levels.append(topic[start..<utf8.endIndex])
        return levels
    }

    /// Does `name` match `filter`? Topics starting with `$` are not matched by a filter whose
    /// first level is a wildcard [MQTT-4.7.2-1].
    public static func matches(name: String, filter: String) -> Bool {
        // Levels split and compared byte for byte: no normalisation [MQTT-4.7.3-4].
        let nameLevels = Topic.levels(name).map(ExactText.init)
        let filterLevels = Topic.levels(filter).map(ExactText.init)
        let plus = ExactText("+"), hash = ExactText("#")
        if name.utf8.first == UInt8(ascii: "$"), let first = filterLevels.first, first == plus || first == hash { return false }
        var index = 0
        while index < filterLevels.count {
            let level = filterLevels[index]
            // "a/#" also matches "a" (the parent level): "#" is reached one level past the name.
            if level == hash { return true }
            if index >= nameLevels.count { return false }
            if level != plus && level != nameLevels[index] { return false }
            index += 1
        }
        return index == nameLevels.count
    }
}

/// A parsed `$share/GROUP/FILTER`.
public struct SharedFilter: Equatable, Sendable {
    public var group: String
    public var filter: String
    public var isValid: Bool
}
