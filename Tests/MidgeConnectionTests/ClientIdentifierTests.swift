import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Client identifier rules: zero-length ids per version, generated / assigned ids,
/// `allow_zero_length_clientid` and `auto_id_prefix`.
final class ClientIdentifierTests: XCTestCase {
    private func exchange(_ broker: TestBroker, _ bytes: [UInt8]) async throws -> (bytes: [UInt8], closed: Bool) {
        let raw = try await RawConnection.connect(broker)
        try await raw.send(bytes)
        let result = await raw.readUntilClose(timeout: 2)
        await raw.close()
        return result
    }

    func testV311EmptyClientIDWithCleanSessionIsAcceptedWithUniqueGeneratedID() async throws {
        // [3.1.1:MQTT-3.1.3-6] A zero-byte ClientId with CleanSession 1 is accepted: the server assigns a unique id.
        let broker = try startBroker()
        let raw = try await RawConnection.connect(broker)
        try await raw.send(connectBytes("", .v3_1_1, cleanStart: true))
        let connack = await raw.readPacket()
        XCTAssertEqual(connack, [0x20, 0x02, 0x00, 0x00], hex(connack ?? []))
        await raw.close()

        // Two such clients at once get different ids: neither takes the other over, both work.
        let (first, _) = try await connectAccepted(broker, "", version: .v3_1_1)
        let (second, _) = try await connectAccepted(broker, "", version: .v3_1_1)
        for (index, client) in [first, second].enumerated() {
            try await subscribe(client, "gen/\(index)")
            try await client.send(.publish(PublishPacket(topic: "gen/\(index)", payload: ByteBuffer(text: "self \(index)"))))
            guard let echo = await expectPublish(client) else { return }
            XCTAssertEqual(echo.payload.text, "self \(index)")
        }
        XCTAssertTrue(first.isActive && second.isActive, "generated ids must be unique")
        XCTAssertEqual(broker.broker.connectedClientCount, 2)
        try await disconnect(first)
        try await disconnect(second)
    }

    func testV311EmptyClientIDWithCleanSessionZeroIsRejected() async throws {
        // [3.1.1:MQTT-3.1.3-8] Zero-byte ClientId with CleanSession 0: CONNACK 0x02 (Identifier rejected), close.
        let broker = try startBroker()
        let (bytes, closed) = try await exchange(broker, connectBytes("", .v3_1_1, cleanStart: false))
        XCTAssertEqual(bytes, [0x20, 0x02, 0x00, 0x02], hex(bytes))
        XCTAssertTrue(closed)
        XCTAssertEqual(broker.broker.sessionCount, 0)
    }

    func testV31EmptyClientIDIsRejected() async throws {
        // MQTT 3.1 requires a client id of at least one character: CONNACK 0x02 then close (Mosquitto).
        let broker = try startBroker()
        for clean in [true, false] {
            let (bytes, closed) = try await exchange(broker, connectBytes("", .v3_1, cleanStart: clean))
            XCTAssertEqual(bytes, [0x20, 0x02, 0x00, 0x02], "clean \(clean): \(hex(bytes))")
            XCTAssertTrue(closed)
        }
    }

    func testV5EmptyClientIDGetsAssignedClientIdentifier() async throws {
        // [MQTT-3.1.3-6] [MQTT-3.1.3-7] [MQTT-3.2.2-16] The server assigns an id and returns it
        // as Assigned Client Identifier; the session really has that id.
        let broker = try startBroker()
        let (client, connack) = try await connectAccepted(broker, "", sessionExpiry: 60)
        guard let assigned = connack.properties.assignedClientIdentifier else {
            return XCTFail("no Assigned Client Identifier in CONNACK: \(connack)")
        }
        XCTAssertTrue(assigned.hasPrefix("auto-"), "default auto_id_prefix: \(assigned)")
        XCTAssertGreaterThan(assigned.count, "auto-".count)
        XCTAssertNotNil(broker.broker.session(clientID: assigned))
        try await subscribe(client, "assigned/t")
        try await disconnect(client)

        let (again, resumed) = try await connectAccepted(broker, assigned, cleanStart: false, sessionExpiry: 60)
        XCTAssertTrue(resumed.sessionPresent, "reconnecting with the assigned id resumes its session")
        XCTAssertNil(resumed.properties.assignedClientIdentifier, "only assigned for a zero-length id")
        try await disconnect(again)

        // Each zero-length client gets its own id.
        let (other, otherAck) = try await connectAccepted(broker, "")
        XCTAssertNotNil(otherAck.properties.assignedClientIdentifier)
        XCTAssertNotEqual(otherAck.properties.assignedClientIdentifier, assigned)
        try await disconnect(other)
    }

    func testZeroLengthClientIDRefusedWhenNotAllowed() async throws {
        // allow_zero_length_clientid false: the id is rejected: 3.1.1 CONNACK 0x02 [3.1.1:MQTT-3.1.3-9], v5 CONNACK 0x80
        // [MQTT-3.1.3-8] (0x85 is the spec's suggestion, a MAY; Mosquitto answers 0x80: 01-connect-zero-length-id).
        let broker = try startBroker { $0.security.allowZeroLengthClientID = false }
        let (v3, v3Closed) = try await exchange(broker, connectBytes("", .v3_1_1))
        XCTAssertEqual(v3, [0x20, 0x02, 0x00, 0x02], hex(v3))
        XCTAssertTrue(v3Closed)

        let (client, connack) = try await broker.connect("")
        XCTAssertEqual(connack.reasonCode, .unspecifiedError)
        XCTAssertFalse(connack.sessionPresent)
        XCTAssertNil(connack.properties.assignedClientIdentifier)
        await expectDisconnect(client, reason: nil, "after CONNACK 0x80")

        // Non-empty ids are unaffected.
        let (named, _) = try await connectAccepted(broker, "named")
        try await disconnect(named)
    }

    func testAutoIDPrefixIsHonoured() async throws {
        // auto_id_prefix is the prefix of generated ids.
        let broker = try startBroker { $0.security.autoIDPrefix = "pfx-" }
        let (client, connack) = try await connectAccepted(broker, "")
        let assigned = connack.properties.assignedClientIdentifier ?? ""
        XCTAssertTrue(assigned.hasPrefix("pfx-") && assigned.count > 4, "assigned id: '\(assigned)'")
        try await disconnect(client)
    }

    func testLongAndUnicodeClientIDsAreAccepted() async throws {
        // 3.1.1 and 5.0 servers MAY accept ids longer than 23 bytes and any UTF-8 (Mosquitto does).
        let broker = try startBroker()
        for version in [ProtocolVersion.v3_1_1, .v5] {
            for id in [String(repeating: "x", count: 200), "client-ü-✓-\u{1F600}"] {
                let (client, connack) = try await broker.connect(id, version: version)
                XCTAssertEqual(connack.reasonCode, .success, "\(version) id \(id.prefix(20))")
                XCTAssertNotNil(broker.broker.session(clientID: id))
                try await disconnect(client)
            }
        }
    }
}
