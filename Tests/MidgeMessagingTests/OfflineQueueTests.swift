import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Messages for a persistent session whose client is offline are stored and delivered, in
/// order, when it reconnects (spec 4.1: the session state includes "QoS 1 and QoS 2 messages
/// pending transmission"); Mosquitto's `max_queued_messages`, `max_queued_bytes` and
/// `queue_qos0_messages` limit what is kept. A clean session keeps nothing.
final class OfflineQueueTests: MessagingTestCase {
    /// Subscribes a persistent session at `qos`, disconnects it, and returns a publisher.
    private func prepareOffline(_ id: String, _ version: ProtocolVersion, filter: String, qos: QoS) async throws -> PacketConnection {
        let (subscriber, _) = try await connectPersistent(id, version, resume: false)
        try await subscriber.subscribe(filter, qos: qos)
        try await subscriber.disconnect()
        return try await connect("\(id)-pub", version)
    }

    func testMessagesPublishedWhileOfflineArriveOnReconnectInOrder() async throws {
        for version in messagingVersions {
            let id = "offline-\(version)"
            let publisher = try await prepareOffline(id, version, filter: "off/\(version)/#", qos: .exactlyOnce)
            // 30: more than the 3.1.1 window (max_inflight_messages 20), so part of the queue
            // follows only as acknowledgements come back.
            let total = 30
            for index in 0..<total {
                let qos: QoS = index % 2 == 0 ? .atLeastOnce : .exactlyOnce
                try await publisher.publish("off/\(version)/\(index % 3)", "m\(index)", qos: qos, packetID: UInt16(index + 1))
            }
            let (subscriber, present) = try await connectPersistent(id, version, resume: true)
            XCTAssertTrue(present, "\(version)")
            let delivered = try await subscriber.receivePublishes(total)
            XCTAssertEqual(delivered.map(\.text), (0..<total).map { "m\($0)" }, "\(version): order [MQTT-4.6.0-5] [3.1.1:MQTT-4.6.0-6]")
            XCTAssertEqual(delivered.map(\.qos), (0..<total).map { $0 % 2 == 0 ? QoS.atLeastOnce : .exactlyOnce })
            XCTAssertTrue(delivered.allSatisfy { !$0.dup }, "\(version): queued messages were never sent: DUP 0")
            XCTAssertFalse(delivered.contains { $0.packetID == 0 })
            try await subscriber.expectSilence(for: .milliseconds(100), "after the queued messages")
            await subscriber.close(); await publisher.close()
        }
    }

    /// `max_queued_messages 3`: the first three are kept, the rest dropped (Mosquitto: "Outgoing
    /// messages are being dropped").
    func testMaxQueuedMessagesDropsTheExcess() async throws {
        try restartBroker { $0.maxQueuedMessages = 3 }
        for version in messagingVersions {
            let id = "maxq-\(version)"
            let publisher = try await prepareOffline(id, version, filter: "maxq/\(version)", qos: .atLeastOnce)
            for index in 0..<6 { try await publisher.publish("maxq/\(version)", "m\(index)", qos: .atLeastOnce, packetID: UInt16(index + 1)) }
            let (subscriber, _) = try await connectPersistent(id, version, resume: true)
            try await publisher.publish("maxq/\(version)", "live", qos: .atLeastOnce, packetID: 50)
            let delivered = try await subscriber.receivePublishes(4)
            XCTAssertEqual(delivered.map(\.text), ["m0", "m1", "m2", "live"], "\(version)")
            await subscriber.close(); await publisher.close()
        }
    }

    /// `max_queued_messages` counts the messages waiting "above those messages that are currently
    /// in flight" (mosquitto.conf(5)): an online client with a full window of 1 and a queue of 2
    /// gets 3 of 5 messages.
    func testMaxQueuedMessagesForOnlineClientBehindAFullWindow() async throws {
        // One event loop: the five messages are then routed as the publisher's packets are read,
        // before the subscriber's first PUBACK can free the window. With two loops the queue
        // limit still applies at arrival, but which message arrives before which acknowledgement
        // is a race across threads, so which two are dropped would vary.
        try restartBroker(threads: 1) { $0.maxQueuedMessages = 2 }
        var properties = Properties()
        properties.receiveMaximum = 1
        let subscriber = try await connect("maxq-online", .v5, properties: properties)
        try await subscriber.subscribe("maxqo", qos: .atLeastOnce)
        let publisher = try await connect("maxq-online-pub", .v5)
        for index in 0..<5 { try await publisher.publish("maxqo", "m\(index)", qos: .atLeastOnce, packetID: UInt16(index + 1)) }
        let delivered = try await subscriber.receivePublishes(3)
        XCTAssertEqual(delivered.map(\.text), ["m0", "m1", "m2"])
        try await publisher.publish("maxqo", "end", qos: .atLeastOnce, packetID: 9)
        let next = try await subscriber.expectPublish()
        XCTAssertEqual(next.text, "end", "m3/m4 should have been dropped")
        await subscriber.close(); await publisher.close()
    }

    /// `max_queued_bytes 10` with 4-byte payloads: Mosquitto queues while the queued payload
    /// bytes are below the limit ("once this limit has been reached, subsequent messages will be
    /// silently dropped"), so three messages (12 bytes) are kept, the fourth is dropped.
    func testMaxQueuedBytesDropsOnceTheLimitIsReached() async throws {
        try restartBroker { $0.maxQueuedBytes = 10 }
        for version in messagingVersions {
            let id = "maxb-\(version)"
            let publisher = try await prepareOffline(id, version, filter: "maxb/\(version)", qos: .atLeastOnce)
            for index in 0..<5 { try await publisher.publish("maxb/\(version)", "abc\(index)", qos: .atLeastOnce, packetID: UInt16(index + 1)) }
            let (subscriber, _) = try await connectPersistent(id, version, resume: true)
            try await publisher.publish("maxb/\(version)", "live", qos: .atLeastOnce, packetID: 50)
            let delivered = try await subscriber.receivePublishes(4)
            XCTAssertEqual(delivered.map(\.text), ["abc0", "abc1", "abc2", "live"], "\(version)")
            await subscriber.close(); await publisher.close()
        }
    }

    /// `queue_qos0_messages false` (default): QoS 0 messages (published at 0, or downgraded to 0
    /// by a QoS 0 subscription) are not queued for an offline client.
    func testQoS0IsNotQueuedByDefault() async throws {
        for version in messagingVersions {
            let id = "q0off-\(version)"
            let publisher = try await prepareOffline(id, version, filter: "q0off/\(version)/#", qos: .atMostOnce)
            try await publisher.publish("q0off/\(version)/a", "published at 0", qos: .atMostOnce)
            try await publisher.publish("q0off/\(version)/a", "published at 1", qos: .atLeastOnce)
            let (subscriber, _) = try await connectPersistent(id, version, resume: true)
            try await publisher.publish("q0off/\(version)/end", "end", qos: .atMostOnce)
            let before = try await subscriber.publishesBefore(marker: "q0off/\(version)/end")
            XCTAssertEqual(before.map(\.text), [], "\(version)")
            await subscriber.close(); await publisher.close()
        }
    }

    /// `queue_qos0_messages true`: QoS 0 messages are queued for offline persistent clients too,
    /// in order with the others.
    func testQueueQoS0MessagesQueuesThem() async throws {
        try restartBroker { $0.queueQoS0Messages = true }
        for version in messagingVersions {
            let id = "q0on-\(version)"
            let (subscriber0, _) = try await connectPersistent(id, version, resume: false)
            try await subscriber0.subscribe("q0on/\(version)", qos: .atLeastOnce)
            try await subscriber0.disconnect()
            let publisher = try await connect("\(id)-pub", version)
            try await publisher.publish("q0on/\(version)", "zero-a", qos: .atMostOnce)
            try await publisher.publish("q0on/\(version)", "one", qos: .atLeastOnce)
            try await publisher.publish("q0on/\(version)", "zero-b", qos: .atMostOnce)
            let (subscriber, _) = try await connectPersistent(id, version, resume: true)
            let delivered = try await subscriber.receivePublishes(3)
            XCTAssertEqual(delivered.map(\.text), ["zero-a", "one", "zero-b"], "\(version)")
            XCTAssertEqual(delivered.map(\.qos), [.atMostOnce, .atLeastOnce, .atMostOnce])
            await subscriber.close(); await publisher.close()
        }
    }

    /// A clean session keeps nothing: 3.1.1 Clean Session 1 [3.1.1:MQTT-3.1.2-6]; v5 Clean Start 0
    /// with Session Expiry Interval 0 ends the session with the connection [MQTT-3.1.2-23], so
    /// a later connection finds no session and gets nothing.
    func testCleanSessionGetsNothingQueued() async throws {
        for version in messagingVersions {
            let id = "clean-\(version)"
            let (first, connack) = try await broker.connect(id, version: version, cleanStart: version == .v5 ? false : true)
            XCTAssertEqual(connack.reasonCode, .success)
            try await first.subscribe("clean/\(version)/#", qos: .atLeastOnce)
            try await first.disconnect()
            let publisher = try await connect("\(id)-pub", version)
            try await publisher.publish("clean/\(version)/m", "while offline", qos: .atLeastOnce)

            let (second, again) = try await broker.connect(id, version: version, cleanStart: false)
            XCTAssertFalse(again.sessionPresent, "\(version): no session was kept")
            try await second.subscribe("clean/\(version)/#", qos: .atLeastOnce)
            try await publisher.publish("clean/\(version)/end", "end", qos: .atMostOnce)
            let before = try await second.publishesBefore(marker: "clean/\(version)/end")
            XCTAssertEqual(before.map(\.text), [], "\(version)")
            await second.close(); await publisher.close()
        }
    }

    /// v5: a reconnect with Clean Start 1 discards the stored session and its queued messages [MQTT-3.1.2-4].
    func testCleanStartDiscardsQueuedMessages() async throws {
        let publisher = try await prepareOffline("cs-discard", .v5, filter: "csd", qos: .atLeastOnce)
        try await publisher.publish("csd", "queued", qos: .atLeastOnce)
        let (subscriber, connack) = try await broker.connect("cs-discard", version: .v5, cleanStart: true)
        XCTAssertFalse(connack.sessionPresent)
        try await subscriber.subscribe("csd", qos: .atLeastOnce)
        try await publisher.publish("csd", "end", qos: .atMostOnce)
        let first = try await subscriber.expectPublish()
        XCTAssertEqual(first.text, "end")
        await subscriber.close(); await publisher.close()
    }
}
