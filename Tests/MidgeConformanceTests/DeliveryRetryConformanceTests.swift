import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Message delivery retry (spec 4.4) and the session state it relies on (spec 4.1).
final class DeliveryRetryConformanceTests: XCTestCase {
    // [MQTT-4.4.0-1] [3.1.1:MQTT-4.4.0-1] [MQTT-3.3.1-1] [3.1.1:MQTT-3.3.1-1] [MQTT-4.3.3-6] [3.1.1:MQTT-4.3.3-1]
    /// Unacknowledged PUBLISH packets are resent, with DUP 1 and their original ids, and a PUBREL
    /// (not the PUBLISH) for a QoS 2 message already PUBREC'd, in the original order, when the
    /// session resumes on a new connection, and at no other time.
    func testUnacknowledgedFlowsAreResentOnReconnectOnly() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let id = "retry-\(version)"
            let (subscriber, _) = try await connectPersistent(broker, id, version, resume: false)
            try await subscribe(subscriber, "retry/#", qos: .exactlyOnce)
            let publisher = try await connectClean(broker, "retry-pub-\(version)", version)
            try await publisher.publish("retry/a", "q1", qos: .atLeastOnce, packetID: 1)
            try await publisher.publish("retry/b", "q2", qos: .exactlyOnce, packetID: 2)
            try await publisher.publish("retry/c", "q2-recd", qos: .exactlyOnce, packetID: 3)
            try await publisher.publish("retry/d", "q1-acked", qos: .atLeastOnce, packetID: 4)
            let first = try await subscriber.receivePublishes(4, acknowledge: false)
            XCTAssertEqual(first.map(\.text), ["q1", "q2", "q2-recd", "q1-acked"])
            try await subscriber.send(.pubrec(PubAckPacket(packetID: first[2].packetID)))
            let value12 = await bExpectAck(subscriber, "PUBREL")?.packetID
            XCTAssertEqual(value12, first[2].packetID)
            try await subscriber.send(.puback(PubAckPacket(packetID: first[3].packetID)))
            await expectNothing(subscriber, for: 0.4, "\(version): nothing is retried on the same connection")
            await subscriber.close()

            let (resumed, present) = try await connectPersistent(broker, id, version, resume: true)
            XCTAssertTrue(present, "\(version)")
            var replay: [MQTTPacket] = []
            for _ in 0..<3 { if let packet = await expectPacket(resumed, "resend") { replay.append(packet) } }
            guard replay.count == 3, case .publish(let a) = replay[0], case .publish(let b) = replay[1], case .pubrel(let rel) = replay[2] else {
                return XCTFail("\(version): expected PUBLISH, PUBLISH, PUBREL in the original order, got \(replay)")
            }
            XCTAssertEqual([a.text, b.text], ["q1", "q2"], "\(version)")
            XCTAssertEqual([a.packetID, b.packetID, rel.packetID], [first[0].packetID, first[1].packetID, first[2].packetID],
                           "\(version): original packet ids")
            XCTAssertTrue(a.dup && b.dup, "\(version): DUP 1 on re-delivery")
            XCTAssertEqual([a.qos, b.qos], [.atLeastOnce, .exactlyOnce])
            await expectNothing(resumed, for: 0.3, "\(version): the acknowledged message is not resent")
            try await resumed.acknowledge(a)
            try await resumed.acknowledge(b)
            try await resumed.send(.pubcomp(PubAckPacket(packetID: rel.packetID)))
            await resumed.close()
            let (again, _) = try await connectPersistent(broker, id, version, resume: true)
            await expectNothing(again, for: 0.3, "\(version): completed flows are not resent")
            await again.close()
        }
    }

    // [MQTT-4.4.0-2] [MQTT-4.3.3-4]
    /// A v5 PUBACK or PUBREC with a failure reason acknowledges the PUBLISH: no PUBREL follows the
    /// failed PUBREC, and neither message is sent again on reconnect.
    func testFailureAcknowledgementsEndTheFlow() async throws {
        let broker = try startBroker()
        let (subscriber, _) = try await connectPersistent(broker, "retry-fail", .v5, resume: false)
        try await subscribe(subscriber, "fail/#", qos: .exactlyOnce)
        let publisher = try await connectClean(broker, "retry-fail-pub", .v5)
        try await publisher.publish("fail/1", "q1", qos: .atLeastOnce, packetID: 1)
        try await publisher.publish("fail/2", "q2", qos: .exactlyOnce, packetID: 2)
        let got = try await subscriber.receivePublishes(2, acknowledge: false)
        try await subscriber.send(.puback(PubAckPacket(packetID: got[0].packetID, reasonCode: .unspecifiedError)))
        try await subscriber.send(.pubrec(PubAckPacket(packetID: got[1].packetID, reasonCode: .implementationSpecificError)))
        await expectNothing(subscriber, for: 0.3, "no PUBREL after a failed PUBREC")
        await subscriber.close()
        let (resumed, present) = try await connectPersistent(broker, "retry-fail", .v5, resume: true)
        XCTAssertTrue(present)
        await expectNothing(resumed, for: 0.3, "nothing to retransmit")
    }

    // [MQTT-4.1.0-1] [3.1.1:MQTT-4.1.0-1] [3.1.1:MQTT-4.1.0-2]
    /// Session state lasts as long as the connection even when it ends with it (v5 Session Expiry
    /// 0, 3.1.1 Clean Session 1): subscriptions and an unacknowledged message are kept while
    /// connected; a persistent session keeps its subscriptions and queued messages across a
    /// disconnect.
    func testSessionStateLastsAsLongAsTheSession() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let client = try await connectClean(broker, "state-\(version)", version)
            try await subscribe(client, "state/t", qos: .atLeastOnce)
            let publisher = try await connectClean(broker, "state-pub-\(version)", version)
            try await publisher.publish("state/t", "one", qos: .atLeastOnce, packetID: 1)
            let one = try await client.expectPublish()
            try await Task.sleep(nanoseconds: 1_100_000_000)
            try await client.send(.puback(PubAckPacket(packetID: one.packetID)))
            try await publisher.publish("state/t", "two", qos: .atLeastOnce, packetID: 2)
            let two = try await client.receivePublishes(1)
            XCTAssertEqual(two.map(\.text), ["two"], "\(version): subscription kept while connected")
            await client.close()

            let (persistent, _) = try await connectPersistent(broker, "state-p-\(version)", version, resume: false)
            try await subscribe(persistent, "state/p", qos: .atLeastOnce)
            await persistent.close()
            try await publisher.publish("state/p", "queued", qos: .atLeastOnce, packetID: 3)
            let (resumed, present) = try await connectPersistent(broker, "state-p-\(version)", version, resume: true)
            XCTAssertTrue(present, "\(version)")
            let queued = try await resumed.receivePublishes(1)
            XCTAssertEqual(queued.map(\.text), ["queued"], "\(version): kept for the whole session")
            try await publisher.publish("state/p", "live", qos: .atLeastOnce, packetID: 4)
            let value13 = try await resumed.receivePublishes(1).map(\.text)
            XCTAssertEqual(value13, ["live"], "\(version): subscription kept")
            await resumed.close()
        }
    }

    // [MQTT-4.1.0-2]
    /// Once the connection is closed and the Session Expiry Interval has passed, the session is
    /// gone: Session Present 0, no subscription, nothing queued.
    func testSessionIsDiscardedAfterItsExpiryInterval() async throws {
        let broker = try startBroker()
        let (client, _) = try await connectPersistent(broker, "expire-me", .v5, resume: false, properties: sessionExpiry(1))
        try await subscribe(client, "expire/t", qos: .atLeastOnce)
        await client.close()
        let publisher = try await connectClean(broker, "expire-pub", .v5)
        try await publisher.publish("expire/t", "queued", qos: .atLeastOnce, packetID: 1)
        try await Task.sleep(nanoseconds: 1_600_000_000)
        let (resumed, present) = try await connectPersistent(broker, "expire-me", .v5, resume: true, properties: sessionExpiry(1))
        XCTAssertFalse(present, "the session expired")
        await expectNothing(resumed, for: 0.3, "nothing queued survives")
        try await publisher.publish("expire/t", "after", qos: .atLeastOnce, packetID: 2)
        await expectNothing(resumed, for: 0.3, "no subscription survives")
    }
}
