import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Handling errors (MQTT 5.0 spec 4.13, 3.1.1 spec 4.8): a malformed packet or protocol error after
/// CONNECT gets (v5, for PUBLISH, SUBSCRIBE, UNSUBSCRIBE and a reserved type, where Mosquitto sends
/// one) a DISCONNECT with its reason code and the connection is closed; a 3.1.1
/// client's connection is closed with nothing sent; a CONNACK of 0x80 or more is followed by the
/// close. The broker keeps serving others.
final class ErrorHandlingConformanceTests: XCTestCase {
    // [MQTT-4.13.1-1] [MQTT-4.13.2-1] [3.1.1:MQTT-4.8.0-1]
    func testMalformedPacketsAndProtocolErrorsCloseTheConnection() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let id: [UInt8] = [0, 1]
            let props: [UInt8] = version == .v5 ? [0] : []
            // v5: DISCONNECT with the reason for errors in PUBLISH, SUBSCRIBE, UNSUBSCRIBE and a
            // reserved type; as Mosquitto, only the close for other packets (nil), and 0x81 for
            // every error in SUBSCRIBE and UNSUBSCRIBE (13-malformed-subscribe-v5).
            let cases: [(String, [UInt8], ReasonCode?)] = [
                ("reserved packet type 0", [0x00, 0x00], .malformedPacket),
                ("remaining length of five bytes", [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], .malformedPacket),
                ("remaining length not minimal", [0xC0, 0x80, 0x00], nil),
                ("truncated SUBSCRIBE", rawPacket(0x82, id + props + [0x00, 0x05, 0x61]), .malformedPacket),
                ("SUBSCRIBE without options byte", rawPacket(0x82, id + props + mqttString("a")), .malformedPacket),
                ("UNSUBSCRIBE truncated filter", rawPacket(0xA2, id + props + [0x00, 0x09, 0x61]), .malformedPacket),
                ("SUBACK from a client", rawPacket(0x90, id + props + [0x00]), nil),
                ("UNSUBACK from a client", rawPacket(0xB0, id + props + (version == .v5 ? [0x00] : [])), nil),
                ("PINGRESP from a client", [0xD0, 0x00], nil),
                ("CONNACK from a client", rawPacket(0x20, [0x00, 0x00] + props), nil),
                ("second CONNECT", connectBytes("again", version), nil),
                ("SUBSCRIBE packet id 0", rawPacket(0x82, [0, 0] + props + mqttString("a") + [0]), .malformedPacket),
                ("UNSUBSCRIBE packet id 0", rawPacket(0xA2, [0, 0] + props + mqttString("a")), .malformedPacket),
            ]
            for (name, bytes, reason) in cases {
                let (connection, _) = try await connectAccepted(broker, "err-\(version)-\(name.prefix(12))", version: version)
                try await connection.send(bytes: bytes)
                await expectViolationClose(connection, version, v5Reason: reason, "\(name) \(version)")
            }
        }
        try await assertBrokerServes(broker, "after every error case")
    }

    // [MQTT-4.13.2-1]
    func testRefusingConnAckIsFollowedByTheClose() async throws {
        let broker = try startBroker { config in
            config.security.allowZeroLengthClientID = false
            config.messageSizeLimit = 10
        }
        var withMethod = Properties()
        withMethod.authenticationMethod = "GS2-KRB5"
        let cases: [(String, [UInt8], ReasonCode)] = [
            ("authentication method", connectBytes("refused-auth", .v5, properties: withMethod), .badAuthenticationMethod),
            // (A malformed CONNECT is closed without CONNACK, as Mosquitto: ConnectValidationConformanceTests.)
            ("will payload over message_size_limit", rawConnect(flags: 0x06, payload: mqttString("refused-will") + rawProperties([])
                                                                 + mqttString("w") + mqttBinary(Array(repeating: 0x41, count: 11))), .packetTooLarge),
            ("empty client id refused", rawConnect(flags: 0x02, payload: mqttString("")), .unspecifiedError),
        ]
        for (name, bytes, reason) in cases {
            let connection = try await broker.rawConnection(version: .v5)
            // A PINGREQ right behind the CONNECT is not answered: the connection is refused and closed.
            try await connection.send(bytes: bytes + [0xC0, 0x00])
            let packets = await expectClose(connection)
            guard packets.count == 1, case .connack(let connack) = packets[0] else {
                XCTFail("\(name): expected only a CONNACK before the close, got \(packets)")
                continue
            }
            XCTAssertEqual(connack.reasonCode, reason, name)
        }
        try await assertBrokerServes(broker)
    }
}
