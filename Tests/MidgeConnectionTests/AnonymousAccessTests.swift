import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// `allow_anonymous false`: a client without a user name is refused (3.1/3.1.1: CONNACK 0x05,
/// 5.0: CONNACK 0x87), and a refused CONNACK never reports a session.
final class AnonymousAccessTests: XCTestCase {
    var broker: TestBroker!

    // Users log in with a password: without a password file, Mosquitto (and Midge) refuse every
    // client under allow_anonymous false (01-connect-uname-or-anon).
    override func setUpWithError() throws { broker = try startBroker(users: ["alice": "pw", "bob": "pw"]) }

    func testAnonymousV3ClientRefusedWithReturnCode5() async throws {
        for version in [ProtocolVersion.v3_1, .v3_1_1] {
            let raw = try await RawConnection.connect(broker)
            try await raw.send(connectBytes("anon-\(version.rawValue)", version))
            let (bytes, closed) = await raw.readUntilClose(timeout: 2)
            // [3.1.1:MQTT-3.2.2-5] A refusing CONNACK, then the close.
            XCTAssertEqual(bytes, [0x20, 0x02, 0x00, 0x05], "\(version): \(hex(bytes))")
            XCTAssertTrue(closed, "\(version): connection must close after a refusal")
            await raw.close()
        }
        XCTAssertEqual(broker.broker.sessionCount, 0)
    }

    func testAnonymousV5ClientRefusedWithNotAuthorized() async throws {
        let (client, connack) = try await broker.connect("anon-5")
        XCTAssertEqual(connack.reasonCode, .notAuthorized)
        XCTAssertFalse(connack.sessionPresent)
        // [MQTT-3.2.2-7] A non-zero reason code: the server closes the connection.
        await expectDisconnect(client, reason: nil, "after CONNACK 0x87")
        XCTAssertEqual(broker.broker.sessionCount, 0)
    }

    func testClientWithUserNameIsAccepted() async throws {
        for version in [ProtocolVersion.v3_1, .v3_1_1, .v5] {
            let (client, connack) = try await broker.connect("user-\(version.rawValue)", version: version, username: "alice",
                                                             password: Array("pw".utf8))
            XCTAssertEqual(connack.reasonCode, .success, "\(version)")
            try await disconnect(client)
        }
    }

    func testUserNameWithoutAPasswordFileIsRefused() async throws {
        // allow_anonymous false without a password file: nobody can log in, user name or not, as in
        // Mosquitto (01-connect-uname-or-anon). Return code 5, v5 0x87.
        let open = try startBroker(allowAnonymous: false)
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let (client, connack) = try await open.connect("nofile-\(version.rawValue)", version: version, username: "alice",
                                                           password: Array("pw".utf8))
            XCTAssertEqual(connack.reasonCode, .notAuthorized, "\(version)")
            if version == .v3_1_1 { XCTAssertEqual(connack.returnCode, .notAuthorized) }
            await expectClose(client)
        }
        XCTAssertEqual(open.broker.sessionCount, 0)
    }

    func testRefusedConnAckHasSessionPresentZero() async throws {
        // [3.1.1:MQTT-3.2.2-4] [MQTT-3.2.2-6] A refusing CONNACK has Session Present 0,
        // even when a stored session exists; the stored session is left alone.
        let (v3, _) = try await connectAccepted(broker, "stored-3", version: .v3_1_1, cleanStart: false, username: "bob", password: "pw")
        try await disconnect(v3)
        let raw = try await RawConnection.connect(broker)
        try await raw.send(connectBytes("stored-3", .v3_1_1, cleanStart: false))
        let (bytes, _) = await raw.readUntilClose(timeout: 2)
        XCTAssertEqual(bytes, [0x20, 0x02, 0x00, 0x05], hex(bytes))
        await raw.close()

        let (v5, _) = try await connectAccepted(broker, "stored-5", cleanStart: false, username: "bob", password: "pw", sessionExpiry: 60)
        try await disconnect(v5)
        let (refused, connack) = try await broker.connect("stored-5", cleanStart: false, properties: sessionExpiry(60))
        XCTAssertEqual(connack.reasonCode, .notAuthorized)
        XCTAssertFalse(connack.sessionPresent)
        await expectClose(refused)

        // The refused attempts did not disturb the stored sessions.
        let (back, backAck) = try await connectAccepted(broker, "stored-5", cleanStart: false, username: "bob", password: "pw", sessionExpiry: 60)
        XCTAssertTrue(backAck.sessionPresent)
        try await disconnect(back)
        let (back3, back3Ack) = try await connectAccepted(broker, "stored-3", version: .v3_1_1, cleanStart: false, username: "bob", password: "pw")
        XCTAssertTrue(back3Ack.sessionPresent)
        try await disconnect(back3)
    }
}
