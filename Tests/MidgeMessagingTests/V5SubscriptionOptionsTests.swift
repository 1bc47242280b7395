import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// v5 subscription options and properties on delivery: No Local and Subscription Identifiers.
final class V5SubscriptionOptionsTests: MessagingTestCase {
    /// No Local: the client's own messages are not sent back to it [MQTT-3.8.3-3]; other
    /// clients' messages are, and other subscribers get its messages.
    func testNoLocalSuppressesOwnMessagesOnly() async throws {
        let client = try await connect("nl-self", .v5)
        try await client.subscribe([TopicSubscription(filter: "nl/t", options: SubscriptionOptions(qos: .atLeastOnce, noLocal: true)),
                                    TopicSubscription(filter: "nl/marker")])
        let other = try await connect("nl-other", .v5)
        try await other.subscribe("nl/t", qos: .atLeastOnce)

        // "mine" and then the marker, both from this client: had "mine" come back, it would
        // arrive before the marker.
        try await client.publish("nl/t", "mine", qos: .atMostOnce)
        try await client.publish("nl/marker", "marker", qos: .atMostOnce)
        let beforeMarker = try await client.publishesBefore(marker: "nl/marker")
        XCTAssertEqual(beforeMarker.map(\.text), [], "own message came back despite No Local")

        // Other clients' messages do arrive, and other subscribers get this client's messages.
        try await other.publish("nl/t", "theirs", qos: .atMostOnce)
        let atClient = try await client.expectPublish()
        XCTAssertEqual(atClient.text, "theirs")
        let atOther = try await other.receivePublishes(2)
        XCTAssertEqual(Set(atOther.map(\.text)), ["mine", "theirs"])
        await client.close(); await other.close()
    }

    /// No Local applies per subscription: with an overlapping subscription that does not set it,
    /// the client gets its own message once, through that subscription (with its identifier only).
    func testNoLocalWithOverlappingSubscription() async throws {
        let client = try await connect("nl-overlap", .v5)
        try await client.subscribe("nlo/#", options: SubscriptionOptions(qos: .atLeastOnce, noLocal: true), subscriptionID: 1)
        try await client.subscribe("nlo/t", qos: .atMostOnce, subscriptionID: 2)
        try await client.publish("nlo/t", "mine", qos: .atMostOnce)
        try await client.publish("nlo/other", "not back", qos: .atMostOnce)
        try await client.publish("nlo/t", "end", qos: .atMostOnce)
        let received = try await client.receivePublishes(2)
        XCTAssertEqual(received.map(\.text), ["mine", "end"], "only through the subscription without No Local")
        XCTAssertEqual(received.first?.properties.subscriptionIdentifiers, [2])
        XCTAssertEqual(received.first?.qos, .atMostOnce)
        await client.close()
    }

    /// Without No Local (the default) a client does get its own messages back.
    func testOwnMessagesAreDeliveredWithoutNoLocal() async throws {
        for version in messagingVersions {
            let client = try await connect("echo-\(version)", version)
            try await client.subscribe("echo/\(version)", qos: .atMostOnce)
            try await client.publish("echo/\(version)", "mine")
            let echoed = try await client.expectPublish().text
            XCTAssertEqual(echoed, "mine", "\(version)")
            await client.close()
        }
    }

    /// The Subscription Identifier of the matching subscription is sent with the message
    /// [MQTT-3.3.4-3]; also on retained messages sent for the SUBSCRIBE; none when the
    /// subscription has none; a re-subscribe replaces it [MQTT-3.8.4-3].
    func testSubscriptionIdentifierOnDelivery() async throws {
        let publisher = try await connect("sid-pub", .v5)
        try await publisher.publish("sid/retained", "r", qos: .atLeastOnce, retain: true)
        let client = try await connect("sid", .v5)
        try await client.subscribe("sid/+", qos: .atLeastOnce, subscriptionID: 42)
        let retained = try await client.expectPublish()
        XCTAssertTrue(retained.retain)
        XCTAssertEqual(retained.properties.subscriptionIdentifiers, [42], "on the retained message")
        try await client.acknowledge(retained)

        try await client.subscribe("sid-none/#", qos: .atLeastOnce)
        try await publisher.publish("sid/live", "l", qos: .atLeastOnce, packetID: 2)
        try await publisher.publish("sid-none/x", "n", qos: .atLeastOnce, packetID: 3)
        let live = try await client.receivePublishes(2)
        XCTAssertEqual(live.map(\.text), ["l", "n"])
        XCTAssertEqual(live[0].properties.subscriptionIdentifiers, [42])
        XCTAssertEqual(live[1].properties.subscriptionIdentifiers, [], "no identifier for a subscription without one")

        try await client.subscribe("sid/+", options: SubscriptionOptions(qos: .atLeastOnce, retainHandling: .doNotSend), subscriptionID: 7)
        try await publisher.publish("sid/live", "again", qos: .atLeastOnce, packetID: 4)
        let replaced = try await client.expectPublish()
        XCTAssertEqual(replaced.properties.subscriptionIdentifiers, [7], "re-subscribe replaces the identifier")
        try await client.acknowledge(replaced)

        try await client.subscribe("sid/+", options: SubscriptionOptions(qos: .atLeastOnce, retainHandling: .doNotSend))
        try await publisher.publish("sid/live", "no id", qos: .atLeastOnce, packetID: 5)
        let removed = try await client.expectPublish()
        XCTAssertEqual(removed.properties.subscriptionIdentifiers, [], "re-subscribe without an identifier removes it")
        await client.close(); await publisher.close()
    }

    /// The Subscription Identifier is also sent with messages queued while offline and on
    /// redelivery after reconnect.
    func testSubscriptionIdentifierSurvivesQueueAndRedelivery() async throws {
        var (client, _) = try await connectPersistent("sidq", .v5, resume: false)
        try await client.subscribe("sidq", qos: .atLeastOnce, subscriptionID: 99)
        let publisher = try await connect("sidq-pub", .v5)
        try await publisher.publish("sidq", "inflight", qos: .atLeastOnce)
        _ = try await client.expectPublish()
        try await client.disconnect()
        try await publisher.publish("sidq", "queued", qos: .atLeastOnce, packetID: 2)
        (client, _) = try await connectPersistent("sidq", .v5, resume: true)
        let received = try await client.receivePublishes(2)
        XCTAssertEqual(received.map(\.text), ["inflight", "queued"])
        XCTAssertEqual(received.map(\.dup), [true, false])
        XCTAssertEqual(received.map(\.properties.subscriptionIdentifiers), [[99], [99]])
        await client.close(); await publisher.close()
    }

    /// 3.1.1 subscribers never see v5-only PUBLISH fields; the same message reaches both.
    func testV5PublisherToV3SubscriberCarriesPayloadOnly() async throws {
        let v3 = try await connect("mix-v3", .v3_1_1)
        try await v3.subscribe("mix", qos: .atLeastOnce)
        let publisher = try await connect("mix-pub", .v5)
        var properties = Properties()
        properties.userProperties = [UserProperty("k", "v")]
        properties.contentType = "text/plain"
        try await publisher.publish("mix", "hello", qos: .atLeastOnce, properties: properties)
        let delivered = try await v3.expectPublish()
        XCTAssertEqual(delivered.text, "hello")
        XCTAssertEqual(delivered.properties, .none)
        await v3.close(); await publisher.close()
    }
}
