import NIOCore
import XCTest
@testable import MQTTCodec

/// Variable Byte Integers (spec 1.5.5): the remaining length, property lengths, subscription identifiers.
final class VariableByteIntegerTests: XCTestCase {
    static let boundaries: [(value: Int, encoding: String)] = [
        (0, "00"), (127, "7f"), (128, "80 01"), (16_383, "ff 7f"), (16_384, "80 80 01"),
        (2_097_151, "ff ff 7f"), (2_097_152, "80 80 80 01"), (268_435_455, "ff ff ff 7f"),
    ]

    func testBoundariesEncodeWithTheRightLength() {
        for (value, encoding) in Self.boundaries {
            var out = ByteBuffer()
            let written = out.writeVariableByteInteger(value)
            XCTAssertEqual(hexString(bytes(of: out)), encoding, "\(value)")
            XCTAssertEqual(written, hex(encoding).count, "\(value)")
            XCTAssertEqual(ByteBuffer.variableByteIntegerLength(value), hex(encoding).count, "\(value)")
        }
        XCTAssertEqual(ByteBuffer.maxVariableByteInteger, 268_435_455)
    }

    func testBoundariesDecode() throws {
        for (value, encoding) in Self.boundaries {
            // A trailing byte that is not part of the integer must be left alone.
            var input = ByteBuffer(bytes: hex(encoding) + [0x55])
            XCTAssertEqual(try input.readVariableByteInteger(), value, encoding)
            XCTAssertEqual(input.readableBytes, 1, encoding)
        }
    }

    func testEveryValueAroundBoundariesRoundTrips() throws {
        for (value, _) in Self.boundaries {
            for v in max(0, value - 2)...min(ByteBuffer.maxVariableByteInteger, value + 2) {
                var out = ByteBuffer()
                out.writeVariableByteInteger(v)
                XCTAssertEqual(bytes(of: out), vbi(v))
                XCTAssertEqual(try out.readVariableByteInteger(), v)
                XCTAssertEqual(out.readableBytes, 0)
            }
        }
    }

    func testFiveByteEncodingRejected() {
        // At most four bytes (spec 1.5.5): a continuation bit on the fourth byte is a Malformed Packet.
        for encoding in ["ff ff ff ff 7f", "80 80 80 80 01", "ff ff ff ff", "80 80 80 80"] {
            var input = ByteBuffer(bytes: hex(encoding))
            XCTAssertThrowsError(try input.readVariableByteInteger(), encoding) { error in
                XCTAssertEqual((error as? MQTTCodecError)?.reasonCode, .malformedPacket, encoding)
            }
        }
    }

    func testNonMinimalEncodingRejected() {
        // The minimum number of bytes must be used [MQTT-1.5.5-1].
        for encoding in ["80 00", "ff 00", "81 00", "80 80 00", "ff ff 00", "80 80 80 00", "ff ff ff 00", "80 80 00 7f"] {
            var input = ByteBuffer(bytes: hex(encoding))
            XCTAssertThrowsError(try input.readVariableByteInteger(), encoding) { error in
                XCTAssertEqual((error as? MQTTCodecError)?.reasonCode, .malformedPacket, encoding)
            }
        }
    }

    func testIncompleteReturnsNilAndConsumesNothing() throws {
        for encoding in ["", "80", "ff", "ff ff", "80 80", "ff ff ff", "80 80 80"] {
            var input = ByteBuffer(bytes: hex(encoding))
            XCTAssertNil(try input.readVariableByteInteger(), encoding)
            XCTAssertEqual(input.readerIndex, 0, encoding)
            XCTAssertEqual(input.readableBytes, hex(encoding).count, encoding)
        }
    }

    // MARK: In the fixed header

    func testRemainingLengthBoundariesThroughThePacketDecoder() throws {
        // PUBLISH QoS 0, v3.1.1, topic "t" (3 bytes): payload sized so the remaining length hits each boundary.
        for remaining in [3, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152] {
            let publish = PublishPacket(topic: "t", payload: ByteBuffer(repeating: 0x61, count: remaining - 3))
            let encoded = PacketEncoder.encode(.publish(publish), version: .v3_1_1)
            XCTAssertEqual(encoded.readableBytes, 1 + ByteBuffer.variableByteIntegerLength(remaining) + remaining, "\(remaining)")
            XCTAssertEqual(Array(encoded.readableBytesView.dropFirst().prefix(ByteBuffer.variableByteIntegerLength(remaining))), vbi(remaining))
            var decoder = PacketDecoder(protocolVersion: .v3_1_1)
            var input = encoded
            XCTAssertEqual(try decoder.decode(from: &input), .publish(publish), "\(remaining)")
            XCTAssertEqual(input.readableBytes, 0)
        }
    }

    func testMaximumRemainingLengthHeaderWaitsForTheBody() throws {
        // 268,435,455 is a legal remaining length: with no limit the decoder just waits for the body.
        var decoder = PacketDecoder(protocolVersion: .v3_1_1)
        var input = ByteBuffer(bytes: hex("30 ff ff ff 7f 00 01 74"))
        XCTAssertNil(try decoder.decode(from: &input))
        XCTAssertEqual(input.readableBytes, 8)
    }

    func testFixedHeaderFiveByteRemainingLengthRejected() {
        assertDecodeFails(hex("30 ff ff ff ff 7f"), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(hex("30 80 80 80 80 01"), version: .v5, .malformedPacket)
    }

    func testFixedHeaderNonMinimalRemainingLengthRejected() {
        // "c0 80 00" is a PINGREQ whose remaining length 0 takes two bytes.
        assertDecodeFails(hex("c0 80 00"), version: .v3_1_1, .malformedPacket)
        // A PUBACK whose remaining length 2 is written "82 00".
        assertDecodeFails(hex("40 82 00 00 01"), version: .v5, .malformedPacket)
    }

    func testFixedHeaderIncompleteRemainingLength() throws {
        var decoder = PacketDecoder(protocolVersion: .v5)
        for encoding in ["30", "30 80", "30 ff ff", "30 ff ff ff"] {
            var input = ByteBuffer(bytes: hex(encoding))
            XCTAssertNil(try decoder.decode(from: &input), encoding)
            XCTAssertEqual(input.readerIndex, 0, encoding)
        }
    }

    // MARK: In properties

    func testNonMinimalPropertyLengthRejected() {
        // v5 PUBACK with a reason code and a property length 0 written as "80 00".
        assertDecodes(hex("40 04 00 01 10 00"), version: .v5)
        assertDecodeFails(hex("40 05 00 01 10 80 00"), version: .v5, .malformedPacket)
    }

    func testNonMinimalSubscriptionIdentifierRejected() {
        // SUBSCRIBE with Subscription Identifier 1 written "81 00".
        let valid = frame(0x82, u16(1) + props([0x0B, 0x01]) + str("t") + [0x00])
        assertDecodes(valid, version: .v5)
        assertDecodeFails(frame(0x82, u16(1) + props([0x0B, 0x81, 0x00]) + str("t") + [0x00]), version: .v5, .malformedPacket)
        // And one that runs past the property block.
        assertDecodeFails(frame(0x82, u16(1) + props([0x0B, 0x81]) + str("t") + [0x00]), version: .v5, .malformedPacket)
    }
}
