import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Retained messages (spec 3.3.1.3): stored, replaced, cleared by an empty payload, sent with
/// RETAIN 1 to new subscriptions, RETAIN 0 on live forwards (unless v5 Retain As Published),
/// v5 Retain Handling, never to shared subscriptions, and gone once their expiry has passed.
final class RetainedMessageTests: MessagingTestCase {
    /// Subscribes a fresh client to `filter` and returns what it gets before `marker`
    /// (published by `publisher` right after the SUBACK).
    private func retainedOnSubscribe(_ clientID: String, _ version: ProtocolVersion, filter: String, qos: QoS = .exactlyOnce,
                                     publisher: PacketConnection, marker: String) async throws -> [PublishPacket] {
        let subscriber = try await connect(clientID, version)
        try await subscriber.subscribe([TopicSubscription(filter: filter, options: SubscriptionOptions(qos: qos)),
                                        TopicSubscription(filter: marker)])
        try await publisher.publish(marker, "marker", qos: .atMostOnce)
        let received = try await subscriber.publishesBefore(marker: marker)
        await subscriber.close()
        return received
    }

    /// Stored and sent to new subscriptions with RETAIN 1 (v5 [MQTT-3.3.1-5] [MQTT-3.3.1-9]; 3.1.1
    /// [3.1.1:MQTT-3.3.1-5] [3.1.1:MQTT-3.3.1-6] [3.1.1:MQTT-3.3.1-8]), at the minimum of its QoS and the subscription's.
    func testRetainedMessageIsDeliveredOnSubscribeWithRetainFlag() async throws {
        for version in messagingVersions {
            let publisher = try await connect("ret-pub-\(version)", version)
            try await publisher.publish("ret/\(version)/a", "A", qos: .atLeastOnce, retain: true)
            try await publisher.publish("ret/\(version)/b", "B", qos: .exactlyOnce, retain: true)

            let all = try await retainedOnSubscribe("ret-sub-\(version)", version, filter: "ret/\(version)/+", publisher: publisher,
                                                    marker: "mark/\(version)")
            XCTAssertEqual(Set(all.map(\.text)), ["A", "B"], "\(version)")
            XCTAssertTrue(all.allSatisfy(\.retain), "\(version): RETAIN 1 on retained messages sent for a new subscription")
            XCTAssertEqual(all.first { $0.text == "A" }?.qos, .atLeastOnce)
            XCTAssertEqual(all.first { $0.text == "B" }?.qos, .exactlyOnce)

            let atOne = try await retainedOnSubscribe("ret-sub1-\(version)", version, filter: "ret/\(version)/b", qos: .atLeastOnce,
                                                      publisher: publisher, marker: "mark/\(version)")
            XCTAssertEqual(atOne.map(\.qos), [.atLeastOnce], "\(version): downgraded to the subscription's QoS")
            await publisher.close()
        }
    }

    /// A new retained message replaces the old one (v5 [MQTT-3.3.1-5]; 3.1.1 [3.1.1:MQTT-3.3.1-5]); a
    /// non-retained message neither stores nor replaces (v5 [MQTT-3.3.1-8]; 3.1.1 [3.1.1:MQTT-3.3.1-12]).
    func testRetainedMessageIsReplacedButNotByNonRetainedMessages() async throws {
        for version in messagingVersions {
            let publisher = try await connect("rep-pub-\(version)", version)
            try await publisher.publish("rep/\(version)", "old", qos: .atLeastOnce, retain: true)
            try await publisher.publish("rep/\(version)", "new", qos: .atLeastOnce, retain: true)
            try await publisher.publish("rep/\(version)", "not retained", qos: .atLeastOnce, retain: false)
            try await publisher.publish("rep-other/\(version)", "not retained either", qos: .atLeastOnce, retain: false)
            let received = try await retainedOnSubscribe("rep-sub-\(version)", version, filter: "#", publisher: publisher,
                                                         marker: "mark/\(version)")
            let mine = received.filter { $0.topic.hasSuffix("/\(version)") }
            XCTAssertEqual(mine.map(\.text), ["new"], "\(version)")
            await publisher.close()
        }
    }

    /// An empty retained payload clears the retained message (v5 [MQTT-3.3.1-6], [MQTT-3.3.1-7];
    /// 3.1.1 [3.1.1:MQTT-3.3.1-10], [3.1.1:MQTT-3.3.1-11]) and is itself forwarded to current subscribers as
    /// a normal message.
    func testEmptyRetainedPayloadClearsTheRetainedMessage() async throws {
        for version in messagingVersions {
            let publisher = try await connect("clr-pub-\(version)", version)
            try await publisher.publish("clr/\(version)", "value", qos: .atLeastOnce, retain: true)
            let live = try await connect("clr-live-\(version)", version)
            try await live.subscribe("clr/\(version)", qos: .atLeastOnce)
            let initial = try await live.expectPublish()
            XCTAssertEqual(initial.text, "value")
            XCTAssertTrue(initial.retain)
            try await live.acknowledge(initial)

            try await publisher.publish("clr/\(version)", "", qos: .atLeastOnce, retain: true)
            let cleared = try await live.expectPublish()
            XCTAssertEqual(cleared.payload.readableBytes, 0, "\(version): the empty message is forwarded")
            XCTAssertFalse(cleared.retain, "\(version): live forward has RETAIN 0")

            let after = try await retainedOnSubscribe("clr-sub-\(version)", version, filter: "clr/\(version)", publisher: publisher,
                                                      marker: "mark/\(version)")
            XCTAssertEqual(after.count, 0, "\(version): retained message not cleared: \(after.map(\.text))")
            XCTAssertEqual(broker.broker.retained.matching("clr/\(version)").count, 0)
            await live.close(); await publisher.close()
        }
    }

    /// Live forwards carry RETAIN 0 whatever the publisher set (v5 [MQTT-3.3.1-12]; 3.1.1
    /// [3.1.1:MQTT-3.3.1-9]); with v5 Retain As Published the flag is kept [MQTT-3.3.1-13].
    func testLiveForwardRetainFlagAndRetainAsPublished() async throws {
        for version in messagingVersions {
            let plain = try await connect("rap0-\(version)", version)
            try await plain.subscribe("rap/\(version)", qos: .atLeastOnce)
            var asPublished: PacketConnection?
            if version == .v5 {
                let client = try await connect("rap1-\(version)", version)
                try await client.subscribe("rap/\(version)", options: SubscriptionOptions(qos: .atLeastOnce, retainAsPublished: true))
                asPublished = client
            }
            let publisher = try await connect("rap-pub-\(version)", version)
            try await publisher.publish("rap/\(version)", "retained", qos: .atLeastOnce, retain: true)
            try await publisher.publish("rap/\(version)", "plain", qos: .atLeastOnce, retain: false)

            let viaPlain = try await plain.receivePublishes(2)
            XCTAssertEqual(viaPlain.map(\.text), ["retained", "plain"])
            XCTAssertEqual(viaPlain.map(\.retain), [false, false], "\(version): RETAIN must be 0 on live forwards")
            if let asPublished {
                let viaRAP = try await asPublished.receivePublishes(2)
                XCTAssertEqual(viaRAP.map(\.text), ["retained", "plain"])
                XCTAssertEqual(viaRAP.map(\.retain), [true, false], "Retain As Published keeps the publisher's flag")
                await asPublished.close()
            }
            await plain.close(); await publisher.close()
        }
    }

    /// v5 Retain Handling: 0 sends on every SUBSCRIBE (also on a re-subscribe [MQTT-3.8.4-4])
    /// [MQTT-3.3.1-9]; 1 only when the subscription is new [MQTT-3.3.1-10]; 2 never [MQTT-3.3.1-11].
    func testV5RetainHandling() async throws {
        let publisher = try await connect("rh-pub", .v5)
        try await publisher.publish("rh/t", "kept", qos: .atLeastOnce, retain: true)
        let client = try await connect("rh-sub", .v5)

        func retainedAfterSubscribe(_ filter: String, _ handling: RetainHandling, packetID: UInt16) async throws -> [String] {
            let suback = try await client.subscribe([
                TopicSubscription(filter: filter, options: SubscriptionOptions(qos: .atLeastOnce, retainHandling: handling)),
            ], packetID: packetID)
            XCTAssertEqual(suback.reasonCodes, [.grantedQoS1])
            try await publisher.publish("rh/marker", "m", qos: .atMostOnce)
            return try await client.publishesBefore(marker: "rh/marker").map(\.text)
        }
        try await client.subscribe("rh/marker")

        let rh1New = try await retainedAfterSubscribe("rh/+", .sendOnNewSubscribe, packetID: 2)
        XCTAssertEqual(rh1New, ["kept"], "RH 1, new subscription")
        let rh1Existing = try await retainedAfterSubscribe("rh/+", .sendOnNewSubscribe, packetID: 3)
        XCTAssertEqual(rh1Existing, [], "RH 1, existing subscription")
        let rh0Existing = try await retainedAfterSubscribe("rh/+", .sendOnSubscribe, packetID: 4)
        XCTAssertEqual(rh0Existing, ["kept"], "RH 0, existing subscription")
        let rh0Again = try await retainedAfterSubscribe("rh/+", .sendOnSubscribe, packetID: 5)
        XCTAssertEqual(rh0Again, ["kept"], "RH 0 again")
        let rh2New = try await retainedAfterSubscribe("rh/#", .doNotSend, packetID: 6)
        XCTAssertEqual(rh2New, [], "RH 2, new subscription")
        let rh2Existing = try await retainedAfterSubscribe("rh/#", .doNotSend, packetID: 7)
        XCTAssertEqual(rh2Existing, [], "RH 2, existing subscription")
        // After an unsubscribe the subscription is new again for RH 1.
        try await client.unsubscribe(["rh/+"], packetID: 8)
        let rh1AfterUnsubscribe = try await retainedAfterSubscribe("rh/+", .sendOnNewSubscribe, packetID: 9)
        XCTAssertEqual(rh1AfterUnsubscribe, ["kept"], "RH 1 after unsubscribe")
        await client.close(); await publisher.close()
    }

    /// Retained messages are not sent to shared subscriptions (spec 4.8.2: "retained messages are
    /// not sent" when a Shared Subscription is made), for v5 and 3.1.1 clients; live messages are.
    func testRetainedMessagesAreNotSentToSharedSubscriptions() async throws {
        for version in messagingVersions {
            let publisher = try await connect("rs-pub-\(version)", version)
            try await publisher.publish("rs/\(version)", "retained", qos: .atLeastOnce, retain: true)
            let subscriber = try await connect("rs-sub-\(version)", version)
            try await subscriber.subscribe([TopicSubscription(filter: "$share/g/rs/\(version)", options: SubscriptionOptions(qos: .atLeastOnce)),
                                            TopicSubscription(filter: "rsmark/\(version)")])
            try await publisher.publish("rsmark/\(version)", "m", qos: .atMostOnce)
            let before = try await subscriber.publishesBefore(marker: "rsmark/\(version)")
            XCTAssertEqual(before.map(\.text), [], "\(version)")
            try await publisher.publish("rs/\(version)", "live", qos: .atLeastOnce)
            let live = try await subscriber.expectPublish()
            XCTAssertEqual(live.text, "live")
            await subscriber.close(); await publisher.close()
        }
    }
}
