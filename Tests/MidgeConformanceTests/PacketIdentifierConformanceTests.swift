import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Packet identifiers (v5 spec 2.2.1, 3.1.1 spec 2.3.1): none on QoS 0 PUBLISH, non-zero and
/// unused on the broker's QoS 1/2 PUBLISH (the same one when resent), and every acknowledgement
/// echoes the identifier of the packet it acknowledges. Byte-level checks over a raw socket.
final class PacketIdentifierConformanceTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker() }

    private func packetID(_ bytes: [UInt8], at index: Int) -> UInt16 { UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]) }

    /// Index of the packet identifier in a raw PUBLISH with a one-byte remaining length.
    private func publishIDIndex(_ bytes: [UInt8]) -> Int { 4 + Int(packetID(bytes, at: 2)) }

    // [MQTT-2.2.1-2] [3.1.1:MQTT-2.3.1-5]
    func testQoS0PublishFromBrokerHasNoPacketIdentifier() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let (raw, _) = try await sectionARawConnected(broker, "q0-\(version.rawValue)", version)
            let props: [UInt8] = version == .v5 ? [0x00] : []
            try await raw.send(rawPacket(0x82, [0, 1] + props + mqttString("q0") + [0x02]))
            _ = await raw.readPacket()
            let (publisher, _) = try await connectAccepted(broker, "q0-pub-\(version.rawValue)")
            // Published at QoS 1, delivered at QoS 0 to a QoS 0 subscription... here the subscription is QoS 2,
            // so publish at QoS 0: the delivery is QoS 0.
            try await publish(publisher, "q0", "xy")
            let packet = await raw.readPacket() ?? []
            // Fixed header, topic "q0", (v5: property length 0), payload — nothing in between.
            XCTAssertEqual(packet, rawPacket(0x30, mqttString("q0") + props + Array("xy".utf8)), "\(version): \(hex(packet))")
            await raw.close()
            await publisher.close()
        }
    }

    // [MQTT-2.2.1-4] [3.1.1:MQTT-2.3.1-1] [3.1.1:MQTT-2.3.1-4]
    func testBrokerPublishIdentifiersAreNonZeroUnusedAndKeptOnResend() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let tag = "pid\(version.rawValue)"
            let props: [UInt8] = version == .v5 ? [0x00] : []
            let (raw, _) = try await sectionARawConnected(broker, tag, version, cleanStart: false,
                                                          properties: version == .v5 ? sessionExpiry(60) : .none)
            try await raw.send(rawPacket(0x82, [0, 1] + props + mqttString("\(tag)/+") + [0x02]))
            _ = await raw.readPacket()
            let (publisher, _) = try await connectAccepted(broker, "\(tag)-pub")
            // Five unacknowledged deliveries at QoS 1 and 2: five distinct non-zero identifiers.
            for index in 0..<5 {
                try await publish(publisher, "\(tag)/\(index)", "m\(index)", qos: index % 2 == 0 ? .atLeastOnce : .exactlyOnce,
                                  packetID: UInt16(10 + index))
            }
            var ids: [Int: UInt16] = [:]
            for _ in 0..<5 {
                guard let packet = await raw.readPacket() else { XCTFail("missing PUBLISH (\(version))"); break }
                let topicLength = Int(packetID(packet, at: 2))
                let index = Int(String(decoding: packet[(4 + topicLength - 1)..<(4 + topicLength)], as: UTF8.self))!
                ids[index] = packetID(packet, at: publishIDIndex(packet))
            }
            XCTAssertFalse(ids.values.contains(0), "non-zero identifiers (\(version)): \(ids)")
            XCTAssertEqual(Set(ids.values).count, 5, "one identifier per message in flight (\(version)): \(ids)")
            // Acknowledge message 0 (QoS 1): its identifier is free again; the others stay in use, so a new
            // message must not take one of them.
            try await raw.send(rawPacket(0x40, [UInt8(ids[0]! >> 8), UInt8(ids[0]! & 0xFF)]))
            try await publish(publisher, "\(tag)/5", "m5", qos: .atLeastOnce, packetID: 20)
            let sixth = await raw.readPacket() ?? []
            if !sixth.isEmpty {
                let id = packetID(sixth, at: publishIDIndex(sixth))
                XCTAssertNotEqual(id, 0)
                XCTAssertFalse([1, 2, 3, 4].map { ids[$0]! }.contains(id), "identifier \(id) still in use (\(version))")
                ids[5] = id
            }
            // Reconnect: the unacknowledged messages come again with DUP and their identifiers.
            await raw.close()
            await eventually(within: 3, "session offline") { self.broker.broker.session(clientID: tag)?.isOnline == false }
            let (again, connack) = try await sectionARawConnected(broker, tag, version, cleanStart: false,
                                                                  properties: version == .v5 ? sessionExpiry(60) : .none)
            XCTAssertEqual(connack.count > 2 ? connack[2] : 0, 0x01, "session present (\(version))")
            var resent: [Int: UInt16] = [:]
            for _ in 0..<5 {
                guard let packet = await again.readPacket() else { XCTFail("missing resend (\(version))"); break }
                XCTAssertEqual(packet[0] & 0x08, 0x08, "DUP on resend (\(version))")
                let topicLength = Int(packetID(packet, at: 2))
                let index = Int(String(decoding: packet[(4 + topicLength - 1)..<(4 + topicLength)], as: UTF8.self))!
                resent[index] = packetID(packet, at: publishIDIndex(packet))
            }
            XCTAssertEqual(resent, ids.filter { $0.key != 0 }, "same identifiers on resend (\(version))")
            await again.close()
            await publisher.close()
        }
    }

    // [MQTT-2.2.1-5] [3.1.1:MQTT-2.3.1-6]
    func testAcknowledgementsCarryThePublishIdentifier() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let tag = "ack\(version.rawValue)"
            let props: [UInt8] = version == .v5 ? [0x00] : []
            let (raw, _) = try await sectionARawConnected(broker, tag, version)
            for id: UInt16 in [1, 0x1234, 0x8000, 0xFFFF] {
                let idBytes = [UInt8(id >> 8), UInt8(id & 0xFF)]
                // QoS 1 → PUBACK with the id.
                try await raw.send(rawPacket(0x32, mqttString("\(tag)/x") + idBytes + props + [0x61]))
                let puback = await raw.readPacket() ?? []
                XCTAssertEqual(puback.first, 0x40)
                XCTAssertEqual(Array(puback.dropFirst(2).prefix(2)), idBytes, "PUBACK id \(id) (\(version))")
                // QoS 2 → PUBREC with the id; PUBREL → PUBCOMP with the id.
                try await raw.send(rawPacket(0x34, mqttString("\(tag)/x") + idBytes + props + [0x61]))
                let pubrec = await raw.readPacket() ?? []
                XCTAssertEqual(pubrec.first, 0x50)
                XCTAssertEqual(Array(pubrec.dropFirst(2).prefix(2)), idBytes, "PUBREC id \(id) (\(version))")
                try await raw.send(rawPacket(0x62, idBytes))
                let pubcomp = await raw.readPacket() ?? []
                XCTAssertEqual(pubcomp.first, 0x70)
                XCTAssertEqual(Array(pubcomp.dropFirst(2).prefix(2)), idBytes, "PUBCOMP id \(id) (\(version))")
            }
            // The broker's PUBREL carries the identifier of the broker's own PUBLISH.
            try await raw.send(rawPacket(0x82, [0, 1] + props + mqttString("\(tag)/in") + [0x02]))
            _ = await raw.readPacket()
            let (publisher, _) = try await connectAccepted(broker, "\(tag)-pub")
            try await publish(publisher, "\(tag)/in", "q2", qos: .exactlyOnce, packetID: 77)
            let delivery = await raw.readPacket() ?? []
            XCTAssertEqual(delivery.first.map { $0 & 0xF6 }, 0x34, hex(delivery))
            let outID = Array(delivery[publishIDIndex(delivery)..<(publishIDIndex(delivery) + 2)])
            try await raw.send(rawPacket(0x50, outID))
            let pubrel = await raw.readPacket() ?? []
            XCTAssertEqual(pubrel.first, 0x62)
            XCTAssertEqual(Array(pubrel.dropFirst(2).prefix(2)), outID, "PUBREL echoes the PUBLISH id (\(version))")
            try await raw.send(rawPacket(0x70, outID))
            await raw.close()
            await publisher.close()
        }
    }

    // [MQTT-2.2.1-6] [3.1.1:MQTT-2.3.1-7]
    func testSubAckAndUnsubAckCarryTheRequestIdentifier() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let props: [UInt8] = version == .v5 ? [0x00] : []
            let (raw, _) = try await sectionARawConnected(broker, "sub-id-\(version.rawValue)", version)
            let ids: [UInt16] = [1, 0x00FF, 0x0100, 0x7FFF, 0x8000, 0xFFFF]
            // Pipelined in one write: each answer, in order, with its request's identifier.
            var bytes: [UInt8] = []
            for id in ids { bytes += rawPacket(0x82, [UInt8(id >> 8), UInt8(id & 0xFF)] + props + mqttString("s/\(id)") + [0x01]) }
            for id in ids { bytes += rawPacket(0xA2, [UInt8(id >> 8), UInt8(id & 0xFF)] + props + mqttString("s/\(id)")) }
            try await raw.send(bytes)
            for (kind, first) in [("SUBACK", UInt8(0x90)), ("UNSUBACK", 0xB0)] {
                for id in ids {
                    let packet = await raw.readPacket() ?? []
                    XCTAssertEqual(packet.first, first, "\(kind) (\(version)): \(hex(packet))")
                    XCTAssertEqual(Array(packet.dropFirst(2).prefix(2)), [UInt8(id >> 8), UInt8(id & 0xFF)], "\(kind) id \(id) (\(version))")
                }
            }
            await raw.close()
        }
    }

    // [3.1.1:MQTT-2.3.1-1]
    func testV311ClientPacketsWithIdentifierZeroAreRejected() async throws {
        // The server enforces the non-zero identifier on what it receives: the connection is closed.
        let a = mqttString("a")
        for (name, bytes) in [("PUBLISH QoS 1", rawPacket(0x32, a + [0, 0, 0x78])), ("PUBLISH QoS 2", rawPacket(0x34, a + [0, 0, 0x78])),
                              ("SUBSCRIBE", rawPacket(0x82, [0, 0] + a + [0])), ("UNSUBSCRIBE", rawPacket(0xA2, [0, 0] + a))] {
            try await sectionAExpectRejectedAfterConnect(broker, bytes, version: .v3_1_1, reason: nil, "\(name) with packet id 0")
        }
        try await assertBrokerServes(broker)
    }
}
