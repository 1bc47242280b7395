import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// `retain_available false`: v5 clients are told Retain Available 0; a retained PUBLISH is answered
/// with DISCONNECT 0x9A (3.x: close), and a will with Will Retain is refused [MQTT-3.2.2-13].
final class RetainAvailableTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker { $0.retainAvailable = false } }

    func testV5ConnAckSaysRetainUnavailable() async throws {
        let (client, connack) = try await connectAccepted(broker, "ra")
        XCTAssertEqual(connack.properties.retainAvailable, 0)
        try await disconnect(client)
        // With retain available (default) the property is absent, meaning 1 (spec 3.2.2.3.5).
        let normal = try startBroker()
        let (other, otherAck) = try await connectAccepted(normal, "ra")
        XCTAssertNil(otherAck.properties.retainAvailable)
        try await disconnect(other)
    }

    func testRetainedPublishIsRejected() async throws {
        // The client rule MQTT-3.2.2-14 forbids RETAIN 1 here; the server answers DISCONNECT 0x9A (spec 3.3.1.3).
        let (watcher, _) = try await connectAccepted(broker, "ra-watch")
        try await subscribe(watcher, "ra/#")
        for version in [ProtocolVersion.v3_1_1, .v5] {
            for qos in [QoS.atMostOnce, .atLeastOnce] {
                let (client, _) = try await connectAccepted(broker, "ra-\(version.rawValue)-\(qos.rawValue)", version: version)
                try await client.send(.publish(PublishPacket(topic: "ra/t", payload: ByteBuffer(text: "r"), qos: qos, retain: true,
                                                             packetID: qos == .atMostOnce ? 0 : 1)))
                await expectDisconnect(client, reason: version == .v5 ? .retainNotSupported : nil, "retained PUBLISH (\(version), QoS \(qos))")
            }
        }
        await expectNothing(watcher, for: 0.3, "(a refused retained PUBLISH is not routed)")
        // Non-retained publishing still works.
        let (client, _) = try await connectAccepted(broker, "ra-plain")
        try await publish(client, "ra/t", "plain", qos: .atLeastOnce)
        guard let plain = await expectPublish(watcher) else { return }
        XCTAssertEqual(plain.payload.text, "plain")
        try await disconnect(client)
    }

    func testWillWithRetainIsRefused() async throws {
        // [MQTT-3.2.2-13] Will Retain 1 while retain is unavailable: CONNACK 0x9A and close.
        let will = Will(topic: "ra/will", payload: ByteBuffer(text: "w"), retain: true)
        let (client, connack) = try await broker.connect("ra-will", will: will)
        XCTAssertEqual(connack.reasonCode, .retainNotSupported)
        await expectClose(client)
        // 3.1.1 cannot say 0x9A: the connection is refused all the same.
        let (v3, v3Ack) = try await broker.connect("ra-will-3", version: .v3_1_1, will: will)
        XCTAssertNotEqual(v3Ack.reasonCode, .success)
        await expectClose(v3)
        XCTAssertEqual(broker.broker.sessionCount, 0)
        // A will without retain is fine.
        let (ok, _) = try await connectAccepted(broker, "ra-will-ok", will: Will(topic: "ra/will", payload: ByteBuffer(text: "w")))
        try await disconnect(ok)
    }
}
