import NIOCore
import XCTest
@testable import MQTTCodec

/// Inputs found by fuzzing the codec (Fuzz/FuzzCodec, docs/fuzzing.md), minimised, each with the
/// outcome the specification requires (both bugs below are fixed; these keep them fixed).
final class FuzzRegressionTests: XCTestCase {
    /// Decodes `input` as one packet; returns the packet, or the codec error it threw.
    private func decode(_ input: [UInt8], version: ProtocolVersion?) throws -> Result<MQTTPacket?, MQTTCodecError> {
        var decoder = PacketDecoder(protocolVersion: version)
        var buffer = ByteBuffer(bytes: input)
        do {
            return .success(try decoder.decode(from: &buffer))
        } catch let error as MQTTCodecError {
            return .failure(error)
        }
    }

    /// Fixed issue 1 (FuzzCodec, round trip): a 3.1 / 3.1.1 SUBACK return code other than 0x00,
    /// 0x01, 0x02 and 0x80 was accepted and kept, then re-encoded as 0x80, so encode(decode(x))
    /// changed the packet. 3.1.1 reserves the other values [MQTT-3.9.3-2]: a Malformed Packet.
    /// Fuzz input (MIDGE_FUZZ_STRICT=1, minimised with -minimize_crash=1): selector 02 00 (3.1.1,
    /// one read), stream 90 03 00 ff ff; first found as 90 04 00 01 05 00.
    func testV3SubAckReservedReturnCodeIsMalformed() throws {
        // The four legal 3.1.1 codes decode; v5 reason codes are not restricted by the codec.
        for version in [ProtocolVersion.v3_1, .v3_1_1] {
            assertDecodes(hex("90 06 00 01 00 01 02 80"), version: version,
                          to: .suback(SubAckPacket(packetID: 1, reasonCodes: [.grantedQoS0, .grantedQoS1, .grantedQoS2, .unspecifiedError])))
        }
        assertDecodes(hex("90 05 00 01 00 05 ff"), version: .v5,
                      to: .suback(SubAckPacket(packetID: 1, reasonCodes: [ReasonCode(rawValue: 5), ReasonCode(rawValue: 0xFF)])))
        for version in [ProtocolVersion.v3_1, .v3_1_1] {
            for input in [hex("90 03 00 ff ff"), hex("90 04 00 01 05 00")] + [0x03, 0x7F, 0x81, 0x87].map({ hex("90 03 00 01") + [$0] }) {
                let code = input[4]
                switch try decode(input, version: version) {
                case .failure(let error):
                    XCTAssertEqual(error.reasonCode, .malformedPacket, "\(error) for \(hexString(input))")
                case .success(let packet):
                    XCTFail("\(version) SUBACK return code 0x\(String(code, radix: 16)) accepted as \(String(describing: packet))")
                }
            }
        }
    }

    /// Fixed issue 2 (found reading the decoder while writing FuzzCodec's invariant 5; the target
    /// traps on it): No Local on a shared subscription is a Protocol Error [MQTT-3.8.3-4], but the
    /// decoder tests `filter.hasPrefix("$share/")`, which compares Characters: "$share/" followed
    /// by a combining mark (U+0301) is not that prefix for String, while the broker's
    /// `Topic.parseShared` splits bytes and makes "$share/\u{301}g/t" a shared subscription of
    /// group "\u{301}g" with No Local set. Input: SUBSCRIBE (v5) of that filter with options 0x04.
    func testNoLocalOnSharedSubscriptionWithCombiningMarkIsAProtocolError() throws {
        let filter = Array("$share/".utf8) + [0xCC, 0x81] + Array("g/t".utf8)
        XCTAssertNotNil(Topic.parseShared(String(decoding: filter, as: UTF8.self)), "the broker reads it as shared")
        let input = frame(0x82, u16(1) + props() + bin(filter) + [0x04])
        XCTAssertEqual(hexString(input), "82 12 00 01 00 00 0c 24 73 68 61 72 65 2f cc 81 67 2f 74 04")
        switch try decode(input, version: .v5) {
        case .failure(let error):
            XCTAssertEqual(error.reasonCode, .protocolError, "\(error)")
        case .success(let packet):
            XCTFail("No Local accepted on a byte-wise shared subscription: \(String(describing: packet))")
        }
        // The plain case is rejected already.
        assertDecodeFails(frame(0x82, u16(1) + props() + str("$share/g/t") + [0x04]), version: .v5, .protocolError)
    }
}
