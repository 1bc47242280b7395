import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Clean Session (3.1.1) / Clean Start (5.0) and the Session Present flag of CONNACK: a resumed
/// session keeps its subscriptions and the messages queued while offline; a clean one does not.
final class CleanStartAndSessionPresentTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker() }

    /// Connect options that make a session outlive its connection in each version.
    private func persistent(_ version: ProtocolVersion) -> UInt32? { version == .v5 ? 60 : nil }

    func testCleanStartZeroResumesSessionWithSessionPresent() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let id = "resume-\(version.rawValue)"
            let topic = "resume/\(version.rawValue)"
            // No stored session yet: Session Present 0 [MQTT-3.2.2-3] [3.1.1:MQTT-3.2.2-3].
            var (client, connack) = try await connectAccepted(broker, id, version: version, cleanStart: false,
                                                              sessionExpiry: persistent(version))
            XCTAssertFalse(connack.sessionPresent, "\(version): no session stored yet")
            try await subscribe(client, topic, qos: .atLeastOnce)
            try await disconnect(client)

            // Queued while offline and delivered on resumption [MQTT-3.1.2-5] [3.1.1:MQTT-3.1.2-4] [3.1.1:MQTT-3.1.2-5].
            let (publisher, _) = try await connectAccepted(broker, "resume-pub-\(version.rawValue)")
            try await publish(publisher, topic, "while offline", qos: .atLeastOnce)

            (client, connack) = try await connectAccepted(broker, id, version: version, cleanStart: false,
                                                          sessionExpiry: persistent(version))
            // Stored session: Session Present 1 [MQTT-3.2.2-3] [3.1.1:MQTT-3.2.2-2].
            XCTAssertTrue(connack.sessionPresent, "\(version): session must be present")
            guard let queued = await expectPublish(client) else { return }
            XCTAssertEqual(queued.payload.text, "while offline")
            XCTAssertEqual(queued.qos, .atLeastOnce)
            try await acknowledge(queued, on: client)
            // The subscription is still in force.
            try await publish(publisher, topic, "live", qos: .atLeastOnce)
            guard let live = await expectPublish(client) else { return }
            XCTAssertEqual(live.payload.text, "live")
            try await acknowledge(live, on: client)
            try await disconnect(client)
            try await disconnect(publisher)
        }
    }

    func testCleanStartOneDiscardsStoredSession() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let id = "discard-\(version.rawValue)"
            let topic = "discard/\(version.rawValue)"
            var (client, _) = try await connectAccepted(broker, id, version: version, cleanStart: false, sessionExpiry: persistent(version))
            try await subscribe(client, topic)
            try await disconnect(client)
            XCTAssertNotNil(broker.broker.session(clientID: id), "\(version): session stored")

            // Clean Start 1 discards the stored session [MQTT-3.1.2-4] [3.1.1:MQTT-3.1.2-6] and
            // Session Present is 0 [MQTT-3.2.2-2] [3.1.1:MQTT-3.2.2-1].
            var connack: ConnAckPacket
            (client, connack) = try await connectAccepted(broker, id, version: version, cleanStart: true)
            XCTAssertFalse(connack.sessionPresent, "\(version): clean start must not present a session")
            let (publisher, _) = try await connectAccepted(broker, "discard-pub-\(version.rawValue)")
            try await publish(publisher, topic, "to the old subscription", qos: .atLeastOnce)
            await expectNothing(client, for: 0.3, "(the subscription was discarded)")
            try await disconnect(client)

            // A clean session (3.1.1) / expiry 0 session (5.0) ends with its connection [3.1.1:MQTT-3.1.2-6] [MQTT-3.1.2-23].
            (client, connack) = try await connectAccepted(broker, id, version: version, cleanStart: false, sessionExpiry: persistent(version))
            XCTAssertFalse(connack.sessionPresent, "\(version): the clean session must have ended at disconnect")
            try await disconnect(client)
            try await disconnect(publisher)
        }
    }

    func testCleanStartOneWhileOfflineMessagesQueuedDropsThem() async throws {
        // The queued messages belong to the discarded session: nothing is delivered after Clean Start 1.
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let id = "dropq-\(version.rawValue)"
            var (client, _) = try await connectAccepted(broker, id, version: version, cleanStart: false, sessionExpiry: persistent(version))
            try await subscribe(client, "dropq/\(version.rawValue)")
            try await disconnect(client)
            let (publisher, _) = try await connectAccepted(broker, "dropq-pub-\(version.rawValue)")
            try await publish(publisher, "dropq/\(version.rawValue)", "queued", qos: .atLeastOnce)
            (client, _) = try await connectAccepted(broker, id, version: version, cleanStart: true)
            await expectNothing(client, for: 0.3, "(queued messages of the discarded session)")
            try await disconnect(client)
            try await disconnect(publisher)
        }
    }

    func testV31ResumesSessionButConnAckHasNoSessionPresentFlag() async throws {
        // MQTT 3.1 has no Session Present flag: its CONNACK's first variable header byte is reserved
        // (0) even when a session is resumed (Mosquitto sets the flag only for 3.1.1 and 5.0).
        let (client, _) = try await connectAccepted(broker, "v31-resume", version: .v3_1, cleanStart: false)
        try await subscribe(client, "v31/resume")
        try await disconnect(client)
        let (publisher, _) = try await connectAccepted(broker, "v31-pub")
        try await publish(publisher, "v31/resume", "queued", qos: .atLeastOnce)

        let raw = try await RawConnection.connect(broker)
        try await raw.send(connectBytes("v31-resume", .v3_1, cleanStart: false))
        let connack = await raw.readPacket()
        XCTAssertEqual(connack, [0x20, 0x02, 0x00, 0x00], "3.1 CONNACK: \(hex(connack ?? []))")
        // The session was resumed nevertheless: the queued message arrives.
        guard let publish = await raw.readPacket() else { return XCTFail("queued message not delivered to resumed 3.1 session") }
        XCTAssertEqual(publish.first.map { $0 & 0xF6 }, 0x32, "QoS 1 PUBLISH: \(hex(publish))")
        XCTAssertTrue(publish.suffix(6).elementsEqual(Array("queued".utf8)), hex(publish))
        await raw.close()
        try await disconnect(publisher)
    }

    func testSessionPresentBytesV311() async throws {
        // Byte-exact 3.1.1 CONNACK with Session Present 1: 20 02 01 00.
        let (client, _) = try await connectAccepted(broker, "sp-bytes", version: .v3_1_1, cleanStart: false)
        try await disconnect(client)
        let raw = try await RawConnection.connect(broker)
        try await raw.send(connectBytes("sp-bytes", .v3_1_1, cleanStart: false))
        let connack = await raw.readPacket()
        XCTAssertEqual(connack, [0x20, 0x02, 0x01, 0x00], hex(connack ?? []))
        await raw.close()
    }

    func testSessionIsSharedAcrossProtocolVersions() async throws {
        // A client id's session is the same whichever version reconnects (Mosquitto behaviour):
        // a 3.1.1 persistent session resumed by a v5 client with Clean Start 0.
        let (client, _) = try await connectAccepted(broker, "xver", version: .v3_1_1, cleanStart: false)
        try await subscribe(client, "xver/t")
        try await disconnect(client)
        let (v5, connack) = try await connectAccepted(broker, "xver", version: .v5, cleanStart: false, sessionExpiry: 10)
        XCTAssertTrue(connack.sessionPresent)
        let (publisher, _) = try await connectAccepted(broker, "xver-pub")
        try await publish(publisher, "xver/t", "hello", qos: .atLeastOnce)
        guard let message = await expectPublish(v5) else { return }
        XCTAssertEqual(message.payload.text, "hello")
        try await acknowledge(message, on: v5)
        try await disconnect(v5)
        try await disconnect(publisher)
    }
}
