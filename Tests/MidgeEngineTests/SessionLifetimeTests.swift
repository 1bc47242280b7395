import MidgeBroker
import MidgeEngineHarness
import MQTTCodec
import NIOCore
import XCTest

/// Will delay, session expiry and message expiry on the virtual clock.
final class SessionLifetimeTests: XCTestCase {
    private func willMessage(_ delay: UInt32?) -> Will {
        var properties = Properties.none
        properties.willDelayInterval = delay
        return Will(topic: "wills/w", payload: bytes("gone"), qos: .atMostOnce, properties: properties)
    }

    private func expiry(_ seconds: UInt32) -> Properties {
        var properties = Properties.none
        properties.sessionExpiryInterval = seconds
        return properties
    }

    /// The will is published after its delay [MQTT-3.1.3-9], not at the disconnect.
    func testWillDelayedUntilItsInterval() {
        let harness = EngineHarness()
        let watcher = harness.connect()
        watcher.connectAccepted("watcher")
        watcher.subscribe("wills/#")
        let dying = harness.connect()
        dying.connectAccepted("dying", will: willMessage(30), properties: expiry(300))
        dying.dropConnection()
        harness.advance(by: .seconds(29))
        XCTAssertEqual(watcher.receivedPublishes(), [])
        harness.advance(by: .seconds(2))
        XCTAssertEqual(watcher.receivedPublishes().map(\.payloadString), ["gone"])
    }

    /// Reconnecting within the will delay cancels the will [MQTT-3.1.2-10 note].
    func testReconnectWithinWillDelayCancelsIt() {
        let harness = EngineHarness()
        let watcher = harness.connect()
        watcher.connectAccepted("watcher")
        watcher.subscribe("wills/#")
        let dying = harness.connect()
        dying.connectAccepted("dying", will: willMessage(30), properties: expiry(300))
        dying.dropConnection()
        harness.advance(by: .seconds(10))
        harness.connect().connectAccepted("dying", cleanStart: false, properties: expiry(300))
        harness.advance(by: .seconds(60))
        XCTAssertEqual(watcher.receivedPublishes(), [])
    }

    /// The session ends when its expiry passes: the will goes out then, even if its own delay is
    /// longer [MQTT-3.1.2-8], and a reconnect finds no session.
    func testSessionExpiryEndsSessionAndSendsWill() {
        let harness = EngineHarness()
        let watcher = harness.connect()
        watcher.connectAccepted("watcher")
        watcher.subscribe("wills/#")
        let dying = harness.connect()
        dying.connectAccepted("short", will: willMessage(3600), properties: expiry(20))
        dying.dropConnection()
        harness.advance(by: .seconds(19))
        XCTAssertEqual(watcher.receivedPublishes(), [])
        XCTAssertNotNil(harness.broker.session(clientID: "short"))
        harness.advance(by: .seconds(2))
        XCTAssertEqual(watcher.receivedPublishes().map(\.payloadString), ["gone"])
        XCTAssertNil(harness.broker.session(clientID: "short"))
        let back = harness.connect()
        XCTAssertEqual(back.connectAccepted("short", cleanStart: false, properties: expiry(20))?.sessionPresent, false)
    }

    /// Offline QoS 1 messages whose Message Expiry passed are not delivered [MQTT-3.3.2-5]; the
    /// others arrive with the remaining lifetime [MQTT-3.3.2-6].
    func testExpiredQueuedMessagesAreDropped() {
        let harness = EngineHarness()
        let subscriber = harness.connect()
        subscriber.connectAccepted("sub", properties: expiry(600))
        subscriber.subscribe("m/#", qos: .atLeastOnce)
        subscriber.dropConnection()

        let publisher = harness.connect()
        publisher.connectAccepted("pub")
        var short = Properties.none
        short.messageExpiryInterval = 10
        var long = Properties.none
        long.messageExpiryInterval = 100
        publisher.publish("m/short", "s", qos: .atLeastOnce, packetID: 1, properties: short)
        publisher.publish("m/long", "l", qos: .atLeastOnce, packetID: 2, properties: long)
        XCTAssertEqual(publisher.receivedPackets().count, 2)  // two PUBACKs

        harness.advance(by: .seconds(30))
        let back = harness.connect()
        XCTAssertEqual(back.connectAccepted("sub", cleanStart: false, properties: expiry(600))?.sessionPresent, true)
        let delivered = back.receivedPublishes()
        XCTAssertEqual(delivered.map(\.topic), ["m/long"])
        XCTAssertEqual(delivered.first?.properties.messageExpiryInterval, 70)
    }

    /// QoS 1 sent but not acknowledged is sent again with DUP on reconnect, same packet id
    /// [MQTT-4.4.0-1] [MQTT-3.3.1-1].
    func testUnacknowledgedQoS1ResentWithDupOnReconnect() {
        let harness = EngineHarness()
        let subscriber = harness.connect()
        subscriber.connectAccepted("sub", properties: expiry(600))
        subscriber.subscribe("r", qos: .atLeastOnce)
        let publisher = harness.connect()
        publisher.connectAccepted("pub")
        publisher.publish("r", "once", qos: .atLeastOnce, packetID: 7)
        let first = subscriber.receivedPublishes()
        XCTAssertEqual(first.count, 1)
        XCTAssertEqual(first.first?.dup, false)
        subscriber.dropConnection()

        let back = harness.connect()
        back.connectAccepted("sub", cleanStart: false, properties: expiry(600))
        let again = back.receivedPublishes()
        XCTAssertEqual(again.count, 1)
        XCTAssertEqual(again.first?.dup, true)
        XCTAssertEqual(again.first?.packetID, first.first?.packetID)
        back.send(.puback(PubAckPacket(packetID: again.first!.packetID)))
        back.dropConnection()
        let third = harness.connect()
        third.connectAccepted("sub", cleanStart: false, properties: expiry(600))
        XCTAssertEqual(third.receivedPublishes(), [], "an acknowledged message came back")
    }
}
