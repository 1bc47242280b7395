import Foundation
import MidgeClient
import MQTTCodec
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How `sub` and `rr` print a message: plain, `-v`, `-N`, or `-F FORMAT` with Mosquitto's
/// `%` codes, `@` time codes and `\` escapes (sub_client_output.c of Mosquitto 2.0).
public struct MessageFormatter: Sendable {
    public var format: String?
    public var verbose: Bool
    public var endOfLine: Bool
    public var pretty: Bool
    /// Per ten thousand; 10000 prints everything.
    public var randomFilter: Int
    /// The wall clock (seconds and nanoseconds since 1970); tests fix it.
    public var clock: @Sendable () -> timespec

    public init(format: String? = nil, verbose: Bool = false, endOfLine: Bool = true, pretty: Bool = false,
                randomFilter: Int = 10000, clock: @escaping @Sendable () -> timespec = MessageFormatter.systemClock) {
        self.format = format; self.verbose = verbose; self.endOfLine = endOfLine; self.pretty = pretty
        self.randomFilter = randomFilter; self.clock = clock
    }

    init(options: ClientOptions) {
        self.init(format: options.format, verbose: options.verbose, endOfLine: options.endOfLine, pretty: options.pretty,
                  randomFilter: options.randomFilter)
    }

    public static let systemClock: @Sendable () -> timespec = {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return now
    }

    /// What to write for `message` (empty when nothing is printed), and the error lines for
    /// standard error (`%J` with a payload that is not JSON).
    public func render(_ message: MQTTMessage) -> (output: [UInt8], errors: [String]) {
        if randomFilter < 10000 && Int.random(in: 0..<10000) >= randomFilter { return ([], []) }
        var out: [UInt8] = []
        var errors: [String] = []
        let payload = Array(message.payload.readableBytesView)
        if let format {
            formatted(Array(format.utf8), message, payload, &out, &errors)
            if endOfLine { out.append(0x0A) }
        } else if verbose {
            if !payload.isEmpty {
                out += Array(message.topic.utf8) + [0x20] + payload
                if endOfLine { out.append(0x0A) }
            } else if endOfLine {
                out += Array("\(message.topic) (null)\n".utf8)
            }
        } else if !payload.isEmpty {
            out += payload
            if endOfLine { out.append(0x0A) }
        }
        return (out, errors)
    }

    // MARK: - -F

    private func formatted(_ fmt: [UInt8], _ message: MQTTMessage, _ payload: [UInt8], _ out: inout [UInt8], _ errors: inout [String]) {
        let len = fmt.count
        var i = 0
        var time: (tm, Int)?
        func now() -> (tm, Int) {
            if let time { return time }
            let spec = clock()
            var seconds = spec.tv_sec
            var local = tm()
            localtime_r(&seconds, &local)
            time = (local, Int(spec.tv_nsec))
            return time!
        }
        while i < len {
            let c = fmt[i]
            if c == UInt8(ascii: "%") {
                var align: UInt8 = 0
                var pad: UInt8 = 0x20
                var width = 0
                var precision = -1
                if i < len - 1 {
                    i += 1
                    if fmt[i] == UInt8(ascii: "-") {
                        align = fmt[i]
                        if i < len - 1 { i += 1 }
                    }
                    if fmt[i] == UInt8(ascii: "0") {
                        pad = UInt8(ascii: "0")
                        if i < len - 1 { i += 1 }
                    }
                    while i < len - 1 && isDigit(fmt[i]) {
                        width = width * 10 + Int(fmt[i] - 0x30)
                        i += 1
                    }
                    if fmt[i] == UInt8(ascii: ".") {
                        if i < len - 1 {
                            i += 1
                            precision = 0
                            while i < len - 1 && isDigit(fmt[i]) {
                                precision = precision * 10 + Int(fmt[i] - 0x30)
                                i += 1
                            }
                        }
                    }
                    if i < len {
                        percent(fmt[i], message, payload, align: align, pad: pad, width: width, precision: precision,
                                time: now, &out, &errors)
                    }
                }
            } else if c == UInt8(ascii: "@") {
                if i < len - 1 {
                    i += 1
                    let code = fmt[i]
                    if code == UInt8(ascii: "@") {
                        out.append(code)
                    } else if code == UInt8(ascii: "N") {
                        out += Array(String(format: "%09ld", now().1).utf8)
                    } else {
                        var local = now().0
                        out += Self.strftime([UInt8(ascii: "%"), code], &local)
                    }
                }
            } else if c == UInt8(ascii: "\\") {
                if i < len - 1 {
                    i += 1
                    switch fmt[i] {
                    case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
                    case UInt8(ascii: "0"): out.append(0)
                    case UInt8(ascii: "a"): out.append(0x07)
                    case UInt8(ascii: "e"): out.append(0x1B)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "v"): out.append(0x0B)
                    default: break
                    }
                }
            } else {
                out.append(c)
            }
            i += 1
        }
    }

    // swiftlint:disable:next cyclomatic_complexity function_parameter_count
    private func percent(_ code: UInt8, _ message: MQTTMessage, _ payload: [UInt8], align: UInt8, pad: UInt8, width: Int,
                         precision: Int, time: () -> (tm, Int), _ out: inout [UInt8], _ errors: inout [String]) {
        let properties = message.properties
        switch code {
        case UInt8(ascii: "%"):
            out.append(code)
        case UInt8(ascii: "A"):
            if let alias = properties.topicAlias { out += Self.int(Int(alias), align, pad, width) } else { out += Self.blank(pad, width) }
        case UInt8(ascii: "C"):
            if let type = properties.contentType { out += Self.str(Array(type.utf8), align, width, precision) } else { out += Self.blank(0x20, width) }
        case UInt8(ascii: "D"):
            if let data = properties.correlationData { out += Array(data.readableBytesView) }
        case UInt8(ascii: "E"):
            if let expiry = properties.messageExpiryInterval {
                out += Self.int(Int(Int32(truncatingIfNeeded: expiry)), align, pad, width)
            } else {
                out += Self.blank(pad, width)
            }
        case UInt8(ascii: "F"):
            if let indicator = properties.payloadFormatIndicator { out += Self.int(Int(indicator), align, pad, width) } else { out += Self.blank(pad, width) }
        case UInt8(ascii: "I"):
            var local = time().0
            let text = Self.strftime(Array("%FT%T%z".utf8), &local)
            if !text.isEmpty { out += Self.str(text, align, width, precision) } else { out += Self.blank(0x20, width) }
        case UInt8(ascii: "j"), UInt8(ascii: "J"):
            let (local, ns) = time()
            if let json = json(message, payload, local: local, nanoseconds: ns, escaped: code == UInt8(ascii: "j")) {
                out += json
            } else {
                errors.append("Error: Message payload is not valid JSON on topic \(message.topic).\n")
            }
        case UInt8(ascii: "l"):
            out += Self.int(payload.count, align, pad, width)
        case UInt8(ascii: "m"):
            out += Self.int(Int(message.packetID), align, pad, width)
        case UInt8(ascii: "P"):
            var first = true
            for property in properties.userProperties {
                if !first { out.append(0x20) }
                first = false
                out += Array("\(property.name):\(property.value)".utf8)
            }
        case UInt8(ascii: "p"):
            out += Self.payload(payload, hex: 0, align, pad, width)
        case UInt8(ascii: "q"):
            out.append(0x30 + message.qos.rawValue)
        case UInt8(ascii: "R"):
            if let topic = properties.responseTopic { out += Self.str(Array(topic.utf8), align, width, precision) }
        case UInt8(ascii: "r"):
            out.append(message.retain ? UInt8(ascii: "1") : UInt8(ascii: "0"))
        case UInt8(ascii: "S"):
            if let identifier = properties.subscriptionIdentifiers.first {
                out += Self.int(identifier, align, pad, width)
            } else {
                out += Self.blank(pad, width)
            }
        case UInt8(ascii: "t"):
            out += Self.str(Array(message.topic.utf8), align, width, precision)
        case UInt8(ascii: "U"):
            let (local, ns) = time()
            var copy = local
            let seconds = Self.strftime(Array("%s".utf8), &copy)
            if !seconds.isEmpty { out += seconds + Array(String(format: ".%09ld", ns).utf8) }
        case UInt8(ascii: "x"):
            out += Self.payload(payload, hex: 1, align, pad, width)
        case UInt8(ascii: "X"):
            out += Self.payload(payload, hex: 2, align, pad, width)
        default:
            break
        }
    }

    // MARK: - Padding helpers (printf's %*d, %-*s, ... as Mosquitto uses them)

    static func blank(_ pad: UInt8, _ width: Int) -> [UInt8] { width > 0 ? [UInt8](repeating: pad, count: width) : [] }

    static func int(_ value: Int, _ align: UInt8, _ pad: UInt8, _ width: Int) -> [UInt8] {
        let digits = Array(String(value).utf8)
        guard width > digits.count else { return digits }
        let fill = width - digits.count
        if align == UInt8(ascii: "-") { return digits + [UInt8](repeating: 0x20, count: fill) }
        if pad == UInt8(ascii: "0") {
            if value < 0 { return [UInt8(ascii: "-")] + [UInt8](repeating: 0x30, count: fill) + digits.dropFirst() }
            return [UInt8](repeating: 0x30, count: fill) + digits
        }
        return [UInt8](repeating: 0x20, count: fill) + digits
    }

    static func str(_ value: [UInt8], _ align: UInt8, _ width: Int, _ precision: Int) -> [UInt8] {
        var text = value
        if precision >= 0 && text.count > precision { text = Array(text[0..<precision]) }
        guard width > text.count else { return text }
        let fill = [UInt8](repeating: 0x20, count: width - text.count)
        return align == UInt8(ascii: "-") ? text + fill : fill + text
    }

    /// `write_payload`, quirks included (a hex field width counts characters, not bytes).
    static func payload(_ payload: [UInt8], hex: Int, _ align: UInt8, _ pad: UInt8, _ width: Int) -> [UInt8] {
        var length = payload.count
        var padLength: Int
        if width > 0 {
            if length > width { length = width }
            if hex > 0 {
                length /= 2
                padLength = width - length * 2
            } else {
                padLength = width - length
            }
        } else {
            padLength = width - length
        }
        var out: [UInt8] = []
        if align != UInt8(ascii: "-") && padLength > 0 { out += [UInt8](repeating: pad, count: padLength) }
        let bytes = payload[0..<length]
        switch hex {
        case 0: out += bytes
        case 1: out += Array(bytes.map { String(format: "%02x", $0) }.joined().utf8)
        default: out += Array(bytes.map { String(format: "%02X", $0) }.joined().utf8)
        }
        // printf("%*s", padlen, ""): a negative width pads too (left-aligned).
        if align == UInt8(ascii: "-") && padLength != 0 { out += [UInt8](repeating: 0x20, count: abs(padLength)) }
        return out
    }

    static func strftime(_ format: [UInt8], _ time: inout tm) -> [UInt8] {
        var buffer = [CChar](repeating: 0, count: 100)
        let cFormat = format.map { CChar(bitPattern: $0) } + [0]
        let count = buffer.withUnsafeMutableBufferPointer { Foundation.strftime($0.baseAddress!, 100, cFormat, &time) }
        return buffer[0..<count].map { UInt8(bitPattern: $0) }
    }

    private func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    // MARK: - %j / %J

    /// The message as JSON (cJSON's layout, as mosquitto_sub prints it); nil for `%J` when the
    /// payload is not JSON.
    func json(_ message: MQTTMessage, _ payload: [UInt8], local: tm, nanoseconds: Int, escaped: Bool) -> [UInt8]? {
        var copy = local
        var stamp = Self.strftime(Array("%Y-%m-%dT%H:%M:%S.000000Z%z".utf8), &copy)
        let micros = Array(String(format: "%06d", nanoseconds / 1000).utf8)
        if stamp.count >= 27 {
            stamp.replaceSubrange(20..<26, with: micros.prefix(6))
        }
        var members: [(String, JSONValue)] = [
            ("tst", .string(stamp)),
            ("topic", .string(Array(message.topic.utf8))),
            ("qos", .number(Double(message.qos.rawValue))),
            ("retain", .number(message.retain ? 1 : 0)),
            ("payloadlen", .number(Double(payload.count))),
        ]
        if message.qos != .atMostOnce { members.append(("mid", .number(Double(message.packetID)))) }
        if let properties = Self.jsonProperties(message.properties) { members.append(("properties", properties)) }
        if escaped {
            // cJSON_CreateString stops at the first NUL, as the C string does.
            let text = payload.prefix { $0 != 0 }
            members.append(("payload", payload.isEmpty ? .null : .string(Array(text))))
        } else if payload.isEmpty {
            members.append(("payload", .null))
        } else {
            guard let value = JSONValue.parse(payload) else { return nil }
            members.append(("payload", value))
        }
        return JSONValue.object(members.map { (Array($0.0.utf8), $0.1) }).printed(pretty: pretty)
    }

    static func jsonProperties(_ properties: Properties) -> JSONValue? {
        var members: [([UInt8], JSONValue)] = []
        func add(_ name: String, _ value: JSONValue) { members.append((Array(name.utf8), value)) }
        if let v = properties.payloadFormatIndicator { add("payload-format-indicator", .number(Double(v))) }
        if let v = properties.messageExpiryInterval { add("message-expiry-interval", .number(Double(v))) }
        if let v = properties.contentType { add("content-type", .string(Array(v.utf8))) }
        if let v = properties.responseTopic { add("response-topic", .string(Array(v.utf8))) }
        if let v = properties.correlationData { add("correlation-data", .string(Array(v.readableBytesView.prefix { $0 != 0 }))) }
        for v in properties.subscriptionIdentifiers { add("subscription-identifier", .number(Double(v))) }
        if let v = properties.topicAlias { add("topic-alias", .number(Double(v))) }
        if !properties.userProperties.isEmpty {
            add("user-properties", .object(properties.userProperties.map { (Array($0.name.utf8), JSONValue.string(Array($0.value.utf8))) }))
        }
        return members.isEmpty ? nil : .object(members)
    }

    // MARK: - Checking -F at parse time (check_format)

    /// Mosquitto's error for a bad `-F` format, or nil.
    public static func checkFormat(_ format: String) -> String? {
        let str = Array(format.utf8)
        let len = str.count
        let incomplete = "Error: Incomplete format specifier.\n"
        var i = 0
        let valid = Set("%ACDEFIlmPpqRSrtjJUxX".utf8)
        while i < len {
            if str[i] == UInt8(ascii: "%") {
                if i == len - 1 { return incomplete }
                if str[i + 1] == UInt8(ascii: "0") || str[i + 1] == UInt8(ascii: "-") {
                    i += 1
                    if i == len - 1 { return incomplete }
                }
                while str[i + 1] >= 0x30 && str[i + 1] <= 0x39 {
                    i += 1
                    if i == len - 1 { return incomplete }
                }
                if str[i + 1] == UInt8(ascii: ".") {
                    i += 1
                    if i == len - 1 { return incomplete }
                    while str[i + 1] >= 0x30 && str[i + 1] <= 0x39 {
                        i += 1
                        if i == len - 1 { return incomplete }
                    }
                }
                if !valid.contains(str[i + 1]) {
                    return "Error: Invalid format specifier '\(String(decoding: [str[i + 1]], as: UTF8.self))'.\n"
                }
                i += 1
            } else if str[i] == UInt8(ascii: "@") {
                if i == len - 1 { return incomplete }
                i += 1
            } else if str[i] == UInt8(ascii: "\\") {
                if i == len - 1 { return "Error: Incomplete escape specifier.\n" }
                if !Set("\\0aenrtv".utf8).contains(str[i + 1]) {
                    return "Error: Invalid escape specifier '\(String(decoding: [str[i + 1]], as: UTF8.self))'.\n"
                }
                i += 1
            }
            i += 1
        }
        return nil
    }
}
