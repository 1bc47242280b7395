import MidgeBroker
import MidgeEngineHarness
import MQTTCodec
import NIOCore
import XCTest

/// How long a session outlives its connection, on the virtual clock: the v5 Session Expiry
/// Interval (from CONNECT, changed by DISCONNECT) and, for 3.1/3.1.1 clean-session-0 clients,
/// `persistent_client_expiration`. The expiry is a timer: exact to the nanosecond here.
final class SessionExpiryTests: XCTestCase {
    func testV5SessionKeptForExpiryIntervalThenDiscarded() {
        // [MQTT-3.1.2-23] The session is stored after the connection closes while the Session Expiry
        // Interval runs, then discarded.
        let harness = EngineHarness()
        var client = harness.connect()
        client.connectAccepted("exp1", cleanStart: true, properties: sessionExpiry(1))
        client.subscribe("exp1/t", qos: .atLeastOnce)
        client.disconnect()
        let publisher = harness.connect()
        publisher.connectAccepted("exp1-pub")
        publisher.publish("exp1/t", "kept", qos: .atLeastOnce, packetID: 1)
        XCTAssertEqual(publisher.receivedPackets(), [.puback(PubAckPacket(packetID: 1))])

        client = harness.connect()
        XCTAssertEqual(client.connectAccepted("exp1", cleanStart: false, properties: sessionExpiry(1))?.sessionPresent, true,
                       "session must survive within its expiry interval")
        let queued = client.receivedPublishes()
        XCTAssertEqual(queued.map(\.payloadString), ["kept"])
        queued.forEach(client.acknowledge)
        client.disconnect()

        harness.advance(by: .milliseconds(999))
        XCTAssertNotNil(harness.broker.session(clientID: "exp1"), "session ended before its 1 s expiry")
        harness.advance(by: .milliseconds(1))
        XCTAssertNil(harness.broker.session(clientID: "exp1"), "session must end 1 s after the connection closed")

        publisher.publish("exp1/t", "after expiry", qos: .atLeastOnce, packetID: 2)
        client = harness.connect()
        XCTAssertEqual(client.connectAccepted("exp1", cleanStart: false, properties: sessionExpiry(1))?.sessionPresent, false,
                       "expired session must be gone")
        XCTAssertEqual(client.receivedPublishes(), [], "(the expired session's subscription is gone)")
        client.disconnect()
    }

    func testV5SessionExpiryZeroOrAbsentEndsSessionWithConnection() {
        // Absent Session Expiry Interval means 0: the session ends when the connection closes
        // (spec 3.1.2.11.2), whether by DISCONNECT or by losing the socket.
        let harness = EngineHarness()
        for (name, expiry) in [("absent", UInt32?.none), ("zero", UInt32?.some(0))] {
            for viaDisconnect in [true, false] {
                let id = "exp0-\(name)-\(viaDisconnect)"
                var client = harness.connect()
                XCTAssertEqual(client.connectAccepted(id, cleanStart: false, properties: sessionExpiry(expiry))?.sessionPresent, false)
                client.subscribe("exp0/t")
                if viaDisconnect { client.disconnect() } else { client.dropConnection() }
                XCTAssertNil(harness.broker.session(clientID: id), "\(id): session must end with the connection")
                client = harness.connect()
                XCTAssertEqual(client.connectAccepted(id, cleanStart: false)?.sessionPresent, false, "\(id): no session expected")
                client.disconnect()
            }
        }
    }

    func testV5DisconnectWithExpiryZeroEndsSessionAtOnce() {
        // The DISCONNECT's Session Expiry Interval replaces the CONNECT's (spec 3.14.2.2.2).
        let harness = EngineHarness()
        var client = harness.connect()
        client.connectAccepted("shorten", properties: sessionExpiry(60))
        client.subscribe("shorten/t")
        client.disconnect(DisconnectPacket(properties: sessionExpiry(0)))
        XCTAssertNil(harness.broker.session(clientID: "shorten"), "DISCONNECT with expiry 0 must end the session")
        client = harness.connect()
        XCTAssertEqual(client.connectAccepted("shorten", cleanStart: false, properties: sessionExpiry(60))?.sessionPresent, false)
        client.disconnect()
    }

    func testV5DisconnectCanExtendSessionExpiry() {
        // CONNECT says 1 s, DISCONNECT says 60 s: the session outlives the first value.
        let harness = EngineHarness()
        var client = harness.connect()
        client.connectAccepted("extend", properties: sessionExpiry(1))
        client.subscribe("extend/t")
        client.disconnect(DisconnectPacket(properties: sessionExpiry(60)))
        harness.advance(by: .milliseconds(1_600))
        XCTAssertNotNil(harness.broker.session(clientID: "extend"), "DISCONNECT extended the expiry to 60 s")
        harness.advance(by: .milliseconds(58_399))
        XCTAssertNotNil(harness.broker.session(clientID: "extend"), "ended before the 60 s from DISCONNECT")
        client = harness.connect()
        XCTAssertEqual(client.connectAccepted("extend", cleanStart: false, properties: sessionExpiry(60))?.sessionPresent, true,
                       "DISCONNECT extended the expiry to 60 s")
        client.disconnect()
    }

    func testV5DisconnectSettingExpiryAfterZeroIsProtocolError() {
        // Session Expiry Interval 0 in CONNECT, non-zero in DISCONNECT: a Protocol Error (spec
        // 3.14.2.2.2, a rule without a number); the server answers DISCONNECT 0x82, closes, and (no normal DISCONNECT) publishes the will.
        let harness = EngineHarness()
        let watcher = harness.connect()
        watcher.connectAccepted("exp-err-watch")
        watcher.subscribe("exp-err/will", qos: .atLeastOnce)
        for expiry in [UInt32?.none, UInt32?.some(0)] {
            let client = harness.connect()
            client.connectAccepted("exp-err", will: Will(topic: "exp-err/will", payload: bytes("gone")), properties: sessionExpiry(expiry))
            client.send(.disconnect(DisconnectPacket(properties: sessionExpiry(30))))
            let answer = client.receivedPackets()
            guard case .disconnect(let disconnect)? = answer.first, answer.count == 1 else {
                XCTFail("expected DISCONNECT 0x82 after DISCONNECT expiry 30 after CONNECT \(String(describing: expiry)), got \(answer)")
                continue
            }
            XCTAssertEqual(disconnect.reasonCode, .protocolError)
            XCTAssertTrue(client.isClosed)
            XCTAssertEqual(watcher.receivedPublishes().map(\.payloadString), ["gone"])
            let again = harness.connect()
            XCTAssertEqual(again.connectAccepted("exp-err", cleanStart: false)?.sessionPresent, false,
                           "the session must not have been kept for 30 s")
            again.disconnect()
        }
    }

    func testV5SessionExpiryMaxNeverExpires() {
        // 0xFFFFFFFF means the session does not expire (spec 3.1.2.11.2): no timer fires.
        let harness = EngineHarness()
        let client = harness.connect()
        client.connectAccepted("forever", properties: sessionExpiry(.max))
        client.subscribe("forever/t")
        client.dropConnection()
        harness.advance(by: .milliseconds(1_200))
        // Past 0xFFFFFFFE seconds (~136 years), which an expiring session could not outlive.
        harness.advance(by: .seconds(Int64(UInt32.max) + 1))
        XCTAssertNotNil(harness.broker.session(clientID: "forever"))
        let again = harness.connect()
        XCTAssertEqual(again.connectAccepted("forever", cleanStart: false, properties: sessionExpiry(.max))?.sessionPresent, true)
        again.disconnect()
    }

    func testV3PersistentClientExpirationEndsCleanSessionZeroSessions() {
        // `persistent_client_expiration 1`: 3.1/3.1.1 clean-session-0 sessions end 1 s after their
        // connection; without it they never expire (Mosquitto's default).
        var configuration = BrokerConfiguration.defaults
        configuration.persistentClientExpiration = 1
        let expiring = EngineHarness(configuration: configuration)
        let keeping = EngineHarness()
        for harness in [expiring, keeping] {
            for version in [ProtocolVersion.v3_1, .v3_1_1] {
                let client = harness.connect(version: version)
                client.connectAccepted("pce-\(version.rawValue)", version: version, cleanStart: false)
                client.subscribe("pce/t")
                client.disconnect()
            }
        }
        // Within the expiration the session is resumed.
        let resumed = expiring.connect(version: .v3_1_1)
        XCTAssertEqual(resumed.connectAccepted("pce-4", version: .v3_1_1, cleanStart: false)?.sessionPresent, true)
        resumed.disconnect()

        expiring.advance(by: .milliseconds(999))
        XCTAssertNotNil(expiring.broker.session(clientID: "pce-3"), "ended too early")
        XCTAssertNotNil(expiring.broker.session(clientID: "pce-4"), "ended too early")
        expiring.advance(by: .milliseconds(1))
        XCTAssertNil(expiring.broker.session(clientID: "pce-3"), "persistent_client_expiration must end the sessions")
        XCTAssertNil(expiring.broker.session(clientID: "pce-4"), "persistent_client_expiration must end the sessions")
        for version in [ProtocolVersion.v3_1, .v3_1_1] {
            let client = expiring.connect(version: version)
            XCTAssertEqual(client.connectAccepted("pce-\(version.rawValue)", version: version, cleanStart: false)?.sessionPresent, false,
                           "\(version): expired")
            client.disconnect()
        }
        // Default: never expires.
        keeping.advance(by: .seconds(Int64(UInt32.max) + 1))
        XCTAssertNotNil(keeping.broker.session(clientID: "pce-3"))
        let kept = keeping.connect(version: .v3_1_1)
        XCTAssertEqual(kept.connectAccepted("pce-4", version: .v3_1_1, cleanStart: false)?.sessionPresent, true,
                       "without persistent_client_expiration the session stays")
        kept.disconnect()
    }
}
