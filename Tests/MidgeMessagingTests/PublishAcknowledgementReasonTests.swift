import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Reason codes in the broker's PUBACK / PUBREC for what happened to a published message:
/// 0x10 No matching subscribers in a PUBACK (spec 3.4.2.1; a PUBREC says success, as Mosquitto's
/// does), and `message_size_limit` (0x83, Midge's documented choice) with the message not forwarded.
final class PublishAcknowledgementReasonTests: MessagingTestCase {
    func testNoMatchingSubscribers() async throws {
        let publisher = try await connect("nms-pub", .v5)
        let qos1NoSubscriber = try await publisher.publish("nms/t", "x", qos: .atLeastOnce)
        XCTAssertEqual(qos1NoSubscriber, .noMatchingSubscribers)
        // QoS 2: Mosquitto's PUBREC says success whether anyone subscribed or not (`50 02 ..`).
        let qos2NoSubscriber = try await publisher.publish("nms/t", "x", qos: .exactlyOnce, packetID: 2)
        XCTAssertEqual(qos2NoSubscriber, .success)

        let subscriber = try await connect("nms-sub", .v5)
        try await subscriber.subscribe("nms/+", qos: .atMostOnce)
        let qos1WithSubscriber = try await publisher.publish("nms/t", "x", qos: .atLeastOnce, packetID: 3)
        XCTAssertEqual(qos1WithSubscriber, .success)
        let qos2WithSubscriber = try await publisher.publish("nms/t", "x", qos: .exactlyOnce, packetID: 4)
        XCTAssertEqual(qos2WithSubscriber, .success)
        await subscriber.close(); await publisher.close()
    }

    /// A retained message with no subscriber is still stored, though the PUBACK says 0x10.
    func testNoMatchingSubscribersStillRetains() async throws {
        let publisher = try await connect("nmr-pub", .v5)
        let retainedAck = try await publisher.publish("nmr", "kept", qos: .atLeastOnce, retain: true)
        XCTAssertEqual(retainedAck, .noMatchingSubscribers)
        let subscriber = try await connect("nmr-sub", .v5)
        try await subscriber.subscribe("nmr", qos: .atLeastOnce)
        let retained = try await subscriber.expectPublish()
        XCTAssertEqual(retained.text, "kept")
        await subscriber.close(); await publisher.close()
    }

    /// 3.1.1 acknowledgements have no reason code: plain PUBACK / PUBREC either way.
    func testV3AcknowledgementsWithoutSubscribers() async throws {
        let publisher = try await connect("nms-v3", .v3_1_1)
        let pubAck = try await publisher.publish("nms3", "x", qos: .atLeastOnce)
        XCTAssertEqual(pubAck, .success)
        let pubRec = try await publisher.publish("nms3", "x", qos: .exactlyOnce, packetID: 2)
        XCTAssertEqual(pubRec, .success)
        await publisher.close()
    }

    /// `message_size_limit 10`: a larger payload is acknowledged (v5 with 0x83) but not
    /// forwarded nor retained; the connection stays open; payloads up to the limit pass.
    func testMessageSizeLimit() async throws {
        try restartBroker { $0.messageSizeLimit = 10 }
        for version in messagingVersions {
            let subscriber = try await connect("msl-sub-\(version)", version)
            try await subscriber.subscribe("msl/\(version)", qos: .exactlyOnce)
            let publisher = try await connect("msl-pub-\(version)", version)
            let tooLarge = "12345678901"
            let rejected: ReasonCode = version == .v5 ? .implementationSpecificError : .success
            try await publisher.publish("msl/\(version)", tooLarge, qos: .atMostOnce)
            let tooLargeQoS1 = try await publisher.publish("msl/\(version)", tooLarge, qos: .atLeastOnce, retain: true)
            XCTAssertEqual(tooLargeQoS1, rejected, "\(version)")
            // QoS 2 refused with PUBREC >= 0x80 ends the flow (v5); 3.1.1 continues with PUBREL/PUBCOMP.
            let tooLargeQoS2 = try await publisher.publish("msl/\(version)", tooLarge, qos: .exactlyOnce, packetID: 2)
            XCTAssertEqual(tooLargeQoS2, rejected, "\(version)")
            let atLimit = try await publisher.publish("msl/\(version)", "1234567890", qos: .atLeastOnce, packetID: 3)
            XCTAssertEqual(atLimit, .success,
                           "\(version): a payload of exactly the limit")
            let received = try await subscriber.receivePublishes(1)
            XCTAssertEqual(received.map(\.text), ["1234567890"], "\(version)")

            let late = try await connect("msl-late-\(version)", version)
            try await late.subscribe([TopicSubscription(filter: "msl/\(version)"), TopicSubscription(filter: "msl-end")])
            try await publisher.publish("msl-end", "e")
            let retainedCount = try await late.publishesBefore(marker: "msl-end").count
            XCTAssertEqual(retainedCount, 0, "\(version): too-large message retained")
            for connection in [subscriber, publisher, late] { await connection.close() }
        }
    }

    /// `retain_available false`: v5 CONNACK says Retain Available 0, and a PUBLISH with RETAIN 1
    /// is answered with DISCONNECT 0x9A Retain not supported (spec 3.2.2.3.5); a 3.1.1 client is
    /// disconnected (Mosquitto's behaviour). Nothing is retained.
    func testRetainNotAvailable() async throws {
        try restartBroker { $0.retainAvailable = false }
        for version in messagingVersions {
            let (publisher, connack) = try await broker.connect("rna-\(version)", version: version)
            if version == .v5 { XCTAssertEqual(connack.properties.retainAvailable, 0) }
            try await publisher.send(.publish(PublishPacket(topic: "rna", payload: ByteBuffer(string: "x"), qos: .atLeastOnce,
                                                            retain: true, packetID: 1)))
            let packets = try await publisher.waitForClose()
            if version == .v5 {
                guard case .disconnect(let disconnect) = packets.last else { return XCTFail("no DISCONNECT: \(packets)") }
                XCTAssertEqual(disconnect.reasonCode, .retainNotSupported)
            } else {
                XCTAssertEqual(packets.count, 0, "3.1.1: closed without PUBACK, got \(packets)")
            }
        }
        XCTAssertEqual(broker.broker.retained.count, 0)
    }
}
