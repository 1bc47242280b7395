import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Chapter 1 data representation, as a server receiving and sending it: UTF-8 strings (ill-formed,
/// U+0000, the byte order mark), variable byte integers (minimal, at most 4 bytes) and UTF-8
/// string pairs, in every place a client can put one — over real sockets.
final class DataRepresentationConformanceTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker() }

    private let id = mqttString("utf")

    /// CONNECT variants that put `bad` into each UTF-8 field of a v5 CONNECT.
    private func v5ConnectsCarrying(_ bad: [UInt8]) -> [(String, [UInt8])] {
        let will = { (properties: [UInt8], topic: [UInt8]) in rawProperties(properties) + mqttBinary(topic) + mqttBinary([0x77]) }
        return [
            ("client id", rawConnect(payload: mqttBinary(bad))),
            ("will topic", rawConnect(flags: 0x06, payload: id + will([], bad))),
            ("user name", rawConnect(flags: 0x82, payload: id + mqttBinary(bad))),
            ("user property key", rawConnect(properties: sectionAUserProperty(key: bad, value: [0x76]), payload: id)),
            ("user property value", rawConnect(properties: sectionAUserProperty(key: [0x6B], value: bad), payload: id)),
            ("will Content Type", rawConnect(flags: 0x06, payload: id + will([0x03] + mqttBinary(bad), Array("w".utf8)))),
            ("will Response Topic", rawConnect(flags: 0x06, payload: id + will([0x08] + mqttBinary(bad), Array("w".utf8)))),
            ("will user property value", rawConnect(flags: 0x06, payload: id + will(sectionAUserProperty(key: [0x6B], value: bad), Array("w".utf8)))),
        ]
    }

    /// Packets after CONNECT that put `bad` into each UTF-8 field a v5 client sends.
    private func v5PacketsCarrying(_ bad: [UInt8]) -> [(String, [UInt8])] {
        let a = mqttString("a"), x: [UInt8] = [0x78]
        return [
            ("PUBLISH topic", rawPacket(0x30, mqttBinary(bad) + [0x00] + x)),
            ("PUBLISH Content Type", rawPacket(0x30, a + rawProperties([0x03] + mqttBinary(bad)) + x)),
            ("PUBLISH Response Topic", rawPacket(0x30, a + rawProperties([0x08] + mqttBinary(bad)) + x)),
            ("PUBLISH user property key", rawPacket(0x30, a + rawProperties(sectionAUserProperty(key: bad, value: [0x76])) + x)),
            ("PUBLISH user property value", rawPacket(0x30, a + rawProperties(sectionAUserProperty(key: [0x6B], value: bad)) + x)),
            ("SUBSCRIBE filter", rawPacket(0x82, [0, 1, 0] + mqttBinary(bad) + [0x00])),
            ("SUBSCRIBE user property", rawPacket(0x82, [0, 1] + rawProperties(sectionAUserProperty(key: bad, value: [0x76])) + a + [0x00])),
            ("UNSUBSCRIBE filter", rawPacket(0xA2, [0, 1, 0] + mqttBinary(bad))),
            ("PUBACK reason string", rawPacket(0x40, [0, 1, 0x00] + rawProperties([0x1F] + mqttBinary(bad)))),
            ("DISCONNECT reason string", rawPacket(0xE0, [0x00] + rawProperties([0x1F] + mqttBinary(bad)))),
        ]
    }

    /// The DISCONNECT a v5 client gets for a malformed packet named `field`: 0x81 for PUBLISH,
    /// SUBSCRIBE and UNSUBSCRIBE; other packets (PUBACK, DISCONNECT) close without one, as
    /// Mosquitto does (the DISCONNECT is a SHOULD, spec 4.13.1).
    static func disconnectReason(_ field: String) -> UInt8? {
        field.hasPrefix("PUBLISH") || field.hasPrefix("SUBSCRIBE") || field.hasPrefix("UNSUBSCRIBE") ? 0x81 : nil
    }

    /// CONNECT variants that put `bad` into each UTF-8 field of a 3.1.1 CONNECT.
    private func v311ConnectsCarrying(_ bad: [UInt8]) -> [(String, [UInt8])] {
        [
            ("client id", sectionAConnect311(payload: mqttBinary(bad))),
            ("will topic", sectionAConnect311(flags: 0x06, payload: id + mqttBinary(bad) + mqttBinary([0x77]))),
            ("user name", sectionAConnect311(flags: 0x82, payload: id + mqttBinary(bad))),
        ]
    }

    /// Packets after CONNECT that put `bad` into each UTF-8 field a 3.1.1 client sends.
    private func v311PacketsCarrying(_ bad: [UInt8]) -> [(String, [UInt8])] {
        [
            ("PUBLISH topic", rawPacket(0x30, mqttBinary(bad) + [0x78])),
            ("SUBSCRIBE filter", rawPacket(0x82, [0, 1] + mqttBinary(bad) + [0x00])),
            ("UNSUBSCRIBE filter", rawPacket(0xA2, [0, 1] + mqttBinary(bad))),
        ]
    }

    // MARK: Ill-formed UTF-8

    // [MQTT-1.5.4-1] [MQTT-3.1.4-1] [MQTT-3.2.2-7]
    func testV5IllFormedUTF8InConnectIsMalformedPacket() async throws {
        for (what, bad) in sectionAIllFormedUTF8 {
            for (field, bytes) in v5ConnectsCarrying(bad) {
                try await sectionAExpectConnectRefused(broker, bytes, reason: 0x81, "\(what) in \(field)")
            }
        }
        XCTAssertNil(broker.broker.session(clientID: "utf"))
        try await assertBrokerServes(broker)
    }

    // [MQTT-1.5.4-1]
    func testV5IllFormedUTF8AfterConnectGetsDisconnectMalformed() async throws {
        for (what, bad) in sectionAIllFormedUTF8 {
            for (field, bytes) in v5PacketsCarrying(bad) {
                try await sectionAExpectRejectedAfterConnect(broker, bytes, version: .v5, reason: Self.disconnectReason(field), "\(what) in \(field)")
            }
        }
        try await assertBrokerServes(broker)
    }

    // [3.1.1:MQTT-1.5.3-1] [3.1.1:MQTT-3.1.4-1]
    func testV311IllFormedUTF8ClosesTheConnection() async throws {
        for (what, bad) in sectionAIllFormedUTF8 {
            for (field, bytes) in v311ConnectsCarrying(bad) {
                try await sectionAExpectConnectRefused(broker, bytes, reason: nil, "\(what) in \(field)")
            }
            for (field, bytes) in v311PacketsCarrying(bad) {
                try await sectionAExpectRejectedAfterConnect(broker, bytes, version: .v3_1_1, reason: nil, "\(what) in \(field)")
            }
        }
        try await assertBrokerServes(broker)
    }

    // MARK: U+0000

    // [MQTT-1.5.4-2] [MQTT-3.1.4-1]
    func testV5NullCharacterIsMalformedPacket() async throws {
        for (what, bad) in sectionANullCharacter {
            for (field, bytes) in v5ConnectsCarrying(bad) {
                try await sectionAExpectConnectRefused(broker, bytes, reason: 0x81, "\(what) in \(field)")
            }
            for (field, bytes) in v5PacketsCarrying(bad) {
                try await sectionAExpectRejectedAfterConnect(broker, bytes, version: .v5, reason: Self.disconnectReason(field), "\(what) in \(field)")
            }
        }
        try await assertBrokerServes(broker)
    }

    // [3.1.1:MQTT-1.5.3-2]
    func testV311NullCharacterClosesTheConnection() async throws {
        for (what, bad) in sectionANullCharacter {
            for (field, bytes) in v311ConnectsCarrying(bad) {
                try await sectionAExpectConnectRefused(broker, bytes, reason: nil, "\(what) in \(field)")
            }
            for (field, bytes) in v311PacketsCarrying(bad) {
                try await sectionAExpectRejectedAfterConnect(broker, bytes, version: .v3_1_1, reason: nil, "\(what) in \(field)")
            }
        }
        try await assertBrokerServes(broker)
    }

    /// Binary Data is not text: a password and a will payload with bytes that are not UTF-8
    /// (0xFF, 0x00, a lone surrogate) are accepted and the will payload is delivered unchanged.
    func testBinaryDataIsNotCheckedAsUTF8() async throws {
        let (watcher, _) = try await connectAccepted(broker, "bin-watch")
        try await subscribe(watcher, "bin/will", qos: .atMostOnce)
        let binary: [UInt8] = [0xFF, 0x00, 0xED, 0xA0, 0x80, 0xC0, 0x80]
        let bytes = rawConnect(flags: 0x02 | 0x04 | 0x40, payload: mqttString("bin") + rawProperties([]) + mqttString("bin/will")
                               + mqttBinary(binary) + mqttBinary(binary))
        let raw = try await RawConnection.connect(broker)
        try await raw.send(bytes)
        let connack = await raw.readPacket() ?? []
        XCTAssertEqual(Array(connack.prefix(4)), [0x20, connack.count > 1 ? connack[1] : 0, 0x00, 0x00], "accepted: \(hex(connack))")
        await raw.close()   // no DISCONNECT: the will goes out
        guard let will = await expectPublish(watcher) else { return }
        XCTAssertEqual(will.payload.getBytes(at: will.payload.readerIndex, length: will.payload.readableBytes), binary)
    }

    // MARK: Byte order mark

    // [MQTT-1.5.4-3] [3.1.1:MQTT-1.5.3-3]
    func testByteOrderMarkIsKeptInTopicsAndClientIDs() async throws {
        let bom = "\u{FEFF}"
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let tag = "bom\(version.rawValue)"
            let (exact, _) = try await connectAccepted(broker, "\(tag)-exact", version: version)
            try await subscribe(exact, "\(bom)\(tag)/t", qos: .atMostOnce)
            let (plain, _) = try await connectAccepted(broker, "\(tag)-plain", version: version)
            try await subscribe(plain, "\(tag)/t", qos: .atMostOnce)
            let (publisher, _) = try await connectAccepted(broker, "\(bom)\(tag)-pub", version: version)
            try await publish(publisher, "\(bom)\(tag)/t", "with bom")
            // The subscriber to the name with U+FEFF gets it, with the three bytes EF BB BF intact.
            if let message = await expectPublish(exact) {
                XCTAssertEqual(Array(message.topic.utf8.prefix(3)), [0xEF, 0xBB, 0xBF], "U+FEFF kept (\(version))")
                XCTAssertEqual(message.topic, "\(bom)\(tag)/t")
            }
            // A subscriber to the name without it does not: the mark was not stripped.
            await expectNothing(plain, for: 0.3, "a topic with U+FEFF is another topic (\(version))")
            // The client id keeps the mark too.
            XCTAssertNotNil(broker.broker.session(clientID: "\(bom)\(tag)-pub"), "client id with U+FEFF (\(version))")
            XCTAssertNil(broker.broker.session(clientID: "\(tag)-pub"))
        }
    }

    // MARK: Variable Byte Integer

    // [MQTT-1.5.5-1]
    func testNonMinimalOrOverlongVariableByteIntegersAreMalformed() async throws {
        // Remaining Length 0 in two bytes, 1 in three, and five-byte lengths: malformed.
        let v5Cases: [(String, [UInt8])] = [
            ("PINGREQ remaining length 80 00", [0xC0, 0x80, 0x00]),
            ("PINGREQ remaining length 80 80 00", [0xC0, 0x80, 0x80, 0x00]),
            ("PUBLISH remaining length 86 00", [0x30, 0x86, 0x00, 0x00, 0x01, 0x61, 0x00, 0x78, 0x79]),
            ("remaining length of 5 bytes", [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            ("remaining length 80 80 80 80 00", [0x30, 0x80, 0x80, 0x80, 0x80, 0x00]),
            ("property length 80 00", rawPacket(0x30, mqttString("a") + [0x80, 0x00] + [0x78])),
            ("Subscription Identifier 81 00", rawPacket(0x82, [0, 1] + rawProperties([0x0B, 0x81, 0x00]) + mqttString("a") + [0])),
        ]
        for (name, bytes) in v5Cases {
            // A PINGREQ is closed without DISCONNECT, as Mosquitto (a SHOULD, spec 4.13.1).
            try await sectionAExpectRejectedAfterConnect(broker, bytes, version: .v5, reason: name.hasPrefix("PINGREQ") ? nil : 0x81, name)
        }
        // In a CONNECT: closed without CONNACK, as Mosquitto.
        var connect = rawConnect(payload: mqttString("vbi"))
        connect.insert(contentsOf: [0x80 | connect[1]], at: 1)
        connect[2] = 0x00   // remaining length now written as (n | 0x80), 0x00: non-minimal
        let (received, closed) = try await sectionASend(broker, connect)
        XCTAssertTrue(closed)
        XCTAssertEqual(received, [], "a CONNECT whose own length is malformed gets no CONNACK: \(hex(received))")
        try await sectionAExpectConnectRefused(broker, rawConnect(properties: nil, payload: [0x80, 0x00] + mqttString("vbi")),
                                               reason: 0x81, "CONNECT property length 80 00")
        // 3.1.1: the same remaining lengths close the connection.
        for (name, bytes) in v5Cases.prefix(5) {
            try await sectionAExpectRejectedAfterConnect(broker, bytes, version: .v3_1_1, reason: nil, name)
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-1.5.5-1]
    func testBrokerEncodesVariableByteIntegersMinimally() async throws {
        // A raw subscriber checks the Remaining Length bytes of what the broker sends around the
        // one-, two- and three-byte boundaries, and a Subscription Identifier of 128 and 16384.
        let (raw, _) = try await sectionARawConnected(broker, "vbi-sub")
        try await raw.send(rawPacket(0x82, [0, 1] + rawProperties([0x0B, 0x80, 0x01]) + mqttString("v") + [0x00]))
        let got1 = await raw.readPacket()
        XCTAssertEqual(got1, [0x90, 0x04, 0x00, 0x01, 0x00, 0x00], "SUBACK")
        try await raw.send(rawPacket(0x82, [0, 2] + rawProperties([0x0B, 0x80, 0x80, 0x01]) + mqttString("w") + [0x00]))
        let got2 = await raw.readPacket()
        XCTAssertEqual(got2, [0x90, 0x04, 0x00, 0x02, 0x00, 0x00], "SUBACK")
        let (publisher, _) = try await connectAccepted(broker, "vbi-pub")
        // PUBLISH v QoS 0 to a v5 subscriber: topic (3) + property length (1) + Subscription Identifier (3) + payload.
        let overhead = 3 + 1 + 3
        for (remaining, lengthBytes) in [(127, [UInt8(0x7F)]), (128, [0x80, 0x01]), (16383, [0xFF, 0x7F]), (16384, [0x80, 0x80, 0x01])] {
            try await publisher.send(.publish(PublishPacket(topic: "v", payload: ByteBuffer(bytes: [UInt8](repeating: 0x61, count: remaining - overhead)))))
            guard let packet = await raw.readPacket() else { XCTFail("no PUBLISH of \(remaining)"); continue }
            XCTAssertEqual(packet.first, 0x30)
            XCTAssertEqual(Array(packet.dropFirst().prefix(lengthBytes.count)), lengthBytes, "remaining length \(remaining)")
            XCTAssertEqual(packet.count, 1 + lengthBytes.count + remaining)
            // Subscription Identifier 128 as 80 01.
            let afterHeader = Array(packet.dropFirst(1 + lengthBytes.count))
            XCTAssertEqual(Array(afterHeader.prefix(7)), [0x00, 0x01, 0x76, 0x03, 0x0B, 0x80, 0x01], "properties for \(remaining)")
        }
        try await publisher.send(.publish(PublishPacket(topic: "w", payload: ByteBuffer(bytes: [0x61]))))
        let packet = await raw.readPacket() ?? []
        // 30 09 | 00 01 77 | 04 0B 80 80 01 | 61
        XCTAssertEqual(packet, [0x30, 0x09, 0x00, 0x01, 0x77, 0x04, 0x0B, 0x80, 0x80, 0x01, 0x61], hex(packet))
        await raw.close()
    }

    // MARK: UTF-8 string pairs

    // [MQTT-1.5.7-1]
    func testUserPropertyPairsMustBothBeValidUTF8() async throws {
        let a = mqttString("a")
        for (what, bad) in sectionAIllFormedUTF8.prefix(4) + sectionANullCharacter {
            try await sectionAExpectConnectRefused(broker, rawConnect(properties: sectionAUserProperty(key: bad, value: [0x76]), payload: a),
                                                   reason: 0x81, "\(what) in a CONNECT user property name")
            try await sectionAExpectConnectRefused(broker, rawConnect(properties: sectionAUserProperty(key: [0x6B], value: bad), payload: a),
                                                   reason: 0x81, "\(what) in a CONNECT user property value")
            try await sectionAExpectRejectedAfterConnect(broker, rawPacket(0x30, a + rawProperties(sectionAUserProperty(key: [0x6B], value: bad)) + [0x78]),
                                                         version: .v5, reason: 0x81, "\(what) in a PUBLISH user property value")
        }
        // A valid pair (empty value, U+FEFF, non-ASCII) is accepted and forwarded unchanged.
        let (subscriber, _) = try await connectAccepted(broker, "pair-sub")
        try await subscribe(subscriber, "pair/t", qos: .atMostOnce)
        let (publisher, _) = try await connectAccepted(broker, "pair-pub")
        var properties = Properties()
        properties.userProperties = [UserProperty("k\u{FEFF}", ""), UserProperty("ключ", "значение")]
        try await publisher.send(.publish(PublishPacket(topic: "pair/t", payload: ByteBuffer(text: "p"), properties: properties)))
        let message = await expectPublish(subscriber)
        XCTAssertEqual(message?.properties.userProperties, properties.userProperties)
    }
}
