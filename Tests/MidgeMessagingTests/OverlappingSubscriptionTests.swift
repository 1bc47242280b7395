import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// A message matching several subscriptions of one client: Midge sends one copy (the choice
/// documented in docs/conformance.md) at the highest QoS of the matching subscriptions
/// [MQTT-3.3.4-2] [3.1.1:MQTT-3.3.5-1] carrying every matching Subscription Identifier
/// (v5 [MQTT-3.3.4-3], [MQTT-3.3.4-4]).
final class OverlappingSubscriptionTests: MessagingTestCase {
    func testOneCopyWithTheHighestQoS() async throws {
        for version in messagingVersions {
            let subscriber = try await connect("ovl-\(version)", version)
            try await subscriber.subscribe([
                TopicSubscription(filter: "ovl/\(version)/+", options: SubscriptionOptions(qos: .atLeastOnce)),
                TopicSubscription(filter: "ovl/\(version)/#", options: SubscriptionOptions(qos: .exactlyOnce)),
                TopicSubscription(filter: "ovl/\(version)/x", options: SubscriptionOptions(qos: .atMostOnce)),
                TopicSubscription(filter: "ovl/\(version)/end"),
            ])
            let publisher = try await connect("ovl-pub-\(version)", version)
            for qos in QoS.all { try await publisher.publish("ovl/\(version)/x", "q\(qos.rawValue)", qos: qos, packetID: 3) }
            try await publisher.publish("ovl/\(version)/end", "end")
            let received = try await subscriber.publishesBefore(marker: "ovl/\(version)/end")
            XCTAssertEqual(received.map(\.text), ["q0", "q1", "q2"], "\(version): one copy per message")
            // Each at min(published QoS, highest matching subscription QoS = 2).
            XCTAssertEqual(received.map(\.qos), [.atMostOnce, .atLeastOnce, .exactlyOnce], "\(version)")
            await subscriber.close(); await publisher.close()
        }
    }

    func testV5CopyCarriesEveryMatchingSubscriptionIdentifier() async throws {
        let subscriber = try await connect("ovl-ids", .v5)
        try await subscriber.subscribe("ids/+", qos: .atLeastOnce, subscriptionID: 1)
        try await subscriber.subscribe("ids/#", qos: .atMostOnce, subscriptionID: 268_435_455)   // the largest identifier
        try await subscriber.subscribe("ids/a", qos: .atMostOnce)                                  // none
        try await subscriber.subscribe("ids/b", qos: .atMostOnce, subscriptionID: 3)
        let publisher = try await connect("ovl-ids-pub", .v5)
        try await publisher.publish("ids/a", "a", qos: .atLeastOnce)
        let delivered = try await subscriber.expectPublish()
        XCTAssertEqual(delivered.qos, .atLeastOnce)
        XCTAssertEqual(Set(delivered.properties.subscriptionIdentifiers), [1, 268_435_455])
        XCTAssertEqual(delivered.properties.subscriptionIdentifiers.count, 2)
        try await subscriber.acknowledge(delivered)
        try await subscriber.expectSilence(for: .milliseconds(100), "second copy")
        await subscriber.close(); await publisher.close()
    }
}
