import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// AUTH and enhanced authentication (spec 3.15 and 4.12). Midge supports no authentication
/// method: a CONNECT naming one is refused with CONNACK 0x8C and closed; a client that did not
/// name one never gets an AUTH or an Authentication Method, and its AUTH packets are Protocol Errors.
final class AuthConformanceTests: XCTestCase {
    // [MQTT-4.12.0-1] [MQTT-4.12.0-4] [MQTT-4.13.2-1]
    func testConnectWithAnAuthenticationMethodIsRefusedWith0x8C() async throws {
        let broker = try startBroker()
        var methodOnly = Properties()
        methodOnly.authenticationMethod = "SCRAM-SHA-256"
        var methodAndData = methodOnly
        methodAndData.authenticationData = ByteBuffer(text: "n,,n=user,r=nonce")
        for (index, properties) in [methodOnly, methodAndData].enumerated() {
            let connection = try await broker.rawConnection(version: .v5)
            // A pipelined AUTH continuing the exchange gets no answer: the connection is refused.
            try await connection.send(bytes: connectBytes("auth-method-\(index)", .v5, properties: properties)
                + encoded(.auth(AuthPacket(reasonCode: .continueAuthentication, properties: methodOnly)), .v5))
            let packets = await expectClose(connection)
            guard packets.count == 1, case .connack(let connack) = packets[0] else {
                XCTFail("#\(index): expected exactly one CONNACK before the close, got \(packets)")
                continue
            }
            XCTAssertEqual(connack.reasonCode, .badAuthenticationMethod, "#\(index)")
            XCTAssertFalse(connack.sessionPresent, "#\(index)")
            XCTAssertNil(connack.properties.authenticationMethod, "#\(index)")
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-4.12.0-6]
    func testNoAuthPacketAndNoAuthenticationMethodForAClientWithoutOne() async throws {
        let broker = try startBroker()
        let (connection, connack) = try await connectAccepted(broker, "auth-none")
        XCTAssertNil(connack.properties.authenticationMethod, "no Authentication Method in CONNACK")
        XCTAssertNil(connack.properties.authenticationData, "no Authentication Data in CONNACK")
        // An AUTH from this client closes the connection, never answered by an AUTH (nor, as in
        // Mosquitto, by a DISCONNECT: a SHOULD, spec 4.13.1).
        var properties = Properties()
        properties.authenticationMethod = "PLAIN"
        try await connection.send(.auth(AuthPacket(reasonCode: .continueAuthentication, properties: properties)))
        await expectDisconnect(connection, reason: nil, "AUTH without an authentication method")
        // The short forms too (AUTH with no body means reason 0x00).
        for bytes: [UInt8] in [[0xF0, 0x00], [0xF0, 0x01, 0x18], [0xF0, 0x02, 0x00, 0x00]] {
            let (client, _) = try await connectAccepted(broker, "auth-none-\(bytes.count)")
            try await client.send(bytes: bytes)
            await expectDisconnect(client, reason: nil, "AUTH \(hex(bytes))")
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-4.12.1-2]
    func testReauthenticationIsRefusedAndTheConnectionClosed() async throws {
        let broker = try startBroker()
        let (connection, _) = try await connectAccepted(broker, "reauth")
        var properties = Properties()
        properties.authenticationMethod = "SCRAM-SHA-256"
        try await connection.send(.auth(AuthPacket(reasonCode: .reAuthenticate, properties: properties)))
        await expectDisconnect(connection, reason: nil, "re-authentication (closed without DISCONNECT, as Mosquitto)")
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.15.1-1] [MQTT-4.13.1-1]
    func testAuthWithReservedFlagsIsMalformed() async throws {
        let broker = try startBroker()
        for first: UInt8 in [0xF1, 0xF2, 0xF4, 0xF8, 0xFF] {
            let (connection, _) = try await connectAccepted(broker, "auth-flags-\(first)")
            try await connection.send(bytes: [first, 0x01, 0x18])
            // Closed without DISCONNECT, as Mosquitto closes on any error in an AUTH.
            await expectDisconnect(connection, reason: nil, "AUTH first byte \(hex([first]))")
        }
        try await assertBrokerServes(broker)
    }

    // Packet type 15 is reserved in 3.1.1: a 3.1.1 client sending it is closed.
    // [3.1.1:MQTT-4.8.0-1]
    func testAuthPacketTypeIsReservedFor311() async throws {
        let broker = try startBroker()
        let (connection, _) = try await connectAccepted(broker, "auth-v311", version: .v3_1_1)
        try await connection.send(bytes: [0xF0, 0x00])
        await expectDisconnect(connection, reason: nil, "AUTH from a 3.1.1 client")
        try await assertBrokerServes(broker)
    }
}
