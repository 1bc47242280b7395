import MidgeBroker
import MidgeEngineHarness
import MQTTCodec
import NIOCore
import XCTest

/// Keep Alive on the virtual clock: the broker closes a connection silent for 1.5 × Keep Alive
/// (and publishes its will), PINGREQ and any other packet keep it open, and `max_keepalive`
/// bounds what clients may ask for. The keep-alive sweep runs every 250 ms, so a silent
/// connection closes in [1.5 × Keep Alive, 1.5 × Keep Alive + 250 ms] of virtual time.
final class KeepAliveTests: XCTestCase {
    /// The sweep interval of the engine's `KeepAliveMonitor`: the closing delay bound.
    private let sweep = 0.25

    private func assertClosedInTime(_ times: [Double?], after seconds: Double, _ context: String = "",
                                    file: StaticString = #filePath, line: UInt = #line) {
        for (index, time) in times.enumerated() {
            guard let time else {
                XCTFail("client \(index) was never closed \(context)", file: file, line: line)
                continue
            }
            XCTAssertGreaterThanOrEqual(time, seconds, "client \(index) closed before 1.5 × keep alive \(context)", file: file, line: line)
            XCTAssertLessThanOrEqual(time, seconds + sweep, "client \(index) closed too late (1.5 × keep alive is \(seconds) s) \(context)",
                                     file: file, line: line)
        }
    }

    func testSilentClientIsDisconnectedAfterOneAndAHalfKeepAliveAndWillPublished() {
        // [MQTT-3.1.2-22] [3.1.1:MQTT-3.1.2-24] No packet within 1.5 × Keep Alive: the server
        // closes the connection as if the network had failed, so the will is published [MQTT-3.1.2-8] [3.1.1:MQTT-3.1.2-8].
        let harness = EngineHarness()
        let watcher = harness.connect()
        watcher.connectAccepted("ka-watch")
        watcher.subscribe("ka/+", qos: .atLeastOnce)
        let start = harness.now
        let clients = [(ProtocolVersion.v3_1_1, "3"), (.v3_1, "31"), (.v5, "5")].map { version, name in
            let client = harness.connect(version: version)
            client.connectAccepted("ka-\(name)", version: version, keepAlive: 1,
                                   will: Will(topic: "ka/\(name)", payload: bytes("\(name) timed out")))
            return client
        }
        // A longer Keep Alive scales the same way: 10 s → closed at 15 s.
        let slow = harness.connect(version: .v5)
        slow.connectAccepted("ka-10", keepAlive: 10)

        harness.advance(by: .milliseconds(1_200))
        XCTAssertFalse(clients.contains(where: \.isClosed), "closed before 1.5 × keep alive")
        XCTAssertEqual(watcher.receivedPublishes(), [], "a will before the connection timed out")

        assertClosedInTime(harness.closeTimes(clients, since: start), after: 1.5)
        // v5: a DISCONNECT 0x8D (Keep Alive timeout) before the close.
        XCTAssertEqual(clients[2].receivedPackets(), [.disconnect(DisconnectPacket(reasonCode: .keepAliveTimeout))])
        XCTAssertEqual(clients[0].receivedBytes(), [], "3.x: the connection is just closed")
        XCTAssertEqual(clients[1].receivedBytes(), [], "3.x: the connection is just closed")
        let wills = watcher.receivedPublishes()
        XCTAssertEqual(Set(wills.map(\.payloadString)), ["3 timed out", "31 timed out", "5 timed out"])
        XCTAssertEqual(wills.count, 3)

        XCTAssertFalse(slow.isClosed)
        assertClosedInTime(harness.closeTimes([slow], since: start), after: 15, "(keep alive 10)")
        XCTAssertEqual(slow.receivedPackets(), [.disconnect(DisconnectPacket(reasonCode: .keepAliveTimeout))])
        XCTAssertFalse(watcher.isClosed, "keep alive 0 must not time out")
    }

    func testPingreqKeepsConnectionAliveAndPingrespBytes() {
        // [MQTT-3.12.4-1] Each PINGREQ is answered with PINGRESP, exactly d0 00, and any packet
        // resets the keep-alive timer; keep alive 0 turns the timer off.
        let harness = EngineHarness()
        let raw3 = harness.connect(version: .v3_1_1)
        raw3.send(connectBytes("ping-3", .v3_1_1, keepAlive: 1))
        XCTAssertEqual(raw3.receivedBytes(), [0x20, 0x02, 0x00, 0x00])
        let raw5 = harness.connect(version: .v5)
        raw5.send(connectBytes("ping-5", .v5, keepAlive: 1))
        XCTAssertEqual(raw5.receivedBytes().first, 0x20)
        let idle = harness.connect()
        idle.connectAccepted("idle-0", version: .v3_1_1, keepAlive: 0)

        // A PINGREQ every 1.4 s: always just before 1.5 × keep alive runs out.
        for round in 0..<5 {
            harness.advance(by: .milliseconds(1_400))
            for raw in [raw3, raw5] {
                raw.send([0xC0, 0x00])
                let answer = raw.receivedBytes()
                XCTAssertEqual(answer, [0xD0, 0x00], "round \(round): PINGRESP bytes \(hex(answer))")
            }
        }
        // 7 s of life on a 1 s keep alive, thanks to the pings.
        XCTAssertFalse(raw3.isClosed, "pinged connection must stay open")
        XCTAssertFalse(raw5.isClosed, "pinged connection must stay open")
        // Silence now: closed 1.5 × keep alive after the last PINGREQ.
        assertClosedInTime(harness.closeTimes([raw3, raw5]), after: 1.5, "after the last PINGREQ")
        // 3.1.1 has no DISCONNECT from the server: the socket just closes.
        XCTAssertEqual(raw3.receivedBytes(), [])
        XCTAssertEqual(raw5.receivedPackets(), [.disconnect(DisconnectPacket(reasonCode: .keepAliveTimeout))])
        // Keep alive 0: never timed out.
        harness.advance(by: .seconds(3_600))
        XCTAssertFalse(idle.isClosed, "keep alive 0 must not time out")
        idle.send(.pingreq)
        XCTAssertEqual(idle.receivedPackets(), [.pingresp])
    }

    func testAnyPacketResetsKeepAliveTimer() {
        // Not just PINGREQ: any control packet from the client counts (spec 3.1.2.10).
        let harness = EngineHarness()
        let client = harness.connect()
        client.connectAccepted("busy", keepAlive: 1)
        for index in 0..<4 {
            harness.advance(by: .milliseconds(1_400))
            client.publish("busy/t", "\(index)")
        }
        harness.advance(by: .milliseconds(1_400))
        client.subscribe("busy/s", packetID: 2)
        XCTAssertFalse(client.isClosed, "a packet every 1.4 s keeps a 1 s keep alive open")
        // The timer was running: silence closes it.
        assertClosedInTime(harness.closeTimes([client]), after: 1.5, "after the last packet")
    }

    /// An unfinished packet is not activity [MQTT-3.1.2-22]: dripping one byte at a time does
    /// not keep a connection alive.
    func testPartialPacketIsNotActivity() {
        let harness = EngineHarness()
        let client = harness.connect()
        client.connectAccepted("drip", keepAlive: 2)
        let start = harness.now
        var publish = ByteBufferAllocator().buffer(capacity: 32)
        PacketEncoder.encode(.publish(PublishPacket(topic: "t", payload: bytes("0123456789"))), version: .v5, into: &publish)
        var sent = 0
        while sent < publish.readableBytes - 1, !client.isClosed {
            harness.advance(by: .milliseconds(500))
            client.send(publish.getSlice(at: sent, length: 1)!)
            sent += 1
        }
        XCTAssertTrue(client.isClosed, "a connection that sent no complete packet for 3 s stays open")
        let elapsed = Double((harness.now - start).nanoseconds) / 1e9
        XCTAssertLessThanOrEqual(elapsed, 3 + sweep + 0.5, "closed long after 1.5 × keep alive")
    }

    func testMaxKeepaliveSendsServerKeepAliveToV5AndEnforcesIt() {
        // max_keepalive 1: a v5 client asking for more (or for 0) gets Server Keep Alive 1, which it
        // must use (the client rule MQTT-3.2.2-21); the broker enforces it [MQTT-3.1.2-22]. [MQTT-3.2.2-22] At or below it: no property.
        var configuration = BrokerConfiguration.defaults
        configuration.maxKeepalive = 1
        let harness = EngineHarness(configuration: configuration)
        let start = harness.now
        let above = harness.connect()
        XCTAssertEqual(above.connectAccepted("mka-60", keepAlive: 60)?.properties.serverKeepAlive, 1)
        let zero = harness.connect()
        XCTAssertEqual(zero.connectAccepted("mka-0", keepAlive: 0)?.properties.serverKeepAlive, 1,
                       "keep alive 0 is above any max_keepalive (Mosquitto)")
        let equal = harness.connect()
        let equalAck = equal.connectAccepted("mka-1", keepAlive: 1)
        XCTAssertNotNil(equalAck)
        XCTAssertNil(equalAck?.properties.serverKeepAlive)
        assertClosedInTime(harness.closeTimes([above, zero, equal], since: start), after: 1.5,
                           "(the server keep alive, 1 s, must be enforced)")
    }

    func testMaxKeepaliveRefusesV3ClientsAboveIt() {
        // 3.1/3.1.1 cannot be told a server keep alive: Mosquitto answers CONNACK 0x02 (Identifier
        // rejected) to a keep alive above max_keepalive, and closes.
        var configuration = BrokerConfiguration.defaults
        configuration.maxKeepalive = 10
        let harness = EngineHarness(configuration: configuration)
        for version in [ProtocolVersion.v3_1, .v3_1_1] {
            let raw = harness.connect(version: version)
            raw.send(connectBytes("mka3-\(version.rawValue)", version, keepAlive: 11))
            let answer = raw.receivedBytes()
            XCTAssertEqual(answer, [0x20, 0x02, 0x00, 0x02], "\(version): \(hex(answer))")
            XCTAssertTrue(raw.isClosed)

            let ok = harness.connect(version: version)
            ok.connectAccepted("mka3-ok-\(version.rawValue)", version: version, keepAlive: 10)
            ok.disconnect()
        }
    }
}
