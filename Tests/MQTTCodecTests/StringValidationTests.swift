import NIOCore
import XCTest
@testable import MQTTCodec

/// UTF-8 Encoded String rules (spec 1.5.4), checked in every place a packet carries a string.
final class StringValidationTests: XCTestCase {

    /// Ill-formed UTF-8 and U+0000, each a Malformed Packet [MQTT-1.5.4-1] [MQTT-1.5.4-2].
    static let invalid: [(String, [UInt8])] = [
        ("U+0000 [MQTT-1.5.4-2]", [0x61, 0x00, 0x62]),
        ("lone U+0000", [0x00]),
        ("encoded surrogate U+D800 [MQTT-1.5.4-1]", [0xED, 0xA0, 0x80]),
        ("encoded surrogate U+DFFF", [0xED, 0xBF, 0xBF]),
        ("surrogate pair as CESU-8", [0xED, 0xA0, 0xBD, 0xED, 0xB2, 0xA9]),
        ("byte 0xFF", [0x61, 0xFF]),
        ("byte 0xFE", [0xFE]),
        ("overlong NUL", [0xC0, 0x80]),
        ("overlong '/'", [0xC0, 0xAF]),
        ("overlong three-byte", [0xE0, 0x80, 0xAF]),
        ("lone continuation byte", [0x80]),
        ("sequence cut short", [0x61, 0xE2, 0x82]),
        ("above U+10FFFF", [0xF4, 0x90, 0x80, 0x80]),
        ("five-byte form", [0xF8, 0x88, 0x80, 0x80, 0x80]),
    ]

    /// Well-formed strings that must decode unchanged, a BOM included [MQTT-1.5.4-3].
    static let valid: [(String, [UInt8])] = [
        ("ascii", Array("a/b".utf8)),
        ("two-byte", [0xC3, 0xBC]),
        ("three-byte", [0xE2, 0x82, 0xAC]),
        ("four-byte", [0xF0, 0x9D, 0x84, 0x9E]),
        ("BOM kept [MQTT-1.5.4-3]", [0xEF, 0xBB, 0xBF, 0x61]),
        ("last scalar before the surrogates", [0xED, 0x9F, 0xBF]),
        ("first scalar after the surrogates", [0xEE, 0x80, 0x80]),
        ("U+10FFFF", [0xF4, 0x8F, 0xBF, 0xBF]),
    ]

    /// Each place a string sits, as a packet builder over the raw string bytes, with its decoder version.
    static let places: [(String, ProtocolVersion?, ([UInt8]) -> [UInt8])] = [
        ("CONNECT client id v5", nil, { connectFrame(payload: bin($0)) }),
        ("CONNECT client id v3.1.1", nil, { connectFrame(level: 4, payload: bin($0)) }),
        ("CONNECT client id v3.1", nil, { connectFrame(name: "MQIsdp", level: 3, payload: bin($0)) }),
        ("CONNECT will topic", nil, { connectFrame(flags: 0x06, payload: str("c") + props() + bin($0) + bin([1])) }),
        ("CONNECT user name", nil, { connectFrame(level: 4, flags: 0x82, payload: str("c") + bin($0)) }),
        ("PUBLISH topic v5", .v5, { frame(0x30, bin($0) + props() + [0x70]) }),
        ("PUBLISH topic v3.1.1", .v3_1_1, { frame(0x32, bin($0) + u16(1) + [0x70]) }),
        ("SUBSCRIBE filter v5", .v5, { frame(0x82, u16(1) + props() + bin($0) + [0x01]) }),
        ("SUBSCRIBE filter v3.1.1", .v3_1_1, { frame(0x82, u16(1) + bin($0) + [0x01]) }),
        ("UNSUBSCRIBE filter", .v5, { frame(0xA2, u16(1) + props() + bin($0)) }),
        ("UNSUBSCRIBE filter v3.1", .v3_1, { frame(0xA2, u16(1) + bin($0)) }),
        ("content type", .v5, { frame(0x30, str("t") + props([0x03] + bin($0))) }),
        ("user property name", .v5, { frame(0x40, u16(1) + [0x00] + props([0x26] + bin($0) + str("v"))) }),
        ("user property value", .v5, { frame(0x40, u16(1) + [0x00] + props([0x26] + str("k") + bin($0))) }),
        ("reason string", .v5, { frame(0xE0, [0x00] + props([0x1F] + bin($0))) }),
        ("authentication method", .v5, { frame(0xF0, [0x18] + props([0x15] + bin($0))) }),
        ("assigned client identifier", .v5, { frame(0x20, [0x00, 0x00] + props([0x12] + bin($0))) }),
        ("response topic", .v5, { frame(0x30, str("t") + props([0x08] + bin($0))) }),
        ("server reference", .v5, { frame(0xE0, [0x9C] + props([0x1C] + bin($0))) }),
    ]

    func testValidStringsDecodeEverywhere() {
        for (place, version, build) in Self.places {
            for (name, raw) in Self.valid {
                let input = build(raw)
                do {
                    _ = try decodeOne(input, version: version)
                } catch {
                    XCTFail("\(place) with \(name): \(error)")
                }
            }
        }
    }

    func testInvalidStringsAreMalformedEverywhere() {
        for (place, version, build) in Self.places {
            for (name, raw) in Self.invalid {
                var decoder = PacketDecoder(protocolVersion: version)
                var input = ByteBuffer(bytes: build(raw))
                XCTAssertThrowsError(try decoder.decode(from: &input), "\(place) with \(name)") { error in
                    XCTAssertEqual((error as? MQTTCodecError)?.reasonCode, .malformedPacket, "\(place) with \(name): \(error)")
                }
            }
        }
    }

    func testTruncatedStringsAreMalformedEverywhere() {
        // The length prefix promises more bytes than the field has: build with a valid string, then lie about
        // its length by feeding the bytes a string 10 bytes longer would need.
        for (place, version, build) in Self.places {
            let honest = build(Array("abc".utf8))
            // Replace "00 03 61 62 63" with "00 0d 61 62 63": same packet size, string now runs past the end.
            guard let at = honest.firstRange(of: [0x00, 0x03, 0x61, 0x62, 0x63]) else { XCTFail(place); continue }
            var lying = honest
            lying[at.lowerBound + 1] = 0x0D
            assertDecodeFails(lying, version: version, .malformedPacket)
        }
    }

    func testDecodedStringKeepsTheBOMAndEveryScalar() throws {
        let raw: [UInt8] = [0xEF, 0xBB, 0xBF, 0x61, 0xC3, 0xBC, 0xF0, 0x9D, 0x84, 0x9E]
        guard case .publish(let publish) = try decodeOne(frame(0x30, bin(raw)), version: .v3_1_1) else { return XCTFail() }
        XCTAssertEqual(Array(publish.topic.utf8), raw)
        XCTAssertEqual(publish.topic.unicodeScalars.first, "\u{FEFF}")
    }

    func testLongestStringRoundTrips() throws {
        // 65,535 bytes is the longest UTF-8 Encoded String.
        let topic = String(repeating: "é", count: 32_767) + "x"
        XCTAssertEqual(topic.utf8.count, 65_535)
        assertRoundTrip(.publish(PublishPacket(topic: topic, payload: ByteBuffer())), .v5)
    }
}
