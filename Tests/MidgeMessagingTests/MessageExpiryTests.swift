import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// v5 Message Expiry Interval (spec 3.3.2.3.3): forwarded with the time spent in the broker
/// subtracted [MQTT-3.3.2-6]; messages that expire while queued are not delivered [MQTT-3.3.2-5].
final class MessageExpiryTests: MessagingTestCase {
    func testLiveForwardKeepsTheInterval() async throws {
        let subscriber = try await connect("mx-live", .v5)
        try await subscriber.subscribe("mxl", qos: .atLeastOnce)
        let publisher = try await connect("mx-live-pub", .v5)
        try await publisher.publish("mxl", "x", qos: .atLeastOnce, properties: .with(messageExpiry: 10))
        try await publisher.publish("mxl", "none", qos: .atLeastOnce, packetID: 2)
        let received = try await subscriber.receivePublishes(2)
        let interval = try XCTUnwrap(received[0].properties.messageExpiryInterval)
        XCTAssertTrue((9...10).contains(interval), "\(interval)")
        XCTAssertNil(received[1].properties.messageExpiryInterval, "no expiry invented for a message without one")
        await subscriber.close(); await publisher.close()
    }

    /// Queued for an offline session for ~2 s: a 10 s message arrives with at most 8 s left; a
    /// 1 s message has expired and is dropped; a message without expiry stays without one.
    func testQueuedMessagesAreDecrementedOrDropped() async throws {
        var (subscriber, _) = try await connectPersistent("mx-q", .v5, resume: false)
        try await subscriber.subscribe("mxq", qos: .atLeastOnce)
        try await subscriber.disconnect()
        let publisher = try await connect("mx-q-pub", .v5)
        try await publisher.publish("mxq", "short", qos: .atLeastOnce, properties: .with(messageExpiry: 1))
        try await publisher.publish("mxq", "long", qos: .atLeastOnce, packetID: 2, properties: .with(messageExpiry: 10))
        try await publisher.publish("mxq", "forever", qos: .atLeastOnce, packetID: 3)
        try await Task.sleep(nanoseconds: 2_100_000_000)

        (subscriber, _) = try await connectPersistent("mx-q", .v5, resume: true)
        try await publisher.publish("mxq", "end", qos: .atMostOnce)
        let received = try await subscriber.receivePublishes(3)
        XCTAssertEqual(received.map(\.text), ["long", "forever", "end"], "the expired message was delivered")
        let interval = try XCTUnwrap(received.first?.properties.messageExpiryInterval)
        XCTAssertLessThanOrEqual(interval, 8, "Message Expiry Interval not decremented while queued")
        XCTAssertGreaterThanOrEqual(interval, 6)
        XCTAssertNil(received[1].properties.messageExpiryInterval)
        await subscriber.close(); await publisher.close()
    }

    /// A message waiting behind a full Receive Maximum window expires there too [MQTT-3.3.2-5].
    func testMessageExpiresWhileWaitingForTheWindow() async throws {
        var properties = Properties()
        properties.receiveMaximum = 1
        let subscriber = try await connect("mx-win", .v5, properties: properties)
        try await subscriber.subscribe("mxw", qos: .atLeastOnce)
        let publisher = try await connect("mx-win-pub", .v5)
        try await publisher.publish("mxw", "first", qos: .atLeastOnce)
        try await publisher.publish("mxw", "short", qos: .atLeastOnce, packetID: 2, properties: .with(messageExpiry: 1))
        try await publisher.publish("mxw", "last", qos: .atLeastOnce, packetID: 3)
        let first = try await subscriber.expectPublish()
        XCTAssertEqual(first.text, "first")
        try await Task.sleep(nanoseconds: 1_200_000_000)
        try await subscriber.acknowledge(first)
        let next = try await subscriber.expectPublish()
        XCTAssertEqual(next.text, "last", "expired message delivered after waiting in the queue")
        await subscriber.close(); await publisher.close()
    }
}
