import Foundation
import MQTTCodec
import MidgeClient
@testable import MidgeTools
import NIOCore
import XCTest

/// Output of `sub` / `rr`: plain, -v, -N and -F, compared with what mosquitto_sub 2.0 prints.
final class MessageFormatterTests: XCTestCase {
    /// 2020-05-06T21:48:00.123456789 UTC.
    private let fixedClock: @Sendable () -> timespec = { timespec(tv_sec: 1_588_801_680, tv_nsec: 123_456_789) }
    private var savedTZ: String?

    override func setUp() {
        savedTZ = ProcessInfo.processInfo.environment["TZ"]
        setenv("TZ", "UTC", 1)
        tzset()
    }

    override func tearDown() {
        if let savedTZ { setenv("TZ", savedTZ, 1) } else { unsetenv("TZ") }
        tzset()
    }

    private func message(_ topic: String = "a/b", _ payload: String = "hello", qos: QoS = .atMostOnce, retain: Bool = false,
                         properties: Properties = .none, packetID: UInt16 = 0) -> MQTTMessage {
        MQTTMessage(topic: topic, payload: ByteBuffer(string: payload), qos: qos, retain: retain, properties: properties, packetID: packetID)
    }

    private func render(_ format: String?, _ msg: MQTTMessage, verbose: Bool = false, eol: Bool = true, pretty: Bool = false) -> String {
        let formatter = MessageFormatter(format: format, verbose: verbose, endOfLine: eol, pretty: pretty, clock: fixedClock)
        return String(decoding: formatter.render(msg).output, as: UTF8.self)
    }

    func testPlainVerboseAndNoNewline() {
        XCTAssertEqual(render(nil, message()), "hello\n")
        XCTAssertEqual(render(nil, message(), verbose: true), "a/b hello\n")
        XCTAssertEqual(render(nil, message(), eol: false), "hello")
        XCTAssertEqual(render(nil, message("t", "")), "", "an empty payload prints nothing")
        XCTAssertEqual(render(nil, message("t", ""), verbose: true), "t (null)\n")
        XCTAssertEqual(render(nil, message("t", ""), verbose: true, eol: false), "")
    }

    func testPercentCodes() {
        var properties = Properties()
        properties.userProperties = [UserProperty("k", "v"), UserProperty("k2", "v2")]
        properties.contentType = "text/plain"
        properties.correlationData = ByteBuffer(string: "corr")
        properties.messageExpiryInterval = 100
        properties.payloadFormatIndicator = 1
        properties.responseTopic = "reply/here"
        properties.subscriptionIdentifiers = [7]
        let msg = message("a/b", "hi!", qos: .atLeastOnce, retain: true, properties: properties, packetID: 12)
        XCTAssertEqual(render("%t|%p|%q|%r|%m|%l|%x|%X|%%", msg), "a/b|hi!|1|1|12|3|686921|686921|%\n")
        XCTAssertEqual(render("%P|%C|%D|%E|%F|%R|%S|%A", msg), "k:v k2:v2|text/plain|corr|100|1|reply/here|7|\n")
        XCTAssertEqual(render("[%C][%E][%A][%R]", message()), "[][][][]\n", "absent properties print nothing")
    }

    func testWidthsPrecisionAndAlignment() {
        let msg = message("topic", "abc")
        XCTAssertEqual(render("[%10t]", msg), "[     topic]\n")
        XCTAssertEqual(render("[%-10t]", msg), "[topic     ]\n")
        XCTAssertEqual(render("[%.2t]", msg), "[to]\n")
        XCTAssertEqual(render("[%5.2t]", msg), "[   to]\n")
        XCTAssertEqual(render("[%05l]", msg), "[00003]\n")
        XCTAssertEqual(render("[%-5l]", msg), "[3    ]\n")
        XCTAssertEqual(render("[%5p]", msg), "[  abc]\n")
        XCTAssertEqual(render("[%05p]", msg), "[00abc]\n")
        XCTAssertEqual(render("[%2p]", msg), "[ab]\n", "a field width cuts the payload")
        XCTAssertEqual(render("[%8x]", msg), "[      61]\n", "Mosquitto's hex width quirk: bytes = min(len, width) / 2")
        XCTAssertEqual(render("[%5E]", msg), "[     ]\n", "absent numbers pad with blanks")
        XCTAssertEqual(render("[%-p]", msg), "[abc   ]\n", "printf(\"%*s\", -len) pads too")
    }

    func testEscapesAndTimeCodes() {
        XCTAssertEqual(render("a\\tb\\\\c\\n", message()), "a\tb\\c\n\n")
        XCTAssertEqual(render("@Y-@m-@dT@H:@M:@S.@N @@", message()), "2020-05-06T21:48:00.123456789 @\n")
        XCTAssertEqual(render("%I", message()), "2020-05-06T21:48:00+0000\n")
        XCTAssertEqual(render("%U", message()), "1588801680.123456789\n")
        XCTAssertEqual(render("end%", message()), "end\n", "a trailing % prints nothing")
    }

    func testJSONEscapedPayload() {
        XCTAssertEqual(render("%j", message("a/b", "say \"hi\"\n")),
                       #"{"tst":"2020-05-06T21:48:00.123456Z+0000","topic":"a/b","qos":0,"retain":0,"payloadlen":9,"payload":"say \"hi\"\n"}"# + "\n")
        XCTAssertEqual(render("%j", message("t", "", qos: .exactlyOnce, packetID: 3)),
                       #"{"tst":"2020-05-06T21:48:00.123456Z+0000","topic":"t","qos":2,"retain":0,"payloadlen":0,"mid":3,"payload":null}"# + "\n")
        var properties = Properties()
        properties.userProperties = [UserProperty("k", "v")]
        properties.contentType = "text/json"
        XCTAssertEqual(render("%j", message("t", "x", properties: properties)),
                       #"{"tst":"2020-05-06T21:48:00.123456Z+0000","topic":"t","qos":0,"retain":0,"payloadlen":1,"properties":{"content-type":"text/json","user-properties":{"k":"v"}},"payload":"x"}"# + "\n")
    }

    func testJSONParsedPayloadLikeCJSON() {
        let msg = message("r/2", #"{"a": 1.50, "b":[1,2e3,"x\u00e9"], "c":null, "d": true}"#, retain: true)
        XCTAssertEqual(render("%J", msg),
                       #"{"tst":"2020-05-06T21:48:00.123456Z+0000","topic":"r/2","qos":0,"retain":1,"payloadlen":55,"payload":{"a":1.5,"b":[1,2000,"xé"],"c":null,"d":true}}"# + "\n")
        let pretty = render("%J", message("t", #"{"a":[1,{"b":{}}]}"#), pretty: true)
        XCTAssertEqual(pretty, "{\n\t\"tst\":\t\"2020-05-06T21:48:00.123456Z+0000\",\n\t\"topic\":\t\"t\",\n\t\"qos\":\t0,\n\t\"retain\":\t0,\n"
                       + "\t\"payloadlen\":\t18,\n\t\"payload\":\t{\n\t\t\"a\":\t[1, {\n\t\t\t\t\"b\":\t{\n\t\t\t\t}\n\t\t\t}]\n\t}\n}\n")
        let formatter = MessageFormatter(format: "%J", clock: fixedClock)
        let bad = formatter.render(message("t", "not json"))
        XCTAssertEqual(String(decoding: bad.output, as: UTF8.self), "\n")
        XCTAssertEqual(bad.errors, ["Error: Message payload is not valid JSON on topic t.\n"])
    }

    func testCJSONNumbersAndStrings() {
        XCTAssertEqual(JSONValue.formatNumber(1), "1")
        XCTAssertEqual(JSONValue.formatNumber(-0.5), "-0.5")
        XCTAssertEqual(JSONValue.formatNumber(0.1), "0.1")
        XCTAssertEqual(JSONValue.formatNumber(1e300), "1e+300")
        XCTAssertEqual(JSONValue.formatNumber(3_000_000_000), "3000000000")
        XCTAssertEqual(JSONValue.formatNumber(1.0 / 3.0), "0.33333333333333331")
        XCTAssertEqual(JSONValue.parse(Array(" [1, \"\\ud83d\\ude00\", false] ".utf8)),
                       .array([.number(1), .string(Array("😀".utf8)), .bool(false)]))
        XCTAssertNil(JSONValue.parse(Array("[1,]".utf8)))
        XCTAssertNil(JSONValue.parse(Array("{\"a\":1} x".utf8)))
        XCTAssertNil(JSONValue.parse([0x31, 0x00, 0x32]), "a NUL ends the text before the payload does")
        var out: [UInt8] = []
        JSONValue.printString([0x01, 0x22, 0x5C, 0x2F, 0xC3, 0xA9], into: &out)
        XCTAssertEqual(String(decoding: out, as: UTF8.self), #""\u0001\"\\/é""#)
    }

    func testFormatCheck() {
        XCTAssertNil(MessageFormatter.checkFormat("%t %p %-10.3t %05l @H:@M \\n"))
        XCTAssertEqual(MessageFormatter.checkFormat("%"), "Error: Incomplete format specifier.\n")
        XCTAssertEqual(MessageFormatter.checkFormat("%10"), "Error: Incomplete format specifier.\n")
        XCTAssertEqual(MessageFormatter.checkFormat("%y"), "Error: Invalid format specifier 'y'.\n")
        XCTAssertEqual(MessageFormatter.checkFormat("@"), "Error: Incomplete format specifier.\n")
        XCTAssertEqual(MessageFormatter.checkFormat("\\"), "Error: Incomplete escape specifier.\n")
        XCTAssertEqual(MessageFormatter.checkFormat("\\q"), "Error: Invalid escape specifier 'q'.\n")
    }
}
