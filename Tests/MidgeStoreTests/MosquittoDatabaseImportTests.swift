import MQTTCodec
import MidgeBroker
import MidgeStore
import NIOCore
import XCTest

/// A database written by Debian's Mosquitto 2.0 (MosquittoFixture's scenario), read back.
final class MosquittoDatabaseImportTests: XCTestCase {
    private var generated: MosquittoGeneratedDatabase!
    private var result: MosquittoDatabase.Import!
    private var state: PersistedState { result.state }

    override func setUpWithError() throws {
        generated = try MosquittoFixture.database()
        result = try MosquittoDatabase.readImport(path: generated.path)
    }

    private func message(_ id: UInt64) -> StoredMessage? { state.messages.first { $0.id == id } }
    private func string(_ buffer: ByteBuffer) -> String { String(buffer: buffer) }

    func testFormatAndReadAgreesWithReadImport() throws {
        XCTAssertEqual(result.formatVersion, 6)
        XCTAssertEqual(result.writtenAtShutdown, true)
        XCTAssertEqual(try MosquittoDatabase.read(path: generated.path), state)
    }

    func testRetainedMessages() throws {
        XCTAssertEqual(Set(state.retained.map(\.topic)), ["ret/v3", "ret/v5", "ret/binary", "v5/c"])
        XCTAssertFalse(state.retained.contains { $0.topic.hasPrefix("$SYS") }, "$SYS retained messages are never imported")
        for message in state.retained {
            XCTAssertTrue(message.retain, message.topic)
            XCTAssertEqual(message.id, 0, "retained messages are kept by topic: \(message.topic)")
        }

        let v3 = try XCTUnwrap(state.retained.first { $0.topic == "ret/v3" })
        XCTAssertEqual(string(v3.payload), "hello v3")
        XCTAssertEqual(v3.qos, .atLeastOnce)
        XCTAssertEqual(v3.properties, .none)
        XCTAssertNil(v3.expiresAt)
        XCTAssertEqual(v3.publisherClientID, "pub311")

        let v5 = try XCTUnwrap(state.retained.first { $0.topic == "ret/v5" })
        XCTAssertEqual(string(v5.payload), "hello v5")
        XCTAssertEqual(v5.qos, .exactlyOnce)
        XCTAssertEqual(v5.publisherClientID, "pub5")
        XCTAssertEqual(v5.properties.contentType, "text/plain")
        XCTAssertEqual(v5.properties.userProperties, [UserProperty("k", "v"), UserProperty("k", "w")])
        XCTAssertEqual(v5.properties.payloadFormatIndicator, 1)
        XCTAssertEqual(v5.properties.responseTopic, "reply/here")
        XCTAssertEqual(v5.properties.correlationData, ByteBuffer(bytes: [1, 2, 3]))
        // Mosquitto keeps the expiry as a time, not as the property.
        XCTAssertNil(v5.properties.messageExpiryInterval)
        let expiresAt = try XCTUnwrap(v5.expiresAt)
        XCTAssertGreaterThanOrEqual(expiresAt, (generated.startedAt + 3600) * 1000)
        XCTAssertLessThanOrEqual(expiresAt, (generated.finishedAt + 3600) * 1000)

        let binary = try XCTUnwrap(state.retained.first { $0.topic == "ret/binary" })
        XCTAssertEqual(Array(binary.payload.readableBytesView), [0, 255, 0x80, 10])
        XCTAssertEqual(binary.qos, .atMostOnce)
    }

    func testSessions() throws {
        XCTAssertEqual(Set(state.sessions.map(\.clientID)), ["durable311", "durable5", "shared5", "inflight5", "inbound311"],
                       "clean sessions (pub311, pub5, publisher) are not stored")
        func session(_ id: String) throws -> StoredSession { try XCTUnwrap(state.sessions.first { $0.clientID == id }, id) }
        let window = (generated.startedAt * 1000)...(generated.finishedAt * 1000)

        let durable311 = try session("durable311")
        XCTAssertEqual(durable311.expiryInterval, .max, "3.1.1 clean session 0 never expires")
        XCTAssertEqual(durable311.protocolLevel, 4)
        XCTAssertEqual(durable311.username, "bob")
        XCTAssertNil(durable311.disconnectedAt, "Mosquitto counts no expiry for a session that never expires")
        XCTAssertNil(durable311.will)

        let durable5 = try session("durable5")
        XCTAssertEqual(durable5.expiryInterval, 3600)
        XCTAssertEqual(durable5.protocolLevel, 5)
        XCTAssertEqual(durable5.username, "alice")
        let disconnectedAt = try XCTUnwrap(durable5.disconnectedAt)
        XCTAssertTrue(window.contains(disconnectedAt), "\(disconnectedAt) in \(window)")

        let shared5 = try session("shared5")
        XCTAssertEqual(shared5.expiryInterval, 600)
        XCTAssertEqual(shared5.protocolLevel, 5)
        XCTAssertEqual(shared5.username, "carol")
        XCTAssertTrue(window.contains(try XCTUnwrap(shared5.disconnectedAt)))

        let inflight5 = try session("inflight5")
        XCTAssertEqual(inflight5.expiryInterval, 3600)
        XCTAssertEqual(inflight5.username, "dave")

        let inbound311 = try session("inbound311")
        XCTAssertEqual(inbound311.expiryInterval, .max)
        XCTAssertEqual(inbound311.protocolLevel, 4)
        XCTAssertEqual(inbound311.username, "erin")
    }

    func testSubscriptions() throws {
        func subscription(_ clientID: String, _ filter: String) throws -> StoredSubscription {
            try XCTUnwrap(state.subscriptions.first { $0.clientID == clientID && $0.filter == filter }, "\(clientID) \(filter)")
        }
        XCTAssertEqual(try subscription("durable311", "q1/#").options, SubscriptionOptions(qos: .atLeastOnce))
        XCTAssertNil(try subscription("durable311", "q1/#").identifier)
        XCTAssertEqual(try subscription("durable311", "q2/#").options, SubscriptionOptions(qos: .exactlyOnce))

        let v5 = try subscription("durable5", "v5/#")
        XCTAssertEqual(v5.identifier, 42)
        XCTAssertEqual(v5.options.qos, .exactlyOnce)
        XCTAssertTrue(v5.options.noLocal)
        XCTAssertTrue(v5.options.retainAsPublished)
        // Mosquitto does not store Retain Handling (it only matters when subscribing).
        XCTAssertEqual(v5.options.retainHandling, .sendOnSubscribe)

        XCTAssertEqual(try subscription("inflight5", "inflight/#").identifier, 7)
        // Mosquitto 2.0 does not save shared subscriptions (persist__subs_save walks the
        // ordinary subscribers only); the session and its queued message are there.
        XCTAssertFalse(state.subscriptions.contains { $0.clientID == "shared5" }, "\(state.subscriptions)")
        XCTAssertEqual(state.subscriptions.count, 4, "\(state.subscriptions)")
    }

    func testQueuedAndInFlightDeliveries() throws {
        XCTAssertEqual(Set(state.deliveries.map(\.key)).count, state.deliveries.count, "delivery keys are unique")
        XCTAssertEqual(state.deliveries.map(\.key), state.deliveries.map(\.key).sorted(), "deliveries are in key order")
        XCTAssertEqual(Set(state.messages.map(\.id)).count, state.messages.count, "message ids are unique")
        XCTAssertEqual(Set(state.messages.map(\.id)), Set(state.deliveries.map(\.messageID)),
                       "the messages are exactly those the deliveries refer to")
        XCTAssertGreaterThan(state.nextKey, state.messages.map(\.id).max() ?? 0)

        func deliveries(_ clientID: String) -> [(StoredDelivery, StoredMessage)] {
            state.deliveries.filter { $0.clientID == clientID }.compactMap { d in message(d.messageID).map { (d, $0) } }
        }

        let durable311 = deliveries("durable311")
        XCTAssertEqual(durable311.map { $0.1.topic }, ["q1/a", "q2/b"], "the QoS 0 message is not queued")
        XCTAssertEqual(durable311.map { $0.0.qos }, [.atLeastOnce, .exactlyOnce])
        XCTAssertEqual(durable311.map { $0.0.stage }, [.queued, .queued])
        XCTAssertEqual(durable311.map { $0.0.packetID }, [1, 2], "queued with the mids Mosquitto gave them")
        XCTAssertEqual(durable311.map { string($0.1.payload) }, ["m1", "m2"])
        XCTAssertEqual(durable311.map { $0.1.publisherClientID }, ["publisher", "publisher"])

        let durable5 = deliveries("durable5")
        XCTAssertEqual(durable5.count, 1)
        if let (delivery, stored) = durable5.first {
            XCTAssertEqual(stored.topic, "v5/c")
            XCTAssertEqual(stored.properties.userProperties, [UserProperty("a", "b")])
            XCTAssertEqual(delivery.subscriptionIDs, [42])
            XCTAssertEqual(delivery.qos, .exactlyOnce)
            XCTAssertTrue(delivery.retain, "retain as published")
            XCTAssertEqual(delivery.stage, .queued)
        }

        XCTAssertEqual(deliveries("shared5").map { $0.1.topic }, ["shared/t"])
        XCTAssertEqual(deliveries("shared5").map { $0.0.qos }, [.atLeastOnce])

        let inflight = deliveries("inflight5")
        XCTAssertEqual(inflight.count, 2)
        let unacked = try XCTUnwrap(inflight.first { $0.1.topic == "inflight/one" })
        XCTAssertEqual(unacked.0.stage, .published, "sent, awaiting PUBACK")
        XCTAssertEqual(unacked.0.qos, .atLeastOnce)
        XCTAssertNotEqual(unacked.0.packetID, 0)
        XCTAssertEqual(unacked.0.subscriptionIDs, [7])
        let pubrecd = try XCTUnwrap(inflight.first { $0.1.topic == "inflight/two" })
        XCTAssertEqual(pubrecd.0.stage, .released, "PUBREC received, awaiting PUBCOMP")
        XCTAssertEqual(pubrecd.0.qos, .exactlyOnce)
        XCTAssertNotEqual(pubrecd.0.packetID, 0)
        XCTAssertNotEqual(pubrecd.0.packetID, unacked.0.packetID)

        XCTAssertFalse(state.messages.contains { $0.topic == "in/held" || $0.topic == "q1/zero" })
    }

    func testInboundQoS2() throws {
        XCTAssertEqual(state.inboundQoS2.map(\.clientID), ["inbound311"])
        XCTAssertEqual(state.inboundQoS2.map(\.packetID), [generated.inboundPacketID])
        XCTAssertTrue(result.dropped.contains { $0.hasPrefix("1 incoming QoS 2") }, "\(result.dropped)")
    }
}
