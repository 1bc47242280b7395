import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// When the will is published (socket loss, protocol error, v5 DISCONNECT 0x04 or another error
/// reason) and when not (normal DISCONNECT), with its retain flag and QoS honoured.
/// Keep-alive expiry and takeover are covered in KeepAliveTests and SessionTakeoverTests.
final class WillPublicationTests: XCTestCase {
    var broker: TestBroker!
    var watcher: PacketConnection!

    override func setUp() async throws {
        broker = try startBroker()
        (watcher, _) = try await connectAccepted(broker, "will-watcher")
        try await subscribe(watcher, "will/#", qos: .exactlyOnce)
    }

    private func will(_ name: String, qos: QoS = .atMostOnce, retain: Bool = false) -> Will {
        Will(topic: "will/\(name)", payload: ByteBuffer(text: "will of \(name)"), qos: qos, retain: retain)
    }

    /// Asserts the watcher receives the will of `name` (and acknowledges it).
    private func expectWill(_ name: String, qos: QoS = .atMostOnce, file: StaticString = #filePath, line: UInt = #line) async throws {
        guard let publish = await expectPublish(watcher, within: 3, file: file, line: line) else { return }
        XCTAssertEqual(publish.topic, "will/\(name)", file: file, line: line)
        XCTAssertEqual(publish.payload.text, "will of \(name)", file: file, line: line)
        XCTAssertEqual(publish.qos, qos, file: file, line: line)
        XCTAssertFalse(publish.retain, "live will delivery has RETAIN 0 [MQTT-3.3.1-12]", file: file, line: line)
        try await acknowledge(publish, on: watcher, file: file, line: line)
    }

    func testWillPublishedWhenSocketClosesWithoutDisconnect() async throws {
        // [MQTT-3.1.2-8] [3.1.1:MQTT-3.1.2-8] Connection closed without DISCONNECT: the will is published.
        for version in [ProtocolVersion.v3_1, .v3_1_1, .v5] {
            let name = "lost-\(version.rawValue)"
            let (client, _) = try await connectAccepted(broker, name, version: version, will: will(name))
            await client.close()
            try await expectWill(name)
        }
    }

    func testWillNotPublishedAfterNormalDisconnect() async throws {
        // [MQTT-3.1.2-10] [MQTT-3.14.4-3] [3.1.1:MQTT-3.14.4-3] DISCONNECT (v5: reason 0x00) deletes the will.
        for version in [ProtocolVersion.v3_1, .v3_1_1, .v5] {
            let name = "normal-\(version.rawValue)"
            let (client, _) = try await connectAccepted(broker, name, version: version, will: will(name))
            try await disconnect(client)
        }
        await expectNothing(watcher, for: 0.5, "(no will after a normal DISCONNECT)")
    }

    func testV5DisconnectWithWillMessagePublishesWill() async throws {
        // [MQTT-3.1.2-8] Only DISCONNECT 0x00 deletes the will: after 0x04 (Disconnect with Will Message,
        // spec 3.14.2.1) it is published.
        let (client, _) = try await connectAccepted(broker, "with-will", will: will("with-will"))
        try await disconnect(client, DisconnectPacket(reasonCode: .disconnectWithWillMessage))
        try await expectWill("with-will")
    }

    func testV5DisconnectWithErrorReasonPublishesWill() async throws {
        // [MQTT-3.1.2-10] Only DISCONNECT with 0x00 deletes the will: a client DISCONNECT with an
        // error reason (here 0x80 Unspecified error, 0x83 Implementation specific error) leaves it
        // to be published when the connection closes.
        for reason in [ReasonCode.unspecifiedError, .implementationSpecificError] {
            let name = "err-\(reason.rawValue)"
            let (client, _) = try await connectAccepted(broker, name, will: will(name))
            try await disconnect(client, DisconnectPacket(reasonCode: reason))
            try await expectWill(name)
        }
    }

    func testWillPublishedWhenServerClosesForProtocolError() async throws {
        // The server closes the connection because of a protocol error: the will is published
        // (3.1.1 spec 3.1.2.5; v5 spec 3.1.2.5 "the Server closes the Network Connection without first
        // receiving a DISCONNECT with 0x00").
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let second = "second-connect-\(version.rawValue)"
            let (client, _) = try await connectAccepted(broker, second, version: version, will: will(second))
            try await client.send(.connect(ConnectPacket(protocolVersion: version, clientID: second)))   // [MQTT-3.1.0-2]
            await expectClose(client)
            try await expectWill(second)

            let malformed = "malformed-\(version.rawValue)"
            let (other, _) = try await connectAccepted(broker, malformed, version: version, will: will(malformed))
            try await other.send(bytes: [0x36, 0x04, 0x00, 0x01, 0x61, 0x00])   // PUBLISH QoS 3 [MQTT-3.3.1-4]
            await expectClose(other)
            try await expectWill(malformed)
        }
    }

    func testWillRetainFlagStoresWillAsRetained() async throws {
        // [MQTT-3.1.2-15] [3.1.1:MQTT-3.1.2-17] Will Retain 1: published as a retained message; a later
        // subscriber gets it with RETAIN 1. [MQTT-3.1.2-14] [3.1.1:MQTT-3.1.2-16] Will Retain 0: not retained.
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let kept = "retained-\(version.rawValue)"
            let (client, _) = try await connectAccepted(broker, kept, version: version, will: will(kept, retain: true))
            await client.close()
            try await expectWill(kept)
            let plain = "plain-\(version.rawValue)"
            let (other, _) = try await connectAccepted(broker, plain, version: version, will: will(plain, retain: false))
            await other.close()
            try await expectWill(plain)

            let (late, _) = try await connectAccepted(broker, "late-\(version.rawValue)", version: version)
            try await subscribe(late, "will/\(kept)", qos: .atMostOnce)
            guard let retained = await expectPublish(late) else { return }
            XCTAssertEqual(retained.topic, "will/\(kept)")
            XCTAssertEqual(retained.payload.text, "will of \(kept)")
            XCTAssertTrue(retained.retain, "retained will delivered on subscribe has RETAIN 1")
            try await subscribe(late, "will/\(plain)", qos: .atMostOnce, packetID: 2)
            await expectNothing(late, for: 0.2, "(the non-retained will was not stored)")
            try await disconnect(late)
        }
    }

    func testWillQoSHonoured() async throws {
        // [3.1.1:MQTT-3.1.2-9] (v5: spec 3.1.2.6) The will is published with its Will QoS, delivered at the lower of it
        // and the subscription's QoS (the watcher subscribed with QoS 2).
        for version in [ProtocolVersion.v3_1_1, .v5] {
            for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
                let name = "qos\(qos.rawValue)-\(version.rawValue)"
                let (client, _) = try await connectAccepted(broker, name, version: version, will: will(name, qos: qos))
                await client.close()
                try await expectWill(name, qos: qos)
            }
        }
        // A QoS 0 subscriber gets a QoS 2 will at QoS 0.
        let (low, _) = try await connectAccepted(broker, "low-sub")
        try await subscribe(low, "will/low", qos: .atMostOnce)
        let (client, _) = try await connectAccepted(broker, "low", will: will("low", qos: .exactlyOnce))
        await client.close()
        try await expectWill("low", qos: .exactlyOnce)
        guard let downgraded = await expectPublish(low) else { return }
        XCTAssertEqual(downgraded.qos, .atMostOnce)
        try await disconnect(low)
    }

    func testWillOfRefusedConnectionIsNeverPublished() async throws {
        // A refused CONNECT never stored its will (spec 3.1.2.5: "if the Connect request is accepted").
        let closed = try startBroker(users: ["u": "pw"])
        let (watcher, _) = try await connectAccepted(closed, "w", username: "u", password: "pw")
        try await subscribe(watcher, "will/#")
        let (refused, connack) = try await closed.connect("refused", will: will("refused"))
        XCTAssertEqual(connack.reasonCode, .notAuthorized)
        await expectClose(refused)
        await expectNothing(watcher, for: 0.4, "(will of a refused connection)")
    }
}
