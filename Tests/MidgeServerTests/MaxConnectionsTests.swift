import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestSupport
import NIOCore
import XCTest

/// `max_connections`: a listener closes connections beyond its limit at once, as Mosquitto
/// does, and accepts again when one leaves.
final class MaxConnectionsTests: XCTestCase {
    func testConnectionsBeyondTheLimitAreClosedAndRoomFreesUp() async throws {
        let broker = try TestBroker { config in
            var listener = ListenerConfiguration(port: 0, bindAddress: "127.0.0.1", maxConnections: 2)
            listener.security.allowAnonymous = true
            config.listeners = [listener]
            config.perListenerSettings = true
        }
        defer { broker.shutdown() }
        let (first, ack1) = try await broker.connect("one")
        let (second, ack2) = try await broker.connect("two")
        XCTAssertEqual([ack1.reasonCode, ack2.reasonCode], [.success, .success])
        let third = try await broker.rawConnection()
        try? await third.send(.connect(ConnectPacket(clientID: "three")))
        let answered = try await third.waitForClose()
        XCTAssertTrue(answered.isEmpty, "no CONNACK for a connection over max_connections: \(answered)")
        try await first.send(.disconnect(DisconnectPacket()))
        _ = try await first.waitForClose()
        // The count drops when a connection closes; retry briefly while the close is processed.
        var accepted = false
        for _ in 0..<50 where !accepted {
            let connection = try await broker.rawConnection()
            try? await connection.send(.connect(ConnectPacket(clientID: "four")))
            if case .connack(let ack)? = try? await connection.receive(timeout: .milliseconds(200)) {
                accepted = ack.reasonCode == .success
            }
            await connection.close()
        }
        XCTAssertTrue(accepted)
        await second.close()
    }
}
