import NIOCore
import XCTest
@testable import MQTTCodec

/// Fixed header rules: packet type, per-type flags, remaining length versus body.
final class FixedHeaderValidationTests: XCTestCase {

    /// A valid packet of every type, with the flags its type requires and the decoder version to read it.
    static let samples: [(type: PacketType, bytes: [UInt8], version: ProtocolVersion?, flags: UInt8)] = [
        (.connect, connectFrame(), nil, 0),
        (.connack, hex("20 03 00 00 00"), .v5, 0),
        (.publish, hex("30 04 00 01 74 00"), .v5, 0),
        (.puback, hex("40 02 00 01"), .v5, 0),
        (.pubrec, hex("50 02 00 01"), .v5, 0),
        (.pubrel, hex("62 02 00 01"), .v5, 2),
        (.pubcomp, hex("70 02 00 01"), .v5, 0),
        (.subscribe, hex("82 07 00 01 00 00 01 74 00"), .v5, 2),
        (.suback, hex("90 04 00 01 00 00"), .v5, 0),
        (.unsubscribe, hex("a2 06 00 01 00 00 01 74"), .v5, 2),
        (.unsuback, hex("b0 04 00 01 00 00"), .v5, 0),
        (.pingreq, hex("c0 00"), .v5, 0),
        (.pingresp, hex("d0 00"), .v5, 0),
        (.disconnect, hex("e0 00"), .v5, 0),
        (.auth, hex("f0 00"), .v5, 0),
    ]

    func testSamplesAreValid() {
        XCTAssertEqual(Self.samples.count, 15, "one per packet type")
        for sample in Self.samples {
            assertDecodes(sample.bytes, version: sample.version)
            XCTAssertEqual(sample.bytes[0] >> 4, sample.type.rawValue)
        }
    }

    func testEveryWrongFlagValueForEveryTypeIsMalformed() {
        // [MQTT-2.1.3-1]: the flags are fixed for every type but PUBLISH: 0010 for PUBREL, SUBSCRIBE and
        // UNSUBSCRIBE, 0000 for the others; any other value is a Malformed Packet.
        for sample in Self.samples where sample.type != .publish {
            for flags in UInt8(0)...15 where flags != sample.flags {
                var bytes = sample.bytes
                bytes[0] = sample.type.rawValue << 4 | flags
                assertDecodeFails(bytes, version: sample.version, .malformedPacket)
            }
        }
    }

    func testWrongFlagsInV3() {
        // The same rule in 3.1.1 [3.1.1:MQTT-2.2.2-2], e.g. PUBREL written with the flags of PUBACK, SUBSCRIBE with 0000.
        assertDecodeFails(hex("60 02 00 01"), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(hex("80 06 00 01 00 01 74 00"), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(hex("a0 05 00 01 00 01 74"), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(hex("c1 00"), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(hex("e8 00"), version: .v3_1, .malformedPacket)
        assertDecodeFails(hex("12") + Array(connectFrame(level: 4).dropFirst()), version: nil, .malformedPacket)
    }

    func testMQTT31AllowsDUPOnPubRelSubscribeAndUnsubscribe() {
        // MQTT 3.1 (section 2.1) defines DUP on a resent PUBREL, SUBSCRIBE or UNSUBSCRIBE (Mosquitto's
        // 03-publish-c2b-disconnect-qos2 sends `6a`); 3.1.1 and 5.0 fixed the flags to 0010.
        assertDecodes(hex("6a 02 00 01"), version: .v3_1, to: .pubrel(PubAckPacket(packetID: 1)))
        assertDecodes(hex("8a 06 00 01 00 01 74 00"), version: .v3_1)
        assertDecodes(hex("aa 05 00 01 00 01 74"), version: .v3_1)
        assertDecodeFails(hex("6a 02 00 01"), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(hex("6b 02 00 01"), version: .v3_1, .malformedPacket)
        assertDecodeFails(hex("48 02 00 01"), version: .v3_1, .malformedPacket)
    }

    func testReservedPacketTypeZero() {
        for version: ProtocolVersion? in [nil, .v3_1, .v3_1_1, .v5] {
            assertDecodeFails(hex("00 00"), version: version, .malformedPacket)
            assertDecodeFails(hex("0f 00"), version: version, .malformedPacket)
            assertDecodeFails(hex("00 02 00 01"), version: version, .malformedPacket)
        }
    }

    func testAuthBeforeV5IsMalformed() {
        // Type 15 is reserved (forbidden) in 3.1 and 3.1.1; a server that has not seen CONNECT applies 3.1.1 rules.
        for version: ProtocolVersion? in [nil, .v3_1, .v3_1_1] {
            assertDecodeFails(hex("f0 00"), version: version, .malformedPacket)
            assertDecodeFails(hex("f0 02 18 00"), version: version, .malformedPacket)
        }
        assertDecodes(hex("f0 02 18 00"), version: .v5, to: .auth(AuthPacket(reasonCode: .continueAuthentication)))
    }

    func testPingsWithABodyAreMalformed() {
        for version: ProtocolVersion? in [nil, .v3_1, .v3_1_1, .v5] {
            assertDecodeFails(hex("c0 01 00"), version: version, .malformedPacket)
            assertDecodeFails(hex("d0 01 00"), version: version, .malformedPacket)
            assertDecodeFails(hex("c0 02 00 00"), version: version, .malformedPacket)
        }
    }

    func testV3DisconnectWithABodyIsMalformed() {
        for version: ProtocolVersion? in [nil, .v3_1, .v3_1_1] {
            assertDecodes(hex("e0 00"), version: version, to: .disconnect(DisconnectPacket()))
            assertDecodeFails(hex("e0 01 00"), version: version, .malformedPacket)
            assertDecodeFails(hex("e0 02 00 00"), version: version, .malformedPacket)
        }
    }

    /// Appends bytes to the body of an encoded packet, fixing up the remaining length.
    static func appendingToBody(_ packet: [UInt8], _ extra: [UInt8]) -> [UInt8] {
        var input = ByteBuffer(bytes: packet)
        let first: UInt8 = input.readInteger()!
        _ = try! input.readVariableByteInteger()
        return frame(first, bytes(of: input) + extra)
    }

    func testTrailingGarbageAfterACompleteBody() {
        // Packets whose body has a definite end; one more byte in the remaining length is a Malformed Packet.
        var properties = Properties()
        properties.reasonString = "x"
        let cases: [(MQTTPacket, ProtocolVersion)] = [
            (.connect(ConnectPacket(protocolVersion: .v5, clientID: "c", username: "u", password: buffer("p"))), .v5),
            (.connect(ConnectPacket(protocolVersion: .v3_1_1, clientID: "c")), .v3_1_1),
            (.connect(ConnectPacket(protocolVersion: .v3_1, clientID: "c", will: Will(topic: "w", payload: buffer("x")))), .v3_1),
            (.connack(ConnAckPacket()), .v3_1_1),
            (.connack(ConnAckPacket(properties: properties)), .v5),
            (.puback(PubAckPacket(packetID: 1)), .v3_1_1),
            (.pubrec(PubAckPacket(packetID: 1)), .v3_1),
            (.pubrel(PubAckPacket(packetID: 1, reasonCode: .packetIdentifierNotFound, properties: properties)), .v5),
            (.pubcomp(PubAckPacket(packetID: 1, properties: properties)), .v5),
            (.unsuback(UnsubAckPacket(packetID: 1)), .v3_1_1),
            (.disconnect(DisconnectPacket(reasonCode: .serverBusy, properties: properties)), .v5),
            (.auth(AuthPacket(reasonCode: .continueAuthentication, properties: properties)), .v5),
        ]
        for (packet, version) in cases {
            let encoded = encode(packet, version)
            let isConnect: Bool
            if case .connect = packet { isConnect = true } else { isConnect = false }
            let decoderVersion: ProtocolVersion? = isConnect ? nil : version
            assertDecodes(encoded, version: decoderVersion, to: packet.type == .connack && version != .v5 ? nil : packet)
            assertDecodeFails(Self.appendingToBody(encoded, [0x00]), version: decoderVersion, .malformedPacket)
            assertDecodeFails(Self.appendingToBody(encoded, [0xFF, 0xFF]), version: decoderVersion, .malformedPacket)
        }
    }

    func testTrailingPartialFieldInListPackets() {
        // SUBSCRIBE, UNSUBSCRIBE and a v5 PUBACK read until the end: a stray byte is a truncated field.
        assertDecodeFails(hex("82 08 00 01 00 00 01 74 00 00"), version: .v5, .malformedPacket)
        assertDecodeFails(hex("82 07 00 01 00 01 74 00 00"), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(hex("a2 07 00 01 00 00 01 74 00"), version: .v5, .malformedPacket)
        assertDecodeFails(hex("a2 06 00 01 00 01 74 00"), version: .v3_1_1, .malformedPacket)
    }

    func testRemainingLengthShorterThanTheFields() {
        // Bodies that end inside a field.
        assertDecodeFails(hex("40 01 00"), version: .v5, .malformedPacket)
        assertDecodeFails(hex("40 00"), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(hex("20 01 00"), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(hex("20 00"), version: .v5, .malformedPacket)
        assertDecodeFails(hex("90 01 00"), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(hex("b0 01 00"), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(hex("b0 02 00 01"), version: .v5, .malformedPacket)  // v5 UNSUBACK needs its property length
        assertDecodeFails(hex("82 00"), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(hex("a2 01 00"), version: .v5, .malformedPacket)
        assertDecodeFails(hex("30 00"), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(hex("10 00"), version: nil, .malformedPacket)
    }
}
