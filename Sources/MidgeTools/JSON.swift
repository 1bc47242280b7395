import Foundation

/// A JSON value read and printed the way cJSON (which mosquitto_sub uses for `%j` / `%J`) does:
/// strings stay raw bytes, numbers are doubles printed with `%d`, `%1.15g` or `%1.17g`, and
/// formatted output uses tabs.
indirect enum JSONValue: Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string([UInt8])
    case array([JSONValue])
    /// Keys in order; duplicates kept.
    case object([([UInt8], JSONValue)])

    static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    // MARK: Printing

    func printed(pretty: Bool) -> [UInt8] {
        var out: [UInt8] = []
        print(into: &out, pretty: pretty, depth: 0)
        return out
    }

    private func print(into out: inout [UInt8], pretty: Bool, depth: Int) {
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let value): out += Array((value ? "true" : "false").utf8)
        case .number(let value): out += Array(Self.formatNumber(value).utf8)
        case .string(let bytes): Self.printString(bytes, into: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                element.print(into: &out, pretty: pretty, depth: depth + 1)
                if index < elements.count - 1 {
                    out.append(UInt8(ascii: ","))
                    if pretty { out.append(0x20) }
                }
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            let inner = depth + 1
            out.append(UInt8(ascii: "{"))
            if pretty { out.append(0x0A) }
            for (index, member) in members.enumerated() {
                if pretty { out += [UInt8](repeating: 0x09, count: inner) }
                Self.printString(member.0, into: &out)
                out.append(UInt8(ascii: ":"))
                if pretty { out.append(0x09) }
                member.1.print(into: &out, pretty: pretty, depth: inner)
                if index < members.count - 1 { out.append(UInt8(ascii: ",")) }
                if pretty { out.append(0x0A) }
            }
            if pretty { out += [UInt8](repeating: 0x09, count: inner - 1) }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// cJSON's print_number.
    static func formatNumber(_ d: Double) -> String {
        if d.isNaN || d.isInfinite { return "null" }
        let valueInt: Int32
        if d >= Double(Int32.max) {
            valueInt = Int32.max
        } else if d <= Double(Int32.min) {
            valueInt = Int32.min
        } else {
            valueInt = Int32(d)
        }
        if d == Double(valueInt) { return String(valueInt) }
        let short = String(format: "%1.15g", d)
        if let back = Double(short), abs(back - d) <= max(abs(back), abs(d)) * Double.ulpOfOne { return short }
        return String(format: "%1.17g", d)
    }

    /// cJSON's print_string_ptr.
    static func printString(_ bytes: [UInt8], into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): out += Array("\\\"".utf8)
            case UInt8(ascii: "\\"): out += Array("\\\\".utf8)
            case 0x08: out += Array("\\b".utf8)
            case 0x0C: out += Array("\\f".utf8)
            case 0x0A: out += Array("\\n".utf8)
            case 0x0D: out += Array("\\r".utf8)
            case 0x09: out += Array("\\t".utf8)
            case 0..<0x20: out += Array(String(format: "\\u%04x", byte).utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    // MARK: Parsing (cJSON_ParseWithOpts with require_null_terminated)

    /// Parses all of `bytes` (whitespace around the value allowed, a UTF-8 BOM skipped); nil if
    /// it is not one JSON value. A NUL byte ends the text, as it ends the C string cJSON reads.
    static func parse(_ bytes: [UInt8]) -> JSONValue? {
        var parser = Parser(bytes: bytes)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { parser.index = 3 }
        parser.skipWhitespace()
        guard let value = parser.parseValue(depth: 0) else { return nil }
        parser.skipWhitespace()
        guard parser.index == bytes.count else { return nil }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        var current: UInt8? { index < bytes.count && bytes[index] != 0 ? bytes[index] : nil }

        mutating func skipWhitespace() {
            while let c = current, c <= 32 { index += 1 }
        }

        mutating func literal(_ word: String) -> Bool {
            let w = Array(word.utf8)
            guard index + w.count <= bytes.count, Array(bytes[index..<index + w.count]) == w else { return false }
            index += w.count
            return true
        }

        mutating func parseValue(depth: Int) -> JSONValue? {
            guard let c = current else { return nil }
            if literal("null") { return .null }
            if literal("false") { return .bool(false) }
            if literal("true") { return .bool(true) }
            switch c {
            case UInt8(ascii: "\""): return parseString().map { .string($0) }
            case UInt8(ascii: "-"), 0x30...0x39: return parseNumber()
            case UInt8(ascii: "["): return depth >= 1000 ? nil : parseArray(depth: depth + 1)
            case UInt8(ascii: "{"): return depth >= 1000 ? nil : parseObject(depth: depth + 1)
            default: return nil
            }
        }

        mutating func parseNumber() -> JSONValue? {
            var text: [CChar] = []
            var i = index
            while i < bytes.count {
                let c = bytes[i]
                guard (0x30...0x39).contains(c) || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") || c == UInt8(ascii: "e")
                        || c == UInt8(ascii: "E") || c == UInt8(ascii: ".") else { break }
                text.append(CChar(bitPattern: c))
                i += 1
            }
            text.append(0)
            var consumed = 0
            let value = text.withUnsafeBufferPointer { buffer -> Double in
                var end: UnsafeMutablePointer<CChar>?
                let d = strtod(buffer.baseAddress!, &end)
                consumed = end.map { UnsafePointer($0) - buffer.baseAddress! } ?? 0
                return d
            }
            guard consumed > 0 else { return nil }
            index += consumed
            return .number(value)
        }

        mutating func parseHex4(_ at: Int) -> UInt32? {
            guard at + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for c in bytes[at..<at + 4] {
                value <<= 4
                switch c {
                case 0x30...0x39: value |= UInt32(c - 0x30)
                case 0x41...0x46: value |= UInt32(c - 0x41 + 10)
                case 0x61...0x66: value |= UInt32(c - 0x61 + 10)
                default: return nil
                }
            }
            return value
        }

        mutating func parseString() -> [UInt8]? {
            index += 1
            var out: [UInt8] = []
            while true {
                guard let c = current else { return nil }
                if c == UInt8(ascii: "\"") {
                    index += 1
                    return out
                }
                if c != UInt8(ascii: "\\") {
                    out.append(c)
                    index += 1
                    continue
                }
                guard index + 1 < bytes.count else { return nil }
                let escape = bytes[index + 1]
                switch escape {
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "u"):
                    guard var code = parseHex4(index + 2) else { return nil }
                    var length = 6
                    if (0xDC00...0xDFFF).contains(code) { return nil }
                    if (0xD800...0xDBFF).contains(code) {
                        guard index + 12 <= bytes.count, bytes[index + 6] == UInt8(ascii: "\\"), bytes[index + 7] == UInt8(ascii: "u"),
                              let low = parseHex4(index + 8), (0xDC00...0xDFFF).contains(low) else { return nil }
                        code = 0x10000 + (((code & 0x3FF) << 10) | (low & 0x3FF))
                        length = 12
                    }
                    guard let scalar = Unicode.Scalar(code) else { return nil }
                    out += Array(String(Character(scalar)).utf8)
                    index += length
                    continue
                default: return nil
                }
                index += 2
            }
        }

        mutating func parseArray(depth: Int) -> JSONValue? {
            index += 1
            skipWhitespace()
            var elements: [JSONValue] = []
            if current == UInt8(ascii: "]") {
                index += 1
                return .array(elements)
            }
            while true {
                skipWhitespace()
                guard let value = parseValue(depth: depth) else { return nil }
                elements.append(value)
                skipWhitespace()
                if current == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard current == UInt8(ascii: "]") else { return nil }
                index += 1
                return .array(elements)
            }
        }

        mutating func parseObject(depth: Int) -> JSONValue? {
            index += 1
            skipWhitespace()
            var members: [([UInt8], JSONValue)] = []
            if current == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard current == UInt8(ascii: "\""), let key = parseString() else { return nil }
                skipWhitespace()
                guard current == UInt8(ascii: ":") else { return nil }
                index += 1
                skipWhitespace()
                guard let value = parseValue(depth: depth) else { return nil }
                members.append((key, value))
                skipWhitespace()
                if current == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard current == UInt8(ascii: "}") else { return nil }
                index += 1
                return .object(members)
            }
        }
    }
}
