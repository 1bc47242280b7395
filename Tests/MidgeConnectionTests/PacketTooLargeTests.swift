import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// `max_packet_size`: announced to v5 clients as Maximum Packet Size; a bigger packet is answered
/// with DISCONNECT 0x95 (Packet too large) and the connection closed (spec 3.2.2.3.6; the client rule MQTT-3.2.2-15),
/// decided from the fixed header alone; 3.1.1 connections are just closed.
final class PacketTooLargeTests: XCTestCase {
    static let limit = 128
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker { $0.maxPacketSize = PacketTooLargeTests.limit } }

    /// A QoS 0 PUBLISH to `topic` whose whole encoding is `size` bytes for `version`.
    private func publish(ofSize size: Int, topic: String, version: ProtocolVersion) -> PublishPacket {
        var packet = PublishPacket(topic: topic, payload: ByteBuffer())
        let overhead = PacketEncoder.publishPacketSize(packet, version: version)
        packet.payload = ByteBuffer(bytes: [UInt8](repeating: 0x61, count: size - overhead))
        XCTAssertEqual(PacketEncoder.publishPacketSize(packet, version: version), size)
        return packet
    }

    func testV5ConnAckAnnouncesMaximumPacketSize() async throws {
        let (client, connack) = try await connectAccepted(broker, "mps")
        XCTAssertEqual(connack.properties.maximumPacketSize, UInt32(Self.limit))
        try await disconnect(client)
    }

    func testPacketAtLimitIsAccepted() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let (client, _) = try await connectAccepted(broker, "at-limit-\(version.rawValue)", version: version)
            try await subscribe(client, "limit/\(version.rawValue)", qos: .atMostOnce)
            try await client.send(.publish(publish(ofSize: Self.limit, topic: "limit/\(version.rawValue)", version: version)))
            guard let echo = await expectPublish(client) else { return }
            XCTAssertEqual(PacketEncoder.publishPacketSize(echo, version: version), Self.limit)
            try await disconnect(client)
        }
    }

    func testPacketOverLimitGetsDisconnectPacketTooLarge() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let reason: ReasonCode? = version == .v5 ? .packetTooLarge : nil
            // One byte over, as a PUBLISH.
            let (client, _) = try await connectAccepted(broker, "over-\(version.rawValue)", version: version)
            try await client.send(.publish(publish(ofSize: Self.limit + 1, topic: "limit/x", version: version)))
            await expectDisconnect(client, reason: reason, "PUBLISH of limit + 1 (\(version))")
            try await assertBrokerServes(broker)

            // As a SUBSCRIBE.
            let (subscriber, _) = try await connectAccepted(broker, "over-sub-\(version.rawValue)", version: version)
            try await subscriber.send(.subscribe(SubscribePacket(packetID: 1, subscriptions: [
                TopicSubscription(filter: String(repeating: "f", count: Self.limit)),
            ])))
            await expectDisconnect(subscriber, reason: reason, "SUBSCRIBE over the limit (\(version))")

            // Only the fixed header of a 1 MB PUBLISH: refused without waiting for the body.
            let (announcer, _) = try await connectAccepted(broker, "announce-\(version.rawValue)", version: version)
            try await announcer.send(bytes: [0x30] + variableByteInteger(1_000_000))
            await expectDisconnect(announcer, reason: reason, within: 2, "header of a 1 MB packet (\(version))")
            try await assertBrokerServes(broker)
        }
    }

    func testOversizedConnectIsRefused() async throws {
        // A CONNECT over the limit is never accepted.
        let raw = try await RawConnection.connect(broker)
        try await raw.send(connectBytes(String(repeating: "c", count: Self.limit), .v5))
        let (bytes, closed) = await raw.readUntilClose(timeout: 3)
        XCTAssertTrue(closed)
        if !bytes.isEmpty {
            XCTAssertEqual(bytes.first, 0x20, hex(bytes))
            XCTAssertGreaterThanOrEqual(bytes.count >= 4 ? bytes[3] : 0, 0x80, "must not accept: \(hex(bytes))")
        }
        XCTAssertEqual(broker.broker.sessionCount, 0)
        await raw.close()
        try await assertBrokerServes(broker)
    }
}
