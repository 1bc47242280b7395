import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// v5 Message Expiry Interval (spec 3.3.2.3.3) and how it meets the QoS 2 flow (spec 4.3.3).
final class PublishMessageExpiryConformanceTests: XCTestCase {
    // [MQTT-3.3.2-6]
    /// A forwarded message carries the interval it was published with minus the time it waited
    /// in the broker: the full value live, a smaller one from the offline queue.
    func testForwardedIntervalIsReducedByTheWaitingTime() async throws {
        let broker = try startBroker()
        let live = try await connectClean(broker, "exp-live", .v5)
        try await subscribe(live, "exp/t", qos: .atLeastOnce)
        let (queued, _) = try await connectPersistent(broker, "exp-queued", .v5, resume: false)
        try await subscribe(queued, "exp/t", qos: .atLeastOnce)
        await queued.close()
        let publisher = try await connectClean(broker, "exp-pub", .v5)
        let published = Date()
        try await publisher.publish("exp/t", "m", qos: .atLeastOnce, properties: .with(messageExpiry: 10))
        let now = await expectPublish(live)
        XCTAssertEqual(now?.properties.messageExpiryInterval, 10, "live: no time waited")
        try await Task.sleep(nanoseconds: 2_100_000_000)
        let (resumed, _) = try await connectPersistent(broker, "exp-queued", .v5, resume: true)
        let later = await expectPublish(resumed)
        let waited = Date().timeIntervalSince(published)
        let interval = later?.properties.messageExpiryInterval ?? 0
        XCTAssertLessThanOrEqual(interval, 8, "queued more than 2 s: at most 10 - 2")
        XCTAssertGreaterThanOrEqual(Double(interval), 10 - waited.rounded(.up), "no more than the time actually waited is taken off")
    }

    // [MQTT-3.3.2-5]
    /// A copy whose interval passes before its delivery starts is deleted: an offline queue and a
    /// retained message do not deliver it; a message without an interval still arrives.
    func testExpiredCopiesAreNotDelivered() async throws {
        let broker = try startBroker()
        let (queued, _) = try await connectPersistent(broker, "exp-gone", .v5, resume: false)
        try await subscribe(queued, "gone/#", qos: .atLeastOnce)
        await queued.close()
        let publisher = try await connectClean(broker, "exp-gone-pub", .v5)
        try await publisher.publish("gone/a", "short", qos: .atLeastOnce, retain: true, packetID: 1, properties: .with(messageExpiry: 1))
        try await publisher.publish("gone/b", "forever", qos: .atLeastOnce, packetID: 2)
        try await Task.sleep(nanoseconds: 1_200_000_000)
        let (resumed, _) = try await connectPersistent(broker, "exp-gone", .v5, resume: true)
        let got = try await resumed.receivePublishes(1)
        XCTAssertEqual(got.map(\.text), ["forever"], "the expired copy is deleted")
        await expectNothing(resumed, for: 0.3, "the expired copy is deleted")
        let late = try await connectClean(broker, "exp-gone-late", .v5)
        try await subscribe(late, "gone/#", qos: .atLeastOnce)
        await expectNothing(late, for: 0.3, "an expired retained message is not sent")
    }

    // [MQTT-4.3.3-7] [MQTT-3.3.2-5]
    /// Once a QoS 1 or 2 PUBLISH has gone out, expiry no longer applies to it: unacknowledged when
    /// the connection drops, it is resent on reconnect after its interval has passed (QoS 2: and
    /// the flow completes).
    func testSentMessageIsResentAfterItsIntervalPassed() async throws {
        let broker = try startBroker()
        let (subscriber, _) = try await connectPersistent(broker, "exp-sent", .v5, resume: false)
        try await subscribe(subscriber, "sent/#", qos: .exactlyOnce)
        let publisher = try await connectClean(broker, "exp-sent-pub", .v5)
        try await publisher.publish("sent/2", "two", qos: .exactlyOnce, packetID: 1, properties: .with(messageExpiry: 1))
        try await publisher.publish("sent/1", "one", qos: .atLeastOnce, packetID: 2, properties: .with(messageExpiry: 1))
        let first = try await subscriber.receivePublishes(2, acknowledge: false)
        XCTAssertEqual(first.map(\.text), ["two", "one"])
        await subscriber.close()
        try await Task.sleep(nanoseconds: 1_300_000_000)
        let (resumed, present) = try await connectPersistent(broker, "exp-sent", .v5, resume: true)
        XCTAssertTrue(present)
        let again = try await resumed.receivePublishes(2)
        XCTAssertEqual(again.map(\.text), ["two", "one"], "both resent although their interval has passed")
        XCTAssertTrue(again.allSatisfy(\.dup))
        XCTAssertEqual(again.map(\.packetID), first.map(\.packetID))
        XCTAssertEqual(again.map(\.properties.messageExpiryInterval), [0, 0], "what is left of the interval: nothing")
    }

    // [MQTT-4.3.3-13]
    /// The broker as QoS 2 receiver completes the flow (PUBREC, then PUBCOMP) for a message whose
    /// interval passes before the PUBREL arrives; the message is delivered once.
    func testQoS2ReceiverCompletesTheFlowAfterExpiry() async throws {
        let broker = try startBroker()
        let subscriber = try await connectClean(broker, "exp-rx-sub", .v5)
        try await subscribe(subscriber, "rx/t", qos: .atLeastOnce)
        let publisher = try await connectClean(broker, "exp-rx-pub", .v5)
        try await publisher.send(.publish(PublishPacket(topic: "rx/t", payload: ByteBuffer(text: "q2"), qos: .exactlyOnce, packetID: 9,
                                                        properties: .with(messageExpiry: 1))))
        let rec = await bExpectAck(publisher, "PUBREC")
        XCTAssertEqual(rec?.packetID, 9)
        XCTAssertEqual(rec?.reasonCode, .success)
        try await Task.sleep(nanoseconds: 1_200_000_000)
        try await publisher.send(.pubrel(PubAckPacket(packetID: 9)))
        let comp = await bExpectAck(publisher, "PUBCOMP")
        XCTAssertEqual(comp?.packetID, 9)
        XCTAssertEqual(comp?.reasonCode, .success, "the identifier was still known: the flow went on after expiry")
        let got = try await subscriber.receivePublishes(1)
        XCTAssertEqual(got.map(\.text), ["q2"])
        await expectNothing(subscriber, for: 0.3, "delivered once")
    }
}
