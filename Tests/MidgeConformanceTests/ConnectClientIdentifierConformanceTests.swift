import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Client identifiers in CONNECT: the ids every server must accept, zero-length ids (assigned by
/// the broker, returned to v5 clients), and refused ids (v5 0x85, 3.1.1 return code 2, then close).
final class ConnectClientIdentifierConformanceTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker() }

    // [MQTT-3.1.3-5] [3.1.1:MQTT-3.1.3-5]
    func testIdsOfOneTo23AlphanumericCharactersAreAccepted() async throws {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        var ids = ["a", "Z", "0", "09", String(alphabet.prefix(23))]
        for start in stride(from: 0, to: alphabet.count, by: 23) {
            ids.append(String(alphabet[start..<min(start + 23, alphabet.count)]))
        }
        for version in [ProtocolVersion.v3_1_1, .v5] {
            for id in ids {
                let (client, connack) = try await connectAccepted(broker, id, version: version)
                XCTAssertEqual(connack.reasonCode, .success, "'\(id)' (\(version))")
                XCTAssertNil(connack.properties.assignedClientIdentifier, "the client's own id is kept (\(version))")
                XCTAssertNotNil(broker.broker.session(clientID: id), "'\(id)' (\(version))")
                try await disconnect(client)
            }
        }
    }

    // [MQTT-3.1.3-6] [MQTT-3.1.3-7] [MQTT-3.2.2-16]
    func testV5ZeroLengthIdIsAssignedAndReturned() async throws {
        var assigned: Set<String> = []
        var clients: [PacketConnection] = []
        for index in 0..<5 {
            // Clean Start 0 with a Session Expiry too: the broker processes the CONNECT under the new id.
            let (client, connack) = try await connectAccepted(broker, "", cleanStart: index % 2 == 0, sessionExpiry: 60)
            guard let id = connack.properties.assignedClientIdentifier else {
                XCTFail("CONNACK must carry an Assigned Client Identifier")
                continue
            }
            XCTAssertFalse(id.isEmpty)
            XCTAssertFalse(connack.sessionPresent, "a new id has no stored session")
            XCTAssertTrue(broker.broker.session(clientID: id)?.isOnline == true, "the session lives under the assigned id")
            assigned.insert(id)
            clients.append(client)
        }
        XCTAssertEqual(assigned.count, 5, "every assigned id is new: \(assigned)")
        // Processed as if the client had given that id: its session can be resumed by that id.
        let (client, connack) = try await connectAccepted(broker, "", sessionExpiry: 60)
        let id = try XCTUnwrap(connack.properties.assignedClientIdentifier)
        XCTAssertFalse(assigned.contains(id))
        try await subscribe(client, "assigned/t", qos: .atLeastOnce)
        try await disconnect(client)
        let (resumed, again) = try await connectAccepted(broker, id, cleanStart: false, sessionExpiry: 60)
        XCTAssertTrue(again.sessionPresent, "the session of the assigned id is resumed with that id")
        XCTAssertNil(again.properties.assignedClientIdentifier, "no id is assigned to a client that gave one")
        try await disconnect(resumed)
        for client in clients { await client.close() }
    }

    // [3.1.1:MQTT-3.1.3-6]
    func testV311ZeroLengthIdWithCleanSessionGetsAUniqueId() async throws {
        // Two at once: neither takes the other over, both are served.
        let (first, connack1) = try await connectAccepted(broker, "", version: .v3_1_1)
        let (second, connack2) = try await connectAccepted(broker, "", version: .v3_1_1)
        XCTAssertFalse(connack1.sessionPresent || connack2.sessionPresent)
        XCTAssertEqual(broker.broker.connectedClientCount, 2)
        try await subscribe(first, "v3/anon/1", qos: .atLeastOnce)
        try await subscribe(second, "v3/anon/2", qos: .atLeastOnce)
        try await publish(first, "v3/anon/2", "to second", qos: .atLeastOnce)
        let delivered = await expectPublish(second)
        XCTAssertEqual(delivered?.payload.text, "to second")
        await expectNothing(first, for: 0.2, "the first client was not taken over")
        try await disconnect(first)
        try await disconnect(second)
    }

    // [3.1.1:MQTT-3.1.3-8] [3.1.1:MQTT-3.2.2-4] [3.1.1:MQTT-3.2.2-5]
    func testV311ZeroLengthIdWithCleanSessionZeroIsRejected() async throws {
        let (received, closed) = try await sectionASend(broker, sectionAConnect311(flags: 0x00, payload: mqttString("")))
        XCTAssertTrue(closed)
        XCTAssertEqual(received, [0x20, 0x02, 0x00, 0x02], "Identifier rejected, Session Present 0: \(hex(received))")
        XCTAssertEqual(broker.broker.connectedClientCount, 0)
    }

    // [MQTT-3.1.3-8] [MQTT-3.2.2-7] [3.1.1:MQTT-3.1.3-9] [3.1.1:MQTT-3.2.2-5] [MQTT-3.2.2-8]
    func testRejectedIdGetsIdentifierNotValidThenClose() async throws {
        broker = try startBroker { $0.security.allowZeroLengthClientID = false }
        let (v5, closed5) = try await sectionASend(broker, rawConnect(payload: mqttString("")))
        XCTAssertTrue(closed5)
        // 0x85 is what the spec suggests (a MAY); Mosquitto answers 0x80 Unspecified error, and so
        // does Midge (01-connect-zero-length-id).
        XCTAssertEqual(Array(v5.prefix(4)), [0x20, v5.count > 1 ? v5[1] : 0, 0x00, 0x80], "v5 CONNACK 0x80: \(hex(v5))")
        XCTAssertEqual(RawConnection.completePacketLength(v5), v5.count, "nothing after the CONNACK")
        let (v3, closed3) = try await sectionASend(broker, sectionAConnect311(flags: 0x02, payload: mqttString("")))
        XCTAssertTrue(closed3)
        XCTAssertEqual(v3, [0x20, 0x02, 0x00, 0x02], "3.1.1 return code 2: \(hex(v3))")
        try await assertBrokerServes(broker)
    }
    // [MQTT-3.1.3-2] [3.1.1:MQTT-3.1.3-2]
    func testIdsAreComparedByteForByteNotByUnicodeEquivalence() async throws {
        // "café" precomposed and decomposed, and Å as a letter and as the Angstrom sign, are equal
        // as Swift strings but different client ids: no takeover, separate sessions.
        for version in [ProtocolVersion.v3_1_1, .v5] {
            for (first, second) in [("caf\u{E9}\(version.rawValue)", "cafe\u{301}\(version.rawValue)"),
                                    ("\u{C5}\(version.rawValue)", "\u{212B}\(version.rawValue)")] {
                let (a, _) = try await connectAccepted(broker, first, version: version)
                let (b, _) = try await connectAccepted(broker, second, version: version)
                await expectNothing(a, for: 0.2, "'\(second)' did not take '\(first)' over (\(version))")
                XCTAssertEqual(broker.broker.connectedClientCount, 2, "\(version)")
                try await subscribe(a, "eq/\(version.rawValue)/a", qos: .atLeastOnce)
                try await subscribe(b, "eq/\(version.rawValue)/b", qos: .atLeastOnce)
                try await publish(b, "eq/\(version.rawValue)/a", "to a", qos: .atLeastOnce)
                let delivered = await expectPublish(a)
                XCTAssertEqual(delivered?.payload.text, "to a")
                try await disconnect(a)
                try await disconnect(b)
            }
        }
    }
}
