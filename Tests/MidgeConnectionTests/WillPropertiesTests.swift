import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// v5 will properties reach subscribers unaltered: Payload Format Indicator [MQTT-3.3.2-4],
/// Content Type [MQTT-3.3.2-20], Response Topic [MQTT-3.3.2-15], Correlation Data [MQTT-3.3.2-16],
/// User Properties in order [MQTT-3.1.3-10] [MQTT-3.3.2-17], Message Expiry Interval.
final class WillPropertiesTests: XCTestCase {
    func testWillPropertiesPassedThroughToV5Subscriber() async throws {
        let broker = try startBroker()
        let (watcher, _) = try await connectAccepted(broker, "props-watcher")
        try await subscribe(watcher, "props/#")

        var properties = Properties()
        properties.payloadFormatIndicator = 1
        properties.contentType = "text/plain; charset=utf-8"
        properties.responseTopic = "props/reply"
        properties.correlationData = ByteBuffer(bytes: [0x00, 0xFF, 0x10, 0x20])
        properties.userProperties = [UserProperty("b", "2"), UserProperty("a", "1"), UserProperty("b", "3")]
        properties.messageExpiryInterval = 120
        properties.willDelayInterval = 0
        let will = Will(topic: "props/will", payload: ByteBuffer(text: "bye ✓"), qos: .atLeastOnce, properties: properties)
        let (client, _) = try await connectAccepted(broker, "props", will: will)
        await client.close()

        guard let published = await expectPublish(watcher) else { return }
        XCTAssertEqual(published.payload.text, "bye ✓")
        let got = published.properties
        XCTAssertEqual(got.payloadFormatIndicator, 1)
        XCTAssertEqual(got.contentType, "text/plain; charset=utf-8")
        XCTAssertEqual(got.responseTopic, "props/reply")
        XCTAssertEqual(got.correlationData, ByteBuffer(bytes: [0x00, 0xFF, 0x10, 0x20]))
        XCTAssertEqual(got.userProperties, [UserProperty("b", "2"), UserProperty("a", "1"), UserProperty("b", "3")])
        // The expiry is passed on less the time the message waited (spec 3.3.2.3.3): at most 120.
        if let expiry = got.messageExpiryInterval {
            XCTAssertLessThanOrEqual(expiry, 120)
            XCTAssertGreaterThanOrEqual(expiry, 118)
        } else {
            XCTFail("Message Expiry Interval missing")
        }
        XCTAssertNil(got.willDelayInterval)
        try await acknowledge(published, on: watcher)
    }

    func testWillPropertiesDroppedForV3SubscriberButPayloadIntact() async throws {
        let broker = try startBroker()
        let (watcher, _) = try await connectAccepted(broker, "v3-watcher", version: .v3_1_1)
        try await subscribe(watcher, "props3/#")
        var properties = Properties()
        properties.contentType = "application/json"
        properties.userProperties = [UserProperty("k", "v")]
        let (client, _) = try await connectAccepted(broker, "props3",
                                                    will: Will(topic: "props3/will", payload: ByteBuffer(text: "{}"), properties: properties))
        await client.close()
        guard let published = await expectPublish(watcher) else { return }
        XCTAssertEqual(published.topic, "props3/will")
        XCTAssertEqual(published.payload.text, "{}")
    }
}
