import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// How long a session outlives its connection: the v5 Session Expiry Interval (from CONNECT, changed
/// by DISCONNECT) and, for 3.1/3.1.1 clean-session-0 clients, `persistent_client_expiration`.
final class SessionExpiryTests: XCTestCase {
    func testV5SessionKeptForExpiryIntervalThenDiscarded() async throws {
        // [MQTT-3.1.2-23] The session is stored after the connection closes while the Session Expiry
        // Interval runs, then discarded.
        let broker = try startBroker()
        var (client, _) = try await connectAccepted(broker, "exp1", cleanStart: true, sessionExpiry: 1)
        try await subscribe(client, "exp1/t")
        try await disconnect(client)
        let (publisher, _) = try await connectAccepted(broker, "exp1-pub")
        try await publish(publisher, "exp1/t", "kept", qos: .atLeastOnce)

        var connack: ConnAckPacket
        (client, connack) = try await connectAccepted(broker, "exp1", cleanStart: false, sessionExpiry: 1)
        XCTAssertTrue(connack.sessionPresent, "session must survive within its expiry interval")
        guard let queued = await expectPublish(client) else { return }
        XCTAssertEqual(queued.payload.text, "kept")
        try await acknowledge(queued, on: client)
        try await disconnect(client)

        let closedAt = Date()
        try await Task.sleep(nanoseconds: 600_000_000)
        XCTAssertNotNil(broker.broker.session(clientID: "exp1"), "session ended before its 1 s expiry")
        await eventually(within: 2.5, "session must end about 1 s after the connection closed") {
            broker.broker.session(clientID: "exp1") == nil
        }
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(closedAt), 0.9)

        try await publish(publisher, "exp1/t", "after expiry", qos: .atLeastOnce)
        (client, connack) = try await connectAccepted(broker, "exp1", cleanStart: false, sessionExpiry: 1)
        XCTAssertFalse(connack.sessionPresent, "expired session must be gone")
        await expectNothing(client, for: 0.3, "(the expired session's subscription is gone)")
        try await disconnect(client)
    }

    func testV5SessionExpiryZeroOrAbsentEndsSessionWithConnection() async throws {
        // Absent Session Expiry Interval means 0: the session ends when the connection closes
        // (spec 3.1.2.11.2), whether by DISCONNECT or by losing the socket.
        let broker = try startBroker()
        for (name, expiry) in [("absent", UInt32?.none), ("zero", UInt32?.some(0))] {
            for viaDisconnect in [true, false] {
                let id = "exp0-\(name)-\(viaDisconnect)"
                var (client, connack) = try await connectAccepted(broker, id, cleanStart: false, sessionExpiry: expiry)
                XCTAssertFalse(connack.sessionPresent)
                try await subscribe(client, "exp0/t")
                if viaDisconnect { try await disconnect(client) } else { await client.close() }
                await eventually(within: 2, "\(id): session must end with the connection") {
                    broker.broker.session(clientID: id) == nil
                }
                (client, connack) = try await connectAccepted(broker, id, cleanStart: false)
                XCTAssertFalse(connack.sessionPresent, "\(id): no session expected")
                try await disconnect(client)
            }
        }
    }

    func testV5DisconnectWithExpiryZeroEndsSessionAtOnce() async throws {
        // The DISCONNECT's Session Expiry Interval replaces the CONNECT's (spec 3.14.2.2.2).
        let broker = try startBroker()
        var (client, _) = try await connectAccepted(broker, "shorten", sessionExpiry: 60)
        try await subscribe(client, "shorten/t")
        try await disconnect(client, DisconnectPacket(properties: sessionExpiry(0)))
        await eventually(within: 1, "DISCONNECT with expiry 0 must end the session") {
            broker.broker.session(clientID: "shorten") == nil
        }
        var connack: ConnAckPacket
        (client, connack) = try await connectAccepted(broker, "shorten", cleanStart: false, sessionExpiry: 60)
        XCTAssertFalse(connack.sessionPresent)
        try await disconnect(client)
    }

    func testV5DisconnectCanExtendSessionExpiry() async throws {
        // CONNECT says 1 s, DISCONNECT says 60 s: the session outlives the first value.
        let broker = try startBroker()
        var (client, _) = try await connectAccepted(broker, "extend", sessionExpiry: 1)
        try await subscribe(client, "extend/t")
        try await disconnect(client, DisconnectPacket(properties: sessionExpiry(60)))
        try await Task.sleep(nanoseconds: 1_600_000_000)
        var connack: ConnAckPacket
        (client, connack) = try await connectAccepted(broker, "extend", cleanStart: false, sessionExpiry: 60)
        XCTAssertTrue(connack.sessionPresent, "DISCONNECT extended the expiry to 60 s")
        try await disconnect(client)
    }

    func testV5DisconnectSettingExpiryAfterZeroIsProtocolError() async throws {
        // Session Expiry Interval 0 in CONNECT, non-zero in DISCONNECT: a Protocol Error (spec
        // 3.14.2.2.2, a rule without a number); the server answers DISCONNECT 0x82, closes, and (no normal DISCONNECT) publishes the will.
        let broker = try startBroker()
        let (watcher, _) = try await connectAccepted(broker, "exp-err-watch")
        try await subscribe(watcher, "exp-err/will")
        for expiry in [UInt32?.none, UInt32?.some(0)] {
            let (client, _) = try await connectAccepted(broker, "exp-err", will: Will(topic: "exp-err/will", payload: ByteBuffer(text: "gone")),
                                                        sessionExpiry: expiry)
            try await client.send(.disconnect(DisconnectPacket(properties: sessionExpiry(30))))
            await expectDisconnect(client, reason: .protocolError, "DISCONNECT expiry 30 after CONNECT \(String(describing: expiry))")
            guard let will = await expectPublish(watcher) else { return }
            XCTAssertEqual(will.payload.text, "gone")
            try await acknowledge(will, on: watcher)
            let (again, connack) = try await connectAccepted(broker, "exp-err", cleanStart: false)
            XCTAssertFalse(connack.sessionPresent, "the session must not have been kept for 30 s")
            try await disconnect(again)
        }
    }

    func testV5SessionExpiryMaxNeverExpires() async throws {
        // 0xFFFFFFFF means the session does not expire (spec 3.1.2.11.2): no timer fires.
        let broker = try startBroker()
        let (client, _) = try await connectAccepted(broker, "forever", sessionExpiry: .max)
        try await subscribe(client, "forever/t")
        await client.close()
        try await Task.sleep(nanoseconds: 1_200_000_000)
        let (again, connack) = try await connectAccepted(broker, "forever", cleanStart: false, sessionExpiry: .max)
        XCTAssertTrue(connack.sessionPresent)
        try await disconnect(again)
    }

    func testV3PersistentClientExpirationEndsCleanSessionZeroSessions() async throws {
        // `persistent_client_expiration 1`: 3.1/3.1.1 clean-session-0 sessions end 1 s after their
        // connection; without it they never expire (Mosquitto's default).
        let expiring = try startBroker { $0.persistentClientExpiration = 1 }
        let keeping = try startBroker()
        for broker in [expiring, keeping] {
            for version in [ProtocolVersion.v3_1, .v3_1_1] {
                let (client, _) = try await connectAccepted(broker, "pce-\(version.rawValue)", version: version, cleanStart: false)
                try await subscribe(client, "pce/t")
                try await disconnect(client)
            }
        }
        // Within the expiration the session is resumed.
        let (resumed, connack) = try await connectAccepted(expiring, "pce-4", version: .v3_1_1, cleanStart: false)
        XCTAssertTrue(connack.sessionPresent)
        try await disconnect(resumed)

        try await Task.sleep(nanoseconds: 500_000_000)
        XCTAssertNotNil(expiring.broker.session(clientID: "pce-3"), "ended too early")
        await eventually(within: 2.5, "persistent_client_expiration must end the sessions") {
            expiring.broker.session(clientID: "pce-3") == nil && expiring.broker.session(clientID: "pce-4") == nil
        }
        for version in [ProtocolVersion.v3_1_1] {
            let (client, connack) = try await connectAccepted(expiring, "pce-\(version.rawValue)", version: version, cleanStart: false)
            XCTAssertFalse(connack.sessionPresent, "\(version): expired")
            try await disconnect(client)
        }
        // Default: never expires.
        XCTAssertNotNil(keeping.broker.session(clientID: "pce-3"))
        let (kept, keptAck) = try await connectAccepted(keeping, "pce-4", version: .v3_1_1, cleanStart: false)
        XCTAssertTrue(keptAck.sessionPresent, "without persistent_client_expiration the session stays")
        try await disconnect(kept)
    }
}
