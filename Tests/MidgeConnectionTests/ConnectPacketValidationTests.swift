import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// CONNECT / CONNACK over real sockets: protocol name and level, CONNECT first and only once,
/// reserved bits, and malformed CONNECT packets (v5: CONNACK with the reason, then close; v3:
/// just close). Byte-exact where the spec fixes the bytes.
final class ConnectPacketValidationTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker() }

    /// Sends `bytes` on a new connection; returns everything received until the broker closed it.
    private func exchange(_ bytes: [UInt8], _ context: String, file: StaticString = #filePath, line: UInt = #line) async throws -> [UInt8] {
        let raw = try await RawConnection.connect(broker)
        try await raw.send(bytes)
        let (received, closed) = await raw.readUntilClose(timeout: 4)
        XCTAssertTrue(closed, "broker must close the connection: \(context)", file: file, line: line)
        await raw.close()
        return received
    }

    // MARK: Accepted CONNECT

    func testAcceptedConnAckBytesForEveryVersion() async throws {
        // 3.1 and 3.1.1: CONNACK is exactly 20 02 00 00 for a new session.
        for version in [ProtocolVersion.v3_1, .v3_1_1] {
            let raw = try await RawConnection.connect(broker)
            try await raw.send(connectBytes("ok-\(version.rawValue)", version))
            let connack = await raw.readPacket()
            XCTAssertEqual(connack, [0x20, 0x02, 0x00, 0x00], "CONNACK for \(version): \(hex(connack ?? []))")
            await raw.close()
        }
        // 5.0: flags 0, reason 0x00, then properties.
        let raw = try await RawConnection.connect(broker)
        try await raw.send(connectBytes("ok-5", .v5))
        let connack = await raw.readPacket() ?? []
        XCTAssertGreaterThanOrEqual(connack.count, 5, hex(connack))
        XCTAssertEqual(connack.first, 0x20)
        XCTAssertEqual(Array(connack.dropFirst(2).prefix(2)), [0x00, 0x00], "session present 0, reason Success: \(hex(connack))")
        await raw.close()
    }

    func testV5PasswordWithoutUserNameIsAccepted() async throws {
        // 5.0 allows a password without a user name (spec 3.1.2.9), unlike 3.1.1 (its client rule MQTT-3.1.2-22).
        let bytes = rawConnect(flags: 0x42, payload: mqttString("pw-only") + mqttBinary([1, 2, 3]))
        let raw = try await RawConnection.connect(broker)
        try await raw.send(bytes)
        let connack = await raw.readPacket() ?? []
        XCTAssertEqual(Array(connack.prefix(4).dropFirst(2)), [0x00, 0x00], "CONNACK \(hex(connack))")
        await raw.close()
    }

    // MARK: Protocol name and level

    func testUnknownProtocolLevelGetsConnAckReturnCode1ThenClose() async throws {
        // [MQTT-3.1.2-2] [3.1.1:MQTT-3.1.2-2] An unsupported level is answered with the 3.1.1 CONNACK 0x01
        // (Mosquitto's answer whatever the level), then the connection is closed.
        let v311 = connectBytes("lvl", .v3_1_1)
        let levelIndex = 2 + "MQTT".mqttEncodedLength
        for level: UInt8 in [0, 1, 2, 6, 7, 0x84, 0xFF] {
            var bytes = v311
            bytes[levelIndex] = level
            let received = try await exchange(bytes, "level \(level)")
            XCTAssertEqual(received, [0x20, 0x02, 0x00, 0x01], "level \(level): \(hex(received))")
        }
        // "MQIsdp" is only level 3; "MQTT" is never level 3.
        var mqisdp = connectBytes("lvl", .v3_1)
        mqisdp[2 + "MQIsdp".mqttEncodedLength] = 4
        var received = try await exchange(mqisdp, "MQIsdp level 4")
        XCTAssertEqual(received, [0x20, 0x02, 0x00, 0x01], "MQIsdp level 4: \(hex(received))")
        var mqtt3 = v311
        mqtt3[levelIndex] = 3
        received = try await exchange(mqtt3, "MQTT level 3")
        XCTAssertEqual(received, [0x20, 0x02, 0x00, 0x01], "MQTT level 3: \(hex(received))")
        try await assertBrokerServes(broker)
    }

    func testWrongProtocolNameClosesWithoutConnAck() async throws {
        // [MQTT-3.1.2-1] [3.1.1:MQTT-3.1.2-1] A protocol name other than "MQTT" ("MQIsdp" for 3.1): the Server MAY
        // disconnect; Mosquitto closes without CONNACK.
        for name in ["MQTX", "mqtt", "MQTT ", "MQ", "", "MQIsdP"] {
            for level: UInt8 in [3, 4, 5] {
                let bytes = rawConnect(name: name, level: level, properties: level == 5 ? [] : nil, payload: mqttString("name"))
                let received = try await exchange(bytes, "name '\(name)' level \(level)")
                XCTAssertEqual(received, [], "name '\(name)' level \(level): \(hex(received))")
            }
        }
        try await assertBrokerServes(broker)
    }

    // MARK: CONNECT first, and only once

    func testFirstPacketOtherThanConnectIsClosed() async throws {
        // The client rule MQTT-3.1.0-1: the first packet must be CONNECT; otherwise the broker closes.
        let packets: [(String, [UInt8])] = [
            ("PINGREQ", [0xC0, 0x00]),
            ("PUBLISH", rawPacket(0x30, mqttString("a/b") + Array("x".utf8))),
            ("PUBLISH QoS 1", rawPacket(0x32, mqttString("a/b") + [0x00, 0x01] + Array("x".utf8))),
            ("SUBSCRIBE", rawPacket(0x82, [0x00, 0x01] + mqttString("#") + [0x00])),
            ("UNSUBSCRIBE", rawPacket(0xA2, [0x00, 0x01] + mqttString("#"))),
            ("PUBACK", [0x40, 0x02, 0x00, 0x01]),
            ("DISCONNECT", [0xE0, 0x00]),
            ("CONNACK", [0x20, 0x02, 0x00, 0x00]),
            ("AUTH", [0xF0, 0x00]),
            ("reserved type 0", [0x00, 0x00]),
            ("garbage", [0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
        ]
        for (name, bytes) in packets {
            let received = try await exchange(bytes, name)
            XCTAssertEqual(received, [], "\(name) as first packet: \(hex(received))")
        }
        try await assertBrokerServes(broker)
    }

    func testSecondConnectIsProtocolErrorAndCloses() async throws {
        // [MQTT-3.1.0-2] [3.1.1:MQTT-3.1.0-2] A second CONNECT is a Protocol Error: the connection is
        // closed, without DISCONNECT in v5 too, as Mosquitto does (01-connect-duplicate).
        for version in [ProtocolVersion.v3_1, .v3_1_1, .v5] {
            let (client, _) = try await connectAccepted(broker, "twice-\(version.rawValue)", version: version)
            try await client.send(.connect(ConnectPacket(protocolVersion: version, clientID: "twice-\(version.rawValue)")))
            await expectDisconnect(client, reason: nil, "second CONNECT (\(version))")
        }
        // Also when the second CONNECT names another client id.
        let (client, _) = try await connectAccepted(broker, "twice-other")
        try await client.send(.connect(ConnectPacket(clientID: "someone-else")))
        await expectDisconnect(client, reason: nil, "second CONNECT with another id")
        XCTAssertNil(broker.broker.session(clientID: "someone-else"), "the second CONNECT must not open a session")
        try await assertBrokerServes(broker)
    }

    // MARK: Reserved bits and malformed CONNECT

    func testConnectFixedHeaderFlagsMustBeZero() async throws {
        // [MQTT-2.1.3-1] [3.1.1:MQTT-2.2.2-2] CONNECT's fixed header flags are reserved (0000): anything else is malformed.
        for version in [ProtocolVersion.v3_1_1, .v5] {
            for flags: UInt8 in [0x01, 0x02, 0x08] {
                var bytes = connectBytes("fh", version)
                bytes[0] |= flags
                let received = try await exchange(bytes, "CONNECT flags \(flags) (\(version))")
                // No accepting CONNACK; at most a refusing one.
                if !received.isEmpty {
                    XCTAssertEqual(received.first, 0x20, hex(received))
                    XCTAssertNotEqual(received.count >= 4 ? received[3] : 0, 0x00, "must not accept: \(hex(received))")
                }
            }
        }
        try await assertBrokerServes(broker)
    }

    func testReservedConnectFlagV311ClosesWithoutConnAck() async throws {
        // [3.1.1:MQTT-3.1.2-3] The reserved connect flag must be 0; otherwise a Malformed Packet: close.
        var bytes = connectBytes("rsv", .v3_1_1)
        bytes[connectFlagsIndex(.v3_1_1)] |= 0x01
        let received = try await exchange(bytes, "reserved flag 3.1.1")
        XCTAssertEqual(received, [], hex(received))
        XCTAssertNil(broker.broker.session(clientID: "rsv"))
    }

    func testReservedConnectFlagV5ClosesWithoutConnAck() async throws {
        // [MQTT-3.1.2-3] v5: a Malformed Packet; closed without CONNACK, as Mosquitto (v5 would allow
        // a CONNACK 0x81 first).
        var bytes = connectBytes("rsv5", .v5)
        bytes[connectFlagsIndex(.v5)] |= 0x01
        let received = try await exchange(bytes, "reserved flag v5")
        XCTAssertEqual(received, [], hex(received))
        XCTAssertNil(broker.broker.session(clientID: "rsv5"))
    }

    func testMalformedV5ConnectClosesWithoutConnAck() async throws {
        let id = mqttString("bad5")
        let will = rawProperties([]) + mqttString("will/t") + mqttBinary(Array("w".utf8))
        // [MQTT-3.1.4-1] A CONNECT that breaks section 3.1 is closed without CONNACK, as Mosquitto
        // does (the reason listed is the one v5 would allow in a CONNACK).
        let cases: [(String, [UInt8], UInt8)] = [
            // Will QoS 3 is malformed (spec 3.1.2.6; the client rule MQTT-3.1.2-12).
            ("will QoS 3", rawConnect(flags: 0x02 | 0x04 | 0x18, payload: id + will), 0x81),
            // Will QoS must be 0 without a will (the client rule MQTT-3.1.2-11).
            ("will QoS without will flag", rawConnect(flags: 0x02 | 0x08, payload: id), 0x81),
            // Will Retain must be 0 without a will (the client rule MQTT-3.1.2-13).
            ("will retain without will flag", rawConnect(flags: 0x02 | 0x20, payload: id), 0x81),
            // Spec 2.2.2.2: a property twice is a Protocol Error.
            ("duplicate Session Expiry Interval", rawConnect(properties: [0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2], payload: id), 0x82),
            // Spec 2.2.2.2: an identifier not valid for CONNECT is a Malformed Packet.
            ("Topic Alias in CONNECT", rawConnect(properties: [0x23, 0x00, 0x01], payload: id), 0x81),
            ("unknown property 0x7F", rawConnect(properties: [0x7F, 0x00], payload: id), 0x81),
            // Spec 3.1.2.11.3 / 3.1.2.11.4 / 3.1.2.11.7: zero Receive Maximum or Maximum Packet Size,
            // Request Problem Information other than 0/1 are Protocol Errors.
            ("Receive Maximum 0", rawConnect(properties: [0x21, 0x00, 0x00], payload: id), 0x82),
            ("Maximum Packet Size 0", rawConnect(properties: [0x27, 0, 0, 0, 0], payload: id), 0x82),
            ("Request Problem Information 2", rawConnect(properties: [0x17, 0x02], payload: id), 0x82),
            // [MQTT-1.5.4-1] [MQTT-1.5.4-2] ill-formed UTF-8 / U+0000 in the client id.
            ("client id with invalid UTF-8", rawConnect(payload: mqttBinary([0x61, 0xC3, 0x28])), 0x81),
            ("client id with U+0000", rawConnect(payload: mqttBinary([0x61, 0x00, 0x62])), 0x81),
            ("client id with a surrogate", rawConnect(payload: mqttBinary([0xED, 0xA0, 0x80])), 0x81),
            // Truncated packets: the remaining length ends inside a field.
            ("truncated before client id", rawConnect(payload: []), 0x81),
            ("client id longer than packet", rawConnect(payload: [0x00, 0x10, 0x61]), 0x81),
            ("property length beyond packet", rawConnect(properties: nil, payload: [0x20] + id), 0x81),
            ("will without will payload", rawConnect(flags: 0x06, payload: id + rawProperties([]) + mqttString("will/t")), 0x81),
            ("user name flag without user name", rawConnect(flags: 0x82, payload: id), 0x81),
            // Trailing bytes after the last field.
            ("trailing bytes", rawConnect(payload: id + [0x01, 0x02]), 0x81),
            // The Will Topic is a Topic Name (spec 3.1.3.3): no wildcards.
            ("will topic with wildcard", rawConnect(flags: 0x06, payload: id + rawProperties([]) + mqttString("will/#") + mqttBinary([0x77])), 0x90),
            // Will properties: a property not allowed in a will (Session Expiry Interval).
            ("Session Expiry in will properties", rawConnect(flags: 0x06, payload: id + rawProperties([0x11, 0, 0, 0, 1]) + mqttString("w") + mqttBinary([0x77])), 0x81),
        ]
        for (name, bytes, reason) in cases {
            let received = try await exchange(bytes, name)
            XCTAssertEqual(received, [], "\(name) (0x\(String(reason, radix: 16))): \(hex(received))")
        }
        XCTAssertNil(broker.broker.session(clientID: "bad5"))
        try await assertBrokerServes(broker)
    }

    func testMalformedV3ConnectClosesWithoutConnAck() async throws {
        // [3.1.1:MQTT-3.1.4-1] 3.1.1 has no reason codes for these: the server closes the connection
        // without a CONNACK.
        let id = mqttString("bad3")
        let will = mqttString("will/t") + mqttBinary(Array("w".utf8))
        for (name, level) in [("MQTT", UInt8(4)), ("MQIsdp", UInt8(3))] {
            let cases: [(String, [UInt8])] = [
                ("will QoS 3", rawConnect(name: name, level: level, flags: 0x02 | 0x04 | 0x18, properties: nil, payload: id + will)),
                ("will QoS without will flag", rawConnect(name: name, level: level, flags: 0x02 | 0x10, properties: nil, payload: id)),
                ("will retain without will flag", rawConnect(name: name, level: level, flags: 0x02 | 0x20, properties: nil, payload: id)),
                ("client id with invalid UTF-8", rawConnect(name: name, level: level, properties: nil, payload: mqttBinary([0xFF]))),
                ("client id with U+0000", rawConnect(name: name, level: level, properties: nil, payload: mqttBinary([0x00]))),
                ("truncated", rawConnect(name: name, level: level, properties: nil, payload: [0x00])),
                ("trailing bytes", rawConnect(name: name, level: level, properties: nil, payload: id + [0x00])),
                ("will topic with wildcard", rawConnect(name: name, level: level, flags: 0x06, properties: nil, payload: id + mqttString("a/+") + mqttBinary([1]))),
            ]
            for (what, bytes) in cases {
                let received = try await exchange(bytes, "\(what) (\(name))")
                XCTAssertEqual(received, [], "\(what) (\(name)): \(hex(received))")
            }
        }
        // 3.1.1: password flag without user name flag (the client rule MQTT-3.1.2-22).
        let received = try await exchange(rawConnect(name: "MQTT", level: 4, flags: 0x42, properties: nil, payload: id + mqttBinary([1])),
                                          "password without user name")
        XCTAssertEqual(received, [], hex(received))
        XCTAssertNil(broker.broker.session(clientID: "bad3"))
        try await assertBrokerServes(broker)
    }

    func testConnectSplitAcrossManySegmentsIsAccepted() async throws {
        // The decoder must reassemble a CONNECT that arrives one byte at a time.
        let raw = try await RawConnection.connect(broker)
        for byte in connectBytes("slow", .v3_1_1) {
            try await raw.send([byte])
        }
        let connack = await raw.readPacket()
        XCTAssertEqual(connack, [0x20, 0x02, 0x00, 0x00], hex(connack ?? []))
        await raw.close()
    }

    func testV5AuthenticationMethodWithoutAuthPluginIsRefused() async throws {
        // Enhanced authentication (spec 4.12) with a method the server does not support: CONNACK
        // 0x8C (Bad authentication method) and close, as Mosquitto without an auth plugin.
        var properties = Properties()
        properties.authenticationMethod = "SCRAM-SHA-1"
        let (client, connack) = try await broker.connect("auth-method", properties: properties)
        XCTAssertEqual(connack.reasonCode, .badAuthenticationMethod)
        XCTAssertNil(connack.properties.authenticationMethod)
        await expectDisconnect(client, reason: nil, "after CONNACK 0x8C")
        XCTAssertNil(broker.broker.session(clientID: "auth-method"))
    }

    func testSecondConnectPipelinedBehindFirstIsProtocolError() async throws {
        // [MQTT-3.1.0-2] Also when the second CONNECT arrives in the same segment as the first, before
        // the CONNACK (while a stored session is being resumed): CONNACK, then the close (no DISCONNECT,
        // as Mosquitto).
        let (stored, _) = try await connectAccepted(broker, "piped-twice", cleanStart: false, sessionExpiry: 60)
        try await disconnect(stored)
        for cleanStart in [false, true] {
            let client = try await broker.rawConnection(version: .v5)
            let connect = connectBytes("piped-twice", .v5, cleanStart: cleanStart, properties: sessionExpiry(60))
            try await client.send(bytes: connect + connect)
            let packets = await expectClose(client)
            guard packets.count == 1, case .connack(let connack) = packets[0] else {
                XCTFail("expected CONNACK then the close, got \(packets)")
                continue
            }
            XCTAssertEqual(connack.reasonCode, .success)
        }
        try await assertBrokerServes(broker)
    }
}
