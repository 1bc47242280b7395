import Foundation
import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// `connect_timeout`: a socket that does not deliver a complete CONNECT in time is closed without
/// an answer (nothing may precede CONNACK), so idle or slow-dripping sockets cannot pile up. A
/// connected client is then governed by its Keep Alive alone (0: never timed out).
final class ConnectTimeoutTests: XCTestCase {
    private func broker(timeout seconds: Int) throws -> TestBroker {
        try startBroker { $0.connectTimeout = seconds }
    }

    func testSilentSocketIsClosedAfterTheConnectTimeout() async throws {
        let broker = try broker(timeout: 1)
        let raw = try await RawConnection.connect(broker)
        let start = Date()
        let (bytes, closed) = await raw.readUntilClose(timeout: 4)
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertTrue(closed, "a socket that never sends CONNECT must be closed")
        XCTAssertEqual(bytes, [], "nothing may be sent before CONNECT")
        XCTAssertGreaterThanOrEqual(elapsed, 0.9)
        XCTAssertLessThanOrEqual(elapsed, 2.5)
        try await assertBrokerServes(broker, "after closing an idle socket")
    }

    func testCONNECTDrippedByteByByteIsClosedAtTheDeadline() async throws {
        // The bytes of an unfinished packet are not a packet: dripping a CONNECT slower than the
        // timeout does not keep the socket open.
        let broker = try broker(timeout: 1)
        let raw = try await RawConnection.connect(broker)
        let connect = connectBytes("dripper", .v5)
        let start = Date()
        var sent = 0
        while sent < connect.count - 1, Date().timeIntervalSince(start) < 3 {
            do { try await raw.send([connect[sent]]) } catch { break }
            sent += 1
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        let (bytes, closed) = await raw.readUntilClose(timeout: 3)
        XCTAssertTrue(closed, "the dripping socket must be closed")
        XCTAssertEqual(bytes, [])
        XCTAssertLessThan(sent, connect.count - 1, "closed before the CONNECT was complete")
        XCTAssertLessThanOrEqual(Date().timeIntervalSince(start), 2.5)
    }

    func testConnectedClientWithoutKeepAliveOutlivesTheConnectTimeout() async throws {
        let broker = try broker(timeout: 1)
        let (connection, _) = try await connectAccepted(broker, "no-keepalive", keepAlive: 0)
        await expectNothing(connection, for: 2, "within twice the connect timeout (Keep Alive 0)")
        try await connection.send(.pingreq)
        guard let packet = await expectPacket(connection, "PINGRESP") else { return }
        XCTAssertEqual(packet, .pingresp)
    }

    func testZeroMeansNoLimit() async throws {
        let broker = try broker(timeout: 0)
        let raw = try await RawConnection.connect(broker)
        let (_, closed) = await raw.readUntilClose(timeout: 1.5)
        XCTAssertFalse(closed, "connect_timeout 0 waits forever, as Mosquitto does")
        try await raw.send(connectBytes("late", .v5))
        let connack = await raw.readPacket()
        XCTAssertEqual(connack?.first, 0x20, "a late CONNECT is still served")
    }
}
