import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// v5 PUBLISH properties (spec 3.3.2.3): what the broker forwards unaltered and what it refuses.
final class PublishPropertiesConformanceTests: XCTestCase {
    private func applicationProperties() -> Properties {
        var properties = Properties()
        properties.payloadFormatIndicator = 1
        properties.contentType = "application/json; charset=utf-8"
        properties.responseTopic = "reply/ü/here"
        properties.correlationData = ByteBuffer(bytes: [0x00, 0xFF, 0x10, 0x00])
        properties.userProperties = [UserProperty("z", "1"), UserProperty("a", "2"), UserProperty("z", "3"), UserProperty("", ""),
                                     UserProperty("a", "2")]
        return properties
    }

    private func assertUnaltered(_ publish: PublishPacket?, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let publish else { return }
        let sent = applicationProperties()
        let got = publish.properties
        XCTAssertEqual(got.payloadFormatIndicator, 1, "\(context): Payload Format Indicator", file: file, line: line)
        XCTAssertEqual(got.contentType, sent.contentType, "\(context): Content Type", file: file, line: line)
        XCTAssertEqual(got.responseTopic, sent.responseTopic, "\(context): Response Topic", file: file, line: line)
        XCTAssertEqual(got.correlationData, sent.correlationData, "\(context): Correlation Data", file: file, line: line)
        XCTAssertEqual(got.userProperties, sent.userProperties, "\(context): every User Property, in order, duplicates kept",
                       file: file, line: line)
    }

    // [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20]
    /// Payload Format Indicator, Content Type, Response Topic, Correlation Data and the User
    /// Properties (order and duplicates kept) reach subscribers unaltered: live at each QoS, from
    /// the offline queue, and as a retained message.
    func testApplicationPropertiesAreForwardedUnaltered() async throws {
        let broker = try startBroker()
        let (offline, _) = try await connectPersistent(broker, "props-offline", .v5, resume: false)
        try await subscribe(offline, "props/t", qos: .exactlyOnce)
        await offline.close()
        var live: [PacketConnection] = []
        for qos in QoS.all {
            let client = try await connectClean(broker, "props-live-\(qos.rawValue)", .v5)
            try await subscribe(client, "props/t", qos: qos)
            live.append(client)
        }
        let publisher = try await connectClean(broker, "props-pub", .v5)
        _ = try await publisher.publish("props/t", "{}", qos: .exactlyOnce, retain: true, packetID: 5, properties: applicationProperties())
        for (index, client) in live.enumerated() {
            let publish = await expectPublish(client)
            assertUnaltered(publish, "live QoS \(index)")
            if let publish { try await acknowledge(publish, on: client) }
        }
        let (resumed, present) = try await connectPersistent(broker, "props-offline", .v5, resume: true)
        XCTAssertTrue(present)
        assertUnaltered(await expectPublish(resumed), "from the offline queue")
        let late = try await connectClean(broker, "props-late", .v5)
        try await subscribe(late, "props/t", qos: .atLeastOnce)
        assertUnaltered(await expectPublish(late), "retained")
    }

    // [MQTT-3.3.2-4]
    /// Choice: Midge does not inspect payloads. A Payload Format Indicator of 1 with a payload that
    /// is not UTF-8 is accepted (PUBACK 0x00, not 0x99) and forwarded unaltered, indicator included.
    func testPayloadFormatIndicatorIsNotCheckedAndForwardedAsIs() async throws {
        let broker = try startBroker()
        let subscriber = try await connectClean(broker, "pfi-sub", .v5)
        try await subscribe(subscriber, "pfi/t", qos: .atLeastOnce)
        let publisher = try await connectClean(broker, "pfi-pub", .v5)
        var properties = Properties()
        properties.payloadFormatIndicator = 1
        let reason = try await publisher.publish("pfi/t", payload: ByteBuffer(bytes: [0xC3, 0x28, 0xFF]), qos: .atLeastOnce, packetID: 3,
                                                 properties: properties)
        XCTAssertEqual(reason, .success, "not refused with 0x99: Midge does not validate payloads")
        guard let publish = await expectPublish(subscriber) else { return }
        XCTAssertEqual(publish.properties.payloadFormatIndicator, 1)
        XCTAssertEqual(Array(publish.payload.readableBytesView), [0xC3, 0x28, 0xFF])
        // A value the spec does not define (0xED) is no error either: forwarded unaltered, as
        // Mosquitto does (12-prop-subpub-payload-format).
        let (raw, _) = try await sectionARawConnected(broker, "pfi-raw")
        try await raw.send(rawPublish(flags: 0, topic: Array("pfi/t".utf8), properties: [0x01, 0xED]))
        guard let odd = await expectPublish(subscriber) else { return }
        XCTAssertEqual(odd.properties.payloadFormatIndicator, 0xED)
        await raw.close()
    }

    // [MQTT-3.3.2-4] [MQTT-3.3.2-17] [MQTT-3.3.2-20]
    /// The message properties reach the subscriber in the order the publisher wrote them (as
    /// Mosquitto forwards them: 07-will-properties), the Message Expiry Interval after them; the
    /// will's too, without its Will Delay Interval.
    func testMessagePropertiesKeepThePublishersOrder() async throws {
        let broker = try startBroker()
        let (subscriber, _) = try await sectionARawConnected(broker, "order-sub")
        try await subscriber.send(sectionCRawSubscribe(.v5, [(Array("order/#".utf8), 0)]))
        _ = await subscriber.readPacket()   // SUBACK
        let properties: [UInt8] = [0x26] + mqttString("key1") + mqttString("value1") + [0x08] + mqttString("response/topic")
            + [0x09] + mqttBinary(Array("data".utf8)) + [0x01, 0x01] + [0x03] + mqttString("application/test")
            + [0x26] + mqttString("key2") + mqttString("value2")
        let (publisher, _) = try await sectionARawConnected(broker, "order-pub")
        let publish = rawPublish(flags: 0, topic: Array("order/p".utf8), properties: properties, payload: Array("payload".utf8))
        try await publisher.send(publish)
        let forwarded = await subscriber.readPacket()
        XCTAssertEqual(forwarded, publish, "forwarded byte for byte")
        // The same properties in a will, with a Will Delay Interval in the middle.
        let willFields = rawProperties(Array(properties.prefix(15)) + [0x18, 0, 0, 0, 0] + Array(properties.dropFirst(15)))
            + mqttString("order/will") + mqttBinary(Array("will payload".utf8))
        let raw = try await RawConnection.connect(broker)
        try await raw.send(rawConnect(flags: 0x06, payload: mqttString("order-will") + willFields))
        _ = await raw.readPacket()   // CONNACK
        await raw.close()
        let will = await subscriber.readPacket()
        XCTAssertEqual(will, rawPublish(flags: 0, topic: Array("order/will".utf8), properties: properties, payload: Array("will payload".utf8)),
                       "the will, in the client's order")
        await publisher.close()
        await subscriber.close()
    }

    // [MQTT-3.3.2-13] [MQTT-3.3.2-19]
    /// Response Topic and Content Type are UTF-8 Encoded Strings: ill-formed UTF-8 or U+0000 in
    /// either makes the PUBLISH malformed (DISCONNECT 0x81).
    func testResponseTopicAndContentTypeMustBeUTF8() async throws {
        let broker = try startBroker()
        for (name, id) in [("Response Topic", UInt8(0x08)), ("Content Type", 0x03)] {
            for bad in [[0x61, 0xC3, 0x28], [0xED, 0xB0, 0x80], [0x61, 0x00]] as [[UInt8]] {
                try await expectRejectedAfterConnect(broker, .v5, rawPublish(flags: 0x02, topic: Array("p/t".utf8), packetID: 1, properties: [id] + mqttBinary(bad)),
                                                     v5Reason: .malformedPacket, "\(name) \(hex(bad))")
            }
        }
        try await assertBrokerServes(broker, "after malformed properties")
    }

    // [MQTT-3.3.2-14]
    /// A Response Topic with a wildcard is a Protocol Error: DISCONNECT 0x82, nothing routed.
    func testResponseTopicWithWildcardIsRefused() async throws {
        let broker = try startBroker()
        let watcher = try await connectClean(broker, "rt-watcher", .v5)
        try await subscribe(watcher, "rt/#", qos: .atMostOnce)
        for response in ["reply/#", "reply/+/x", "+"] {
            try await expectRejectedAfterConnect(broker, .v5, rawPublish(flags: 0, topic: Array("rt/t".utf8), properties: [0x08] + mqttString(response)),
                                                 v5Reason: .protocolError, "Response Topic '\(response)'")
        }
        await expectNothing(watcher, for: 0.3, "the refused PUBLISH is not routed")
        try await assertBrokerServes(broker, "after wildcard Response Topic")
    }

    /// A client must not send a Subscription Identifier on PUBLISH (MQTT-3.3.4-6 binds the client);
    /// the broker treats one as a Protocol Error: DISCONNECT 0x82, nothing routed.
    func testSubscriptionIdentifierFromTheClientIsAProtocolError() async throws {
        let broker = try startBroker()
        let watcher = try await connectClean(broker, "sid-in-watcher", .v5)
        try await subscribe(watcher, "sid-in/#", qos: .atMostOnce)
        for properties in [[0x0B, 0x01], [0x0B, 0x80, 0x01]] as [[UInt8]] {
            try await expectRejectedAfterConnect(broker, .v5, rawPublish(flags: 0x02, topic: Array("sid-in/t".utf8), packetID: 1, properties: properties),
                                                 v5Reason: .protocolError, "PUBLISH with Subscription Identifier \(hex(properties))")
        }
        await expectNothing(watcher, for: 0.3, "not routed")
        try await assertBrokerServes(broker, "after Subscription Identifier on PUBLISH")
    }
}
