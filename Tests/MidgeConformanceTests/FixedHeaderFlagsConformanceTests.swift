import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Fixed header flags (spec 2.1.3 / 3.1.1 2.2.2): every packet type a client may send, with every
/// wrong value of its four flag bits, is a malformed packet — v5 gets DISCONNECT 0x81 then the
/// close for SUBSCRIBE, UNSUBSCRIBE and PUBLISH (the others, as in Mosquitto, the close alone),
/// 3.1.1 just the close — and the broker's own packets carry exactly the listed flags.
final class FixedHeaderFlagsConformanceTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker() }

    /// Packet types with fixed flags, their required flags and a well-formed body (v5, v3).
    private let fixedFlagTypes: [(name: String, type: UInt8, flags: UInt8, v5Body: [UInt8], v3Body: [UInt8])] = [
        ("PUBACK", 4, 0x0, [0, 1], [0, 1]),
        ("PUBREC", 5, 0x0, [0, 1], [0, 1]),
        ("PUBREL", 6, 0x2, [0, 1], [0, 1]),
        ("PUBCOMP", 7, 0x0, [0, 1], [0, 1]),
        ("SUBSCRIBE", 8, 0x2, [0, 1, 0] + mqttString("f") + [0], [0, 1] + mqttString("f") + [0]),
        ("UNSUBSCRIBE", 10, 0x2, [0, 1, 0] + mqttString("f"), [0, 1] + mqttString("f")),
        ("PINGREQ", 12, 0x0, [], []),
        ("DISCONNECT", 14, 0x0, [], []),
    ]

    // [MQTT-2.1.3-1]
    func testV5WrongFlagsOnEveryPacketTypeAreMalformed() async throws {
        var types = fixedFlagTypes
        types.append(("AUTH", 15, 0x0, [], []))
        for entry in types {
            for flags: UInt8 in 0...15 where flags != entry.flags {
                // DISCONNECT 0x81 for SUBSCRIBE and UNSUBSCRIBE; the close alone for the others, as
                // Mosquitto (the DISCONNECT is a SHOULD, spec 4.13.1).
                let disconnects = entry.name == "SUBSCRIBE" || entry.name == "UNSUBSCRIBE"
                try await sectionAExpectRejectedAfterConnect(broker, rawPacket(entry.type << 4 | flags, entry.v5Body), version: .v5,
                                                             reason: disconnects ? 0x81 : nil, "\(entry.name) with flags \(flags)")
            }
        }
        // PUBLISH: the flags are DUP, QoS, RETAIN, but QoS 3 (both bits) is malformed.
        for flags: UInt8 in [0x6, 0x7, 0xE, 0xF] {
            try await sectionAExpectRejectedAfterConnect(broker, rawPacket(0x30 | flags, mqttString("a") + [0, 1, 0, 0x78]), version: .v5,
                                                         reason: 0x81, "PUBLISH with flags \(flags)")
        }
        // CONNECT after CONNECT with wrong flags: malformed (checked before it counts as a second CONNECT).
        for flags: UInt8 in [0x1, 0x2, 0x4, 0x8, 0xF] {
            var bytes = connectBytes("again", .v5)
            bytes[0] |= flags
            try await sectionAExpectRejectedAfterConnect(broker, bytes, version: .v5, reason: nil, "CONNECT with flags \(flags)")
        }
        try await assertBrokerServes(broker)
        await eventually(within: 3, "no connection left behind") { self.broker.broker.connectedClientCount == 0 }
    }

    // [3.1.1:MQTT-2.2.2-1] [3.1.1:MQTT-2.2.2-2]
    func testV311WrongFlagsOnEveryPacketTypeCloseTheConnection() async throws {
        for entry in fixedFlagTypes {
            for flags: UInt8 in 0...15 where flags != entry.flags {
                try await sectionAExpectRejectedAfterConnect(broker, rawPacket(entry.type << 4 | flags, entry.v3Body), version: .v3_1_1,
                                                             reason: nil, "\(entry.name) with flags \(flags)")
            }
        }
        for flags: UInt8 in [0x6, 0x7, 0xE, 0xF] {
            try await sectionAExpectRejectedAfterConnect(broker, rawPacket(0x30 | flags, mqttString("a") + [0, 1, 0x78]), version: .v3_1_1,
                                                         reason: nil, "PUBLISH with flags \(flags)")
        }
        try await assertBrokerServes(broker)
        await eventually(within: 3, "no connection left behind") { self.broker.broker.connectedClientCount == 0 }
    }

    // [MQTT-2.1.3-1] [MQTT-3.1.4-1] [3.1.1:MQTT-2.2.2-2] [3.1.1:MQTT-3.1.4-1]
    func testConnectWithWrongFixedHeaderFlagsIsNeverAccepted() async throws {
        // As the first packet, CONNECT with flags other than 0000 is closed without a CONNACK:
        // the fixed header is rejected before the protocol level is read.
        for version in [ProtocolVersion.v3_1_1, .v5] {
            for flags: UInt8 in 1...15 {
                var bytes = connectBytes("fh-\(flags)", version)
                bytes[0] |= flags
                let (received, closed) = try await sectionASend(broker, bytes)
                XCTAssertTrue(closed, "CONNECT flags \(flags) (\(version))")
                XCTAssertEqual(received, [], "CONNECT flags \(flags) (\(version)): \(hex(received))")
                XCTAssertNil(broker.broker.session(clientID: "fh-\(flags)"))
            }
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-2.1.3-1] [3.1.1:MQTT-2.2.2-1]
    func testBrokerSendsTheListedFlags() async throws {
        // A raw client sees every packet type the broker sends and checks its first byte.
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let props: [UInt8] = version == .v5 ? [0x00] : []
            let (raw, connack) = try await sectionARawConnected(broker, "flags-\(version.rawValue)", version)
            XCTAssertEqual(connack.first, 0x20, "CONNACK")
            // SUBACK 0x90.
            try await raw.send(rawPacket(0x82, [0, 1] + props + mqttString("fl/\(version.rawValue)") + [0x02]))
            let got1 = await raw.readPacket()
            XCTAssertEqual(got1?.first, 0x90, "SUBACK (\(version))")
            // Inbound QoS 2: PUBREC 0x50, PUBCOMP 0x70. The message comes back to us as PUBLISH QoS 2 (0x34).
            try await raw.send(rawPacket(0x34, mqttString("fl/\(version.rawValue)") + [0, 7] + props + [0x78]))
            var firstBytes: [UInt8] = []
            var outboundID: [UInt8] = []
            for _ in 0..<2 {
                guard let packet = await raw.readPacket() else { break }
                firstBytes.append(packet[0])
                if packet[0] & 0xF0 == 0x30 {
                    let topicLength = Int(packet[2]) << 8 | Int(packet[3])
                    outboundID = Array(packet[(4 + topicLength)..<(6 + topicLength)])
                }
            }
            XCTAssertEqual(Set(firstBytes), [0x50, 0x34], "PUBREC and PUBLISH QoS 2 (\(version)): \(hex(firstBytes))")
            try await raw.send(rawPacket(0x62, [0, 7]))
            let got2 = await raw.readPacket()
            XCTAssertEqual(got2?.first, 0x70, "PUBCOMP (\(version))")
            // Outbound QoS 2: we answer PUBREC, the broker sends PUBREL with flags 0010.
            try await raw.send(rawPacket(0x50, outboundID))
            let got3 = await raw.readPacket()
            XCTAssertEqual(got3?.first, 0x62, "PUBREL (\(version))")
            try await raw.send(rawPacket(0x70, outboundID))
            // QoS 1: PUBACK 0x40, and the copy back as PUBLISH QoS 1 (0x32).
            try await raw.send(rawPacket(0x32, mqttString("fl/\(version.rawValue)") + [0, 8] + props + [0x78]))
            var qos1: [UInt8] = []
            for _ in 0..<2 { if let packet = await raw.readPacket() { qos1.append(packet[0]) } }
            XCTAssertEqual(Set(qos1), [0x40, 0x32], "PUBACK and PUBLISH QoS 1 (\(version)): \(hex(qos1))")
            // UNSUBACK 0xB0, PINGRESP 0xD0.
            try await raw.send(rawPacket(0xA2, [0, 2] + props + mqttString("fl/\(version.rawValue)")))
            let got4 = await raw.readPacket()
            XCTAssertEqual(got4?.first, 0xB0, "UNSUBACK (\(version))")
            try await raw.send([0xC0, 0x00])
            let got5 = await raw.readPacket()
            XCTAssertEqual(got5, [0xD0, 0x00], "PINGRESP (\(version))")
            if version == .v5 {
                // DISCONNECT 0xE0 (here for a malformed PUBLISH: QoS 3).
                try await raw.send(rawPacket(0x36, mqttString("a") + [0, 1, 0, 0x78]))
                let got6 = await raw.readPacket()
                XCTAssertEqual(got6?.first, 0xE0, "DISCONNECT")
            }
            await raw.close()
        }
    }
}
