import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Keep Alive: the broker closes a connection silent for 1.5 × Keep Alive (and publishes its will),
/// PINGREQ keeps it open, and `max_keepalive` bounds what clients may ask for.
final class KeepAliveTests: XCTestCase {
    /// Seconds until the broker closes `connection`, and what it sent before.
    private func timeUntilClose(_ connection: PacketConnection, from start: Date) async -> (Double, [MQTTPacket]) {
        let packets = await expectClose(connection, within: 5)
        return (Date().timeIntervalSince(start), packets)
    }

    func testSilentClientIsDisconnectedAfterOneAndAHalfKeepAliveAndWillPublished() async throws {
        // [MQTT-3.1.2-22] [3.1.1:MQTT-3.1.2-24] No packet within 1.5 × Keep Alive: the server
        // closes the connection as if the network had failed, so the will is published [MQTT-3.1.2-8] [3.1.1:MQTT-3.1.2-8].
        let broker = try startBroker()
        let (watcher, _) = try await connectAccepted(broker, "ka-watch")
        try await subscribe(watcher, "ka/+")
        let start = Date()
        async let v311 = connectAccepted(broker, "ka-3", version: .v3_1_1, keepAlive: 1,
                                         will: Will(topic: "ka/3", payload: ByteBuffer(text: "3 timed out")))
        async let v31 = connectAccepted(broker, "ka-31", version: .v3_1, keepAlive: 1,
                                        will: Will(topic: "ka/31", payload: ByteBuffer(text: "31 timed out")))
        async let v5 = connectAccepted(broker, "ka-5", version: .v5, keepAlive: 1,
                                       will: Will(topic: "ka/5", payload: ByteBuffer(text: "5 timed out")))
        let clients = try await [v311.0, v31.0, v5.0]
        async let close0 = timeUntilClose(clients[0], from: start)
        async let close1 = timeUntilClose(clients[1], from: start)
        async let close2 = timeUntilClose(clients[2], from: start)
        let closes = await [close0, close1, close2]
        for (index, (elapsed, packets)) in closes.enumerated() {
            XCTAssertGreaterThanOrEqual(elapsed, 1.4, "client \(index) closed before 1.5 × keep alive")
            XCTAssertLessThanOrEqual(elapsed, 2.6, "client \(index) closed too late (1.5 × keep alive is 1.5 s)")
            if index == 2 {
                // v5: at most a DISCONNECT 0x8D (Keep Alive timeout) before the close.
                for packet in packets {
                    guard case .disconnect(let disconnect) = packet else { XCTFail("unexpected \(packet)"); continue }
                    XCTAssertEqual(disconnect.reasonCode, .keepAliveTimeout)
                }
            } else {
                XCTAssertEqual(packets, [], "3.x: the connection is just closed")
            }
        }
        var wills: Set<String> = []
        for _ in 0..<3 {
            guard let will = await expectPublish(watcher, within: 2) else { break }
            wills.insert(will.payload.text)
            try await acknowledge(will, on: watcher)
        }
        XCTAssertEqual(wills, ["3 timed out", "31 timed out", "5 timed out"])
    }

    func testPingreqKeepsConnectionAliveAndPingrespBytes() async throws {
        // [MQTT-3.12.4-1] Each PINGREQ is answered with PINGRESP, exactly d0 00, and any packet
        // resets the keep-alive timer; keep alive 0 turns the timer off.
        let broker = try startBroker()
        let raw3 = try await RawConnection.connect(broker)
        try await raw3.send(connectBytes("ping-3", .v3_1_1, keepAlive: 1))
        let connack3 = await raw3.readPacket()
        XCTAssertEqual(connack3, [0x20, 0x02, 0x00, 0x00])
        let raw5 = try await RawConnection.connect(broker)
        try await raw5.send(connectBytes("ping-5", .v5, keepAlive: 1))
        let connack5 = await raw5.readPacket()
        XCTAssertEqual(connack5?.first, 0x20)
        let (idle, _) = try await connectAccepted(broker, "idle-0", version: .v3_1_1, keepAlive: 0)

        for round in 0..<5 {
            try await Task.sleep(nanoseconds: 600_000_000)
            for raw in [raw3, raw5] {
                try await raw.send([0xC0, 0x00])
                let answer = await raw.readPacket(timeout: 2)
                XCTAssertEqual(answer, [0xD0, 0x00], "round \(round): PINGRESP bytes \(hex(answer ?? []))")
            }
        }
        // 3 s of life on a 1 s keep alive, thanks to the pings.
        let start = Date()
        let (_, closed3) = await raw3.readUntilClose(timeout: 0.1)
        XCTAssertFalse(closed3, "pinged connection must stay open")
        // Silence now: closed within about 1.5 s.
        let (_, closedLater) = await raw3.readUntilClose(timeout: 3)
        XCTAssertTrue(closedLater)
        XCTAssertLessThanOrEqual(Date().timeIntervalSince(start), 2.6, "1.5 × keep alive after the last PINGREQ")
        // Keep alive 0: never timed out.
        XCTAssertTrue(idle.isActive, "keep alive 0 must not time out")
        try await idle.send(.pingreq)
        guard let pong = await expectPacket(idle) else { return }
        XCTAssertEqual(pong, .pingresp)
        await raw3.close()
        await raw5.close()
        try await disconnect(idle)
    }

    func testAnyPacketResetsKeepAliveTimer() async throws {
        // Not just PINGREQ: any control packet from the client counts (spec 3.1.2.10).
        let broker = try startBroker()
        let (client, _) = try await connectAccepted(broker, "busy", keepAlive: 1)
        for index in 0..<4 {
            try await Task.sleep(nanoseconds: 700_000_000)
            try await client.send(.publish(PublishPacket(topic: "busy/t", payload: ByteBuffer(text: "\(index)"))))
        }
        XCTAssertTrue(client.isActive, "publishing every 0.7 s keeps a 1 s keep alive open")
        try await disconnect(client)
    }

    func testMaxKeepaliveSendsServerKeepAliveToV5AndEnforcesIt() async throws {
        // max_keepalive 1: a v5 client asking for more (or for 0) gets Server Keep Alive 1, which it
        // must use (the client rule MQTT-3.2.2-21); the broker enforces it [MQTT-3.1.2-22]. [MQTT-3.2.2-22] At or below it: no property.
        let broker = try startBroker { $0.maxKeepalive = 1 }
        let start = Date()
        let (above, aboveAck) = try await connectAccepted(broker, "mka-60", keepAlive: 60)
        XCTAssertEqual(aboveAck.properties.serverKeepAlive, 1)
        let (zero, zeroAck) = try await connectAccepted(broker, "mka-0", keepAlive: 0)
        XCTAssertEqual(zeroAck.properties.serverKeepAlive, 1, "keep alive 0 is above any max_keepalive (Mosquitto)")
        let (equal, equalAck) = try await connectAccepted(broker, "mka-1", keepAlive: 1)
        XCTAssertNil(equalAck.properties.serverKeepAlive)
        async let close0 = timeUntilClose(above, from: start)
        async let close1 = timeUntilClose(zero, from: start)
        async let close2 = timeUntilClose(equal, from: start)
        for (elapsed, _) in await [close0, close1, close2] {
            XCTAssertGreaterThanOrEqual(elapsed, 1.4)
            XCTAssertLessThanOrEqual(elapsed, 2.6, "the server keep alive (1 s) must be enforced")
        }
    }

    func testMaxKeepaliveRefusesV3ClientsAboveIt() async throws {
        // 3.1/3.1.1 cannot be told a server keep alive: Mosquitto answers CONNACK 0x02 (Identifier
        // rejected) to a keep alive above max_keepalive, and closes.
        let broker = try startBroker { $0.maxKeepalive = 10 }
        for version in [ProtocolVersion.v3_1, .v3_1_1] {
            let raw = try await RawConnection.connect(broker)
            try await raw.send(connectBytes("mka3-\(version.rawValue)", version, keepAlive: 11))
            let (bytes, closed) = await raw.readUntilClose(timeout: 2)
            XCTAssertEqual(bytes, [0x20, 0x02, 0x00, 0x02], "\(version): \(hex(bytes))")
            XCTAssertTrue(closed)
            await raw.close()

            let (ok, _) = try await connectAccepted(broker, "mka3-ok-\(version.rawValue)", version: version, keepAlive: 10)
            try await disconnect(ok)
        }
    }
}
