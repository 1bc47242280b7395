import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// A persistent session that did not finish acknowledging its QoS 1/2 messages gets them again
/// when it reconnects: same packet ids, DUP 1, in the original order; PUBREL again for QoS 2
/// messages it had already PUBREC'd (v5 [MQTT-4.4.0-1] [MQTT-3.3.1-1], 3.1.1 [3.1.1:MQTT-4.4.0-1]
/// [3.1.1:MQTT-3.3.1-1]; the order is the one the client rule MQTT-4.6.0-1 requires of clients).
final class RedeliveryOnReconnectTests: MessagingTestCase {
    func testUnacknowledgedMessagesAreResentWithDupAndSamePacketIDsInOrder() async throws {
        for version in messagingVersions {
            let id = "redeliver-\(version)"
            var (subscriber, _) = try await connectPersistent(id, version, resume: false)
            try await subscriber.subscribe("rd/\(version)/#", qos: .exactlyOnce)
            let publisher = try await connect("rd-pub-\(version)", version)

            // Six messages, QoS 1 and 2 alternating.
            for index in 0..<6 {
                try await publisher.publish("rd/\(version)/\(index)", "m\(index)", qos: index % 2 == 0 ? .atLeastOnce : .exactlyOnce,
                                            packetID: UInt16(index + 1))
            }
            let first = try await subscriber.receivePublishes(6, acknowledge: false)
            XCTAssertEqual(first.map(\.text), (0..<6).map { "m\($0)" })
            XCTAssertTrue(first.allSatisfy { !$0.dup })

            // Acknowledge m0 (QoS 1) fully; PUBREC m3 (QoS 2) but do not PUBCOMP; leave the rest.
            try await subscriber.send(.puback(PubAckPacket(packetID: first[0].packetID)))
            try await subscriber.send(.pubrec(PubAckPacket(packetID: first[3].packetID)))
            guard case .pubrel(let rel) = try await subscriber.receive() else { return XCTFail("no PUBREL") }
            XCTAssertEqual(rel.packetID, first[3].packetID)
            try await subscriber.disconnect()

            // Queued while offline: sent after the resends, as new messages.
            try await publisher.publish("rd/\(version)/q", "queued", qos: .atLeastOnce, packetID: 20)

            let present: Bool
            (subscriber, present) = try await connectPersistent(id, version, resume: true)
            XCTAssertTrue(present, "\(version): Session Present (3.1.1 [3.1.1:MQTT-3.2.2-2], v5 [MQTT-3.2.2-3])")
            var resent: [PublishPacket] = []
            var released: [UInt16] = []
            for _ in 0..<5 {   // four PUBLISH packets and one PUBREL
                switch try await subscriber.receive() {
                case .publish(let publish): resent.append(publish)
                case .pubrel(let rel): released.append(rel.packetID)
                case let other: return XCTFail("\(version): unexpected \(other)")
                }
            }
            // m1, m2, m4, m5 again, in order, same ids and QoS, DUP 1.
            let expected = [first[1], first[2], first[4], first[5]]
            XCTAssertEqual(resent.map(\.text), expected.map(\.text), "\(version): resent in the original order")
            XCTAssertEqual(resent.map(\.packetID), expected.map(\.packetID), "\(version): original packet ids [MQTT-4.4.0-1] [3.1.1:MQTT-4.4.0-1]")
            XCTAssertEqual(resent.map(\.qos), expected.map(\.qos))
            XCTAssertEqual(resent.map(\.topic), expected.map(\.topic))
            XCTAssertTrue(resent.allSatisfy(\.dup), "\(version): DUP 1 on re-delivery [MQTT-3.3.1-1] [3.1.1:MQTT-3.3.1-1]")
            // m3 was PUBREC'd: PUBREL again, not PUBLISH [MQTT-4.3.3-6] [3.1.1:MQTT-4.3.3-1].
            XCTAssertEqual(released, [first[3].packetID], "\(version): PUBREL resent for the PUBREC'd message")
            XCTAssertFalse(resent.contains { $0.text == "m0" || $0.text == "m3" }, "\(version): completed messages resent")

            let queued = try await subscriber.expectPublish()
            XCTAssertEqual(queued.text, "queued")
            XCTAssertFalse(queued.dup, "\(version): a message never sent before has DUP 0")
            XCTAssertFalse(Set(expected.map(\.packetID)).contains(queued.packetID), "\(version): id of an inflight message reused")

            // Finish everything; a further reconnect gets nothing back.
            try await subscriber.send(.pubcomp(PubAckPacket(packetID: first[3].packetID)))
            for publish in resent + [queued] { try await subscriber.acknowledge(publish) }
            try await subscriber.disconnect()
            (subscriber, _) = try await connectPersistent(id, version, resume: true)
            try await publisher.publish("rd/\(version)/end", "end", qos: .atMostOnce)
            let after = try await subscriber.publishesBefore(marker: "rd/\(version)/end")
            XCTAssertEqual(after.map(\.text), [], "\(version): acknowledged messages delivered again")
            await subscriber.close(); await publisher.close()
        }
    }

    /// The same after the connection is dropped without DISCONNECT (network failure).
    func testResendAfterConnectionLoss() async throws {
        for version in messagingVersions {
            let id = "loss-\(version)"
            var (subscriber, _) = try await connectPersistent(id, version, resume: false)
            try await subscriber.subscribe("loss/\(version)", qos: .atLeastOnce)
            let publisher = try await connect("loss-pub-\(version)", version)
            for index in 0..<3 { try await publisher.publish("loss/\(version)", "\(index)", qos: .atLeastOnce, packetID: UInt16(index + 1)) }
            let first = try await subscriber.receivePublishes(3, acknowledge: false)
            await subscriber.close()

            (subscriber, _) = try await connectPersistent(id, version, resume: true)
            let again = try await subscriber.receivePublishes(3)
            XCTAssertEqual(again.map(\.text), ["0", "1", "2"], "\(version)")
            XCTAssertEqual(again.map(\.packetID), first.map(\.packetID), "\(version)")
            XCTAssertTrue(again.allSatisfy(\.dup), "\(version)")
            await subscriber.close(); await publisher.close()
        }
    }

    /// Session takeover: a second connection with the same client id while the first is still
    /// open (v5 [MQTT-3.1.4-3], 3.1.1 [3.1.1:MQTT-3.1.4-2]) resumes the session and gets the
    /// unacknowledged messages again.
    func testResendAfterSessionTakeover() async throws {
        for version in messagingVersions {
            let id = "takeover-\(version)"
            let (first, _) = try await connectPersistent(id, version, resume: false)
            try await first.subscribe("to/\(version)", qos: .exactlyOnce)
            let publisher = try await connect("to-pub-\(version)", version)
            for index in 0..<4 {
                try await publisher.publish("to/\(version)", "\(index)", qos: index % 2 == 0 ? .atLeastOnce : .exactlyOnce,
                                            packetID: UInt16(index + 1))
            }
            let original = try await first.receivePublishes(4, acknowledge: false)

            let (second, present) = try await connectPersistent(id, version, resume: true)
            XCTAssertTrue(present, "\(version)")
            let closing = try await first.waitForClose()
            if version == .v5 {
                guard case .disconnect(let disconnect) = closing.last else { return XCTFail("no DISCONNECT: \(closing)") }
                XCTAssertEqual(disconnect.reasonCode, .sessionTakenOver)
            }
            let again = try await second.receivePublishes(4)
            XCTAssertEqual(again.map(\.text), ["0", "1", "2", "3"], "\(version)")
            XCTAssertEqual(again.map(\.packetID), original.map(\.packetID), "\(version)")
            XCTAssertTrue(again.allSatisfy(\.dup), "\(version)")
            // The session keeps working on the new connection.
            try await publisher.publish("to/\(version)", "after", qos: .atLeastOnce, packetID: 9)
            let after = try await second.expectPublish()
            XCTAssertEqual(after.text, "after")
            XCTAssertFalse(after.dup)
            await second.close(); await publisher.close()
        }
    }

    /// A clean session does not get unacknowledged messages back: v3.1.1 Clean Session 1 / v5
    /// Clean Start 1 discard the previous session (3.1.1 [3.1.1:MQTT-3.1.2-6], v5 [MQTT-3.1.2-4]).
    func testCleanStartDiscardsUnacknowledgedMessages() async throws {
        for version in messagingVersions {
            let id = "cleanre-\(version)"
            var (subscriber, _) = try await connectPersistent(id, version, resume: false)
            try await subscriber.subscribe("cr/\(version)", qos: .atLeastOnce)
            let publisher = try await connect("cr-pub-\(version)", version)
            try await publisher.publish("cr/\(version)", "unacked", qos: .atLeastOnce)
            _ = try await subscriber.expectPublish()
            try await subscriber.disconnect()

            subscriber = try await connect(id, version)   // clean
            try await subscriber.subscribe("cr/\(version)", qos: .atLeastOnce)
            try await publisher.publish("cr/\(version)", "after", qos: .atLeastOnce)
            let next = try await subscriber.expectPublish()
            XCTAssertEqual(next.text, "after", "\(version): old session's message resent after a clean start")
            XCTAssertFalse(next.dup)
            await subscriber.close(); await publisher.close()
        }
    }

    /// v5: a PUBACK or PUBREC with a reason code of 0x80 or above ends the flow: no PUBREL, the
    /// inflight slot is freed, and the message is not sent again on reconnect [MQTT-4.4.0-2]
    /// (a PUBREL answers only a PUBREC below 0x80 [MQTT-4.3.3-4]).
    func testV5ErrorAcknowledgementsEndTheFlow() async throws {
        var properties = Properties()
        properties.receiveMaximum = 1   // each next message proves the previous slot was freed
        var (subscriber, _) = try await connectPersistent("errack", .v5, resume: false, properties: properties)
        try await subscriber.subscribe("errack", qos: .exactlyOnce)
        let publisher = try await connect("errack-pub", .v5)
        try await publisher.publish("errack", "rejected-1", qos: .atLeastOnce, packetID: 1)
        try await publisher.publish("errack", "rejected-2", qos: .exactlyOnce, packetID: 2)
        try await publisher.publish("errack", "pending", qos: .atLeastOnce, packetID: 3)

        let first = try await subscriber.expectPublish()
        XCTAssertEqual(first.text, "rejected-1")
        try await subscriber.send(.puback(PubAckPacket(packetID: first.packetID, reasonCode: .unspecifiedError)))
        let second = try await subscriber.expectPublish()
        XCTAssertEqual(second.text, "rejected-2", "window not freed by PUBACK 0x80")
        try await subscriber.send(.pubrec(PubAckPacket(packetID: second.packetID, reasonCode: .implementationSpecificError)))
        let third = try await subscriber.expectPublish()   // not a PUBREL
        XCTAssertEqual(third.text, "pending", "window not freed by PUBREC 0x83, or PUBREL sent")
        try await subscriber.disconnect()

        (subscriber, _) = try await connectPersistent("errack", .v5, resume: true, properties: properties)
        let resent = try await subscriber.expectPublish()
        XCTAssertEqual(resent.text, "pending")
        XCTAssertTrue(resent.dup)
        try await subscriber.acknowledge(resent)
        try await subscriber.expectSilence(for: .milliseconds(150), "rejected messages must not be resent")
        await subscriber.close(); await publisher.close()
    }
}
