/// Text compared and hashed by its UTF-8 bytes, for dictionary keys that hold topics, filters,
/// topic levels, share names and client identifiers.
///
/// Swift's `String` equality is Unicode canonical equivalence: "caf\u{E9}" (precomposed) equals
/// "cafe\u{301}" (e + combining accent), so a `[String: …]` would route, retain, alias or cache
/// one under the other. MQTT compares these byte for byte, with no normalisation [MQTT-4.7.3-4].
public struct ExactText: Hashable, Sendable, CustomStringConvertible {
    public let text: Substring

    @inline(__always) public init(_ text: Substring) { self.text = text }
    @inline(__always) public init(_ text: String) { self.text = text[...] }

    public var string: String { String(text) }
    public var description: String { String(text) }

    public static func == (lhs: ExactText, rhs: ExactText) -> Bool {
        let fast = lhs.text.utf8.withContiguousStorageIfAvailable { left in
            rhs.text.utf8.withContiguousStorageIfAvailable { right in
                left.count == right.count && left.elementsEqual(right)
            }
        }
        if let fast, let result = fast { return result }
        return lhs.text.utf8.elementsEqual(rhs.text.utf8)
    }

    public func hash(into hasher: inout Hasher) {
        let hashed: Void? = text.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if hashed == nil { Array(text.utf8).withUnsafeBytes { hasher.combine(bytes: $0) } }
    }
}
