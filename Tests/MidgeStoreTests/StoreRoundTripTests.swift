import Foundation
import GRDB
import MQTTCodec
import MidgeBroker
@testable import MidgeStore
import NIOCore
import XCTest

/// Every StoreChange through commit → close → reopen → load, and the order changes apply in.
final class StoreRoundTripTests: StoreTestCase {

    func testEmptyStoreLoadsEmptyState() throws {
        let store = try open()
        XCTAssertEqual(try store.load(), PersistedState())
        XCTAssertEqual(try reopenAndLoad(store), PersistedState())
        XCTAssertEqual(PersistedState().nextKey, 1)
    }

    func testEveryChangeKindRoundTrips() throws {
        var willProperties = sampleProperties()
        willProperties.willDelayInterval = 30
        let willMessage = StoredMessage(id: 0, topic: "clients/a/status", payload: buffer("gone"), qos: .exactlyOnce,
                                        retain: true, properties: willProperties, expiresAt: 1_700_000_123_456,
                                        publisherClientID: "a")
        let sessionA = sampleSession("a", will: StoredWill(message: willMessage, delay: 30))
        let sessionB = StoredSession(clientID: "b", expiryInterval: UInt32.max, protocolLevel: 4, username: nil,
                                     disconnectedAt: 1_700_000_000_000, lastPacketID: 65535, will: nil)
        let subscriptionA1 = StoredSubscription(clientID: "a", filter: "x/+", options: SubscriptionOptions(
            qos: .atLeastOnce, noLocal: true, retainAsPublished: true, retainHandling: .doNotSend), identifier: 7)
        let subscriptionA2 = StoredSubscription(clientID: "a", filter: "$share/g/y", options: SubscriptionOptions(
            qos: .exactlyOnce, noLocal: false, retainAsPublished: false, retainHandling: .sendOnNewSubscribe))
        let subscriptionB = StoredSubscription(clientID: "b", filter: "#", options: SubscriptionOptions(qos: .atMostOnce))
        let retained1 = StoredMessage(id: 0, topic: "r/1", payload: buffer("on"), qos: .atLeastOnce, retain: true,
                                      properties: sampleProperties(), expiresAt: 1_800_000_000_000, publisherClientID: "p",
                                      publisherPort: 8883)
        let retainedEmpty = StoredMessage(id: 0, topic: "r/empty", payload: ByteBuffer(), qos: .atMostOnce, retain: true)
        let message1 = sampleMessage(id: 1, topic: "x/1", payload: "one", properties: sampleProperties())
        let message2 = sampleMessage(id: 2, topic: "x/2", payload: "", qos: .exactlyOnce)
        var d10 = delivery(10, to: "a", message: 1)
        d10.subscriptionIDs = [7, 9]
        d10.retain = true
        var d11 = delivery(11, to: "b", message: 1)
        d11.packetID = 42  // queued with the id routing gave it
        let d12 = delivery(12, to: "b", message: 2, qos: .exactlyOnce)

        let store = try open()
        commitAndWait(store, [
            .sessionSaved(sessionA), .sessionSaved(sessionB),
            .subscriptionSaved(subscriptionA1), .subscriptionSaved(subscriptionA2), .subscriptionSaved(subscriptionB),
            .retainedSet(retained1), .retainedSet(retainedEmpty), .retainedSet(sampleMessage(id: 0, topic: "r/2")),
            .messageRouted(message1, [d10]),
            // The same message again: only its new delivery is stored (the first copy stays).
            .messageRouted(sampleMessage(id: 1, topic: "not/stored", payload: "other"), [d11]),
            .messageRouted(message2, [d12]),
        ])
        commitAndWait(store, [
            .retainedCleared(topic: "r/2"),
            .deliveryUpdated(key: 10, stage: .published, packetID: 5),
            .deliveryUpdated(key: 12, stage: .released, packetID: 65535),
            .inboundHeld(clientID: "a", packetID: 3), .inboundHeld(clientID: "a", packetID: 4),
            .inboundHeld(clientID: "b", packetID: 3), .inboundReleased(clientID: "a", packetID: 4),
            .subscriptionDeleted(clientID: "b", filter: "#"),
            .deliveryDeleted(key: 11),
        ])

        let state = try reopenAndLoad(store)
        XCTAssertEqual(state.sessions, [sessionA, sessionB])
        XCTAssertEqual(state.subscriptions, [subscriptionA1, subscriptionA2])
        XCTAssertEqual(state.messages, [message1, message2])
        var published10 = d10
        published10.stage = .published
        published10.packetID = 5
        var released12 = d12
        released12.stage = .released
        released12.packetID = 65535
        XCTAssertEqual(state.deliveries, [published10, released12])
        XCTAssertEqual(state.inboundQoS2.map { "\($0.clientID):\($0.packetID)" }, ["a:3", "b:3"])
        XCTAssertEqual(state.retained, [retained1, retainedEmpty])
        XCTAssertEqual(state.nextKey, 13)
        XCTAssertEqual(state.messages.first?.properties.userProperties.map(\.value), ["1", "2", "3"])
        XCTAssertEqual(state.sessions.first?.will?.message.properties.willDelayInterval, 30)
    }

    func testSavingAgainReplacesAndKeepsLoadOrder() throws {
        let store = try open()
        let filter = { (qos: QoS) in
            StoredSubscription(clientID: "a", filter: "t", options: SubscriptionOptions(qos: qos), identifier: Int(qos.rawValue) + 1)
        }
        commitAndWait(store, [.sessionSaved(sampleSession("a")), .sessionSaved(sampleSession("b")),
                              .subscriptionSaved(filter(.atMostOnce)),
                              .subscriptionSaved(StoredSubscription(clientID: "a", filter: "u", options: .init()))])
        var updatedA = sampleSession("a")
        updatedA.disconnectedAt = 42
        updatedA.username = nil
        commitAndWait(store, [.sessionSaved(updatedA), .subscriptionSaved(filter(.exactlyOnce)),
                              .retainedSet(sampleMessage(id: 0, topic: "r", payload: "old")),
                              .retainedSet(sampleMessage(id: 0, topic: "r", payload: "new"))])
        let state = try reopenAndLoad(store)
        XCTAssertEqual(state.sessions, [updatedA, sampleSession("b")])
        XCTAssertEqual(state.subscriptions.map(\.filter), ["t", "u"])
        XCTAssertEqual(state.subscriptions.first, filter(.exactlyOnce))
        XCTAssertEqual(state.retained.map { String(buffer: $0.payload) }, ["new"])
    }

    func testDeliveryDeletedTakesTheMessageWithItsLastDelivery() throws {
        let store = try open()
        commitAndWait(store, [.sessionSaved(sampleSession("a")), .sessionSaved(sampleSession("b")),
                              .messageRouted(sampleMessage(id: 1), [delivery(2, to: "a", message: 1), delivery(3, to: "b", message: 1)])])
        commitAndWait(store, [.deliveryDeleted(key: 2)])
        XCTAssertEqual(try store.load().messages.map(\.id), [1], "the message stays while a delivery refers to it")
        commitAndWait(store, [.deliveryDeleted(key: 3)])
        XCTAssertEqual(try rowCount(store, "messages"), 0)
        let state = try reopenAndLoad(store)
        XCTAssertEqual(state.messages, [])
        XCTAssertEqual(state.deliveries, [])
    }

    func testSessionDeletedTakesItsSubscriptionsDeliveriesInboundIdsAndUnsharedMessages() throws {
        let store = try open()
        commitAndWait(store, [
            .sessionSaved(sampleSession("a")), .sessionSaved(sampleSession("b")),
            .subscriptionSaved(StoredSubscription(clientID: "a", filter: "#", options: .init())),
            .subscriptionSaved(StoredSubscription(clientID: "b", filter: "#", options: .init())),
            .messageRouted(sampleMessage(id: 1), [delivery(10, to: "a", message: 1), delivery(11, to: "b", message: 1)]),
            .messageRouted(sampleMessage(id: 2), [delivery(12, to: "a", message: 2)]),
            .inboundHeld(clientID: "a", packetID: 1), .inboundHeld(clientID: "b", packetID: 1),
        ])
        commitAndWait(store, [.sessionDeleted(clientID: "a")])
        XCTAssertEqual(try rowCount(store, "messages"), 1)
        let state = try reopenAndLoad(store)
        XCTAssertEqual(state.sessions.map(\.clientID), ["b"])
        XCTAssertEqual(state.subscriptions.map(\.clientID), ["b"])
        XCTAssertEqual(state.deliveries.map(\.key), [11])
        XCTAssertEqual(state.messages.map(\.id), [1], "message 2 had no other delivery")
        XCTAssertEqual(state.inboundQoS2.map(\.clientID), ["b"])
    }

    func testChangesApplyInOrderWithinAndAcrossBatches() throws {
        let store = try open()
        let sub = { (qos: QoS) in StoredSubscription(clientID: "a", filter: "f", options: SubscriptionOptions(qos: qos)) }
        // Within one batch: saved then deleted is gone; deleted then saved is there.
        commitAndWait(store, [
            .sessionSaved(sampleSession("a")),
            .subscriptionSaved(sub(.atLeastOnce)), .subscriptionDeleted(clientID: "a", filter: "f"),
            .subscriptionDeleted(clientID: "a", filter: "g"),
            .subscriptionSaved(StoredSubscription(clientID: "a", filter: "g", options: .init())),
            .messageRouted(sampleMessage(id: 1), [delivery(2, to: "a", message: 1)]),
            .deliveryUpdated(key: 2, stage: .published, packetID: 1),
            .deliveryUpdated(key: 2, stage: .released, packetID: 1),
            .inboundHeld(clientID: "a", packetID: 9), .inboundReleased(clientID: "a", packetID: 9),
            .inboundReleased(clientID: "a", packetID: 8), .inboundHeld(clientID: "a", packetID: 8),
        ])
        // Across batches committed back to back (they may share a transaction): last one wins.
        let done = expectation(description: "all")
        done.expectedFulfillmentCount = 4
        store.commit([.subscriptionSaved(sub(.atLeastOnce))]) { done.fulfill() }
        store.commit([.subscriptionDeleted(clientID: "a", filter: "f")]) { done.fulfill() }
        store.commit([.subscriptionSaved(sub(.exactlyOnce)), .deliveryDeleted(key: 2)]) { done.fulfill() }
        store.commit([.messageRouted(sampleMessage(id: 1, payload: "again"), [delivery(3, to: "a", message: 1)])]) { done.fulfill() }
        wait(for: [done], timeout: 10)

        let state = try reopenAndLoad(store)
        XCTAssertEqual(state.subscriptions.map(\.filter), ["g", "f"])
        XCTAssertEqual(state.subscriptions.last?.options.qos, .exactlyOnce)
        XCTAssertEqual(state.inboundQoS2.map(\.packetID), [8])
        XCTAssertEqual(state.deliveries.map(\.key), [3])
        // The message went with delivery 2 and came back with delivery 3, as routed the second time.
        XCTAssertEqual(state.messages.map { String(buffer: $0.payload) }, ["again"])
    }

    func testCompletionsRunInCommitOrder() throws {
        let store = try open()
        let order = LogLines()
        let done = expectation(description: "all")
        done.expectedFulfillmentCount = 200
        for i in 0..<200 {
            store.commit([.inboundHeld(clientID: "a", packetID: UInt16(i))]) {
                order.append("\(i)")
                done.fulfill()
            }
        }
        wait(for: [done], timeout: 10)
        XCTAssertEqual(order.all, (0..<200).map(String.init))
    }

    func testLoadDropsOrphansFromTheStore() throws {
        let store = try open()
        commitAndWait(store, [
            .sessionSaved(sampleSession("a")),
            .messageRouted(sampleMessage(id: 1), [delivery(10, to: "a", message: 1), delivery(11, to: "ghost", message: 1)]),
            .messageRouted(sampleMessage(id: 2), [delivery(12, to: "ghost", message: 2)]),
            .subscriptionSaved(StoredSubscription(clientID: "ghost", filter: "#", options: .init())),
            .subscriptionSaved(StoredSubscription(clientID: "a", filter: "#", options: .init())),
            .inboundHeld(clientID: "ghost", packetID: 1),
            .inboundHeld(clientID: "a", packetID: 1),
        ])
        // A message no delivery refers to, and a delivery of a missing message (only a damaged or
        // hand-edited store has them: the writer never makes them).
        try store.withConnection { db in
            try db.execute(sql: "INSERT INTO messages (id, topic, qos, retain, publisher) VALUES (99, 'lost', 1, 0, '')")
            try db.execute(sql: """
                INSERT INTO deliveries (key, client_id, message_id, qos, retain, stage, packet_id) VALUES (98, 'a', 97, 1, 0, 0, 0)
                """)
        }
        let state = try store.load()
        XCTAssertEqual(state.sessions.map(\.clientID), ["a"])
        XCTAssertEqual(state.deliveries.map(\.key), [10])
        XCTAssertEqual(state.messages.map(\.id), [1])
        XCTAssertEqual(state.subscriptions.map(\.clientID), ["a"])
        XCTAssertEqual(state.inboundQoS2.map(\.clientID), ["a"])
        XCTAssertEqual(log.containing("dropped orphans").count, 1, "\(log.all)")
        // Gone from the file, not only from the loaded state.
        store.close()
        let reopened = try open()
        for table in ["deliveries", "messages", "subscriptions", "inbound_qos2"] {
            XCTAssertEqual(try rowCount(reopened, table), 1, table)
        }
        // A second load finds nothing more to drop.
        _ = try reopened.load()
        XCTAssertEqual(log.containing("dropped orphans").count, 1)
    }

    func testABadValueInTheStoreIsAStoreErrorNamingTableAndRow() throws {
        let store = try open()
        commitAndWait(store, [.sessionSaved(sampleSession("a")),
                              .messageRouted(sampleMessage(id: 5), [delivery(6, to: "a", message: 5)])])
        try store.withConnection { db in
            try db.execute(sql: "UPDATE messages SET properties = x'0526' WHERE id = 5")  // truncated user property
        }
        XCTAssertThrowsError(try store.load()) { error in
            let error = error as? StoreError
            XCTAssertEqual(error?.path, storePath)
            XCTAssertTrue(error?.message.contains("table messages, row 5") ?? false, "\(String(describing: error))")
        }
        try store.withConnection { db in
            try db.execute(sql: "UPDATE messages SET properties = NULL, qos = 7 WHERE id = 5")
        }
        XCTAssertThrowsError(try store.load()) { error in
            XCTAssertTrue("\(error)".contains("qos: 7 is not a QoS"), "\(error)")
        }
    }

    /// Rows of `table` in the store (the file holds an exclusive lock: ask its own connection).
    func rowCount(_ store: SQLiteSessionStore, _ table: String) throws -> Int {
        try store.withConnection { try Int.fetchOne($0, sql: "SELECT count(*) FROM \(table)") ?? -1 }
    }
}
