import MidgeBroker
import MidgeEngineHarness
import MQTTCodec
import NIOCore
import XCTest

/// A session outliving its connection keeps its unacknowledged messages (will delay, session
/// expiry and message expiry: `WillDelayTests`, `SessionExpiryTests`, `MessageExpiryTests`).
final class SessionLifetimeTests: XCTestCase {
    /// QoS 1 sent but not acknowledged is sent again with DUP on reconnect, same packet id
    /// [MQTT-4.4.0-1] [MQTT-3.3.1-1].
    func testUnacknowledgedQoS1ResentWithDupOnReconnect() {
        let harness = EngineHarness()
        let subscriber = harness.connect()
        subscriber.connectAccepted("sub", properties: sessionExpiry(600))
        subscriber.subscribe("r", qos: .atLeastOnce)
        let publisher = harness.connect()
        publisher.connectAccepted("pub")
        publisher.publish("r", "once", qos: .atLeastOnce, packetID: 7)
        let first = subscriber.receivedPublishes()
        XCTAssertEqual(first.count, 1)
        XCTAssertEqual(first.first?.dup, false)
        subscriber.dropConnection()

        let back = harness.connect()
        back.connectAccepted("sub", cleanStart: false, properties: sessionExpiry(600))
        let again = back.receivedPublishes()
        XCTAssertEqual(again.count, 1)
        XCTAssertEqual(again.first?.dup, true)
        XCTAssertEqual(again.first?.packetID, first.first?.packetID)
        back.send(.puback(PubAckPacket(packetID: again.first!.packetID)))
        back.dropConnection()
        let third = harness.connect()
        third.connectAccepted("sub", cleanStart: false, properties: sessionExpiry(600))
        XCTAssertEqual(third.receivedPublishes(), [], "an acknowledged message came back")
    }
}
