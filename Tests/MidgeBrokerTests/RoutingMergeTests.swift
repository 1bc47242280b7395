@testable import MidgeBroker
import MQTTCodec
import NIOCore
import XCTest

/// Overlapping subscriptions of one session become one delivery with the highest QoS and all
/// subscription identifiers [MQTT-3.3.4-2] [MQTT-3.3.4-3] [MQTT-3.3.4-4].
final class RoutingMergeTests: XCTestCase {
    func testOneDeliveryPerSessionWithMaxQoSAndAllIdentifiers() {
        let a = Session(clientID: "a", loopIndex: 0)
        let b = Session(clientID: "b", loopIndex: 0)
        let message = Message(topic: "t", payload: ByteBuffer(string: "x"), qos: .exactlyOnce, retain: false)
        let merged = Broker.mergePerSession([
            Delivery(session: a, message: message, qos: .atMostOnce, retain: false, subscriptionIDs: [1]),
            Delivery(session: b, message: message, qos: .atLeastOnce, retain: false, subscriptionIDs: []),
            Delivery(session: a, message: message, qos: .exactlyOnce, retain: true, subscriptionIDs: [7]),
        ])
        XCTAssertEqual(merged.count, 2)
        XCTAssertTrue(merged[0].session === a)
        XCTAssertEqual(merged[0].qos, .exactlyOnce)
        XCTAssertTrue(merged[0].retain)
        XCTAssertEqual(merged[0].subscriptionIDs, [1, 7])
        XCTAssertEqual(merged[1].qos, .atLeastOnce)
    }

    func testPacketIdentifiersSkipThoseInFlight() {
        let s = Session(clientID: "p", loopIndex: 0)
        let message = Message(topic: "t", payload: ByteBuffer(), qos: .atLeastOnce, retain: false)
        let first = s.allocatePacketID()!
        s.inflight[first &+ 1] = InflightMessage(message: message, qos: .atLeastOnce, retain: false, subscriptionIDs: [], stage: .awaitingPubAck)
        let second = s.allocatePacketID()!
        XCTAssertNotEqual(second, 0)
        XCTAssertNotEqual(second, first &+ 1)  // [MQTT-2.2.1-4]: not reused while in flight
    }
}
