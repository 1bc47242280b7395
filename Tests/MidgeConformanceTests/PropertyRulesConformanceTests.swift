import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// v5 properties (spec 2.2.2): the broker writes a zero Property Length when it has no properties,
/// and refuses a property given twice (Protocol Error, 0x82) or one not allowed on the packet
/// (Malformed Packet, 0x81) — in CONNECT with a CONNACK, afterwards with a DISCONNECT.
final class PropertyRulesConformanceTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker() }

    private let id = mqttString("props")

    /// One property of each identifier with a legal value (keyed by identifier).
    private let sample: [UInt8: [UInt8]] = [
        0x01: [0x01, 0x00], 0x02: [0x02, 0, 0, 0, 9], 0x03: [0x03] + mqttString("t"), 0x08: [0x08] + mqttString("r"),
        0x09: [0x09] + mqttBinary([1]), 0x0B: [0x0B, 0x05], 0x11: [0x11, 0, 0, 0, 9], 0x12: [0x12] + mqttString("c"),
        0x13: [0x13, 0, 9], 0x15: [0x15] + mqttString("m"), 0x16: [0x16] + mqttBinary([1]), 0x17: [0x17, 0x01],
        0x18: [0x18, 0, 0, 0, 1], 0x19: [0x19, 0x00], 0x1A: [0x1A] + mqttString("i"), 0x1C: [0x1C] + mqttString("s"),
        0x1F: [0x1F] + mqttString("why"), 0x21: [0x21, 0, 9], 0x22: [0x22, 0, 9], 0x23: [0x23, 0, 1], 0x24: [0x24, 0x01],
        0x25: [0x25, 0x01], 0x27: [0x27, 0, 0, 0x10, 0], 0x28: [0x28, 0x01], 0x29: [0x29, 0x01], 0x2A: [0x2A, 0x01],
    ]

    // [MQTT-2.2.2-1]
    func testBrokerWritesZeroPropertyLengthWhenItHasNoProperties() async throws {
        broker = try startBroker(sectionAPlainConnAck)
        let (raw, connack) = try await sectionARawConnected(broker, "zero-props")
        XCTAssertEqual(connack, [0x20, 0x03, 0x00, 0x00, 0x00], "CONNACK: flags, reason, property length 0")
        try await raw.send(rawPacket(0x82, [0, 1, 0x00] + mqttString("zp") + [0x01]))
        let suback = await raw.readPacket()
        XCTAssertEqual(suback, [0x90, 0x04, 0x00, 0x01, 0x00, 0x01], "SUBACK: id, property length 0, granted QoS 1")
        let (publisher, _) = try await connectAccepted(broker, "zero-props-pub")
        try await publish(publisher, "zp", "p")
        let publish = await raw.readPacket()
        XCTAssertEqual(publish, [0x30, 0x06, 0x00, 0x02, 0x7A, 0x70, 0x00, 0x70], "PUBLISH: topic, property length 0, payload")
        try await raw.send(rawPacket(0xA2, [0, 2, 0x00] + mqttString("zp")))
        let unsuback = await raw.readPacket()
        XCTAssertEqual(unsuback, [0xB0, 0x04, 0x00, 0x02, 0x00, 0x00], "UNSUBACK: id, property length 0, Success")
        // A PUBACK with a reason other than Success: the Property Length may only be left out
        // when nothing follows the reason code, and the broker never writes a non-empty one here.
        try await raw.send(rawPacket(0x32, mqttString("nobody/here") + [0, 5, 0x00, 0x70]))
        let puback = await raw.readPacket() ?? []
        XCTAssertTrue(puback == [0x40, 0x03, 0x00, 0x05, 0x10] || puback == [0x40, 0x04, 0x00, 0x05, 0x10, 0x00], hex(puback))
        await raw.close()
    }

    // [MQTT-3.1.4-1] [MQTT-3.2.2-7]
    func testPropertyTwiceInConnectIsProtocolError() async throws {
        // Every CONNECT property that may appear once, twice (Authentication Method is refused
        // with 0x8C when single, so it is left out here).
        for identifier: UInt8 in [0x11, 0x21, 0x27, 0x22, 0x19, 0x17] {
            let property = sample[identifier]!
            try await sectionAExpectConnectRefused(broker, rawConnect(properties: property + property, payload: id), reason: 0x82,
                                                   "CONNECT property 0x\(String(identifier, radix: 16)) twice")
        }
        // Will properties twice.
        for identifier: UInt8 in [0x18, 0x01, 0x02, 0x03, 0x08, 0x09] {
            let property = sample[identifier]!
            let payload = id + rawProperties(property + property) + mqttString("w") + mqttBinary([0x77])
            try await sectionAExpectConnectRefused(broker, rawConnect(flags: 0x06, payload: payload), reason: 0x82,
                                                   "will property 0x\(String(identifier, radix: 16)) twice")
        }
        // User Property may repeat (same name twice included).
        let users = sectionAUserProperty(key: [0x6B], value: [0x31]) + sectionAUserProperty(key: [0x6B], value: [0x32])
        let raw = try await RawConnection.connect(broker)
        try await raw.send(rawConnect(properties: users, payload: id))
        let connack = await raw.readPacket() ?? []
        XCTAssertEqual(Array(connack.prefix(4)).enumerated().filter { $0.offset != 1 }.map(\.element), [0x20, 0x00, 0x00], "repeated User Property accepted: \(hex(connack))")
        await raw.close()
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.1.4-1] [MQTT-3.2.2-7]
    func testPropertyNotAllowedInConnectIsMalformed() async throws {
        let allowedInConnect: Set<UInt8> = [0x11, 0x21, 0x27, 0x22, 0x19, 0x17, 0x26, 0x15, 0x16]
        for (identifier, property) in sample.sorted(by: { $0.key < $1.key }) where !allowedInConnect.contains(identifier) {
            try await sectionAExpectConnectRefused(broker, rawConnect(properties: property, payload: id), reason: 0x81,
                                                   "property 0x\(String(identifier, radix: 16)) in CONNECT")
        }
        let allowedInWill: Set<UInt8> = [0x18, 0x01, 0x02, 0x03, 0x08, 0x09, 0x26]
        for (identifier, property) in sample.sorted(by: { $0.key < $1.key }) where !allowedInWill.contains(identifier) {
            let payload = id + rawProperties(property) + mqttString("w") + mqttBinary([0x77])
            try await sectionAExpectConnectRefused(broker, rawConnect(flags: 0x06, payload: payload), reason: 0x81,
                                                   "property 0x\(String(identifier, radix: 16)) in will properties")
        }
        // Identifiers the spec does not define.
        for identifier: UInt8 in [0x00, 0x04, 0x10, 0x14, 0x2B, 0x7F] {
            try await sectionAExpectConnectRefused(broker, rawConnect(properties: [identifier, 0x00], payload: id), reason: 0x81,
                                                   "unknown property 0x\(String(identifier, radix: 16))")
        }
        try await assertBrokerServes(broker)
    }

    func testPropertyRulesAfterConnect() async throws {
        // Spec 2.2.2.2: twice → Protocol Error (DISCONNECT 0x82), not allowed → Malformed (0x81).
        let a = mqttString("a"), x: [UInt8] = [0x78]
        for identifier: UInt8 in [0x01, 0x02, 0x03, 0x08, 0x09, 0x23] {
            let property = sample[identifier]!
            try await sectionAExpectRejectedAfterConnect(broker, rawPacket(0x30, a + rawProperties(property + property) + x), version: .v5,
                                                         reason: 0x82, "PUBLISH property 0x\(String(identifier, radix: 16)) twice")
        }
        let allowedInPublish: Set<UInt8> = [0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26]
        for (identifier, property) in sample.sorted(by: { $0.key < $1.key }) where !allowedInPublish.contains(identifier) {
            try await sectionAExpectRejectedAfterConnect(broker, rawPacket(0x30, a + rawProperties(property) + x), version: .v5,
                                                         reason: 0x81, "property 0x\(String(identifier, radix: 16)) in PUBLISH")
        }
        // As Mosquitto: every error in SUBSCRIBE/UNSUBSCRIBE is 0x81; errors in PUBACK, PUBREL and
        // DISCONNECT close without DISCONNECT (nil).
        let cases: [(String, [UInt8], UInt8?)] = [
            ("SUBSCRIBE Subscription Identifier twice", rawPacket(0x82, [0, 1] + rawProperties(sample[0x0B]! + sample[0x0B]!) + a + [0]), 0x81),
            ("SUBSCRIBE Session Expiry Interval", rawPacket(0x82, [0, 1] + rawProperties(sample[0x11]!) + a + [0]), 0x81),
            ("UNSUBSCRIBE Subscription Identifier", rawPacket(0xA2, [0, 1] + rawProperties(sample[0x0B]!) + a), 0x81),
            ("PUBACK Reason String twice", rawPacket(0x40, [0, 1, 0x00] + rawProperties(sample[0x1F]! + sample[0x1F]!)), nil),
            ("PUBREL Topic Alias", rawPacket(0x62, [0, 1, 0x00] + rawProperties(sample[0x23]!)), nil),
            ("DISCONNECT Session Expiry Interval twice", rawPacket(0xE0, [0x00] + rawProperties(sample[0x11]! + sample[0x11]!)), nil),
            ("DISCONNECT Message Expiry Interval", rawPacket(0xE0, [0x00] + rawProperties(sample[0x02]!)), nil),
        ]
        for (name, bytes, reason) in cases {
            try await sectionAExpectRejectedAfterConnect(broker, bytes, version: .v5, reason: reason, name)
        }
        try await assertBrokerServes(broker)
    }
}
