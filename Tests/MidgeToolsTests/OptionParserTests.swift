import MQTTCodec
@testable import MidgeTools
import NIOCore
import XCTest

/// The Mosquitto-compatible option grammar: values, repeats, per-tool options, and the exact
/// error texts of mosquitto_pub / mosquitto_sub / mosquitto_rr 2.0.
final class OptionParserTests: XCTestCase {
    private func parse(_ args: [String], _ tool: ToolKind = .pub, environment: [String: String] = [:],
                       file: StaticString = #filePath, line: UInt = #line) -> ClientOptions? {
        switch OptionParser.parse(args, tool: tool, environment: environment) {
        case .success(let options): return options
        case .failure(let message, _):
            XCTFail("unexpected failure: \(message)", file: file, line: line)
        case .help: XCTFail("unexpected --help", file: file, line: line)
        case .version: XCTFail("unexpected --version", file: file, line: line)
        }
        return nil
    }

    private func failure(_ args: [String], _ tool: ToolKind = .pub, file: StaticString = #filePath, line: UInt = #line) -> String? {
        switch OptionParser.parse(args, tool: tool) {
        case .failure(let message, _): return message
        default:
            XCTFail("\(args) parsed", file: file, line: line)
            return nil
        }
    }

    func testHostPortTopicMessageAndDefaults() throws {
        let options = try XCTUnwrap(parse(["-h", "broker.example", "-p", "1884", "-t", "a/b", "-m", "hello"]))
        XCTAssertEqual(options.host, "broker.example")
        XCTAssertEqual(options.port, 1884)
        XCTAssertEqual(options.topic, "a/b")
        XCTAssertEqual(options.message, Array("hello".utf8))
        XCTAssertEqual(options.publishMode, .command)
        XCTAssertEqual(options.protocolVersion, .v3_1_1)
        XCTAssertEqual(options.keepAlive, 60)
        XCTAssertEqual(options.qos, .atMostOnce)
        XCTAssertTrue(options.cleanSession)

        let defaults = try XCTUnwrap(parse(["-t", "x", "-n"]))
        XCTAssertEqual(defaults.host, "localhost", "the host defaults to localhost")
        XCTAssertNil(defaults.port, "the port stays unset (1883)")
        XCTAssertEqual(defaults.publishMode, .null)
    }

    func testLongOptionNames() throws {
        let options = try XCTUnwrap(parse(["--host", "h", "--port", "2", "--topic", "t", "--message", "m", "--qos", "2",
                                           "--retain", "--id", "me", "--keepalive", "30", "--username", "u", "--pw", "p",
                                           "--protocol-version", "mqttv5", "--debug", "--disable-clean-session"]))
        XCTAssertEqual(options.host, "h")
        XCTAssertEqual(options.port, 2)
        XCTAssertEqual(options.qos, .exactlyOnce)
        XCTAssertTrue(options.retain)
        XCTAssertEqual(options.id, "me")
        XCTAssertEqual(options.keepAlive, 30)
        XCTAssertEqual(options.username, "u")
        XCTAssertEqual(options.password, "p")
        XCTAssertEqual(options.protocolVersion, .v5)
        XCTAssertTrue(options.debug)
        XCTAssertFalse(options.cleanSession)
    }

    func testProtocolVersionSpellings() throws {
        for (spelling, version) in [("mqttv31", ProtocolVersion.v3_1), ("31", .v3_1), ("mqttv311", .v3_1_1), ("311", .v3_1_1),
                                    ("mqttv5", .v5), ("5", .v5)] {
            XCTAssertEqual(parse(["-V", spelling, "-t", "x", "-n", "-i", "id"])?.protocolVersion, version, spelling)
        }
        XCTAssertEqual(failure(["-V", "4", "-t", "x", "-n"]), "Error: Invalid protocol version argument given.\n\n")
        XCTAssertEqual(parse(["-t", "x"], .rr)?.protocolVersion, .v5, "mosquitto_rr defaults to MQTT v5")
    }

    func testOptionsRepeatAndTheLastOneWins() throws {
        let options = try XCTUnwrap(parse(["-h", "one", "-h", "two", "-q", "1", "-q", "0", "-t", "a", "-t", "b", "-n"]))
        XCTAssertEqual(options.host, "two")
        XCTAssertEqual(options.qos, .atMostOnce)
        XCTAssertEqual(options.topic, "b")
        let sub = try XCTUnwrap(parse(["-t", "a/#", "-t", "b/+", "-T", "a/x", "-T", "a/y", "-U", "c", "-U", "d"], .sub))
        XCTAssertEqual(sub.topics, ["a/#", "b/+"])
        XCTAssertEqual(sub.filterOuts, ["a/x", "a/y"])
        XCTAssertEqual(sub.unsubscribeTopics, ["c", "d"])
    }

    func testQoSAndNumbersAreReadLikeAtoi() throws {
        XCTAssertEqual(failure(["-q", "3"]), "Error: Invalid QoS given: 3\n")
        XCTAssertEqual(failure(["-q", "-1"]), "Error: Invalid QoS given: -1\n")
        XCTAssertEqual(parse(["-q", "1abc", "-t", "x", "-n"])?.qos, .atLeastOnce, "atoi stops at the first non-digit")
        XCTAssertEqual(parse(["-q", "abc", "-t", "x", "-n"])?.qos, .atMostOnce, "atoi of no digits is 0")
        XCTAssertEqual(failure(["-p", "70000"]), "Error: Invalid port given: 70000\n")
        XCTAssertEqual(failure(["-k", "4"]), "Error: Invalid keepalive given, it must be between 5 and 65535 inclusive.\n\n")
        XCTAssertEqual(failure(["-C", "0", "-t", "x"], .sub), "Error: Invalid message count \"0\".\n\n")
        XCTAssertEqual(failure(["-W", "0", "-t", "x"], .sub), "Error: Invalid timeout \"0\".\n\n")
        XCTAssertEqual(failure(["--repeat", "0"]), "Error: --repeat argument must be >0.\n\n")
        XCTAssertEqual(failure(["--repeat-delay", "-1"]), "Error: --repeat-delay argument must be >=0.0.\n\n")
        XCTAssertEqual(failure(["-M", "0"]), "Error: Maximum inflight messages must be greater than 0.\n\n")
        XCTAssertEqual(failure(["--will-qos", "5"]), "Error: Invalid will QoS 5.\n\n")
        XCTAssertEqual(parse(["--repeat", "3", "--repeat-delay", "0.25", "-t", "x", "-n"])?.repeatDelay, 0.25)
    }

    func testMissingValues() {
        XCTAssertEqual(failure(["-h"]), "Error: -h argument given but no host specified.\n\n")
        XCTAssertEqual(failure(["-t", "x", "-m"]), "Error: -m argument given but no message specified.\n\n")
        XCTAssertEqual(failure(["-t"]), "Error: -t argument given but no topic specified.\n\n")
        XCTAssertEqual(failure(["-p"]), "Error: -p argument given but no port specified.\n\n")
        XCTAssertEqual(failure(["-q"]), "Error: -q argument given but no QoS specified.\n\n")
        XCTAssertEqual(failure(["-V"]), "Error: --protocol-version argument given but no version specified.\n\n")
        XCTAssertEqual(failure(["-t", "x", "-C"], .sub), "Error: -C argument given but no count specified.\n\n")
        XCTAssertEqual(failure(["-e"], .rr), "Error: -e argument given but no response topic specified.\n\n")
        XCTAssertEqual(failure(["-x"]), "Error: -x argument given but no session expiry interval specified.\n\n")
    }

    func testOptionsOfOtherToolsAreUnknown() {
        XCTAssertEqual(failure(["-v"], .pub), "Error: Unknown option '-v'.\n")
        XCTAssertEqual(failure(["-C", "1"], .pub), "Error: Unknown option '-C'.\n")
        XCTAssertEqual(failure(["-m", "x"], .sub), "Error: Unknown option '-m'.\n")
        XCTAssertEqual(failure(["-r"], .sub), "Error: Unknown option '-r'.\n")
        XCTAssertEqual(failure(["-l"], .rr), "Error: Unknown option '-l'.\n")
        XCTAssertEqual(failure(["-e", "x"], .sub), "Error: Unknown option '-e'.\n")
        XCTAssertEqual(failure(["--foo"]), "Error: Unknown option '--foo'.\n")
        XCTAssertEqual(failure(["-S"]), "Error: Unknown option '-S'.\n", "no SRV lookups, as in Debian's build")
    }

    func testHelpAndVersion() {
        guard case .help = OptionParser.parse(["-t", "x", "--help"], tool: .sub) else { return XCTFail("--help") }
        guard case .version = OptionParser.parse(["--version"], tool: .pub) else { return XCTFail("--version") }
    }

    func testOnlyOneMessageSource() {
        let text = "Error: Only one type of message can be sent at once.\n\n"
        XCTAssertEqual(failure(["-m", "a", "-n"]), text)
        XCTAssertEqual(failure(["-l", "-s"]), text)
        XCTAssertEqual(failure(["-f", "x", "-m", "y"]), text)
    }

    func testTopicChecks() {
        XCTAssertEqual(failure(["-t", "a/#"]), "Error: Invalid publish topic 'a/#', does it contain '+' or '#'?\n")
        XCTAssertEqual(failure(["-t", "a/+/b"]), "Error: Invalid publish topic 'a/+/b', does it contain '+' or '#'?\n")
        XCTAssertEqual(failure(["-t", "a/b#"], .sub), "Error: Invalid subscription topic 'a/b#', are all '+' and '#' wildcards correct?\n")
        XCTAssertEqual(failure(["-t", "a/#/b"], .sub), "Error: Invalid subscription topic 'a/#/b', are all '+' and '#' wildcards correct?\n")
        XCTAssertEqual(failure(["-T", "a+"], .sub), "Error: Invalid filter topic 'a+', are all '+' and '#' wildcards correct?\n")
        XCTAssertEqual(failure(["-U", "#/a"], .sub), "Error: Invalid unsubscribe topic '#/a', are all '+' and '#' wildcards correct?\n")
        XCTAssertEqual(failure(["--will-topic", "w/#"]), "Error: Invalid will topic 'w/#', does it contain '+' or '#'?\n")
        XCTAssertEqual(failure(["-e", "r/+"], .rr), "Error: Invalid response topic 'r/+', does it contain '+' or '#'?\n")
        XCTAssertEqual(failure(["-t", "a\u{1}b"]), "Error: Malformed UTF-8 in -t argument.\n\n")
        XCTAssertNotNil(parse(["-t", "+/a/#", "-t", "#", "-t", "$SYS/#", "-t", "$share/g/a/+"], .sub))
    }

    func testSubscriberNeedsATopicAndRejectsRetainedContradiction() {
        XCTAssertEqual(failure(["-v"], .sub), "Error: You must specify a topic to subscribe to.\n")
    }

    func testURL() throws {
        let options = try XCTUnwrap(parse(["-L", "mqtt://user:secret@example.org:1999/some/topic", "-n"]))
        XCTAssertEqual(options.username, "user")
        XCTAssertEqual(options.password, "secret")
        XCTAssertEqual(options.host, "example.org")
        XCTAssertEqual(options.port, 1999)
        XCTAssertEqual(options.topic, "some/topic")
        let plain = try XCTUnwrap(parse(["-L", "MQTT://host/t/#"], .sub))
        XCTAssertEqual(plain.host, "host")
        XCTAssertEqual(plain.port, 1883)
        XCTAssertEqual(plain.topics, ["t/#"])
        XCTAssertNil(plain.username)
        XCTAssertEqual(failure(["-L", "http://x/t"]), "Error: unsupported URL scheme.\n\n")
        XCTAssertEqual(failure(["-L", "mqtt://host"]), "Error: Invalid URL for -L argument specified - topic missing.\n")
    }

    func testPropertiesDefineV5AndAreTyped() throws {
        let options = try XCTUnwrap(parse([
            "-t", "x", "-m", "y",
            "-D", "publish", "user-property", "key", "value",
            "-D", "PUBLISH", "user-property", "key", "second",
            "-D", "publish", "message-expiry-interval", "32",
            "-D", "publish", "content-type", "text/plain",
            "-D", "publish", "correlation-data", "abc",
            "-D", "publish", "payload-format-indicator", "1",
            "-D", "publish", "response-topic", "r",
            "-D", "connect", "receive-maximum", "10",
            "-D", "connect", "maximum-packet-size", "1000",
            "-D", "connect", "user-property", "c", "d",
            "-D", "will", "will-delay-interval", "5",
            "-D", "disconnect", "session-expiry-interval", "0",
            "--property", "unsubscribe", "user-property", "u", "v",
        ]))
        XCTAssertEqual(options.protocolVersion, .v5, "-D switches to MQTT v5")
        let publish = options.typedProperties(.publish)
        XCTAssertEqual(publish.userProperties, [UserProperty("key", "value"), UserProperty("key", "second")])
        XCTAssertEqual(publish.messageExpiryInterval, 32)
        XCTAssertEqual(publish.contentType, "text/plain")
        XCTAssertEqual(publish.correlationData, ByteBuffer(string: "abc"))
        XCTAssertEqual(publish.payloadFormatIndicator, 1)
        XCTAssertEqual(publish.responseTopic, "r")
        let connect = options.typedProperties(.connect)
        XCTAssertEqual(connect.receiveMaximum, 10)
        XCTAssertEqual(connect.maximumPacketSize, 1000)
        XCTAssertEqual(connect.userProperties, [UserProperty("c", "d")])
        XCTAssertEqual(options.typedProperties(.will).willDelayInterval, 5)
        XCTAssertEqual(options.typedProperties(.disconnect).sessionExpiryInterval, 0)
        XCTAssertEqual(options.typedProperties(.unsubscribe).userProperties, [UserProperty("u", "v")])

        let sub = try XCTUnwrap(parse(["-t", "x", "-D", "subscribe", "subscription-identifier", "7"], .sub))
        XCTAssertEqual(sub.typedProperties(.subscribe).subscriptionIdentifiers, [7])
        let back = try XCTUnwrap(parse(["-D", "publish", "user-property", "k", "v", "-V", "311", "-t", "x", "-n"]))
        XCTAssertTrue(back.typedProperties(.publish).isEmpty, "properties are only sent with MQTT v5")
    }

    func testPropertyErrors() {
        XCTAssertEqual(failure(["-D", "publish", "user-property", "k"]),
                       "Error: --property argument given but not enough arguments specified.\n\n")
        XCTAssertEqual(failure(["-D", "publish"]), "Error: --property argument given but not enough arguments specified.\n\n")
        XCTAssertEqual(failure(["-D", "sideways", "content-type", "x"]), "Error: Invalid command given in --property argument.\n\n")
        XCTAssertEqual(failure(["-D", "publish", "colour", "x"]), "Error: Invalid property name given in --property argument.\n\n")
        XCTAssertEqual(failure(["-D", "connect", "content-type", "x"]),
                       "Error: content-type property not allowed for connect in --property argument.\n\n")
        XCTAssertEqual(failure(["-D", "subscribe", "user-property", "k", "v", "-D", "subscribe", "reason-string", "x"]),
                       "Error: reason-string property not allowed for subscribe in --property argument.\n\n")
        XCTAssertEqual(failure(["-D", "publish", "subscription-identifier", "1"]),
                       "Error: subscription-identifier property not supported for publish in --property argument.\n\n")
        XCTAssertEqual(failure(["-D", "puback", "user-property", "k", "v"]),
                       "Error: user-property property not supported for puback in --property argument.\n\n")
        XCTAssertEqual(failure(["-D", "publish", "payload-format-indicator", "256"]),
                       "Error: Property value (256) out of range for property payload-format-indicator.\n\n")
        XCTAssertEqual(failure(["-D", "publish", "message-expiry-interval", "-1"]),
                       "Error: Property value (-1) out of range for property message-expiry-interval.\n\n")
        XCTAssertEqual(failure(["-t", "x", "-n", "-D", "connect", "receive-maximum", "0"]),
                       "Error in CONNECT properties: A network protocol error occurred when communicating with the broker.\n")
        XCTAssertEqual(failure(["-t", "x", "-n", "-D", "publish", "content-type", "a", "-D", "publish", "content-type", "b"]),
                       "Error in PUBLISH properties: Duplicate property in property list\n")
        XCTAssertEqual(failure(["-t", "x", "-n", "-i", "me", "-x", "10", "-D", "connect", "session-expiry-interval", "5"]),
                       "Error in CONNECT properties: Duplicate property in property list\n")
    }

    func testSessionExpiryAndCleanSession() throws {
        XCTAssertEqual(failure(["-t", "x", "-n", "-c"]), "Error: You must provide a client id if you are using the -c option.\n")
        XCTAssertEqual(failure(["-t", "x", "-n", "-c", "-I", "pre"]), "Error: You must provide a client id if you are using the -c option.\n")
        XCTAssertEqual(failure(["-t", "x", "-n", "-c", "-V", "5"]),
                       "Error: You must provide a client id if you are using an infinite session expiry interval.\n")
        let persistent = try XCTUnwrap(parse(["-t", "x", "-n", "-c", "-V", "5", "-i", "me"]))
        XCTAssertEqual(persistent.typedProperties(.connect).sessionExpiryInterval, UInt32.max, "-c alone: a session that never expires")
        XCTAssertEqual(parse(["-t", "x", "-n", "-V", "5", "-x", "0x10"])?.typedProperties(.connect).sessionExpiryInterval, 16,
                       "strtol with base 0")
        XCTAssertEqual(parse(["-t", "x", "-n", "-V", "5", "-i", "me", "-x", "-1"])?.typedProperties(.connect).sessionExpiryInterval, UInt32.max)
        XCTAssertEqual(parse(["-t", "x", "-n", "-V", "5", "-i", "me", "-x", "∞"])?.typedProperties(.connect).sessionExpiryInterval, UInt32.max)
        XCTAssertNil(parse(["-t", "x", "-n", "-V", "5", "-x", "0"])?.typedProperties(.connect).sessionExpiryInterval)
        XCTAssertEqual(failure(["-x", "ten"]), "Error: session-expiry-interval not a number.\n\n")
        XCTAssertEqual(failure(["-x", "4294967296"]), "Error: session-expiry-interval out of range.\n\n")
        XCTAssertEqual(failure(["-i", "a", "-I", "b"]), "Error: -i and -I argument cannot be used together.\n\n")
    }

    func testWillOptions() throws {
        let options = try XCTUnwrap(parse(["--will-topic", "w/t", "--will-payload", "gone", "--will-qos", "2", "--will-retain",
                                           "-t", "x", "-n"]))
        XCTAssertEqual(options.willTopic, "w/t")
        XCTAssertEqual(options.willPayload, "gone")
        XCTAssertEqual(options.willQoS, .exactlyOnce)
        XCTAssertTrue(options.willRetain)
        XCTAssertEqual(failure(["--will-payload", "x", "-t", "x", "-n"]), "Error: Will payload given, but no will topic given.\n")
        XCTAssertEqual(failure(["--will-retain", "-t", "x", "-n"]), "Error: Will retain given, but no will topic given.\n")
    }

    func testSubscriberOptions() throws {
        let options = try XCTUnwrap(parse(["-t", "a", "-v", "-N", "-C", "5", "-W", "3", "-R", "-E", "--remove-retained",
                                           "-F", "%t %p", "--pretty", "--random-filter", "50", "--retain-as-published"], .sub))
        XCTAssertTrue(options.verbose)
        XCTAssertFalse(options.endOfLine)
        XCTAssertEqual(options.messageCount, 5)
        XCTAssertEqual(options.timeout, 3)
        XCTAssertTrue(options.noRetain)
        XCTAssertTrue(options.exitAfterSubscribe)
        XCTAssertTrue(options.removeRetained)
        XCTAssertEqual(options.format, "%t %p")
        XCTAssertTrue(options.pretty)
        XCTAssertEqual(options.randomFilter, 500)
        XCTAssertTrue(options.retainAsPublished)
        XCTAssertEqual(failure(["-t", "a", "-F", "%Z"], .sub), "Error: Invalid format specifier 'Z'.\n")
    }

    func testDefaultsFileIsReadFirst() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("midge-defaults-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "# defaults\n-h from-file\n-q 1\n-u some user\n\n".write(to: dir.appendingPathComponent("mosquitto_pub"),
                                                                      atomically: true, encoding: .utf8)
        let options = try XCTUnwrap(parse(["-t", "x", "-n", "-q", "2"], environment: ["XDG_CONFIG_HOME": dir.path]))
        XCTAssertEqual(options.host, "from-file")
        XCTAssertEqual(options.qos, .exactlyOnce, "the command line comes after the file")
        XCTAssertEqual(options.username, "some user", "the rest of a line is one argument, as Mosquitto reads it")
        let home = try XCTUnwrap(parse(["-t", "x", "-n"], environment: ["HOME": dir.path + "/nowhere"]))
        XCTAssertEqual(home.host, "localhost", "no defaults file: nothing changes")
    }

    func testNumberParsingHelpers() {
        XCTAssertEqual(cAtoi("  42xyz"), 42)
        XCTAssertEqual(cAtoi("-7"), -7)
        XCTAssertEqual(cAtoi("+3"), 3)
        XCTAssertEqual(cAtoi(""), 0)
        XCTAssertEqual(cAtol("4294967295"), 4_294_967_295)
        XCTAssertEqual(cStrtol("010"), 8)
        XCTAssertNil(cStrtol("12a"))
        XCTAssertNil(cStrtol(""))
        XCTAssertTrue(validateUTF8("héllo/wörld"))
        XCTAssertFalse(validateUTF8("a\u{7F}"))
        XCTAssertFalse(validateUTF8(String(decoding: [0xEF, 0xB7, 0x90], as: UTF8.self)), "U+FDD0 is a non-character")
    }
}
