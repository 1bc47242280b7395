import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Malformed packets and protocol errors from a connected client, for every packet type: a v5
/// client gets DISCONNECT (for PUBLISH, SUBSCRIBE, UNSUBSCRIBE, as Mosquitto) with the reason (0x81
/// Malformed Packet, 0x82 Protocol Error, 0x90, 0x94, ...) and the connection is closed [MQTT-4.13.1-1]; a 3.1/3.1.1 client's connection is
/// just closed [3.1.1:MQTT-4.8.0-1]. The broker neither crashes nor hangs: after each case a fresh client
/// is served.
final class MalformedPacketAfterConnectTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker() }

    private let topicA = mqttString("a")
    private let payload: [UInt8] = [0x78]

    /// Connects with `version`, sends `bytes`, checks the answer, then checks the broker still serves.
    private func check(_ name: String, _ bytes: [UInt8], version: ProtocolVersion, reason: UInt8?,
                       file: StaticString = #filePath, line: UInt = #line) async throws {
        let (client, _) = try await connectAccepted(broker, "mal", version: version, file: file, line: line)
        try await client.send(bytes: bytes)
        await expectDisconnect(client, reason: reason.map { ReasonCode(rawValue: $0) }, within: 3, "\(name) (\(version))",
                               file: file, line: line)
        try await assertBrokerServes(broker, "after \(name) (\(version))", file: file, line: line)
    }

    func testV5MalformedPacketsGetDisconnectWithReasonCode() async throws {
        let a = topicA, x = payload
        // As Mosquitto: a DISCONNECT for errors in PUBLISH, SUBSCRIBE, UNSUBSCRIBE and a reserved
        // type (0x81 for every SUBSCRIBE/UNSUBSCRIBE error, 0x82 for an unknown alias); for any other
        // packet the close alone (nil): the DISCONNECT is a SHOULD (spec 4.13.1).
        let cases: [(String, [UInt8], UInt8?)] = [
            // Fixed header flags are fixed for every type but PUBLISH [MQTT-2.1.3-1].
            ("PUBACK flags 0010", rawPacket(0x42, [0, 1]), nil),
            ("PUBREC flags 0001", rawPacket(0x51, [0, 1]), nil),
            ("PUBREL flags 0000", rawPacket(0x60, [0, 1]), nil),              // [MQTT-3.6.1-1]
            ("PUBCOMP flags 1000", rawPacket(0x78, [0, 1]), nil),
            ("SUBSCRIBE flags 0000", rawPacket(0x80, [0, 1, 0] + a + [0]), 0x81), // [MQTT-3.8.1-1]
            ("UNSUBSCRIBE flags 0000", rawPacket(0xA0, [0, 1, 0] + a), 0x81),     // [MQTT-3.10.1-1]
            ("PINGREQ flags 0001", [0xC1, 0x00], nil),
            ("DISCONNECT flags 0010", [0xE2, 0x00], nil),                      // [MQTT-3.14.1-1]
            ("AUTH flags 0001", [0xF1, 0x00], nil),
            ("reserved packet type 0", [0x00, 0x00], 0x81),
            // Remaining length: at most 4 bytes, minimally encoded [MQTT-1.5.5-1].
            ("remaining length of 5 bytes", [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], 0x81),
            ("non-minimal remaining length", [0xC0, 0x80, 0x00], nil),
            ("PINGREQ with a body", [0xC0, 0x01, 0x00], nil),
            // PUBLISH
            ("PUBLISH QoS 3", rawPacket(0x36, a + [0, 1, 0] + x), 0x81),          // [MQTT-3.3.1-4]
            ("PUBLISH QoS 0 with DUP", rawPacket(0x38, a + [0] + x), 0x81),       // [MQTT-3.3.1-2]
            ("PUBLISH topic with invalid UTF-8", rawPacket(0x30, mqttBinary([0xC3, 0x28]) + [0] + x), 0x81), // [MQTT-1.5.4-1]
            ("PUBLISH topic with U+0000", rawPacket(0x30, mqttBinary([0x61, 0x00]) + [0] + x), 0x81),      // [MQTT-1.5.4-2]
            ("PUBLISH topic with #", rawPacket(0x30, mqttString("a/#") + [0] + x), 0x82),                  // [MQTT-3.3.2-2], Mosquitto's code
            ("PUBLISH topic with +", rawPacket(0x30, mqttString("a/+/b") + [0] + x), 0x82),                // [MQTT-3.3.2-2], Mosquitto's code
            ("PUBLISH empty topic without alias", rawPacket(0x30, mqttString("") + [0] + x), 0x82),        // spec 3.3.2.1
            ("PUBLISH QoS 1 packet id 0", rawPacket(0x32, a + [0, 0, 0] + x), 0x82),                        // client rule MQTT-2.2.1-3
            ("PUBLISH QoS 2 packet id 0", rawPacket(0x34, a + [0, 0, 0] + x), 0x82),                        // client rule MQTT-2.2.1-3
            ("PUBLISH truncated topic", rawPacket(0x30, [0x00, 0x05, 0x61]), 0x81),
            ("PUBLISH truncated packet id", rawPacket(0x32, a + [0x00]), 0x81),
            ("PUBLISH property length beyond packet", rawPacket(0x30, a + [0x09, 0x01]), 0x81),
            ("PUBLISH duplicate property", rawPacket(0x30, a + rawProperties([0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1]) + x), 0x82), // spec 2.2.2.2
            ("PUBLISH property not allowed", rawPacket(0x30, a + rawProperties([0x11, 0, 0, 0, 1]) + x), 0x81),              // spec 2.2.2.2
            ("PUBLISH unknown property", rawPacket(0x30, a + rawProperties([0x50, 0x00]) + x), 0x81),
            ("PUBLISH with Subscription Identifier", rawPacket(0x30, a + rawProperties([0x0B, 0x01]) + x), 0x82),          // client rule MQTT-3.3.4-6
            ("PUBLISH Topic Alias 0", rawPacket(0x30, a + rawProperties([0x23, 0, 0]) + x), 0x94),                          // [MQTT-3.3.2-8]
            ("PUBLISH Topic Alias above maximum", rawPacket(0x30, a + rawProperties([0x23, 0, 11]) + x), 0x94),             // client rule MQTT-3.3.2-9
            ("PUBLISH unknown Topic Alias", rawPacket(0x30, mqttString("") + rawProperties([0x23, 0, 5]) + x), 0x82),
            ("PUBLISH Response Topic with wildcard", rawPacket(0x30, a + rawProperties([0x08] + mqttString("r/#")) + x), 0x82), // [MQTT-3.3.2-14]
            ("PUBLISH Content Type invalid UTF-8", rawPacket(0x30, a + rawProperties([0x03] + mqttBinary([0xFF])) + x), 0x81),
            // PUBACK / PUBREC / PUBREL / PUBCOMP
            ("PUBACK truncated", rawPacket(0x40, [0x00]), nil),
            ("PUBACK packet id 0", rawPacket(0x40, [0, 0]), nil),                                         // acknowledges no PUBLISH (spec 2.2.1)
            ("PUBACK property not allowed", rawPacket(0x40, [0, 1, 0x00] + rawProperties([0x11, 0, 0, 0, 1])), nil),
            ("PUBREC duplicate Reason String", rawPacket(0x50, [0, 1, 0x10] + rawProperties([0x1F] + mqttString("x") + [0x1F] + mqttString("y"))), nil),
            ("PUBREL truncated", rawPacket(0x62, [0x01]), nil),
            ("PUBCOMP property length beyond packet", rawPacket(0x70, [0, 1, 0x00, 0x05]), nil),
            // SUBSCRIBE
            ("SUBSCRIBE without filters", rawPacket(0x82, [0, 1, 0]), 0x81),                                // [MQTT-3.8.3-2]
            ("SUBSCRIBE packet id 0", rawPacket(0x82, [0, 0, 0] + a + [0]), 0x81),                           // client rule MQTT-2.2.1-3
            ("SUBSCRIBE without options byte", rawPacket(0x82, [0, 1, 0] + a), 0x81),
            ("SUBSCRIBE Maximum QoS 3", rawPacket(0x82, [0, 1, 0] + a + [0x03]), 0x81),                      // spec 3.8.3.1
            ("SUBSCRIBE reserved option bits", rawPacket(0x82, [0, 1, 0] + a + [0xC0]), 0x81),               // [MQTT-3.8.3-5]
            ("SUBSCRIBE Retain Handling 3", rawPacket(0x82, [0, 1, 0] + a + [0x30]), 0x81),                  // spec 3.8.3.1
            ("SUBSCRIBE No Local on shared", rawPacket(0x82, [0, 1, 0] + mqttString("$share/g/a") + [0x04]), 0x81), // [MQTT-3.8.3-4]
            ("SUBSCRIBE filter invalid UTF-8", rawPacket(0x82, [0, 1, 0] + mqttBinary([0xFF]) + [0]), 0x81),
            ("SUBSCRIBE Subscription Identifier 0", rawPacket(0x82, [0, 1] + rawProperties([0x0B, 0x00]) + a + [0]), 0x81),
            ("SUBSCRIBE two Subscription Identifiers", rawPacket(0x82, [0, 1] + rawProperties([0x0B, 0x01, 0x0B, 0x02]) + a + [0]), 0x81),
            ("SUBSCRIBE property not allowed", rawPacket(0x82, [0, 1] + rawProperties([0x02, 0, 0, 0, 1]) + a + [0]), 0x81),
            // UNSUBSCRIBE
            ("UNSUBSCRIBE without filters", rawPacket(0xA2, [0, 1, 0]), 0x81),                              // [MQTT-3.10.3-2]
            ("UNSUBSCRIBE packet id 0", rawPacket(0xA2, [0, 0, 0] + a), 0x81),                               // client rule MQTT-2.2.1-3
            ("UNSUBSCRIBE truncated filter", rawPacket(0xA2, [0, 1, 0, 0x00, 0x04, 0x61]), 0x81),
            ("UNSUBSCRIBE filter invalid UTF-8", rawPacket(0xA2, [0, 1, 0] + mqttBinary([0xC0, 0x80])), 0x81),
            // Packets only a server sends.
            ("CONNACK from client", [0x20, 0x03, 0x00, 0x00, 0x00], nil),
            ("SUBACK from client", rawPacket(0x90, [0, 1, 0, 0]), nil),
            ("UNSUBACK from client", rawPacket(0xB0, [0, 1, 0, 0]), nil),
            ("PINGRESP from client", [0xD0, 0x00], nil),
            // AUTH without an Authentication Method in CONNECT (spec 4.12).
            ("AUTH without authentication method", [0xF0, 0x00], nil),
            ("AUTH re-authenticate", rawPacket(0xF0, [0x19] + rawProperties([0x15] + mqttString("SCRAM-SHA-1"))), nil),
            // DISCONNECT itself malformed.
            ("DISCONNECT property not allowed", rawPacket(0xE0, [0x00] + rawProperties([0x23, 0, 1])), nil),
            ("DISCONNECT property length beyond packet", rawPacket(0xE0, [0x00, 0x07]), nil),
        ]
        for (name, bytes, reason) in cases {
            try await check(name, bytes, version: .v5, reason: reason)
        }
        await eventually(within: 3, "no connection left behind") { broker.broker.connectedClientCount == 0 }
    }

    func testV3MalformedPacketsCloseConnection() async throws {
        let a = topicA, x = payload
        let cases: [(String, [UInt8])] = [
            ("PUBACK flags 0010", rawPacket(0x42, [0, 1])),                     // [3.1.1:MQTT-2.2.2-2]
            ("PUBREL flags 0000", rawPacket(0x60, [0, 1])),                     // [3.1.1:MQTT-3.6.1-1]
            ("SUBSCRIBE flags 0000", rawPacket(0x80, [0, 1] + a + [0])),        // [3.1.1:MQTT-3.8.1-1]
            ("UNSUBSCRIBE flags 0000", rawPacket(0xA0, [0, 1] + a)),            // [3.1.1:MQTT-3.10.1-1]
            ("PINGREQ flags 0001", [0xC1, 0x00]),
            ("DISCONNECT flags 0001", [0xE1, 0x00]),                            // [3.1.1:MQTT-3.14.1-1]
            ("reserved packet type 0", [0x00, 0x00]),
            ("reserved packet type 15 (AUTH)", [0xF0, 0x00]),
            ("remaining length of 5 bytes", [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            ("PINGREQ with a body", [0xC0, 0x01, 0x00]),
            ("DISCONNECT with a body", [0xE0, 0x01, 0x00]),
            ("PUBACK with trailing bytes", rawPacket(0x40, [0, 1, 0])),
            ("PUBLISH QoS 3", rawPacket(0x36, a + [0, 1] + x)),                                  // [3.1.1:MQTT-3.3.1-4]
            ("PUBLISH QoS 0 with DUP", rawPacket(0x38, a + x)),                                  // [3.1.1:MQTT-3.3.1-2]
            ("PUBLISH topic with invalid UTF-8", rawPacket(0x30, mqttBinary([0xED, 0xA0, 0x80]) + x)), // [3.1.1:MQTT-1.5.3-1]
            ("PUBLISH topic with U+0000", rawPacket(0x30, mqttBinary([0x00]) + x)),              // [3.1.1:MQTT-1.5.3-2]
            ("PUBLISH topic with wildcard", rawPacket(0x30, mqttString("a/#") + x)),             // [3.1.1:MQTT-3.3.2-2]
            ("PUBLISH empty topic", rawPacket(0x30, mqttString("") + x)),                        // [3.1.1:MQTT-4.7.3-1]
            ("PUBLISH QoS 1 packet id 0", rawPacket(0x32, a + [0, 0] + x)),                      // [3.1.1:MQTT-2.3.1-1]
            ("PUBLISH truncated topic", rawPacket(0x30, [0x00, 0x09, 0x61])),
            ("PUBACK packet id 0", rawPacket(0x40, [0, 0])),
            ("PUBREC truncated", rawPacket(0x50, [0x01])),
            ("SUBSCRIBE without filters", rawPacket(0x82, [0, 1])),                               // [3.1.1:MQTT-3.8.3-3]
            ("SUBSCRIBE packet id 0", rawPacket(0x82, [0, 0] + a + [0])),                         // [3.1.1:MQTT-2.3.1-1]
            ("SUBSCRIBE QoS 3", rawPacket(0x82, [0, 1] + a + [0x03])),                            // [3.1.1:MQTT-3.8.3-4]
            ("SUBSCRIBE reserved option bits", rawPacket(0x82, [0, 1] + a + [0x04])),             // [3.1.1:MQTT-3.8.3-4]
            ("SUBSCRIBE without options byte", rawPacket(0x82, [0, 1] + a)),
            ("UNSUBSCRIBE without filters", rawPacket(0xA2, [0, 1])),                             // [3.1.1:MQTT-3.10.3-2]
            ("UNSUBSCRIBE truncated filter", rawPacket(0xA2, [0, 1, 0x00, 0x03, 0x61])),
            ("CONNACK from client", [0x20, 0x02, 0x00, 0x00]),
            ("SUBACK from client", rawPacket(0x90, [0, 1, 0])),
            ("UNSUBACK from client", rawPacket(0xB0, [0, 1])),
            ("PINGRESP from client", [0xD0, 0x00]),
        ]
        for version in [ProtocolVersion.v3_1_1, .v3_1] {
            for (name, bytes) in cases {
                try await check(name, bytes, version: version, reason: nil)
            }
        }
        await eventually(within: 3, "no connection left behind") { broker.broker.connectedClientCount == 0 }
    }

    func testMalformedPacketAfterValidOnesInSameSegment() async throws {
        // A valid PINGREQ and a malformed packet in one TCP segment: the PINGREQ is answered, then
        // the malformed packet closes the connection (v5: DISCONNECT 0x81).
        let (client, _) = try await connectAccepted(broker, "segment")
        try await client.send(bytes: [0xC0, 0x00] + rawPacket(0x36, topicA + [0, 1, 0] + payload) + [0xC0, 0x00])
        let packets = await expectClose(client)
        XCTAssertEqual(packets.first, .pingresp)
        XCTAssertEqual(packets.count, 2, "nothing after the malformed packet is processed: \(packets)")
        if case .disconnect(let disconnect)? = packets.last {
            XCTAssertEqual(disconnect.reasonCode, .malformedPacket)
        } else {
            XCTFail("expected DISCONNECT 0x81 last, got \(packets)")
        }
    }
}
