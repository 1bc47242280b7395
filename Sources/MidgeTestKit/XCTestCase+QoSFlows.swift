import MQTTCodec
import MidgeClient
import MidgeTestSupport
import NIOCore
import XCTest

// The client's side of SUBSCRIBE and of the QoS flows, driven from a test: each step checks the
// broker's answer and records a failure (with the caller's file and line) when it is wrong.

extension XCTestCase {
    /// Subscribes and checks the SUBACK grants `qos`.
    public func subscribe(_ connection: PacketConnection, _ filter: String, qos: QoS = .atLeastOnce, packetID: UInt16 = 1,
                          file: StaticString = #filePath, line: UInt = #line) async throws {
        try await connection.send(.subscribe(SubscribePacket(packetID: packetID, subscriptions: [
            TopicSubscription(filter: filter, options: SubscriptionOptions(qos: qos)),
        ])))
        guard let packet = await expectPacket(connection, "SUBACK", file: file, line: line) else { return }
        guard case .suback(let suback) = packet else { return XCTFail("expected SUBACK, got \(packet)", file: file, line: line) }
        XCTAssertEqual(suback.packetID, packetID, file: file, line: line)
        XCTAssertEqual(suback.reasonCodes, [ReasonCode(rawValue: qos.rawValue)], file: file, line: line)
    }

    /// Publishes and completes the QoS flow as a sender.
    public func publish(_ connection: PacketConnection, _ topic: String, _ payload: String, qos: QoS = .atMostOnce, retain: Bool = false,
                        packetID: UInt16 = 100, file: StaticString = #filePath, line: UInt = #line) async throws {
        try await connection.send(.publish(PublishPacket(topic: topic, payload: ByteBuffer(text: payload), qos: qos, retain: retain,
                                                         packetID: qos == .atMostOnce ? 0 : packetID)))
        switch qos {
        case .atMostOnce: break
        case .atLeastOnce:
            guard let packet = await expectPacket(connection, "PUBACK", file: file, line: line) else { return }
            guard case .puback = packet else { return XCTFail("expected PUBACK, got \(packet)", file: file, line: line) }
        case .exactlyOnce:
            guard let packet = await expectPacket(connection, "PUBREC", file: file, line: line) else { return }
            guard case .pubrec = packet else { return XCTFail("expected PUBREC, got \(packet)", file: file, line: line) }
            try await connection.send(.pubrel(PubAckPacket(packetID: packetID)))
            guard let done = await expectPacket(connection, "PUBCOMP", file: file, line: line) else { return }
            guard case .pubcomp = done else { return XCTFail("expected PUBCOMP, got \(done)", file: file, line: line) }
        }
    }

    /// Acknowledges a received PUBLISH as a receiver (PUBACK, or PUBREC/PUBREL/PUBCOMP).
    public func acknowledge(_ publish: PublishPacket, on connection: PacketConnection,
                            file: StaticString = #filePath, line: UInt = #line) async throws {
        switch publish.qos {
        case .atMostOnce: break
        case .atLeastOnce: try await connection.send(.puback(PubAckPacket(packetID: publish.packetID)))
        case .exactlyOnce:
            try await connection.send(.pubrec(PubAckPacket(packetID: publish.packetID)))
            guard let packet = await expectPacket(connection, "PUBREL", file: file, line: line) else { return }
            guard case .pubrel = packet else { return XCTFail("expected PUBREL, got \(packet)", file: file, line: line) }
            try await connection.send(.pubcomp(PubAckPacket(packetID: publish.packetID)))
        }
    }

    /// Sends DISCONNECT (normal) and waits for the broker to close.
    public func disconnect(_ connection: PacketConnection, _ packet: DisconnectPacket = DisconnectPacket(),
                           file: StaticString = #filePath, line: UInt = #line) async throws {
        try await connection.send(.disconnect(packet))
        let packets = await expectClose(connection, within: 3, file: file, line: line)
        XCTAssertEqual(packets, [], "nothing expected after a client DISCONNECT", file: file, line: line)
    }
}
