import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// SUBSCRIBE / UNSUBSCRIBE over real sockets: re-subscribing replaces, invalid filters fail
/// one by one, UNSUBACK reason codes, no delivery after unsubscribing.
final class SubscribeUnsubscribeTests: MessagingTestCase {
    /// A SUBSCRIBE for a filter the session already has replaces that subscription (its QoS and
    /// options); messages are not delivered twice (v5 [MQTT-3.8.4-3], 3.1.1 [3.1.1:MQTT-3.8.4-3]).
    func testResubscribeReplacesTheSubscription() async throws {
        for version in messagingVersions {
            let subscriber = try await connect("resub-\(version)", version)
            try await subscriber.subscribe("resub/\(version)", qos: .atMostOnce)
            try await subscriber.subscribe("resub/\(version)", qos: .exactlyOnce)
            XCTAssertEqual(broker.broker.subscriptions.count, 1, "\(version): one subscription after re-subscribing")
            let publisher = try await connect("resub-pub-\(version)", version)
            try await publisher.publish("resub/\(version)", "m", qos: .exactlyOnce)
            try await publisher.publish("resub/\(version)", "end", qos: .atMostOnce)
            let received = try await subscriber.receivePublishes(2)
            XCTAssertEqual(received.map(\.text), ["m", "end"], "\(version): delivered once")
            XCTAssertEqual(received.first?.qos, .exactlyOnce, "\(version): the new QoS applies")

            // And back down to QoS 0.
            try await subscriber.subscribe("resub/\(version)", qos: .atMostOnce)
            try await publisher.publish("resub/\(version)", "down", qos: .exactlyOnce)
            let downgraded = try await subscriber.expectPublish().qos
            XCTAssertEqual(downgraded, .atMostOnce, "\(version)")
            try await subscriber.disconnect(); await publisher.close()
            XCTAssertEqual(broker.broker.subscriptions.count, 0, "\(version): a clean session's subscriptions end with it")
        }
    }

    /// An invalid filter makes the whole SUBSCRIBE a Malformed Packet, as in Mosquitto (its
    /// 13-malformed-subscribe-v5): v5 DISCONNECT 0x81, 3.1.1 the close alone; nothing of it is
    /// subscribed, not even the valid filter before it. ('#' not last or not a whole level
    /// [MQTT-4.7.1-1] [3.1.1:MQTT-4.7.1-2], '+' not a whole level [MQTT-4.7.1-2] [3.1.1:MQTT-4.7.1-3],
    /// a malformed shared subscription [MQTT-4.8.2-2].)
    func testInvalidFilterIsAMalformedPacket() async throws {
        for version in messagingVersions {
            for (index, filter) in ["bad/#/more", "bad+", "bad/a#", "$share/g", "$share/g+/x"].enumerated() {
                let subscriber = try await connect("badf-\(version)-\(index)", version)
                try await subscriber.send(.subscribe(SubscribePacket(packetID: 9, subscriptions: [
                    TopicSubscription(filter: "good/\(version)/+", options: SubscriptionOptions(qos: .atLeastOnce)),
                    TopicSubscription(filter: filter, options: SubscriptionOptions()),
                ])))
                let packets = try await subscriber.waitForClose()
                let expected: [MQTTPacket] = version == .v5 ? [.disconnect(DisconnectPacket(reasonCode: .malformedPacket))] : []
                XCTAssertEqual(packets, expected, "\(filter) \(version)")
            }
            XCTAssertEqual(broker.broker.subscriptions.count, 0, "\(version): the clean sessions ended")
        }
    }

    /// UNSUBACK: v5 has one reason code per filter, in order, 0x00 Success or 0x11 No
    /// subscription existed [MQTT-3.11.3-1] [MQTT-3.11.3-2]; 3.1.1 UNSUBACK is `b0 02 id id`
    /// with no payload (the decoder rejects anything longer) and the same packet id
    /// [MQTT-3.10.4-4] [MQTT-3.10.4-5] [3.1.1:MQTT-3.10.4-4] [3.1.1:MQTT-3.10.4-5]. Filters compare character by character: `a/b` does not
    /// remove `a/+` (v5 [MQTT-3.10.4-1]).
    func testUnsubAckReasonCodes() async throws {
        for version in messagingVersions {
            let client = try await connect("unsub-\(version)", version)
            try await client.subscribe([TopicSubscription(filter: "u/+/x"), TopicSubscription(filter: "u/#")])
            let unsuback = try await client.unsubscribe(["u/+/x", "u/nothing", "u/a/x", "u/#"], packetID: 77)
            if version == .v5 {
                XCTAssertEqual(unsuback.reasonCodes, [.success, .noSubscriptionExisted, .noSubscriptionExisted, .success])
            } else {
                XCTAssertEqual(unsuback.reasonCodes, [], "3.1.1 UNSUBACK has no payload")
            }
            XCTAssertEqual(broker.broker.subscriptions.count, 0, "\(version)")
            try await client.disconnect()
        }
    }

    /// After UNSUBSCRIBE no new messages are delivered for that filter [MQTT-3.10.4-2] [3.1.1:MQTT-3.10.4-2]; other
    /// subscriptions (even overlapping ones) keep working.
    func testNoDeliveryAfterUnsubscribe() async throws {
        for version in messagingVersions {
            let subscriber = try await connect("nodel-\(version)", version)
            try await subscriber.subscribe([TopicSubscription(filter: "nd/\(version)/+", options: SubscriptionOptions(qos: .atLeastOnce)),
                                            TopicSubscription(filter: "nd/\(version)/keep", options: SubscriptionOptions(qos: .atLeastOnce)),
                                            TopicSubscription(filter: "$share/g/nd/\(version)/shared", options: SubscriptionOptions(qos: .atLeastOnce))])
            let publisher = try await connect("nodel-pub-\(version)", version)
            try await publisher.publish("nd/\(version)/x", "before", qos: .atLeastOnce)
            let beforeUnsubscribe = try await subscriber.receivePublishes(1).map(\.text)
            XCTAssertEqual(beforeUnsubscribe, ["before"])

            let unsuback = try await subscriber.unsubscribe(["nd/\(version)/+", "$share/g/nd/\(version)/shared"])
            if version == .v5 { XCTAssertEqual(unsuback.reasonCodes, [.success, .success]) }
            try await publisher.publish("nd/\(version)/x", "after", qos: .atLeastOnce)
            try await publisher.publish("nd/\(version)/shared", "shared after", qos: .atLeastOnce)
            let reason = try await publisher.publish("nd/\(version)/keep", "kept", qos: .atLeastOnce)
            if version == .v5 { XCTAssertEqual(reason, .success) }
            let received = try await subscriber.receivePublishes(1)
            XCTAssertEqual(received.map(\.text), ["kept"], "\(version): delivered after UNSUBSCRIBE")
            await subscriber.close(); await publisher.close()
        }
    }

    /// v5: with no subscriber left, a QoS 1 PUBLISH gets PUBACK 0x10 No matching subscribers;
    /// so unsubscribing really removed the subscription from routing.
    func testUnsubscribedTopicHasNoMatchingSubscribers() async throws {
        let subscriber = try await connect("nomatch-sub", .v5)
        try await subscriber.subscribe("nm/+", qos: .atLeastOnce)
        let publisher = try await connect("nomatch-pub", .v5)
        let whileSubscribed = try await publisher.publish("nm/a", "x", qos: .atLeastOnce)
        XCTAssertEqual(whileSubscribed, .success)
        _ = try await subscriber.receivePublishes(1)
        try await subscriber.unsubscribe(["nm/+"])
        let afterUnsubscribe = try await publisher.publish("nm/a", "x", qos: .atLeastOnce, packetID: 2)
        XCTAssertEqual(afterUnsubscribe, .noMatchingSubscribers)
        await subscriber.close(); await publisher.close()
    }
}
