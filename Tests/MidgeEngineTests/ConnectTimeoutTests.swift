import MidgeBroker
import MidgeEngineHarness
import MQTTCodec
import NIOCore
import XCTest

/// `connect_timeout` on the virtual clock: a connection that does not deliver a complete CONNECT
/// in time is closed without an answer (nothing may precede CONNACK), so idle or slow-dripping
/// sockets cannot pile up. A connected client is then governed by its Keep Alive alone (0: never
/// timed out). The deadline is checked by the 250 ms keep-alive sweep.
final class ConnectTimeoutTests: XCTestCase {
    private func harness(timeout seconds: Int) -> EngineHarness {
        var configuration = BrokerConfiguration.defaults
        configuration.connectTimeout = seconds
        return EngineHarness(configuration: configuration)
    }

    /// A fresh client connects, subscribes and gets its own QoS 1 message back.
    private func assertBrokerServes(_ harness: EngineHarness, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        let probe = harness.connect()
        probe.connectAccepted("alive", file: file, line: line)
        probe.subscribe("alive/t", qos: .atLeastOnce, file: file, line: line)
        probe.publish("alive/t", "ok", qos: .atLeastOnce, packetID: 9)
        let packets = probe.receivedPackets()
        XCTAssertTrue(packets.contains(.puback(PubAckPacket(packetID: 9))), "no PUBACK \(context): \(packets)", file: file, line: line)
        let delivered = packets.compactMap { if case .publish(let publish) = $0 { return publish.payloadString } else { return nil } }
        XCTAssertEqual(delivered, ["ok"], "no delivery \(context)", file: file, line: line)
    }

    func testSilentSocketIsClosedAfterTheConnectTimeout() {
        for timeout in [1, 5] {
            let harness = harness(timeout: timeout)
            let raw = harness.connect()
            harness.advance(by: .milliseconds(Int64(timeout) * 1000 - 10))
            XCTAssertFalse(raw.isClosed, "closed before connect_timeout \(timeout)")
            let closedAt = harness.closeTimes([raw], step: .milliseconds(10))[0]
            XCTAssertNotNil(closedAt, "a socket that never sends CONNECT must be closed")
            if let closedAt {
                // Measured from 10 ms before the deadline; the sweep runs every 250 ms.
                XCTAssertLessThanOrEqual(closedAt, 0.01 + 0.25, "closed too late after connect_timeout \(timeout)")
            }
            XCTAssertEqual(raw.receivedBytes(), [], "nothing may be sent before CONNECT")
            assertBrokerServes(harness, "after closing an idle socket")
        }
    }

    func testCONNECTDrippedByteByByteIsClosedAtTheDeadline() {
        // The bytes of an unfinished packet are not a packet: dripping a CONNECT slower than the
        // timeout does not keep the socket open.
        let harness = harness(timeout: 1)
        let raw = harness.connect()
        let connect = connectBytes("dripper", .v5)
        let start = harness.now
        var sent = 0
        while sent < connect.count - 1, !raw.isClosed {
            raw.send([connect[sent]])
            sent += 1
            harness.advance(by: .milliseconds(200))
        }
        XCTAssertTrue(raw.isClosed, "the dripping socket must be closed")
        XCTAssertEqual(raw.receivedBytes(), [])
        XCTAssertLessThan(sent, connect.count - 1, "closed before the CONNECT was complete")
        let elapsed = Double((harness.now - start).nanoseconds) / 1e9
        XCTAssertGreaterThanOrEqual(elapsed, 1.0, "closed before connect_timeout")
        XCTAssertLessThanOrEqual(elapsed, 1.25, "closed more than one sweep after connect_timeout")
    }

    func testConnectedClientWithoutKeepAliveOutlivesTheConnectTimeout() {
        let harness = harness(timeout: 1)
        let client = harness.connect()
        client.connectAccepted("no-keepalive", keepAlive: 0)
        harness.advance(by: .seconds(2))
        XCTAssertFalse(client.isClosed, "within twice the connect timeout (Keep Alive 0)")
        harness.advance(by: .seconds(3_600))
        XCTAssertFalse(client.isClosed, "an hour later (Keep Alive 0)")
        XCTAssertEqual(client.receivedPackets(), [])
        client.send(.pingreq)
        XCTAssertEqual(client.receivedPackets(), [.pingresp])
    }

    func testZeroMeansNoLimit() {
        let harness = harness(timeout: 0)
        let raw = harness.connect()
        harness.advance(by: .milliseconds(1_500))
        XCTAssertFalse(raw.isClosed, "connect_timeout 0 waits forever, as Mosquitto does")
        harness.advance(by: .seconds(3_600))
        XCTAssertFalse(raw.isClosed, "connect_timeout 0 waits forever, as Mosquitto does")
        raw.send(connectBytes("late", .v5))
        XCTAssertEqual(raw.receivedBytes().first, 0x20, "a late CONNECT is still served")
    }
}
