import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// The RETAIN flag of PUBLISH (spec 3.3.1.3): storing, replacing and clearing retained messages,
/// and the RETAIN flag of deliveries (v5 Retain Handling and Retain As Published).
final class PublishRetainConformanceTests: XCTestCase {
    /// Subscribes a fresh client to `filter` and returns it with the retained messages it got
    /// (read until `count` arrived, then nothing more for 0.3 s).
    private func freshSubscriber(_ broker: TestBroker, _ id: String, _ version: ProtocolVersion, _ filter: String, qos: QoS = .exactlyOnce,
                                 expecting count: Int, file: StaticString = #filePath, line: UInt = #line) async throws -> [PublishPacket] {
        let client = try await connectClean(broker, id, version, file: file, line: line)
        try await subscribe(client, filter, qos: qos, file: file, line: line)
        let received = try await client.receivePublishes(count, timeout: .seconds(3))
        await expectNothing(client, for: 0.3, "no further retained message", file: file, line: line)
        await client.close()
        return received
    }

    // [MQTT-3.3.1-5] [MQTT-3.3.1-8] [MQTT-3.3.1-9]
    // [3.1.1:MQTT-3.3.1-5] [3.1.1:MQTT-3.3.1-6] [3.1.1:MQTT-3.3.1-7] [3.1.1:MQTT-3.3.1-8] [3.1.1:MQTT-3.3.1-12]
    /// A retained PUBLISH is stored with its QoS and sent, with RETAIN 1, to each new subscription;
    /// a later retained PUBLISH (QoS 0 too) replaces it; a non-retained PUBLISH neither stores nor
    /// replaces anything.
    func testRetainedMessageIsStoredReplacedAndSentToNewSubscriptions() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let topic = "ret/\(version)/a"
            let publisher = try await connectClean(broker, "ret-pub-\(version)", version)
            try await publish(publisher, topic, "one", qos: .atLeastOnce, retain: true, packetID: 1)
            var got = try await freshSubscriber(broker, "ret-s1-\(version)", version, "ret/\(version)/#", expecting: 1)
            XCTAssertEqual(got.map(\.text), ["one"], "\(version): stored retained message")
            XCTAssertEqual(got.first?.retain, true, "\(version): RETAIN 1 on a delivery caused by a new subscription")
            XCTAssertEqual(got.first?.qos, .atLeastOnce, "\(version): the stored QoS")

            // QoS 0 retained: the previous retained message is discarded; Midge keeps the new one.
            try await publish(publisher, topic, "two", qos: .atMostOnce, retain: true)
            // Not retained: stores nothing and replaces nothing.
            try await publish(publisher, topic, "three", qos: .exactlyOnce, retain: false, packetID: 2)
            try await publish(publisher, "ret/\(version)/other", "four", qos: .atLeastOnce, retain: false, packetID: 3)
            got = try await freshSubscriber(broker, "ret-s2-\(version)", version, "ret/\(version)/#", expecting: 1)
            XCTAssertEqual(got.map(\.text), ["two"], "\(version): QoS 0 retained replaced; non-retained stored nothing")
            XCTAssertEqual(got.first?.qos, .atMostOnce, "\(version): the replacement's QoS")
            XCTAssertEqual(got.first?.retain, true)

            try await publish(publisher, topic, "five", qos: .exactlyOnce, retain: true, packetID: 4)
            got = try await freshSubscriber(broker, "ret-s3-\(version)", version, topic, qos: .exactlyOnce, expecting: 1)
            XCTAssertEqual(got.map(\.text), ["five"])
            XCTAssertEqual(got.first?.qos, .exactlyOnce, "\(version): stored with QoS 2")
            await publisher.close()
        }
    }

    // [MQTT-3.3.1-6] [MQTT-3.3.1-7] [3.1.1:MQTT-3.3.1-10] [3.1.1:MQTT-3.3.1-11] [3.1.1:MQTT-3.3.1-9] [MQTT-3.3.1-12]
    /// A retained PUBLISH with an empty payload goes to current subscribers like any other message
    /// (RETAIN 0 on the live delivery), removes the retained message, and is not stored itself.
    func testEmptyRetainedPayloadIsForwardedAndClearsTheTopic() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let topic = "clr/\(version)"
            let live = try await connectClean(broker, "clr-live-\(version)", version)
            try await subscribe(live, topic, qos: .atLeastOnce)
            let publisher = try await connectClean(broker, "clr-pub-\(version)", version)
            try await publish(publisher, topic, "state", qos: .atLeastOnce, retain: true, packetID: 1)
            guard let first = await expectPublish(live) else { return }
            XCTAssertEqual(first.text, "state")
            XCTAssertFalse(first.retain, "\(version): live delivery has RETAIN 0")
            try await acknowledge(first, on: live)

            try await publish(publisher, topic, "", qos: .atLeastOnce, retain: true, packetID: 2)
            guard let cleared = await expectPublish(live) else { return }
            XCTAssertEqual(cleared.payload.readableBytes, 0, "\(version): the empty message is forwarded as normal")
            XCTAssertFalse(cleared.retain, "\(version): with RETAIN 0")
            try await acknowledge(cleared, on: live)

            let got = try await freshSubscriber(broker, "clr-new-\(version)", version, topic, expecting: 0)
            XCTAssertEqual(got.count, 0, "\(version): no retained message after an empty retained PUBLISH")
            await publisher.close()
            await live.close()
        }
    }

    // [MQTT-3.3.1-12] [MQTT-3.3.1-13] [3.1.1:MQTT-3.3.1-9]
    /// Live deliveries: 3.1.1 and v5 with Retain As Published 0 get RETAIN 0; v5 with Retain As
    /// Published 1 gets the publisher's flag. Retained messages sent for a new subscription keep
    /// RETAIN 1 whatever the option.
    func testRetainFlagOfLiveDeliveries() async throws {
        let broker = try startBroker()
        let v3 = try await connectClean(broker, "rap-v3", .v3_1_1)
        try await subscribe(v3, "rap/t", qos: .atLeastOnce)
        let plain = try await connectClean(broker, "rap-0", .v5)
        try await plain.subscribe("rap/t", options: SubscriptionOptions(qos: .atLeastOnce, retainAsPublished: false))
        let asPublished = try await connectClean(broker, "rap-1", .v5)
        try await asPublished.subscribe("rap/t", options: SubscriptionOptions(qos: .atLeastOnce, retainAsPublished: true))

        let publisher = try await connectClean(broker, "rap-pub", .v5)
        try await publish(publisher, "rap/t", "r", qos: .atLeastOnce, retain: true, packetID: 1)
        try await publish(publisher, "rap/t", "n", qos: .atLeastOnce, retain: false, packetID: 2)
        for (name, client, expected) in [("3.1.1", v3, [false, false]), ("v5 RAP 0", plain, [false, false]), ("v5 RAP 1", asPublished, [true, false])] {
            let got = try await client.receivePublishes(2)
            XCTAssertEqual(got.map(\.text), ["r", "n"], name)
            XCTAssertEqual(got.map(\.retain), expected, "\(name): RETAIN of live deliveries")
        }

        // Sent because a subscription was made: RETAIN 1 even with Retain As Published 0.
        let late = try await connectClean(broker, "rap-late", .v5)
        try await late.subscribe("rap/t", options: SubscriptionOptions(qos: .atLeastOnce, retainAsPublished: false))
        let retained = try await late.expectPublish()
        XCTAssertEqual(retained.text, "r")
        XCTAssertTrue(retained.retain, "retained message sent for a new subscription has RETAIN 1")
    }

    // [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]
    /// v5 Retain Handling: 0 sends the retained messages on every SUBSCRIBE, re-subscriptions
    /// included; 1 only when the subscription did not exist; 2 never.
    func testV5RetainHandling() async throws {
        let broker = try startBroker()
        let publisher = try await connectClean(broker, "rh-pub", .v5)
        try await publish(publisher, "rh/t", "kept", qos: .atLeastOnce, retain: true, packetID: 1)
        let client = try await connectClean(broker, "rh-sub", .v5)
        for (filter, handling, expected) in [("rh/+", RetainHandling.sendOnSubscribe, [1, 1]),
                                             ("rh/#", .sendOnNewSubscribe, [1, 0]),
                                             ("+/t", .doNotSend, [0, 0])] {
            for (round, count) in expected.enumerated() {
                try await client.subscribe(filter, options: SubscriptionOptions(qos: .atLeastOnce, retainHandling: handling))
                if count > 0 {
                    let got = try await client.receivePublishes(count)
                    XCTAssertEqual(got.map(\.text), ["kept"], "Retain Handling \(handling.rawValue), SUBSCRIBE \(round + 1)")
                    XCTAssertTrue(got.allSatisfy(\.retain))
                }
                try await client.expectSilence(for: .milliseconds(300), "Retain Handling \(handling.rawValue), SUBSCRIBE \(round + 1)")
            }
            _ = try await client.unsubscribe([filter])
        }
    }
}
