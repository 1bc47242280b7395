import Foundation
import MidgeBroker

// The tokenizer of mosquitto.conf: one line split into words, and the value readers every
// directive uses (one value, free text, boolean, integer), each failing with the line's
// `FILE:LINE: what is wrong`.

/// One non-comment line, split into words (spaces and tabs separate them).
struct MosquittoConfLine {
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

/// The value readers as functions of a line, for handlers made from a reader and a setter
/// (`tlsOption`, `securityOption`).
enum LineValue {
    static func freeText(_ line: MosquittoConfLine) throws -> String { try line.freeText() }
    static func single(_ line: MosquittoConfLine) throws -> String { try line.single() }
    static func bool(_ line: MosquittoConfLine) throws -> Bool { try line.bool() }
}
