import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// QoS 0/1/2 flows in both directions over real sockets, for 3.1.1 and 5.0: packet identifiers
/// chosen by the broker, exactly-once reception of QoS 2, PUBREL for unknown identifiers, and the
/// QoS a message is delivered at.
final class QoSFlowTests: MessagingTestCase {
    /// Outgoing QoS 1/2 PUBLISH packets carry a non-zero packet identifier that is not in use by
    /// another unacknowledged PUBLISH to the same client (v5 [MQTT-2.2.1-4]; 3.1.1 [3.1.1:MQTT-2.3.1-1] [3.1.1:MQTT-2.3.1-4]);
    /// QoS 0 PUBLISH packets carry none (v5 [MQTT-2.2.1-2]; 3.1.1 [3.1.1:MQTT-2.3.1-5]).
    func testBrokerAllocatedPacketIDsAreNonZeroAndUniqueAmongInflight() async throws {
        for version in messagingVersions {
            let subscriber = try await connect("ids-sub-\(version)", version)
            try await subscriber.subscribe("ids/\(version)/#", qos: .exactlyOnce)
            let publisher = try await connect("ids-pub-\(version)", version)

            // 15 messages, alternating QoS 1 and 2, none acknowledged: all inflight together
            // (within the default window of 20).
            for index in 0..<15 {
                try await publisher.publish("ids/\(version)/m", "\(index)", qos: index % 2 == 0 ? .atLeastOnce : .exactlyOnce,
                                            packetID: UInt16(index + 1))
            }
            let first = try await subscriber.receivePublishes(15, acknowledge: false)
            XCTAssertEqual(first.map(\.text), (0..<15).map { "\($0)" }, "\(version): in order")
            XCTAssertFalse(first.contains { $0.packetID == 0 }, "\(version): packet id 0 used")
            XCTAssertEqual(Set(first.map(\.packetID)).count, 15, "\(version): packet ids not unique: \(first.map(\.packetID))")
            XCTAssertEqual(first.map(\.qos), (0..<15).map { $0 % 2 == 0 ? QoS.atLeastOnce : .exactlyOnce })

            // Complete only the first five; the next ten messages must avoid the ten ids still inflight.
            for publish in first.prefix(5) { try await subscriber.acknowledge(publish) }
            for index in 15..<25 {
                try await publisher.publish("ids/\(version)/m", "\(index)", qos: .atLeastOnce, packetID: UInt16(index + 1))
            }
            let second = try await subscriber.receivePublishes(10, acknowledge: false)
            let stillInflight = Set(first.dropFirst(5).map(\.packetID))
            XCTAssertFalse(second.contains { $0.packetID == 0 })
            XCTAssertEqual(Set(second.map(\.packetID)).count, 10, "\(version): \(second.map(\.packetID))")
            XCTAssertTrue(stillInflight.isDisjoint(with: second.map(\.packetID)),
                          "\(version): reused an inflight id: \(stillInflight) vs \(second.map(\.packetID))")

            // A QoS 0 delivery has no packet identifier.
            try await subscriber.subscribe("ids0/\(version)", qos: .atMostOnce)
            try await publisher.publish("ids0/\(version)", "zero", qos: .atMostOnce)
            let zero = try await subscriber.expectPublish()
            XCTAssertEqual(zero.qos, .atMostOnce)
            XCTAssertEqual(zero.packetID, 0)
            await subscriber.close()
            await publisher.close()
        }
    }

    /// Every combination of published QoS and subscription QoS: the message goes out at the
    /// minimum of the two (v3.1.1 [3.1.1:MQTT-3.8.4-6], v5 [MQTT-3.8.4-8]), and both flows complete.
    func testDeliveryQoSIsMinimumOfPublishedAndGrantedQoS() async throws {
        for version in messagingVersions {
            var subscribers: [PacketConnection] = []
            for granted in QoS.all {
                let subscriber = try await connect("min-sub-\(version)-\(granted.rawValue)", version)
                try await subscriber.subscribe("min/\(version)", qos: granted)
                subscribers.append(subscriber)
            }
            let publisher = try await connect("min-pub-\(version)", version)
            for published in QoS.all {
                let reason = try await publisher.publish("min/\(version)", "q\(published.rawValue)", qos: published, packetID: 10)
                if version == .v5 && published != .atMostOnce { XCTAssertEqual(reason, .success) }
                for (granted, subscriber) in zip(QoS.all, subscribers) {
                    let delivered = try await subscriber.expectPublish()
                    XCTAssertEqual(delivered.text, "q\(published.rawValue)")
                    XCTAssertEqual(delivered.qos, min(published, granted),
                                   "\(version): published \(published), granted \(granted)")
                    XCTAssertFalse(delivered.dup, "first delivery has DUP 0 (v5 [MQTT-4.3.2-2] [MQTT-4.3.3-2], 3.1.1 [3.1.1:MQTT-4.3.2-1] [3.1.1:MQTT-4.3.3-1])")
                    try await subscriber.acknowledge(delivered)
                }
            }
            for subscriber in subscribers { try await subscriber.expectSilence(for: .milliseconds(100), "after the three messages") }
            for subscriber in subscribers { await subscriber.close() }
            await publisher.close()
        }
    }

    /// `upgrade_outgoing_qos true`: messages go out at the subscription's QoS even when published
    /// lower (Mosquitto's option; never above the granted QoS).
    func testUpgradeOutgoingQoSDeliversAtSubscriptionQoS() async throws {
        try restartBroker { $0.upgradeOutgoingQoS = true }
        for version in messagingVersions {
            let two = try await connect("up-2-\(version)", version)
            try await two.subscribe("up/\(version)", qos: .exactlyOnce)
            let one = try await connect("up-1-\(version)", version)
            try await one.subscribe("up/\(version)", qos: .atLeastOnce)
            let publisher = try await connect("up-pub-\(version)", version)

            try await publisher.publish("up/\(version)", "published at 0", qos: .atMostOnce)
            let atTwo = try await two.expectPublish()
            XCTAssertEqual(atTwo.qos, .exactlyOnce, "\(version)")
            XCTAssertNotEqual(atTwo.packetID, 0)
            try await two.acknowledge(atTwo)
            let atOne = try await one.expectPublish()
            XCTAssertEqual(atOne.qos, .atLeastOnce, "\(version)")
            try await one.acknowledge(atOne)

            // Published at 2 to a QoS 1 subscription: still QoS 1.
            try await publisher.publish("up/\(version)", "published at 2", qos: .exactlyOnce, packetID: 3)
            let capped = try await one.expectPublish()
            XCTAssertEqual(capped.qos, .atLeastOnce, "\(version)")
            try await one.acknowledge(capped)
            try await two.acknowledge(try await two.expectPublish())
            await two.close(); await one.close(); await publisher.close()
        }
    }

    /// Without `upgrade_outgoing_qos` (the default) a QoS 0 message to a QoS 2 subscription stays QoS 0.
    func testNoUpgradeByDefault() async throws {
        for version in messagingVersions {
            let subscriber = try await connect("noup-sub-\(version)", version)
            try await subscriber.subscribe("noup/\(version)", qos: .exactlyOnce)
            let publisher = try await connect("noup-pub-\(version)", version)
            try await publisher.publish("noup/\(version)", "x", qos: .atMostOnce)
            let delivered = try await subscriber.expectPublish()
            XCTAssertEqual(delivered.qos, .atMostOnce, "\(version)")
            await subscriber.close(); await publisher.close()
        }
    }

    /// Inbound QoS 2, exactly once: until PUBREL, a re-sent PUBLISH (DUP 1, same packet id) is
    /// acknowledged with PUBREC again but not delivered a second time (v3.1.1 [3.1.1:MQTT-4.3.3-2],
    /// v5 [MQTT-4.3.3-10]); PUBREL is answered with PUBCOMP (v5 [MQTT-4.3.3-11]); after PUBCOMP
    /// the same id starts a new message (v5 [MQTT-4.3.3-12]).
    func testQoS2DuplicateBeforePubRelIsAcknowledgedButNotDeliveredTwice() async throws {
        for version in messagingVersions {
            let subscriber = try await connect("eo-sub-\(version)", version)
            try await subscriber.subscribe("eo/\(version)", qos: .exactlyOnce)
            let publisher = try await connect("eo-pub-\(version)", version)

            let original = PublishPacket(topic: "eo/\(version)", payload: ByteBuffer(string: "once"), qos: .exactlyOnce, packetID: 42)
            try await publisher.send(.publish(original))
            guard case .pubrec(let rec1) = try await publisher.receive() else { return XCTFail("no PUBREC") }
            XCTAssertEqual(rec1.packetID, 42)

            var duplicate = original
            duplicate.dup = true
            try await publisher.send(.publish(duplicate))
            guard case .pubrec(let rec2) = try await publisher.receive() else { return XCTFail("\(version): no PUBREC for the duplicate") }
            XCTAssertEqual(rec2.packetID, 42)
            XCTAssertEqual(rec2.reasonCode, .success)

            try await publisher.send(.pubrel(PubAckPacket(packetID: 42)))
            guard case .pubcomp(let comp) = try await publisher.receive() else { return XCTFail("no PUBCOMP") }
            XCTAssertEqual(comp.packetID, 42)
            XCTAssertEqual(comp.reasonCode, .success)

            // After PUBCOMP the id is free: a new PUBLISH with it is a new message.
            try await publisher.publish("eo/\(version)", "again", qos: .exactlyOnce, packetID: 42)
            try await publisher.publish("eo/\(version)", "end", qos: .atMostOnce)

            let delivered = try await subscriber.receivePublishes(3)
            XCTAssertEqual(delivered.map(\.text), ["once", "again", "end"], "\(version): the duplicate was delivered again")
            await subscriber.close(); await publisher.close()
        }
    }

    /// The inbound QoS 2 state is session state (spec 4.1): a publisher that reconnects to its
    /// session and re-sends an unreleased QoS 2 PUBLISH with DUP 1 (spec 4.4) gets PUBREC but
    /// the message is not delivered twice (v5 [MQTT-4.3.3-10], 3.1.1 [3.1.1:MQTT-4.3.3-2]).
    func testQoS2DuplicateAfterReconnectIsNotDeliveredTwice() async throws {
        for version in messagingVersions {
            let subscriber = try await connect("eor-sub-\(version)", version)
            try await subscriber.subscribe("eor/\(version)", qos: .exactlyOnce)
            var (publisher, _) = try await connectPersistent("eor-pub-\(version)", version, resume: false)
            let original = PublishPacket(topic: "eor/\(version)", payload: ByteBuffer(string: "once"), qos: .exactlyOnce, packetID: 7)
            try await publisher.send(.publish(original))
            guard case .pubrec = try await publisher.receive() else { return XCTFail("no PUBREC") }
            try await publisher.disconnect()

            let present: Bool
            (publisher, present) = try await connectPersistent("eor-pub-\(version)", version, resume: true)
            XCTAssertTrue(present, "\(version): session present")
            var duplicate = original
            duplicate.dup = true
            try await publisher.send(.publish(duplicate))
            guard case .pubrec(let rec) = try await publisher.receive() else { return XCTFail("\(version): no PUBREC") }
            XCTAssertEqual(rec.packetID, 7)
            try await publisher.send(.pubrel(PubAckPacket(packetID: 7)))
            guard case .pubcomp(let comp) = try await publisher.receive() else { return XCTFail("no PUBCOMP") }
            XCTAssertEqual(comp.reasonCode, .success, "\(version): the id was known to the session")
            try await publisher.publish("eor/\(version)", "end", qos: .atMostOnce)

            let delivered = try await subscriber.receivePublishes(2)
            XCTAssertEqual(delivered.map(\.text), ["once", "end"], "\(version)")
            await subscriber.close(); await publisher.close()
        }
    }

    /// PUBREL for a packet id the broker does not know is still answered with PUBCOMP
    /// (v5 [MQTT-4.3.3-11], 3.1.1 [3.1.1:MQTT-4.3.3-2]), with reason success in v5 as from Mosquitto (a
    /// repeated PUBREL after a reconnect whose PUBCOMP was lost: the flow is complete either way).
    func testPubRelForUnknownPacketIDGetsPubComp() async throws {
        for version in messagingVersions {
            let client = try await connect("rel-\(version)", version)
            try await client.send(.pubrel(PubAckPacket(packetID: 999)))
            guard case .pubcomp(let comp) = try await client.receive() else { return XCTFail("\(version): no PUBCOMP") }
            XCTAssertEqual(comp.packetID, 999)
            XCTAssertEqual(comp.reasonCode, .success, "\(version)")
            // The connection stays usable.
            try await client.send(.pingreq)
            guard case .pingresp = try await client.receive() else { return XCTFail("no PINGRESP") }
            await client.close()
        }
    }

    /// Outbound QoS 2 from the broker: PUBLISH → PUBREC → PUBREL → PUBCOMP, and a PUBREC for an
    /// id that is not inflight gets PUBREL (success, as from Mosquitto).
    func testOutboundQoS2FlowAndPubRecForUnknownID() async throws {
        for version in messagingVersions {
            let subscriber = try await connect("out2-sub-\(version)", version)
            try await subscriber.subscribe("out2/\(version)", qos: .exactlyOnce)
            let publisher = try await connect("out2-pub-\(version)", version)
            try await publisher.publish("out2/\(version)", "m", qos: .exactlyOnce, packetID: 5)
            let delivered = try await subscriber.expectPublish()
            XCTAssertEqual(delivered.qos, .exactlyOnce)
            try await subscriber.send(.pubrec(PubAckPacket(packetID: delivered.packetID)))
            guard case .pubrel(let rel) = try await subscriber.receive() else { return XCTFail("no PUBREL") }
            XCTAssertEqual(rel.packetID, delivered.packetID)
            XCTAssertEqual(rel.reasonCode, .success)
            try await subscriber.send(.pubcomp(PubAckPacket(packetID: delivered.packetID)))

            let unknown: UInt16 = delivered.packetID &+ 100
            try await subscriber.send(.pubrec(PubAckPacket(packetID: unknown)))
            guard case .pubrel(let unknownRel) = try await subscriber.receive() else { return XCTFail("\(version): no PUBREL for unknown id") }
            XCTAssertEqual(unknownRel.packetID, unknown)
            XCTAssertEqual(unknownRel.reasonCode, .success)
            await subscriber.close(); await publisher.close()
        }
    }

    /// QoS 1 inbound: each PUBLISH gets a PUBACK with its packet id (v5 [MQTT-4.3.2-4]; 3.1.1
    /// [3.1.1:MQTT-4.3.2-2]) even for several outstanding at once, in order (the broker-side mirror of
    /// the client rule MQTT-4.6.0-2).
    func testQoS1PubAcksInOrder() async throws {
        for version in messagingVersions {
            let publisher = try await connect("acks-\(version)", version)
            for id in UInt16(1)...10 {
                try await publisher.send(.publish(PublishPacket(topic: "acks/\(version)", payload: ByteBuffer(string: "\(id)"),
                                                                qos: .atLeastOnce, packetID: id)))
            }
            var acked: [UInt16] = []
            for _ in 1...10 {
                guard case .puback(let ack) = try await publisher.receive() else { return XCTFail("no PUBACK") }
                acked.append(ack.packetID)
            }
            XCTAssertEqual(acked, Array(1...10), "\(version)")
            await publisher.close()
        }
    }
}
