import MidgeBroker
import MidgeEngineHarness
import MQTTCodec
import NIOCore
import XCTest

/// Persistence on the virtual clock with an in-memory store: what is acknowledged is stored
/// first (output waits for the commit of the changes it depends on), and a broker restarted from
/// what was committed ("kill -9": nothing pending survives) resumes sessions, subscriptions,
/// queued and in-flight messages, inbound QoS 2 ids, wills, expiry and retained messages.
final class PersistenceTests: XCTestCase {
    private var configuration: BrokerConfiguration {
        var configuration = BrokerConfiguration.defaults
        configuration.persistence = true
        return configuration
    }

    private func harness(_ store: InMemorySessionStore, loops: Int = 1, wallClockOffset: Int64 = 0) -> EngineHarness {
        EngineHarness(configuration: configuration, loops: loops, store: store, wallClockOffset: wallClockOffset)
    }

    /// A persistent v5 subscriber (session expiry 1 h) to `filter` at `qos`.
    private func subscriber(_ harness: EngineHarness, _ id: String, _ filter: String, qos: QoS, loop: Int = 0,
                            version: ProtocolVersion = .v5) -> HarnessClient {
        let client = harness.connect(loop: loop, version: version)
        client.connectAccepted(id, version: version, cleanStart: false, properties: version == .v5 ? sessionExpiry(3600) : .none)
        client.subscribe(filter, qos: qos)
        return client
    }

    func testPubAckWaitsForTheCommitOfTheStoredDelivery() {
        let store = InMemorySessionStore(autoCommit: false)
        let harness = harness(store)
        let subscriberClient = harness.connect()
        subscriberClient.send(.connect(ConnectPacket(protocolVersion: .v5, cleanStart: false, clientID: "sub",
                                                     properties: sessionExpiry(3600))))
        XCTAssertEqual(subscriberClient.receivedPackets(), [], "CONNACK of a stored session waits for the store")
        store.completePending()
        harness.run()
        XCTAssertEqual(subscriberClient.receivedPackets().count, 1, "CONNACK after the commit")
        subscriberClient.send(.subscribe(SubscribePacket(packetID: 1, subscriptions: [TopicSubscription(filter: "t", options: .init(qos: .atLeastOnce))])))
        XCTAssertEqual(subscriberClient.receivedPackets(), [], "SUBACK waits for the subscription to be stored")
        store.completePending()
        harness.run()
        XCTAssertEqual(subscriberClient.receivedPackets(), [.suback(SubAckPacket(packetID: 1, reasonCodes: [.grantedQoS1]))])
        subscriberClient.disconnect()
        store.completePending()
        harness.run()

        let publisher = harness.connect()
        publisher.connectAccepted("pub")
        publisher.publish("t", "m1", qos: .atLeastOnce, packetID: 5)
        XCTAssertEqual(publisher.receivedPackets(), [], "PUBACK before the delivery is stored")
        XCTAssertEqual(store.pendingCount, 1)
        guard case .messageRouted(let message, let deliveries)? = store.batches.last?.first else {
            return XCTFail("expected the routed message in the batch, got \(String(describing: store.batches.last))")
        }
        XCTAssertEqual(message.topic, "t")
        XCTAssertEqual(deliveries.map(\.clientID), ["sub"])
        store.completePending()
        harness.run()
        XCTAssertEqual(publisher.receivedPackets(), [.puback(PubAckPacket(packetID: 5))])

        // kill -9 and restart: the queued message is there.
        let restarted = self.harness(store.crashed(), wallClockOffset: 1000)
        let back = restarted.connect()
        let ack = back.connectAccepted("sub", cleanStart: false, properties: sessionExpiry(3600))
        XCTAssertEqual(ack?.sessionPresent, true)
        XCTAssertEqual(back.receivedPublishes().map(\.payloadString), ["m1"])
    }

    func testWhatWasNotCommittedWasNotAcknowledged() {
        let store = InMemorySessionStore(autoCommit: true)
        let harness = harness(store)
        _ = subscriber(harness, "sub", "t", qos: .atLeastOnce).disconnect()
        let publisher = harness.connect()
        publisher.connectAccepted("pub")
        store.autoCommit = false
        publisher.publish("t", "lost", qos: .atLeastOnce, packetID: 1)
        XCTAssertEqual(publisher.receivedPackets(), [], "not acknowledged: not stored yet")
        // Crash before the commit: the message is gone, but it was never acknowledged.
        let restarted = self.harness(store.crashed())
        let back = restarted.connect()
        XCTAssertEqual(back.connectAccepted("sub", cleanStart: false, properties: sessionExpiry(3600))?.sessionPresent, true)
        XCTAssertEqual(back.receivedPublishes(), [])
    }

    func testTrafficThatStoresNothingIsNotHeld() {
        let store = InMemorySessionStore(autoCommit: false)
        let harness = harness(store)
        let subscriber = harness.connect()
        subscriber.connectAccepted("clean")   // clean, expiry 0: nothing stored
        subscriber.subscribe("t", qos: .atLeastOnce)
        let publisher = harness.connect()
        publisher.connectAccepted("pub")
        publisher.publish("t", "q1", qos: .atLeastOnce, packetID: 3)
        XCTAssertEqual(publisher.receivedPackets(), [.puback(PubAckPacket(packetID: 3))])
        XCTAssertEqual(subscriber.receivedPublishes().map(\.payloadString), ["q1"])
        XCTAssertEqual(store.batches.count, 0, "nothing to store")
    }

    func testQoS2InFlightStatesSurviveRestartsWithTheirPacketIDs() throws {
        let store = InMemorySessionStore()
        var harness = harness(store)
        let sub = subscriber(harness, "sub", "t", qos: .exactlyOnce)
        let publisher = harness.connect()
        publisher.connectAccepted("pub")
        publisher.publish("t", "once", qos: .exactlyOnce, packetID: 1)
        XCTAssertEqual(publisher.receivedPackets(), [.pubrec(PubAckPacket(packetID: 1))])
        let first = sub.receivedPublishes()
        XCTAssertEqual(first.map(\.payloadString), ["once"])
        let packetID = first[0].packetID

        // Crash before the subscriber answers: the PUBLISH is resent with DUP and the same id.
        var current = store.crashed()
        harness = self.harness(current, wallClockOffset: 1000)
        var back = harness.connect()
        back.connectAccepted("sub", cleanStart: false, properties: sessionExpiry(3600))
        let resent = back.receivedPublishes()
        XCTAssertEqual(resent.map(\.payloadString), ["once"])
        XCTAssertEqual(resent.first?.packetID, packetID)
        XCTAssertEqual(resent.first?.dup, true)
        back.send(.pubrec(PubAckPacket(packetID: packetID)))
        XCTAssertEqual(back.receivedPackets(), [.pubrel(PubAckPacket(packetID: packetID))])

        // Crash after PUBREC: the PUBREL is resent, not the PUBLISH.
        current = current.crashed()
        harness = self.harness(current, wallClockOffset: 2000)
        back = harness.connect()
        back.connectAccepted("sub", cleanStart: false, properties: sessionExpiry(3600))
        XCTAssertEqual(back.receivedPackets(), [.pubrel(PubAckPacket(packetID: packetID))])
        back.send(.pubcomp(PubAckPacket(packetID: packetID)))
        XCTAssertEqual(try current.crashed().load().deliveries, [], "finished: nothing left in the store")
    }

    /// Packet ids are given when a message is queued, and a session's numbering goes on after a
    /// restart (Mosquitto's last_mid): queued messages keep their ids, the next one follows them.
    func testPacketIDsAreKeptAndContinueAcrossARestart() {
        let store = InMemorySessionStore()
        var harness = harness(store)
        let sub = subscriber(harness, "sub", "t", qos: .atLeastOnce)
        let publisher = harness.connect()
        publisher.connectAccepted("pub")
        publisher.publish("t", "a", qos: .atLeastOnce, packetID: 1)
        let first = sub.receivedPublishes()
        XCTAssertEqual(first.map(\.packetID), [1])
        sub.send(.puback(PubAckPacket(packetID: 1)))
        sub.dropConnection()
        publisher.publish("t", "b", qos: .atLeastOnce, packetID: 2)
        publisher.publish("t", "c", qos: .atLeastOnce, packetID: 3)

        harness = self.harness(store.crashed(), wallClockOffset: 1000)
        let back = harness.connect()
        back.connectAccepted("sub", cleanStart: false, properties: sessionExpiry(3600))
        let queued = back.receivedPublishes()
        XCTAssertEqual(queued.map(\.payloadString), ["b", "c"])
        XCTAssertEqual(queued.map(\.packetID), [2, 3], "queued with their ids, which survive the restart")
        for message in queued { back.send(.puback(PubAckPacket(packetID: message.packetID))) }
        let again = harness.connect()
        again.connectAccepted("pub2")
        again.publish("t", "d", qos: .atLeastOnce, packetID: 1)
        XCTAssertEqual(back.receivedPublishes().map(\.packetID), [4])
    }

    func testInboundQoS2IdSurvivesARestartSoTheResendIsNotRoutedTwice() throws {
        let store = InMemorySessionStore()
        var harness = harness(store)
        _ = subscriber(harness, "sub", "t", qos: .exactlyOnce).disconnect()
        let publisher = harness.connect()
        publisher.connectAccepted("pub", cleanStart: false, properties: sessionExpiry(3600))
        publisher.publish("t", "x", qos: .exactlyOnce, packetID: 7)
        XCTAssertEqual(publisher.receivedPackets(), [.pubrec(PubAckPacket(packetID: 7))])

        harness = self.harness(store.crashed(), wallClockOffset: 1000)
        let again = harness.connect()
        again.connectAccepted("pub", cleanStart: false, properties: sessionExpiry(3600))
        // The publisher did not see PUBCOMP: it resends the PUBLISH (DUP), then PUBREL.
        again.send(.publish(PublishPacket(topic: "t", payload: bytes("x"), qos: .exactlyOnce, dup: true, packetID: 7)))
        XCTAssertEqual(again.receivedPackets(), [.pubrec(PubAckPacket(packetID: 7))])
        again.send(.pubrel(PubAckPacket(packetID: 7)))
        XCTAssertEqual(again.receivedPackets(), [.pubcomp(PubAckPacket(packetID: 7))])
        let sub = harness.connect()
        sub.connectAccepted("sub", cleanStart: false, properties: sessionExpiry(3600))
        XCTAssertEqual(sub.receivedPublishes().map(\.payloadString), ["x"], "exactly once")
    }

    func testRetainedMessagesAndTheirClearingSurviveARestart() {
        let store = InMemorySessionStore()
        var harness = harness(store)
        let publisher = harness.connect()
        publisher.connectAccepted("pub")
        publisher.publish("r/1", "one", qos: .atLeastOnce, retain: true, packetID: 1)
        publisher.publish("r/2", "two", qos: .atMostOnce, retain: true)
        publisher.publish("r/3", "three", qos: .atLeastOnce, retain: true, packetID: 2, properties: messageExpiry(60))
        publisher.publish("r/2", "", retain: true)
        harness.run()
        harness = self.harness(store.crashed(), wallClockOffset: 10_000)
        let reader = harness.connect()
        reader.connectAccepted("reader")
        reader.subscribe("r/#", qos: .atLeastOnce)
        let retained = reader.receivedPublishes()
        XCTAssertEqual(retained.map(\.payloadString), ["one", "three"])
        XCTAssertTrue(retained.allSatisfy(\.retain))
        // Expiry is wall-clock: 10 s of the 60 passed while the broker was down.
        XCTAssertEqual(retained.last?.properties.messageExpiryInterval, 50)

        // Restarted 61 s after the publication: expired.
        harness = self.harness(store.crashed(), wallClockOffset: 61_000)
        let late = harness.connect()
        late.connectAccepted("late")
        late.subscribe("r/#", qos: .atLeastOnce)
        XCTAssertEqual(late.receivedPublishes().map(\.payloadString), ["one"])
    }

    func testSessionExpiryCountsTheTimeTheBrokerWasDown() {
        let store = InMemorySessionStore()
        var harness = harness(store)
        let client = harness.connect()
        client.connectAccepted("short", cleanStart: false, properties: sessionExpiry(30))
        client.subscribe("t", qos: .atLeastOnce)
        client.disconnect()
        // Down for 20 s: 10 s of the session are left.
        let second = store.crashed()
        harness = self.harness(second, wallClockOffset: 20_000)
        harness.advance(by: .seconds(9))
        XCTAssertNotNil(harness.broker.session(clientID: "short"))
        harness.advance(by: .seconds(2))
        XCTAssertNil(harness.broker.session(clientID: "short"), "expired 30 s after its disconnection")
        harness = self.harness(second.crashed(), wallClockOffset: 40_000)
        XCTAssertNil(harness.broker.session(clientID: "short"), "the expiry was stored")
    }

    func testDelayedWillOfASessionConnectedAtTheCrashIsPublishedAfterTheRestart() {
        let store = InMemorySessionStore()
        var harness = harness(store)
        let watcher = subscriber(harness, "watcher", "wills/#", qos: .atLeastOnce)
        watcher.disconnect()
        var willProperties = Properties.none
        willProperties.willDelayInterval = 5
        let client = harness.connect()
        client.connectAccepted("dies", cleanStart: false, will: Will(topic: "wills/dies", payload: bytes("gone"), qos: .atLeastOnce, properties: willProperties),
                               properties: sessionExpiry(3600))
        harness = self.harness(store.crashed(), wallClockOffset: 1000)
        harness.advance(by: .seconds(4))
        var back = harness.connect()
        back.connectAccepted("watcher", cleanStart: false, properties: sessionExpiry(3600))
        XCTAssertEqual(back.receivedPublishes(), [], "will delay not over")
        back.disconnect()
        harness.advance(by: .seconds(2))
        back = harness.connect()
        back.connectAccepted("watcher", cleanStart: false, properties: sessionExpiry(3600))
        XCTAssertEqual(back.receivedPublishes().map(\.payloadString), ["gone"])
    }

    func testCrossLoopDeliveryIsHandedOverOnlyAfterItIsStored() {
        let store = InMemorySessionStore(autoCommit: true)
        let harness = harness(store, loops: 2)
        let sub = subscriber(harness, "sub", "t", qos: .atLeastOnce, loop: 1)
        let publisher = harness.connect(loop: 0)
        publisher.connectAccepted("pub")
        store.autoCommit = false
        publisher.publish("t", "m", qos: .atLeastOnce, packetID: 1)
        XCTAssertEqual(sub.receivedPublishes(), [], "the subscriber's loop must not see it before it is stored")
        XCTAssertEqual(publisher.receivedPackets(), [])
        store.completePending()
        harness.run()
        XCTAssertEqual(publisher.receivedPackets(), [.puback(PubAckPacket(packetID: 1))])
        let got = sub.receivedPublishes()
        XCTAssertEqual(got.map(\.payloadString), ["m"])
        store.autoCommit = true
        if let first = got.first { sub.acknowledge(first) }
        harness.run()
        XCTAssertEqual(try store.crashed().load().deliveries, [], "acknowledged: deleted after it was inserted")
    }

    func testStoreThatCannotWriteRefusesQoS1And2() {
        let store = InMemorySessionStore()
        let harness = harness(store)
        let v5 = harness.connect()
        v5.connectAccepted("v5")
        let v3 = harness.connect(version: .v3_1_1)
        v3.connectAccepted("v3", version: .v3_1_1)
        store.isWritable = false
        v5.publish("t", "a", qos: .atLeastOnce, packetID: 1)
        XCTAssertEqual(v5.receivedPackets(), [.puback(PubAckPacket(packetID: 1, reasonCode: .quotaExceeded))])
        v5.publish("t", "b", qos: .exactlyOnce, packetID: 2)
        XCTAssertEqual(v5.receivedPackets(), [.pubrec(PubAckPacket(packetID: 2, reasonCode: .quotaExceeded))])
        v5.publish("t", "c")
        XCTAssertFalse(v5.isClosed, "QoS 0 needs no store")
        v3.publish("t", "d", qos: .atLeastOnce, packetID: 3)
        XCTAssertEqual(v3.receivedPackets(), [], "3.1.1 has no refusal: no PUBACK")
        XCTAssertTrue(v3.isClosed)
        store.isWritable = true
        v5.publish("t", "e", qos: .atLeastOnce, packetID: 4)
        XCTAssertEqual(v5.receivedPackets(), [.puback(PubAckPacket(packetID: 4, reasonCode: .noMatchingSubscribers))])
    }

    func testSubscriptionsAndCleanStartAreKept() throws {
        let store = InMemorySessionStore()
        var harness = harness(store)
        let client = subscriber(harness, "s", "a/+", qos: .atLeastOnce, version: .v3_1_1)
        client.subscribe("b/#", qos: .exactlyOnce, packetID: 2)
        client.send(.unsubscribe(UnsubscribePacket(packetID: 3, filters: ["a/+"])))
        _ = client.receivedPackets()
        client.dropConnection()
        var state = try store.crashed().load()
        XCTAssertEqual(state.sessions.map(\.clientID), ["s"])
        XCTAssertEqual(state.subscriptions.map(\.filter), ["b/#"])
        XCTAssertEqual(state.subscriptions.first?.options.qos, .exactlyOnce)

        let second = store.crashed()
        harness = self.harness(second)
        let publisher = harness.connect()
        publisher.connectAccepted("p")
        publisher.publish("a/x", "no", qos: .atLeastOnce, packetID: 1)
        publisher.publish("b/y/z", "yes", qos: .exactlyOnce, packetID: 2)
        let back = harness.connect(version: .v3_1_1)
        back.connectAccepted("s", version: .v3_1_1, cleanStart: false)
        XCTAssertEqual(back.receivedPublishes().map(\.payloadString), ["yes"])
        // A clean session ends the stored one.
        back.dropConnection()
        let clean = harness.connect(version: .v3_1_1)
        clean.connectAccepted("s", version: .v3_1_1, cleanStart: true)
        harness.run()
        state = try second.crashed().load()
        XCTAssertEqual(state.sessions.map(\.clientID), [])
        XCTAssertEqual(state.deliveries, [])
        XCTAssertEqual(state.messages, [])
    }
}
