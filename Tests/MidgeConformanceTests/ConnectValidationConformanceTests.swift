import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// CONNECT validation (spec 3.1 / 3.1.4): CONNECT first and only once, protocol name and level,
/// the reserved flag, inconsistent or truncated fields. A v5 client gets CONNACK with the reason
/// (no session present, no properties) and the close; a 3.1.1 client only the close.
final class ConnectValidationConformanceTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker() }

    /// The server's side of the client rule that the first packet is CONNECT (3.1.0-1 binds the
    /// client): anything else first, for either version, is closed without an answer.
    func testFirstPacketOtherThanConnectIsClosedWithoutAnswer() async throws {
        let a = mqttString("a")
        let firsts: [(String, [UInt8])] = [
            ("PUBLISH v5", rawPacket(0x30, a + [0x00, 0x78])), ("PUBLISH v3", rawPacket(0x30, a + [0x78])),
            ("PUBLISH QoS 2", rawPacket(0x34, a + [0, 1, 0x78])), ("PUBACK", [0x40, 0x02, 0, 1]), ("PUBREC", [0x50, 0x02, 0, 1]),
            ("PUBREL", [0x62, 0x02, 0, 1]), ("PUBCOMP", [0x70, 0x02, 0, 1]), ("SUBSCRIBE", rawPacket(0x82, [0, 1] + a + [0])),
            ("UNSUBSCRIBE", rawPacket(0xA2, [0, 1] + a)), ("PINGREQ", [0xC0, 0x00]), ("DISCONNECT", [0xE0, 0x00]),
            ("AUTH", [0xF0, 0x00]), ("CONNACK", [0x20, 0x02, 0, 0]), ("SUBACK", [0x90, 0x03, 0, 1, 0]),
            ("UNSUBACK", [0xB0, 0x02, 0, 1]), ("PINGRESP", [0xD0, 0x00]), ("type 0", [0x00, 0x00]),
        ]
        for (name, bytes) in firsts {
            let (received, closed) = try await sectionASend(broker, bytes)
            XCTAssertTrue(closed, name)
            XCTAssertEqual(received, [], "\(name) first: \(hex(received))")
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.1.0-2] [MQTT-3.2.0-2] [3.1.1:MQTT-3.1.0-2]
    func testSecondConnectIsAProtocolViolation() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            // Sent after the CONNACK, and pipelined in the same write as the first CONNECT.
            let (client, _) = try await connectAccepted(broker, "again-\(version.rawValue)", version: version)
            try await client.send(bytes: connectBytes("again-\(version.rawValue)", version))
            // Closed without DISCONNECT in both versions, as Mosquitto does (01-connect-duplicate).
            await expectDisconnect(client, reason: nil, "second CONNECT (\(version))")

            let raw = try await RawConnection.connect(broker)
            let connect = connectBytes("piped-\(version.rawValue)", version)
            try await raw.send(connect + connect)
            let (bytes, closed) = await raw.readUntilClose(timeout: 4)
            XCTAssertTrue(closed, "closed after the second CONNECT (\(version))")
            // One CONNACK (accepting) only, then the close.
            let connackLength = RawConnection.completePacketLength(bytes) ?? 0
            let connack = Array(bytes.prefix(connackLength))
            XCTAssertEqual(Array(connack.prefix(1)) + Array(connack.dropFirst(2).prefix(2)), [0x20, 0x00, 0x00], "\(version): \(hex(bytes))")
            let rest = Array(bytes.dropFirst(connackLength))
            XCTAssertEqual(rest, [], "nothing after the CONNACK (\(version)): \(hex(rest))")
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.1.2-1] [3.1.1:MQTT-3.1.2-1]
    func testWrongProtocolNameIsClosedWithoutProcessing() async throws {
        // Midge does not reveal itself for a foreign protocol name: close, no CONNACK, no session.
        for (name, level) in [("MQTX", UInt8(5)), ("mqtt", 4), ("MQTT\u{0}", 4), ("MQIsdP", 3), ("", 4), ("M", 5), ("MQTTMQTT", 4)] {
            let bytes = rawConnect(name: name, level: level, properties: level == 5 ? [] : nil, payload: mqttString("pname"))
            let (received, closed) = try await sectionASend(broker, bytes)
            XCTAssertTrue(closed, "'\(name)' level \(level)")
            XCTAssertEqual(received, [], "'\(name)' level \(level): \(hex(received))")
        }
        XCTAssertNil(broker.broker.session(clientID: "pname"))
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.1.2-2] [3.1.1:MQTT-3.1.2-2]
    func testUnsupportedProtocolLevelGetsReturnCode1AndClose() async throws {
        // Midge speaks levels 3 ("MQIsdp"), 4 and 5 ("MQTT"). For any other level it cannot know the
        // client's CONNACK format, so it answers as Mosquitto does: the 3.1.1 CONNACK 0x01
        // (unacceptable protocol level), then closes.
        for level: UInt8 in [0, 1, 2, 3, 6, 7, 0x45, 0x85, 0xFF] {
            let bytes = rawConnect(name: "MQTT", level: level, properties: nil, payload: mqttString("plevel"))
            let (received, closed) = try await sectionASend(broker, bytes)
            XCTAssertTrue(closed, "level \(level)")
            XCTAssertEqual(received, [0x20, 0x02, 0x00, 0x01], "level \(level): \(hex(received))")
        }
        XCTAssertNil(broker.broker.session(clientID: "plevel"))
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.1.2-3] [MQTT-3.1.4-1] [3.1.1:MQTT-3.1.2-3] [3.1.1:MQTT-3.1.4-1]
    func testReservedConnectFlagMustBeZero() async throws {
        for flags: UInt8 in [0x01, 0x03, 0xC3] {
            let v5 = rawConnect(flags: flags, payload: mqttString("rsv") + (flags & 0xC0 != 0 ? mqttString("u") + mqttBinary([1]) : []))
            try await sectionAExpectConnectRefused(broker, v5, reason: 0x81, "v5 connect flags \(flags)")
            let v3 = sectionAConnect311(flags: flags, payload: mqttString("rsv") + (flags & 0xC0 != 0 ? mqttString("u") + mqttBinary([1]) : []))
            try await sectionAExpectConnectRefused(broker, v3, reason: nil, "3.1.1 connect flags \(flags)")
        }
        XCTAssertNil(broker.broker.session(clientID: "rsv"))
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.1.4-1] [MQTT-3.2.2-6] [MQTT-3.2.2-7] [MQTT-3.2.2-8]
    func testV5NonConformingConnectIsRefusedAndClosed() async throws {
        // Each case breaks one rule of section 3.1 (the client-side rules 3.1.2-9, -11, -13,
        // -16..-19, 3.1.3-1 and -3 among them); the broker closes without CONNACK, as Mosquitto (the
        // reason listed is the one the spec names, which v5 would allow in a CONNACK).
        let id = mqttString("bad5")
        let will = rawProperties([]) + mqttString("w/t") + mqttBinary([0x77])
        let cases: [(String, [UInt8], UInt8)] = [
            ("Will QoS 3", rawConnect(flags: 0x1E, payload: id + will), 0x81),
            ("Will QoS 1 without Will Flag", rawConnect(flags: 0x0A, payload: id), 0x81),
            ("Will QoS 2 without Will Flag", rawConnect(flags: 0x12, payload: id), 0x81),
            ("Will Retain without Will Flag", rawConnect(flags: 0x22, payload: id), 0x81),
            ("Will Flag without will fields", rawConnect(flags: 0x06, payload: id), 0x81),
            ("Will Flag without will payload", rawConnect(flags: 0x06, payload: id + rawProperties([]) + mqttString("w/t")), 0x81),
            ("will fields without Will Flag", rawConnect(flags: 0x02, payload: id + will), 0x81),
            ("User Name Flag without user name", rawConnect(flags: 0x82, payload: id), 0x81),
            ("user name without User Name Flag", rawConnect(flags: 0x02, payload: id + mqttString("user")), 0x81),
            ("Password Flag without password", rawConnect(flags: 0xC2, payload: id + mqttString("user")), 0x81),
            ("password without Password Flag", rawConnect(flags: 0x82, payload: id + mqttString("user") + mqttBinary([1])), 0x81),
            ("no client id", rawConnect(payload: []), 0x81),
            ("client id cut short", rawConnect(payload: [0x00, 0x08, 0x61, 0x62]), 0x81),
            ("keep alive cut short", rawPacket(0x10, mqttString("MQTT") + [5, 0x02, 0x00]), 0x81),
            ("no property length", rawPacket(0x10, mqttString("MQTT") + [5, 0x02, 0x00, 0x3C]), 0x81),
            ("property length beyond packet", rawConnect(properties: nil, payload: [0x30] + id), 0x81),
            ("will property length beyond packet", rawConnect(flags: 0x06, payload: id + [0x40] + mqttString("w/t")), 0x81),
            ("bytes after the last field", rawConnect(payload: id + [0xAA]), 0x81),
            ("Receive Maximum 0", rawConnect(properties: [0x21, 0x00, 0x00], payload: id), 0x82),
            ("Maximum Packet Size 0", rawConnect(properties: [0x27, 0, 0, 0, 0], payload: id), 0x82),
            ("Request Problem Information 2", rawConnect(properties: [0x17, 0x02], payload: id), 0x82),
            ("Request Response Information 2", rawConnect(properties: [0x19, 0x02], payload: id), 0x82),
            ("Will Topic with a wildcard", rawConnect(flags: 0x06, payload: id + rawProperties([]) + mqttString("w/+") + mqttBinary([1])), 0x90),
            ("empty Will Topic", rawConnect(flags: 0x06, payload: id + rawProperties([]) + mqttString("") + mqttBinary([1])), 0x90),
        ]
        // A stored session for the id shows that a refused CONNECT never reports one [MQTT-3.2.2-6].
        let (stored, _) = try await connectAccepted(broker, "bad5", cleanStart: false, sessionExpiry: 60)
        try await disconnect(stored)
        for (name, bytes, reason) in cases {
            try await sectionAExpectConnectRefused(broker, bytes, reason: reason, name)
        }
        XCTAssertNotNil(broker.broker.session(clientID: "bad5"), "the refused CONNECTs left the stored session alone")
        try await assertBrokerServes(broker)
    }

    // [3.1.1:MQTT-3.1.4-1] [3.1.1:MQTT-3.2.2-6]
    func testV311NonConformingConnectIsClosedWithoutConnAck() async throws {
        // No 3.1.1 return code fits a malformed CONNECT: the connection is closed without CONNACK.
        let id = mqttString("bad3")
        let will = mqttString("w/t") + mqttBinary([0x77])
        let cases: [(String, [UInt8])] = [
            ("Will QoS 3", sectionAConnect311(flags: 0x1E, payload: id + will)),
            ("Will QoS without Will Flag", sectionAConnect311(flags: 0x0A, payload: id)),
            ("Will Retain without Will Flag", sectionAConnect311(flags: 0x22, payload: id)),
            ("Will Flag without will fields", sectionAConnect311(flags: 0x06, payload: id)),
            ("Will Flag without will message", sectionAConnect311(flags: 0x06, payload: id + mqttString("w/t"))),
            ("will fields without Will Flag", sectionAConnect311(flags: 0x02, payload: id + will)),
            ("User Name Flag without user name", sectionAConnect311(flags: 0x82, payload: id)),
            ("user name without User Name Flag", sectionAConnect311(flags: 0x02, payload: id + mqttString("user"))),
            ("Password Flag without password", sectionAConnect311(flags: 0xC2, payload: id + mqttString("user"))),
            ("password without Password Flag", sectionAConnect311(flags: 0x82, payload: id + mqttString("user") + mqttBinary([1]))),
            ("Password Flag without User Name Flag", sectionAConnect311(flags: 0x42, payload: id + mqttBinary([1]))),
            ("no client id", sectionAConnect311(payload: [])),
            ("client id cut short", sectionAConnect311(payload: [0x00, 0x08, 0x61])),
            ("keep alive cut short", rawPacket(0x10, mqttString("MQTT") + [4, 0x02, 0x00])),
            ("bytes after the last field", sectionAConnect311(payload: id + [0xAA])),
            ("Will Topic with a wildcard", sectionAConnect311(flags: 0x06, payload: id + mqttString("w/#") + mqttBinary([1]))),
        ]
        for (name, bytes) in cases {
            try await sectionAExpectConnectRefused(broker, bytes, reason: nil, name)
        }
        XCTAssertNil(broker.broker.session(clientID: "bad3"))
        try await assertBrokerServes(broker)
    }
}
