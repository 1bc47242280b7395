import MidgeBroker
import MidgeEngineHarness
import MQTTCodec
import NIOCore
import XCTest

/// Keep alive and connect_timeout on the virtual clock: what took seconds of sleeping over a
/// socket takes microseconds and is exact to the sweep interval.
final class KeepAliveAndTimeoutTests: XCTestCase {
    /// A client silent for 1.5 × Keep Alive is disconnected [MQTT-3.1.2-24], not before.
    func testSilentClientClosedAfterOneAndAHalfKeepAlive() {
        let harness = EngineHarness()
        let client = harness.connect()
        client.connectAccepted("ka", keepAlive: 10)
        harness.advance(by: .milliseconds(14_700))
        XCTAssertFalse(client.isClosed, "closed before 1.5 × keep alive")
        harness.advance(by: .milliseconds(600))
        XCTAssertTrue(client.isClosed)
        // A v5 client is told why: DISCONNECT 0x8D Keep Alive timeout.
        XCTAssertEqual(client.receivedPackets(), [.disconnect(DisconnectPacket(reasonCode: .keepAliveTimeout))])
    }

    /// Any complete packet resets the keep-alive timer; PINGREQ gets PINGRESP.
    func testPingKeepsTheConnectionOpen() {
        let harness = EngineHarness()
        let client = harness.connect(version: .v3_1_1)
        client.connectAccepted("ping", version: .v3_1_1, keepAlive: 4)
        for _ in 0..<10 {
            harness.advance(by: .seconds(5))
            client.send(.pingreq)
            XCTAssertEqual(client.receivedPackets(), [.pingresp])
        }
        XCTAssertFalse(client.isClosed)
        harness.advance(by: .seconds(7))
        XCTAssertTrue(client.isClosed)
        // 3.1.1 has no DISCONNECT from the server: the socket just closes.
        XCTAssertEqual(client.receivedPackets(), [])
    }

    /// An unfinished packet is not activity [MQTT-3.1.2-22]: dripping one byte at a time does
    /// not keep a connection alive.
    func testPartialPacketIsNotActivity() {
        let harness = EngineHarness()
        let client = harness.connect()
        client.connectAccepted("drip", keepAlive: 2)
        var publish = ByteBufferAllocator().buffer(capacity: 32)
        PacketEncoder.encode(.publish(PublishPacket(topic: "t", payload: bytes("0123456789"))), version: .v5, into: &publish)
        for index in 0..<publish.readableBytes - 1 {
            harness.advance(by: .milliseconds(500))
            client.send(publish.getSlice(at: index, length: 1)!)
        }
        XCTAssertTrue(client.isClosed, "a connection that sent no complete packet for 3 s stays open")
    }

    /// connect_timeout: a socket that sends no CONNECT is closed after it, and sees nothing.
    func testNoConnectWithinConnectTimeout() {
        var configuration = BrokerConfiguration.defaults
        configuration.connectTimeout = 5
        let harness = EngineHarness(configuration: configuration)
        let idle = harness.connect()
        harness.advance(by: .milliseconds(4_900))
        XCTAssertFalse(idle.isClosed)
        harness.advance(by: .milliseconds(400))
        XCTAssertTrue(idle.isClosed)
        XCTAssertEqual(idle.receivedBytes(), [])
    }
}
