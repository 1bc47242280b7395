import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Delivery to a client whose subscriptions overlap (spec 3.3.4; 3.1.1 spec 3.3.5): QoS and
/// Subscription Identifiers.
final class PublishOverlappingDeliveryConformanceTests: XCTestCase {
    // [MQTT-3.3.4-2] [3.1.1:MQTT-3.3.5-1]
    /// Choice: one copy per client. With overlapping subscriptions at QoS 0, 1 and 2 the single
    /// copy goes out at the highest of them (capped by the published QoS).
    func testOneCopyAtTheHighestMatchingQoS() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let p = "ov\(version == .v5 ? 5 : 3)"
            let subscriber = try await connectClean(broker, "ov-sub-\(version)", version)
            try await subscribe(subscriber, "\(p)/#", qos: .atMostOnce, packetID: 1)
            try await subscribe(subscriber, "\(p)/+/x", qos: .exactlyOnce, packetID: 2)
            try await subscribe(subscriber, "\(p)/a/+", qos: .atLeastOnce, packetID: 3)
            try await subscribe(subscriber, "\(p)/end", qos: .atLeastOnce, packetID: 4)
            let publisher = try await connectClean(broker, "ov-pub-\(version)", version)
            try await publish(publisher, "\(p)/a/x", "q2", qos: .exactlyOnce, packetID: 1)   // #, +/x, a/+ → 2
            try await publish(publisher, "\(p)/a/y", "q1", qos: .exactlyOnce, packetID: 2)   // #, a/+ → 1
            try await publish(publisher, "\(p)/b/y", "q0", qos: .exactlyOnce, packetID: 3)   // # → 0
            try await publish(publisher, "\(p)/b/x", "cap", qos: .atLeastOnce, packetID: 4)  // #, +/x at QoS 1 published → 1
            try await publish(publisher, "\(p)/end", "end", qos: .atLeastOnce, packetID: 5)
            let got = try await subscriber.publishesBefore(marker: "\(p)/end")
            XCTAssertEqual(got.map(\.text), ["q2", "q1", "q0", "cap"], "\(version): one copy each")
            XCTAssertEqual(got.map(\.qos), [.exactlyOnce, .atLeastOnce, .atMostOnce, .atLeastOnce], "\(version): highest matching QoS")
        }
    }

    // [MQTT-3.3.4-3] [MQTT-3.3.4-4]
    /// The copy carries the Subscription Identifier of every matching subscription that has one,
    /// and none of the subscriptions that do not match or have none. (Midge never sends several
    /// copies, so the one-identifier-per-copy case of MQTT-3.3.4-5 cannot arise.)
    func testCopyCarriesEveryMatchingSubscriptionIdentifier() async throws {
        let broker = try startBroker()
        let subscriber = try await connectClean(broker, "sid-sub", .v5)
        try await subscriber.subscribe("sid/#", qos: .atLeastOnce, subscriptionID: 11)
        try await subscriber.subscribe("sid/+/x", qos: .atMostOnce, subscriptionID: 268_435_455)
        try await subscriber.subscribe("sid/a/+", qos: .atMostOnce)
        try await subscriber.subscribe("sid/b/#", qos: .atMostOnce, subscriptionID: 7)
        let publisher = try await connectClean(broker, "sid-pub", .v5)
        try await publisher.publish("sid/a/x", "ax", qos: .atLeastOnce, packetID: 1)
        try await publisher.publish("sid/a/y", "ay", qos: .atLeastOnce, packetID: 2)
        try await publisher.publish("sid/b/x", "bx", qos: .atLeastOnce, packetID: 3)
        let got = try await subscriber.receivePublishes(3)
        XCTAssertEqual(got.map(\.text), ["ax", "ay", "bx"])
        XCTAssertEqual(got.map { Set($0.properties.subscriptionIdentifiers) }, [[11, 268_435_455], [11], [11, 268_435_455, 7]])
        XCTAssertTrue(got.allSatisfy { $0.qos == .atLeastOnce })
        await expectNothing(subscriber, for: 0.3, "a single copy per message")
    }
}
