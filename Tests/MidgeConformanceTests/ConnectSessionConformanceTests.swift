import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Clean Start (v5) / Clean Session (3.1.1), Session Present, Session Expiry and the client id as
/// the session's key, seen by a client over real sockets: what a resumed session still holds
/// (subscriptions, messages queued while offline) and what a clean one has lost.
final class ConnectSessionConformanceTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker() }

    /// Connects `id` so that its session outlives the connection (v5: expiry 60; 3.1.1: clean session 0).
    private func connectKept(_ id: String, _ version: ProtocolVersion, cleanStart: Bool,
                             file: StaticString = #filePath, line: UInt = #line) async throws -> (PacketConnection, ConnAckPacket) {
        try await connectAccepted(broker, id, version: version, cleanStart: cleanStart,
                                  sessionExpiry: version == .v5 ? 60 : nil, file: file, line: line)
    }

    /// A stored offline session for `id`: subscribed to `id/t` at QoS 1, one QoS 1 message queued.
    private func storeSession(_ id: String, _ version: ProtocolVersion) async throws {
        // 3.1.1 keeps a session only with Clean Session 0; v5 with a Session Expiry even on Clean Start 1.
        let (client, _) = try await connectKept(id, version, cleanStart: version == .v5)
        try await subscribe(client, "\(id)/t", qos: .exactlyOnce)
        try await disconnect(client)
        let (publisher, _) = try await connectAccepted(broker, "\(id)-pub")
        try await publish(publisher, "\(id)/t", "queued", qos: .atLeastOnce, packetID: 1)
        try await publish(publisher, "\(id)/t", "queued2", qos: .exactlyOnce, packetID: 2)
        try await disconnect(publisher)
    }

    // [MQTT-3.1.2-5] [MQTT-3.1.2-23] [MQTT-3.2.2-3] [MQTT-3.1.4-4] [3.1.1:MQTT-3.1.2-4] [3.1.1:MQTT-3.1.2-5] [3.1.1:MQTT-3.2.2-2] [3.1.1:MQTT-3.1.4-3]
    func testCleanStartZeroResumesTheStoredSession() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let id = "resume\(version.rawValue)"
            try await storeSession(id, version)
            let (client, connack) = try await connectKept(id, version, cleanStart: false)
            XCTAssertTrue(connack.sessionPresent, "Session Present 1 (\(version))")
            XCTAssertEqual(connack.reasonCode, .success)
            // The message queued while offline arrives, and the subscription is still in force.
            // QoS 1 and QoS 2 messages were stored for the offline session.
            for (text, qos) in [("queued", QoS.atLeastOnce), ("queued2", .exactlyOnce)] {
                let queued = await expectPublish(client)
                XCTAssertEqual(queued?.payload.text, text, "\(version)")
                XCTAssertEqual(queued?.qos, qos, "\(version)")
                if let queued { try await acknowledge(queued, on: client) }
            }
            let (publisher, _) = try await connectAccepted(broker, "\(id)-pub2")
            try await publish(publisher, "\(id)/t", "live", qos: .atLeastOnce)
            let live = await expectPublish(client)
            XCTAssertEqual(live?.payload.text, "live", "\(version)")
            try await disconnect(client)
        }
    }

    // [MQTT-3.1.2-4] [MQTT-3.2.2-2] [MQTT-3.1.4-4] [3.1.1:MQTT-3.1.2-6] [3.1.1:MQTT-3.2.2-1] [3.1.1:MQTT-3.1.4-3]
    func testCleanStartOneDiscardsTheStoredSession() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let id = "discard\(version.rawValue)"
            try await storeSession(id, version)
            let (client, connack) = try await connectKept(id, version, cleanStart: true)
            XCTAssertFalse(connack.sessionPresent, "Session Present 0 with Clean Start 1 (\(version))")
            XCTAssertEqual(connack.reasonCode, .success)
            // Neither the queued message nor the subscription survived.
            await expectNothing(client, for: 0.3, "no queued message after a clean start (\(version))")
            let (publisher, _) = try await connectAccepted(broker, "\(id)-pub2")
            try await publish(publisher, "\(id)/t", "live", qos: .atLeastOnce)
            await expectNothing(client, for: 0.3, "no subscription after a clean start (\(version))")
            try await disconnect(client)
        }
    }

    // [MQTT-3.1.2-6] [MQTT-3.2.2-3] [3.1.1:MQTT-3.1.2-4] [3.1.1:MQTT-3.2.2-3]
    func testCleanStartZeroWithoutStoredSessionCreatesOne() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let id = "fresh\(version.rawValue)"
            XCTAssertNil(broker.broker.session(clientID: id))
            let (client, connack) = try await connectKept(id, version, cleanStart: false)
            XCTAssertFalse(connack.sessionPresent, "no stored session: Session Present 0 (\(version))")
            XCTAssertEqual(connack.reasonCode, .success)
            try await subscribe(client, "\(id)/t", qos: .atLeastOnce)
            try await disconnect(client)
            // The new session was created and kept: the next connection resumes it.
            let (again, resumed) = try await connectKept(id, version, cleanStart: false)
            XCTAssertTrue(resumed.sessionPresent, "the session created before is present (\(version))")
            try await disconnect(again)
        }
    }

    // [MQTT-3.1.2-23] [MQTT-3.2.2-3] [3.1.1:MQTT-3.1.2-6] [3.1.1:MQTT-3.2.2-3]
    func testSessionEndsWithTheConnectionOnlyWhenItsExpiryIsZero() async throws {
        // v5 Session Expiry 0 (absent) and 3.1.1 Clean Session 1: the session ends with the
        // connection, and nothing of it is reused by a later Clean Start 0 connection.
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let id = "gone\(version.rawValue)"
            let (client, _) = try await connectAccepted(broker, id, version: version, cleanStart: true)
            try await subscribe(client, "\(id)/t", qos: .atLeastOnce)
            try await disconnect(client)
            await eventually(within: 3, "session ended (\(version))") { self.broker.broker.session(clientID: id) == nil }
            let (again, connack) = try await connectKept(id, version, cleanStart: false)
            XCTAssertFalse(connack.sessionPresent, "\(version)")
            let (publisher, _) = try await connectAccepted(broker, "\(id)-pub")
            try await publish(publisher, "\(id)/t", "x", qos: .atLeastOnce)
            await expectNothing(again, for: 0.3, "the old subscription was not reused (\(version))")
            try await disconnect(again)
        }
        // v5 Session Expiry 1: kept after the close, gone once the second has passed.
        let (short, _) = try await connectAccepted(broker, "short", sessionExpiry: 1)
        try await subscribe(short, "short/t")
        try await disconnect(short)
        XCTAssertNotNil(broker.broker.session(clientID: "short"), "stored after the close while the expiry runs")
        await eventually(within: 4, "session expired") { self.broker.broker.session(clientID: "short") == nil }
        let (late, connack) = try await connectAccepted(broker, "short", cleanStart: false, sessionExpiry: 1)
        XCTAssertFalse(connack.sessionPresent, "an expired session is not present")
        try await disconnect(late)
    }

    // [MQTT-3.1.3-2] [3.1.1:MQTT-3.1.3-2]
    func testClientIdentifierSelectsTheSession() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let (a, _) = try await connectKept("idA\(version.rawValue)", version, cleanStart: version == .v5)
            try await subscribe(a, "ids/a\(version.rawValue)", qos: .atLeastOnce)
            try await disconnect(a)
            // Another id finds no session; the same id finds its own.
            let (b, connackB) = try await connectKept("idB\(version.rawValue)", version, cleanStart: false)
            XCTAssertFalse(connackB.sessionPresent, "\(version)")
            let (a2, connackA) = try await connectKept("idA\(version.rawValue)", version, cleanStart: false)
            XCTAssertTrue(connackA.sessionPresent, "\(version)")
            let (publisher, _) = try await connectAccepted(broker, "ids-pub\(version.rawValue)")
            try await publish(publisher, "ids/a\(version.rawValue)", "for A", qos: .atLeastOnce)
            let message = await expectPublish(a2)
            XCTAssertEqual(message?.payload.text, "for A")
            await expectNothing(b, for: 0.2, "B has no share in A's session (\(version))")
            try await disconnect(a2)
            try await disconnect(b)
        }
    }

    // [MQTT-3.2.2-1] [3.1.1:MQTT-3.2.2-2]
    func testConnAckFlagsByteHasOnlySessionPresent() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let id = "flagsbyte\(version.rawValue)"
            let props = version == .v5 ? sessionExpiry(60) : Properties.none
            let (first, connack1) = try await sectionARawConnected(broker, id, version, cleanStart: false, properties: props)
            XCTAssertEqual(connack1.count > 2 ? connack1[2] : 0xFF, 0x00, "new session: flags 0 (\(version)): \(hex(connack1))")
            await first.close()
            await eventually(within: 3, "offline") { self.broker.broker.session(clientID: id)?.isOnline == false }
            let (second, connack2) = try await sectionARawConnected(broker, id, version, cleanStart: false, properties: props)
            // Bits 7-1 reserved and 0; bit 0 Session Present.
            XCTAssertEqual(connack2.count > 2 ? connack2[2] : 0xFF, 0x01, "stored session: flags exactly 01 (\(version)): \(hex(connack2))")
            if version == .v3_1_1 { XCTAssertEqual(connack2, [0x20, 0x02, 0x01, 0x00]) }
            await second.close()
        }
    }

    // [3.1.1:MQTT-3.1.2-7]
    func testRetainedMessagesOutliveTheSessionThatPublishedThem() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let (publisher, _) = try await connectAccepted(broker, "ret-pub\(version.rawValue)", version: version)
            try await publish(publisher, "kept/\(version.rawValue)", "retained", qos: .atLeastOnce, retain: true)
            try await disconnect(publisher)   // its session (clean) ends here
            await eventually(within: 3, "publisher session ended") { self.broker.broker.session(clientID: "ret-pub\(version.rawValue)") == nil }
            let (subscriber, _) = try await connectAccepted(broker, "ret-sub\(version.rawValue)", version: version)
            try await subscribe(subscriber, "kept/\(version.rawValue)", qos: .atLeastOnce)
            let message = await expectPublish(subscriber)
            XCTAssertEqual(message?.payload.text, "retained", "\(version)")
            XCTAssertEqual(message?.retain, true)
            try await disconnect(subscriber)
        }
    }
}
