import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// v5 PUBLISH properties are forwarded unchanged to subscribers: Payload Format Indicator
/// [MQTT-3.3.2-4], Response Topic [MQTT-3.3.2-15], Correlation Data [MQTT-3.3.2-16], User
/// Properties with order and duplicates kept [MQTT-3.3.2-17] [MQTT-3.3.2-18], Content Type
/// [MQTT-3.3.2-20]; live, from the offline queue and as retained messages.
final class PublishPropertyForwardingTests: MessagingTestCase {
    private var sent: Properties {
        var properties = Properties()
        properties.payloadFormatIndicator = 1
        properties.responseTopic = "reply/to/me"
        properties.correlationData = ByteBuffer(bytes: [0x00, 0xFF, 0x10, 0x00, 0x7F])
        properties.contentType = "application/json; charset=utf-8"
        properties.userProperties = [UserProperty("b", "2"), UserProperty("a", "1"), UserProperty("b", "2"),
                                     UserProperty("b", "3"), UserProperty("", ""), UserProperty("ünï", "cødé")]
        return properties
    }

    private func assertForwarded(_ publish: PublishPacket, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        var received = publish.properties
        received.subscriptionIdentifiers = []
        XCTAssertEqual(received.payloadFormatIndicator, 1, context, file: file, line: line)
        XCTAssertEqual(received.responseTopic, "reply/to/me", context, file: file, line: line)
        XCTAssertEqual(received.correlationData, ByteBuffer(bytes: [0x00, 0xFF, 0x10, 0x00, 0x7F]), context, file: file, line: line)
        XCTAssertEqual(received.contentType, "application/json; charset=utf-8", context, file: file, line: line)
        XCTAssertEqual(received.userProperties, sent.userProperties, "\(context): order and duplicates", file: file, line: line)
        XCTAssertEqual(received, sent, "\(context): nothing added or dropped", file: file, line: line)
        XCTAssertEqual(publish.text, "{\"k\":1}", context, file: file, line: line)
    }

    func testPropertiesAreForwardedUnchanged() async throws {
        let live = try await connect("pp-live", .v5)
        try await live.subscribe("pp/#", qos: .exactlyOnce)
        var (offline, _) = try await connectPersistent("pp-offline", .v5, resume: false)
        try await offline.subscribe("pp/#", qos: .atLeastOnce)
        try await offline.disconnect()

        let publisher = try await connect("pp-pub", .v5)
        for qos in QoS.all {
            try await publisher.publish("pp/\(qos.rawValue)", "{\"k\":1}", qos: qos, retain: qos == .exactlyOnce, properties: sent)
        }
        for publish in try await live.receivePublishes(3) { assertForwarded(publish, "live QoS \(publish.qos)") }

        (offline, _) = try await connectPersistent("pp-offline", .v5, resume: true)
        for publish in try await offline.receivePublishes(2) { assertForwarded(publish, "queued QoS \(publish.qos)") }

        let late = try await connect("pp-retained", .v5)
        try await late.subscribe("pp/2", qos: .exactlyOnce)
        let retained = try await late.expectPublish()
        XCTAssertTrue(retained.retain)
        assertForwarded(retained, "retained")
        for connection in [live, offline, late, publisher] { await connection.close() }
    }
}
