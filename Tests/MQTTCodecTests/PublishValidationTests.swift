import NIOCore
import XCTest
@testable import MQTTCodec

/// Malformed PUBLISH and PUBACK / PUBREC / PUBREL / PUBCOMP packets (spec 3.3 - 3.7).
final class PublishValidationTests: XCTestCase {

    /// A PUBLISH body: topic, packet id when QoS > 0, v5 property block, payload.
    static func publishBody(topic: [UInt8] = str("a/b"), packetID: UInt16? = nil, v5: Bool, properties: [UInt8] = props(),
                            payload: [UInt8] = [0x70]) -> [UInt8] {
        topic + (packetID.map(u16) ?? []) + (v5 ? properties : []) + payload
    }

    func testBaselinesDecode() {
        for version in allVersions {
            let v5 = version == .v5
            assertDecodes(frame(0x30, Self.publishBody(v5: v5)), version: version)
            assertDecodes(frame(0x33, Self.publishBody(packetID: 1, v5: v5)), version: version)
            assertDecodes(frame(0x3D, Self.publishBody(packetID: 1, v5: v5)), version: version)
        }
    }

    func testQoS3IsMalformed() {
        // [MQTT-3.3.1-4]: both QoS bits set is a Malformed Packet.
        for version in allVersions {
            for first: UInt8 in [0x36, 0x37, 0x3E, 0x3F] {
                assertDecodeFails(frame(first, Self.publishBody(packetID: 1, v5: version == .v5)), version: version, .malformedPacket)
            }
        }
    }

    func testDupWithQoS0IsMalformed() {
        // [MQTT-3.3.1-2]: DUP must be 0 for QoS 0.
        for version in allVersions {
            for first: UInt8 in [0x38, 0x39] {
                assertDecodeFails(frame(first, Self.publishBody(v5: version == .v5)), version: version, .malformedPacket)
            }
        }
    }

    func testWildcardInTopicNameIsTopicNameInvalid() {
        // [MQTT-3.3.2-2]: the Topic Name must not contain wildcard characters.
        for version in allVersions {
            for topic in ["a/+", "a/#", "+", "#", "a+b", "sport/tennis#", "+/x"] {
                assertDecodeFails(frame(0x30, Self.publishBody(topic: str(topic), v5: version == .v5)), version: version, .topicNameInvalid)
                assertDecodeFails(frame(0x32, Self.publishBody(topic: str(topic), packetID: 1, v5: version == .v5)), version: version, .topicNameInvalid)
            }
        }
    }

    func testPacketIdentifierZeroIsProtocolError() {
        // A QoS > 0 PUBLISH carries a non-zero packet identifier ([3.1.1:MQTT-2.3.1-1]; in 5.0 the
        // client rule MQTT-2.2.1-3).
        for version in allVersions {
            assertDecodeFails(frame(0x32, Self.publishBody(packetID: 0, v5: version == .v5)), version: version, .protocolError)
            assertDecodeFails(frame(0x34, Self.publishBody(packetID: 0, v5: version == .v5)), version: version, .protocolError)
        }
    }

    func testEmptyTopicWithoutTopicAlias() {
        // v5: a zero-length Topic Name without a Topic Alias is a Protocol Error (spec 3.3.2.3.4).
        assertDecodeFails(frame(0x30, Self.publishBody(topic: str(""), v5: true)), version: .v5, .protocolError)
        assertDecodes(frame(0x30, Self.publishBody(topic: str(""), v5: true, properties: props([0x23] + u16(1)))), version: .v5)
        // 3.1.1: topic names are at least one character [3.1.1:MQTT-4.7.3-1].
        assertDecodeFails(frame(0x30, Self.publishBody(topic: str(""), v5: false)), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(frame(0x30, Self.publishBody(topic: str(""), v5: false)), version: .v3_1, .malformedPacket)
    }

    func testTruncatedPublishFields() {
        // Topic length beyond the packet, missing packet identifier, property length beyond the packet.
        assertDecodeFails(frame(0x30, u16(9) + Array("a/b".utf8)), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(frame(0x32, str("a/b") + [0x00]), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(frame(0x32, str("a/b")), version: .v5, .malformedPacket)
        assertDecodeFails(frame(0x30, str("a/b") + [0x07, 0x02]), version: .v5, .malformedPacket)
        assertDecodeFails(frame(0x30, str("a/b")), version: .v5, .malformedPacket)  // no property length
        assertDecodeFails(frame(0x30, [0x00]), version: .v3_1_1, .malformedPacket)
    }

    func testPayloadMayBeEmptyAndAnyBytes() {
        assertDecodes(frame(0x30, str("t")), version: .v3_1_1, to: .publish(PublishPacket(topic: "t", payload: ByteBuffer())))
        assertDecodes(frame(0x30, str("t") + [0x00] + [0xFF, 0x00, 0xED, 0xA0, 0x80]), version: .v5,
                      to: .publish(PublishPacket(topic: "t", payload: ByteBuffer(bytes: [0xFF, 0x00, 0xED, 0xA0, 0x80]))))
    }

    // MARK: PUBACK, PUBREC, PUBREL, PUBCOMP

    static let ackFirstBytes: [UInt8] = [0x40, 0x50, 0x62, 0x70]

    func testAckPacketIdentifierZeroIsProtocolError() {
        // The acknowledged PUBLISH had a non-zero identifier (spec 2.2.1), so an ack of 0 is an error.
        for version in allVersions {
            for first in Self.ackFirstBytes {
                assertDecodes([first, 0x02, 0x00, 0x01], version: version)
                assertDecodeFails([first, 0x02, 0x00, 0x00], version: version, .protocolError)
            }
        }
        assertDecodeFails(hex("40 04 00 00 10 00"), version: .v5, .protocolError)
    }

    func testAckTruncatedOrTooLong() {
        for first in Self.ackFirstBytes {
            for version in allVersions {
                assertDecodeFails([first, 0x00], version: version, .malformedPacket)
                assertDecodeFails([first, 0x01, 0x00], version: version, .malformedPacket)
            }
            // v3: exactly two bytes (spec 3.4.2 and the like).
            assertDecodeFails([first, 0x03, 0x00, 0x01, 0x00], version: .v3_1_1, .malformedPacket)
            assertDecodeFails([first, 0x03, 0x00, 0x01, 0x00], version: .v3_1, .malformedPacket)
            // v5: property length running past the packet; a property value cut short.
            assertDecodeFails([first, 0x05, 0x00, 0x01, 0x10, 0x05, 0x1F], version: .v5, .malformedPacket)
            assertDecodeFails([first, 0x06, 0x00, 0x01, 0x10, 0x02, 0x1F, 0x00], version: .v5, .malformedPacket)
        }
    }
}
