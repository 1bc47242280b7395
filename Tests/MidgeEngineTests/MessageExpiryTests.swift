import MidgeBroker
import MidgeEngineHarness
import MQTTCodec
import NIOCore
import XCTest

/// v5 Message Expiry Interval (spec 3.3.2.3.3) on the virtual clock: forwarded with the time spent
/// in the broker subtracted [MQTT-3.3.2-6] (whole seconds, rounded up); messages that expire while
/// queued, retained or waiting are not delivered [MQTT-3.3.2-5].
final class MessageExpiryTests: XCTestCase {
    func testLiveForwardKeepsTheInterval() {
        let harness = EngineHarness()
        let subscriber = harness.connect()
        subscriber.connectAccepted("mx-live")
        subscriber.subscribe("mxl", qos: .atLeastOnce)
        let publisher = harness.connect()
        publisher.connectAccepted("mx-live-pub")
        publisher.publish("mxl", "x", qos: .atLeastOnce, packetID: 1, properties: messageExpiry(10))
        publisher.publish("mxl", "none", qos: .atLeastOnce, packetID: 2)
        let received = subscriber.receivedPublishes()
        XCTAssertEqual(received.map(\.payloadString), ["x", "none"])
        guard received.count == 2 else { return }
        XCTAssertEqual(received[0].properties.messageExpiryInterval, 10, "no time passed in the broker")
        XCTAssertNil(received[1].properties.messageExpiryInterval, "no expiry invented for a message without one")
    }

    /// Queued for an offline session for 2.1 s: a 10 s message arrives with 8 s left (7.9 rounded
    /// up); a 1 s message has expired and is dropped; a message without expiry stays without one.
    func testQueuedMessagesAreDecrementedOrDropped() {
        let harness = EngineHarness()
        var subscriber = harness.connect()
        subscriber.connectAccepted("mx-q", cleanStart: true, properties: sessionExpiry(600))
        subscriber.subscribe("mxq", qos: .atLeastOnce)
        subscriber.disconnect()
        let publisher = harness.connect()
        publisher.connectAccepted("mx-q-pub")
        publisher.publish("mxq", "short", qos: .atLeastOnce, packetID: 1, properties: messageExpiry(1))
        publisher.publish("mxq", "long", qos: .atLeastOnce, packetID: 2, properties: messageExpiry(10))
        publisher.publish("mxq", "forever", qos: .atLeastOnce, packetID: 3)
        harness.advance(by: .milliseconds(2_100))

        subscriber = harness.connect()
        XCTAssertEqual(subscriber.connectAccepted("mx-q", cleanStart: false, properties: sessionExpiry(600))?.sessionPresent, true)
        publisher.publish("mxq", "end", qos: .atMostOnce)
        let received = subscriber.receivedPublishes()
        XCTAssertEqual(received.map(\.payloadString), ["long", "forever", "end"], "the expired message was delivered")
        guard received.count == 3 else { return }
        XCTAssertEqual(received[0].properties.messageExpiryInterval, 8, "Message Expiry Interval not decremented while queued")
        XCTAssertNil(received[1].properties.messageExpiryInterval)
    }

    /// A message waiting behind a full Receive Maximum window expires there too [MQTT-3.3.2-5].
    func testMessageExpiresWhileWaitingForTheWindow() {
        let harness = EngineHarness()
        var properties = Properties.none
        properties.receiveMaximum = 1
        let subscriber = harness.connect()
        subscriber.connectAccepted("mx-win", properties: properties)
        subscriber.subscribe("mxw", qos: .atLeastOnce)
        let publisher = harness.connect()
        publisher.connectAccepted("mx-win-pub")
        publisher.publish("mxw", "first", qos: .atLeastOnce, packetID: 1)
        publisher.publish("mxw", "short", qos: .atLeastOnce, packetID: 2, properties: messageExpiry(1))
        publisher.publish("mxw", "last", qos: .atLeastOnce, packetID: 3)
        let first = subscriber.receivedPublishes()
        XCTAssertEqual(first.map(\.payloadString), ["first"], "Receive Maximum 1: one message in flight")
        harness.advance(by: .milliseconds(1_200))
        first.forEach(subscriber.acknowledge)
        let next = subscriber.receivedPublishes()
        XCTAssertEqual(next.map(\.payloadString), ["last"], "expired message delivered after waiting in the queue")
    }

    /// A retained message with a Message Expiry Interval is sent with the remaining interval
    /// [MQTT-3.3.2-6] while it lasts and not at all once it has expired [MQTT-3.3.2-5].
    func testRetainedMessageExpires() {
        let harness = EngineHarness()
        let publisher = harness.connect()
        publisher.connectAccepted("rx-pub")
        publisher.publish("rx/short", "short", qos: .atLeastOnce, retain: true, packetID: 1, properties: messageExpiry(1))
        publisher.publish("rx/long", "long", qos: .atLeastOnce, retain: true, packetID: 2, properties: messageExpiry(100))

        let early = harness.connect()
        early.connectAccepted("rx-early")
        early.subscribe("rx/+", qos: .exactlyOnce)
        let earlyRetained = early.receivedPublishes()
        XCTAssertEqual(Set(earlyRetained.map(\.payloadString)), ["short", "long"])
        XCTAssertEqual(earlyRetained.count, 2)
        XCTAssertEqual(earlyRetained.first { $0.payloadString == "long" }?.properties.messageExpiryInterval, 100)
        XCTAssertEqual(earlyRetained.first { $0.payloadString == "short" }?.properties.messageExpiryInterval, 1)

        harness.advance(by: .milliseconds(1_200))
        let late = harness.connect()
        late.connectAccepted("rx-late")
        late.subscribe("rx/+", qos: .exactlyOnce)
        let lateRetained = late.receivedPublishes()
        XCTAssertEqual(lateRetained.map(\.payloadString), ["long"], "the expired retained message was still sent")
        XCTAssertEqual(lateRetained.first?.properties.messageExpiryInterval, 99, "Message Expiry Interval missing or not decremented (98.8 s left)")
    }

    func testExpiredWillIsNotDeliveredFromOfflineQueue() {
        // Message Expiry Interval of a will: a subscriber offline longer than it does not get it
        // [MQTT-3.3.2-5]. (A will with a longer expiry, queued alongside, arrives with the rest.)
        let harness = EngineHarness()
        var subscriber = harness.connect()
        subscriber.connectAccepted("offline-sub", properties: sessionExpiry(60))
        subscriber.subscribe("exp-will/#", qos: .atLeastOnce)
        subscriber.disconnect()
        for (id, seconds) in [("exp-will", UInt32(1)), ("long-will", 100)] {
            let client = harness.connect()
            client.connectAccepted(id, will: Will(topic: "exp-will/\(id)", payload: bytes(id), qos: .atLeastOnce,
                                                  properties: messageExpiry(seconds)))
            client.dropConnection()
        }
        harness.advance(by: .milliseconds(1_300))
        subscriber = harness.connect()
        XCTAssertEqual(subscriber.connectAccepted("offline-sub", cleanStart: false, properties: sessionExpiry(60))?.sessionPresent, true)
        let delivered = subscriber.receivedPublishes()
        XCTAssertEqual(delivered.map(\.payloadString), ["long-will"], "(the will expired while queued)")
        XCTAssertEqual(delivered.first?.properties.messageExpiryInterval, 99)
        subscriber.disconnect()
    }
}
