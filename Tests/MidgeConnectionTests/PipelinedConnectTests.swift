import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Packets a client sends right behind its CONNECT (same TCP segment, before the CONNACK) are
/// handled after the session is attached, in order, and CONNACK is always the first packet the
/// server sends [MQTT-3.2.0-1] — also while a session is resumed or taken over from another event loop.
final class PipelinedConnectTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker() }

    /// CONNECT + SUBSCRIBE + PUBLISH QoS 1 (to the subscribed topic) + PINGREQ in one write.
    private func pipeline(_ id: String, _ version: ProtocolVersion, cleanStart: Bool, topic: String) -> [UInt8] {
        let connect = connectBytes(id, version, cleanStart: cleanStart, properties: version == .v5 ? sessionExpiry(60) : .none)
        let subscribe = encoded(.subscribe(SubscribePacket(packetID: 1, subscriptions: [
            TopicSubscription(filter: topic, options: SubscriptionOptions(qos: .atLeastOnce)),
        ])), version)
        let publish = encoded(.publish(PublishPacket(topic: topic, payload: ByteBuffer(text: "piped"), qos: .atLeastOnce, packetID: 2)), version)
        return connect + subscribe + publish + encoded(.pingreq, version)
    }

    private func runPipeline(_ id: String, _ version: ProtocolVersion, cleanStart: Bool, expectSessionPresent: Bool,
                             file: StaticString = #filePath, line: UInt = #line) async throws -> PacketConnection {
        let client = try await broker.rawConnection(version: version)
        try await client.send(bytes: pipeline(id, version, cleanStart: cleanStart, topic: "pipe/\(id)"))
        guard let first = await expectPacket(client, "CONNACK", file: file, line: line) else { return client }
        guard case .connack(let connack) = first else {
            XCTFail("CONNACK must be the first packet [MQTT-3.2.0-1], got \(first)", file: file, line: line)
            return client
        }
        XCTAssertEqual(connack.reasonCode, .success, file: file, line: line)
        XCTAssertEqual(connack.sessionPresent, expectSessionPresent, file: file, line: line)
        var sawSubAck = false, sawPubAck = false, sawPublish = false, sawPong = false
        for _ in 0..<4 {
            guard let packet = await expectPacket(client, within: 3, file: file, line: line) else { break }
            switch packet {
            case .suback(let suback):
                XCTAssertFalse(sawPubAck || sawPong, "SUBACK answers the SUBSCRIBE sent first", file: file, line: line)
                XCTAssertEqual(suback.reasonCodes, [.grantedQoS1], file: file, line: line)
                sawSubAck = true
            case .puback(let ack):
                XCTAssertEqual(ack.packetID, 2, file: file, line: line)
                sawPubAck = true
            case .publish(let publish):
                XCTAssertTrue(sawSubAck, "routed to the subscription made before it", file: file, line: line)
                XCTAssertEqual(publish.payload.text, "piped", file: file, line: line)
                try await client.send(.puback(PubAckPacket(packetID: publish.packetID)))
                sawPublish = true
            case .pingresp:
                XCTAssertTrue(sawSubAck && sawPubAck, "PINGRESP after the answers to earlier packets", file: file, line: line)
                sawPong = true
            default:
                XCTFail("unexpected \(packet)", file: file, line: line)
            }
        }
        XCTAssertTrue(sawSubAck && sawPubAck && sawPublish && sawPong, "all pipelined packets handled", file: file, line: line)
        return client
    }

    func testPipelinedPacketsOnNewSession() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let client = try await runPipeline("new-\(version.rawValue)", version, cleanStart: true, expectSessionPresent: false)
            try await disconnect(client)
        }
    }

    func testPipelinedPacketsWhileResumingAndTakingOverSessions() async throws {
        // Alternate between resuming an offline session and taking over a live one; new connections
        // land on alternating event loops, so the session moves between loops while packets queue.
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let id = "piper-\(version.rawValue)"
            var previous = try await runPipeline(id, version, cleanStart: false, expectSessionPresent: false)
            for round in 0..<6 {
                if round % 2 == 0 {
                    try await disconnect(previous)
                }
                let next = try await runPipeline(id, version, cleanStart: false, expectSessionPresent: true)
                if round % 2 == 1 {
                    await expectClose(previous)
                }
                previous = next
            }
            try await disconnect(previous)
        }
    }

    func testQueuedMessagesFollowConnAck() async throws {
        // Messages stored for an offline session are sent after the CONNACK, never before it.
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let id = "queued-\(version.rawValue)"
            let (client, _) = try await connectAccepted(broker, id, version: version, cleanStart: false,
                                                        sessionExpiry: version == .v5 ? 60 : nil)
            try await subscribe(client, "queued/\(version.rawValue)")
            try await disconnect(client)
            let (publisher, _) = try await connectAccepted(broker, "queued-pub-\(version.rawValue)")
            for index in 0..<5 {
                try await publish(publisher, "queued/\(version.rawValue)", "m\(index)", qos: .atLeastOnce, packetID: UInt16(index + 1))
            }
            let raw = try await RawConnection.connect(broker)
            try await raw.send(connectBytes(id, version, cleanStart: false, properties: version == .v5 ? sessionExpiry(60) : .none))
            let first = await raw.readPacket() ?? []
            XCTAssertEqual(first.first, 0x20, "CONNACK first [MQTT-3.2.0-1]: \(hex(first))")
            XCTAssertEqual(first.count > 2 ? first[2] : 0, 0x01, "session present")
            for index in 0..<5 {
                let publish = await raw.readPacket() ?? []
                XCTAssertEqual(publish.first.map { $0 & 0xF0 }, 0x30, "PUBLISH \(index): \(hex(publish))")
            }
            await raw.close()
            try await disconnect(publisher)
        }
    }
}
