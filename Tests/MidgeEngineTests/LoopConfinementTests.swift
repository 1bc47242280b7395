import MidgeBroker
import MidgeEngineHarness
import MQTTCodec
import NIOCore
import XCTest

/// Several loops in one harness: routing between loops, session takeover across loops, and a
/// subscriber that stops reading. Each loop's `inEventLoop` is true only while it runs, so the
/// engine's loop assertions check confinement exactly here.
final class LoopConfinementTests: XCTestCase {
    func testDeliveryAcrossLoopsKeepsOrder() {
        let harness = EngineHarness(loops: 3)
        let subscriber = harness.connect(loop: 2)
        subscriber.connectAccepted("sub")
        subscriber.subscribe("o/#", qos: .atLeastOnce)
        let publisher = harness.connect(loop: 0)
        publisher.connectAccepted("pub")
        for index in 1...50 { publisher.publish("o/\(index % 3)", "\(index)", qos: .atLeastOnce, packetID: UInt16(index)) }
        let delivered = subscriber.receivedPublishes()
        XCTAssertEqual(delivered.map(\.payloadString), (1...50).map(String.init))
        XCTAssertEqual(publisher.receivedPackets().count, 50)
    }

    /// A client id connecting on another loop takes the session over: the old connection gets
    /// DISCONNECT 0x8E [MQTT-3.1.4-3], the session (and its queued message) moves to the new loop.
    func testTakeoverAcrossLoopsMovesTheSession() {
        let harness = EngineHarness(loops: 2)
        var properties = Properties.none
        properties.sessionExpiryInterval = 300
        let first = harness.connect(loop: 0)
        first.connectAccepted("roamer", properties: properties)
        first.subscribe("x", qos: .atLeastOnce)
        first.setWritable(false)

        let publisher = harness.connect(loop: 1)
        publisher.connectAccepted("pub")
        publisher.publish("x", "queued", qos: .atLeastOnce, packetID: 1)

        let second = harness.connect(loop: 1)
        XCTAssertEqual(second.connectAccepted("roamer", cleanStart: false, properties: properties)?.sessionPresent, true)
        XCTAssertEqual(first.receivedPackets().last, .disconnect(DisconnectPacket(reasonCode: .sessionTakenOver)))
        XCTAssertTrue(first.isClosed)
        // It was sent to the stalled connection (into its window), so it is resent with DUP.
        let resent = second.receivedPublishes()
        XCTAssertEqual(resent.map(\.payloadString), ["queued"])
        XCTAssertEqual(resent.first?.dup, true)
        XCTAssertEqual(harness.broker.session(clientID: "roamer")?.loopIndex, 1)
    }

    /// A subscriber that does not read gets its QoS 0 messages queued in its session (not
    /// written), and all of them in order once it drains.
    func testStalledSubscriberGetsQueuedMessagesWhenWritable() {
        let harness = EngineHarness(loops: 2)
        let subscriber = harness.connect(loop: 1)
        subscriber.connectAccepted("slow")
        subscriber.subscribe("s")
        subscriber.setWritable(false)
        let publisher = harness.connect(loop: 0)
        publisher.connectAccepted("fast")
        for index in 1...20 { publisher.publish("s", "\(index)") }
        XCTAssertEqual(subscriber.receivedPublishes(), [])
        subscriber.setWritable(true)
        XCTAssertEqual(subscriber.receivedPublishes().map(\.payloadString), (1...20).map(String.init))
    }
}
