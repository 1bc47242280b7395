import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestSupport
import NIOCore
import XCTest

/// MidgeClient's QoS machinery under failure: unacknowledged messages are resent with DUP and
/// their packet ids after a reconnect (the client side of MQTT-4.4.0-1), publishes made while the broker is gone
/// go out once it is back (a real broker restarted mid-flow), and the broker's Receive Maximum
/// caps what is in flight (the client rule MQTT-3.3.4-7).
final class ReconnectAndInflightTests: XCTestCase {
    private func waitUntil(_ timeout: TimeInterval = 5, _ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            guard Date() < deadline else { return }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
    }

    func testUnacknowledgedPublishesAreResentWithDupAfterReconnect() async throws {
        let broker = try ScriptedBroker()
        defer { broker.shutdown() }
        let client = MQTTClient(configuration: .init(host: "127.0.0.1", port: broker.port, version: .v5, clientID: "redeliver",
                                                     cleanStart: false, sessionExpiryInterval: 300,
                                                     reconnect: .init(initialDelay: .milliseconds(100))))
        try await client.connect()
        let first = client.enqueuePublish("r/1", payload: ByteBuffer(string: "one"), qos: .atLeastOnce)
        let second = client.enqueuePublish("r/2", payload: ByteBuffer(string: "two"), qos: .exactlyOnce)
        try await waitUntil { broker.publishes(onConnection: 0).count == 2 }
        let original = broker.publishes(onConnection: 0)
        XCTAssertEqual(original.map(\.dup), [false, false])

        // The broker crashes before acknowledging; the client reconnects by itself.
        broker.dropConnections()
        try await waitUntil { broker.publishes(onConnection: 1).count == 2 }
        let resent = broker.publishes(onConnection: 1)
        XCTAssertEqual(resent.map(\.topic), ["r/1", "r/2"], "resent in order")
        XCTAssertEqual(resent.map(\.dup), [true, true])
        XCTAssertEqual(resent.map(\.packetID), original.map(\.packetID))
        guard case .connect(let reconnect)? = broker.packets.first(where: { $0.connection == 1 })?.packet else {
            return XCTFail("no CONNECT on the second connection")
        }
        XCTAssertFalse(reconnect.cleanStart, "the reconnect resumes the session")

        // Acknowledge now: both publishes complete.
        broker.send([.puback(PubAckPacket(packetID: resent[0].packetID)), .pubrec(PubAckPacket(packetID: resent[1].packetID))], toConnection: 1)
        try await waitUntil { broker.packets.contains { if case .pubrel = $0.packet { return true }; return false } }
        broker.send([.pubcomp(PubAckPacket(packetID: resent[1].packetID))], toConnection: 1)
        let results = try await [first.get(), second.get()]
        XCTAssertEqual(results.map(\.reasonCode), [.success, .success])
        await client.disconnect()
    }

    func testReceiveMaximumCapsMessagesInFlight() async throws {
        var properties = Properties()
        properties.receiveMaximum = 2
        let broker = try ScriptedBroker(connackProperties: properties)
        defer { broker.shutdown() }
        let client = MQTTClient(configuration: .init(host: "127.0.0.1", port: broker.port, version: .v5, clientID: "window"))
        try await client.connect()
        let futures = (0..<6).map { client.enqueuePublish("w/\($0)", payload: ByteBuffer(string: "\($0)"), qos: .atLeastOnce) }
        try await waitUntil { broker.publishes().count >= 2 }
        try await Task.sleep(nanoseconds: 300_000_000)
        XCTAssertEqual(broker.publishes().count, 2, "never more than Receive Maximum unacknowledged")
        for round in 0..<4 {
            let sent = broker.publishes()
            broker.send([.puback(PubAckPacket(packetID: sent[round].packetID))], toConnection: 0)
            try await waitUntil { broker.publishes().count == 3 + round }
            try await Task.sleep(nanoseconds: 100_000_000)
            XCTAssertEqual(broker.publishes().count, 3 + round, "one acknowledgement frees one slot")
        }
        let sent = broker.publishes()
        XCTAssertEqual(sent.map(\.topic), (0..<6).map { "w/\($0)" }, "in order")
        broker.send([.puback(PubAckPacket(packetID: sent[4].packetID)), .puback(PubAckPacket(packetID: sent[5].packetID))], toConnection: 0)
        for future in futures {
            let result = try await future.get()
            XCTAssertEqual(result.reasonCode, .success)
        }
        await client.disconnect()
    }

    func testPublishesDuringABrokerRestartArriveAfterIt() async throws {
        var broker: TestBroker? = try TestBroker()
        let port = broker!.port
        let publisher = MQTTClient(configuration: .init(host: "127.0.0.1", port: port, version: .v5, clientID: "restart-pub",
                                                        reconnect: .init(initialDelay: .milliseconds(100))))
        try await publisher.connect()
        let before = try await publisher.publish("restart/t", payload: "before", qos: .atLeastOnce)
        XCTAssertEqual(before.reasonCode, .noMatchingSubscribers)

        broker!.shutdown()
        broker = nil
        // Published while the broker is down: they wait in the client. Reconnection attempts
        // at +0.1 s, +0.3 s and +0.7 s find no broker; the one at +1.5 s finds the new one,
        // after the subscriber below is in place.
        let pending = (0..<20).map { publisher.enqueuePublish("restart/t", payload: ByteBuffer(string: "\($0)"), qos: .atLeastOnce) }
        try await Task.sleep(nanoseconds: 900_000_000)

        let restarted = try TestBroker { config in
            var listener = ListenerConfiguration(port: port, bindAddress: "127.0.0.1")
            listener.security.allowAnonymous = true
            config.listeners = [listener]
            config.perListenerSettings = true
        }
        defer { restarted.shutdown() }
        let (subscriber, _) = try await restarted.connect("restart-sub")
        try await subscriber.send(.subscribe(SubscribePacket(packetID: 1, subscriptions: [TopicSubscription(filter: "restart/#", options: .init(qos: .atLeastOnce))])))
        guard case .suback = try await subscriber.receive() else { return XCTFail("no SUBACK") }

        var payloads: [String] = []
        for _ in 0..<20 {
            // receive() times out (5 s) rather than hang if the publisher never comes back.
            guard case .publish(let message) = try await subscriber.receive() else { return XCTFail("missing message") }
            payloads.append(message.payload.text)
            try await subscriber.send(.puback(PubAckPacket(packetID: message.packetID)))
        }
        XCTAssertEqual(payloads, (0..<20).map { "\($0)" })
        for future in pending {
            let result = try await future.get()
            XCTAssertTrue(result.reasonCode.isSuccess)
        }
        await publisher.disconnect()
    }
}
