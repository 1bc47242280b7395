import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Keep Alive as the server enforces it: a client silent for one and a half times its Keep Alive
/// is disconnected (not sooner), any packet restarts the clock, and without a Server Keep Alive in
/// CONNACK the broker uses the client's own value.
final class ConnectKeepAliveConformanceTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker() }

    /// Seconds until the broker closes `connection` and the packets it sent before.
    private func secondsUntilClose(_ connection: PacketConnection, from start: Date) async -> (Double, [MQTTPacket]) {
        let packets = await expectClose(connection, within: 6)
        return (Date().timeIntervalSince(start), packets)
    }

    // [MQTT-3.1.2-22] [MQTT-3.2.2-22] [3.1.1:MQTT-3.1.2-24]
    func testSilentClientIsClosedAfterOneAndAHalfKeepAlive() async throws {
        // max_keepalive 2: a client asking for 1 s is within it, so no Server Keep Alive is sent and
        // its own 1 s applies (3.1.1 cannot be told anything else).
        broker = try startBroker { $0.maxKeepalive = 2 }
        async let v5: (Double, [MQTTPacket], ConnAckPacket) = {
            let start = Date()
            let (client, connack) = try await self.connectAccepted(self.broker, "silent5", keepAlive: 1)
            let (seconds, packets) = await self.secondsUntilClose(client, from: start)
            return (seconds, packets, connack)
        }()
        async let v3: (Double, [MQTTPacket], ConnAckPacket) = {
            let start = Date()
            let (client, connack) = try await self.connectAccepted(self.broker, "silent3", version: .v3_1_1, keepAlive: 1)
            let (seconds, packets) = await self.secondsUntilClose(client, from: start)
            return (seconds, packets, connack)
        }()
        let (seconds5, packets5, connack5) = try await v5
        let (seconds3, packets3, _) = try await v3
        XCTAssertNil(connack5.properties.serverKeepAlive, "no Server Keep Alive: the client's value stands")
        for (version, seconds) in [("5.0", seconds5), ("3.1.1", seconds3)] {
            XCTAssertGreaterThanOrEqual(seconds, 1.4, "not closed before 1.5 × Keep Alive (\(version))")
            XCTAssertLessThan(seconds, 3.0, "closed soon after 1.5 × Keep Alive (\(version))")
        }
        // v5 may be told why (DISCONNECT 0x8D Keep Alive timeout); 3.1.1 just loses the connection.
        XCTAssertLessThanOrEqual(packets5.count, 1, "\(packets5)")
        if let first = packets5.first {
            if case .disconnect(let disconnect) = first {
                XCTAssertEqual(disconnect.reasonCode, .keepAliveTimeout)
            } else {
                XCTFail("only a DISCONNECT may precede the close: \(first)")
            }
        }
        XCTAssertEqual(packets3, [])
    }

    // [MQTT-3.1.2-22] [3.1.1:MQTT-3.1.2-24]
    func testAnyPacketRestartsTheKeepAliveClock() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let (client, _) = try await connectAccepted(broker, "chatty\(version.rawValue)", version: version, keepAlive: 1)
            // 1.8 s of life on a 1 s Keep Alive: a PINGREQ, then a PUBLISH, then a SUBSCRIBE, 0.6 s apart.
            try await Task.sleep(nanoseconds: 600_000_000)
            try await client.send(.pingreq)
            _ = await expectPacket(client, "PINGRESP")
            try await Task.sleep(nanoseconds: 600_000_000)
            try await client.send(.publish(PublishPacket(topic: "chat/t", payload: ByteBuffer(text: "x"))))
            try await Task.sleep(nanoseconds: 600_000_000)
            try await subscribe(client, "chat/\(version.rawValue)", qos: .atMostOnce)
            XCTAssertTrue(client.isActive, "still connected after 1.8 s (\(version))")
            try await disconnect(client)
        }
    }

    /// Keep Alive 0 switches the mechanism off: a silent client stays connected.
    func testKeepAliveZeroIsNeverTimedOut() async throws {
        let (client, connack) = try await connectAccepted(broker, "never", keepAlive: 0)
        XCTAssertNil(connack.properties.serverKeepAlive)
        await expectNothing(client, for: 2.0, "Keep Alive 0")
        try await disconnect(client)
    }
    // [MQTT-3.1.2-22] [3.1.1:MQTT-3.1.2-24]
    func testBytesOfAnUnfinishedPacketAreNotAControlPacket() async throws {
        // A client that trickles the bytes of a PUBLISH it never finishes sends no Control Packet:
        // it is closed 1.5 × Keep Alive after its last complete packet all the same.
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let raw = try await RawConnection.connect(broker)
            try await raw.send(connectBytes("trickle\(version.rawValue)", version, keepAlive: 1))
            _ = await raw.readPacket()
            let start = Date()
            try await raw.send([0x30, 0x64])   // a PUBLISH of 100 bytes announced
            var closedAfter: Double?
            for _ in 0..<10 {
                try? await Task.sleep(nanoseconds: 300_000_000)
                if !raw.channel.isActive { closedAfter = Date().timeIntervalSince(start); break }
                try? await raw.send([0x00])
            }
            let (_, closed) = await raw.readUntilClose(timeout: 0.5)
            if closedAfter == nil && closed { closedAfter = Date().timeIntervalSince(start) }
            XCTAssertNotNil(closedAfter, "still open after 3 s of trickling on a 1 s Keep Alive (\(version))")
            if let closedAfter { XCTAssertLessThan(closedAfter, 2.3, "\(version)") }
            await raw.close()
        }
    }
}
