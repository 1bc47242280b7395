import NIOCore
import XCTest
@testable import MQTTCodec

// Shared helpers for the MQTTCodec tests: byte builders, decode helpers and assertions.

/// Parses "10 34 00 04" (spaces optional) into bytes.
func hex(_ string: String) -> [UInt8] {
    let digits = string.filter { !$0.isWhitespace }
    precondition(digits.count % 2 == 0, "odd number of hex digits in \(string)")
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        bytes.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

/// Renders bytes as "10 34 00 04".
func hexString<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: " ")
}

func bytes(of buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }

func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

func buffer(_ string: String) -> ByteBuffer { ByteBuffer(string: string) }

/// A Two Byte Integer.
func u16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }

/// A Four Byte Integer.
func u32(_ value: UInt32) -> [UInt8] { [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)] }

/// A UTF-8 Encoded String: length prefix then the bytes.
func str(_ string: String) -> [UInt8] { bin(Array(string.utf8)) }

/// Binary Data (or a string given as raw, possibly invalid, bytes): length prefix then the bytes.
func bin(_ data: [UInt8]) -> [UInt8] { u16(UInt16(data.count)) + data }

/// A Variable Byte Integer, encoded independently of the codec (spec 1.5.5 algorithm).
func vbi(_ value: Int) -> [UInt8] {
    var out: [UInt8] = []
    var x = value
    repeat {
        var byte = UInt8(x % 128)
        x /= 128
        if x > 0 { byte |= 0x80 }
        out.append(byte)
    } while x > 0
    return out
}

/// A property block: Variable Byte Integer length then the given property bytes.
func props(_ content: [UInt8] = []) -> [UInt8] { vbi(content.count) + content }

/// A whole packet: first byte, remaining length, body.
func frame(_ first: UInt8, _ body: [UInt8]) -> [UInt8] { [first] + vbi(body.count) + body }

/// A CONNECT body built field by field, so each malformed case changes exactly one thing.
func connectBody(name: String = "MQTT", level: UInt8 = 5, flags: UInt8 = 0x02, keepAlive: UInt16 = 60,
                 properties: [UInt8]? = nil, payload: [UInt8] = str("client")) -> [UInt8] {
    var body = str(name) + [level, flags] + u16(keepAlive)
    if let properties { body += properties } else if level == 5 { body += props() }
    return body + payload
}

func connectFrame(name: String = "MQTT", level: UInt8 = 5, flags: UInt8 = 0x02, keepAlive: UInt16 = 60,
                  properties: [UInt8]? = nil, payload: [UInt8] = str("client")) -> [UInt8] {
    frame(0x10, connectBody(name: name, level: level, flags: flags, keepAlive: keepAlive, properties: properties, payload: payload))
}

/// Every protocol version the codec speaks.
let allVersions: [ProtocolVersion] = [.v3_1, .v3_1_1, .v5]

/// Encodes one packet for `version`.
func encode(_ packet: MQTTPacket, _ version: ProtocolVersion) -> [UInt8] {
    bytes(of: PacketEncoder.encode(packet, version: version))
}

/// Decodes exactly one packet from `input`, failing the test unless the packet is complete and
/// every byte was consumed.
func decodeOne(_ input: [UInt8], version: ProtocolVersion?, file: StaticString = #filePath, line: UInt = #line) throws -> MQTTPacket? {
    var decoder = PacketDecoder(protocolVersion: version)
    var buffer = ByteBuffer(bytes: input)
    let packet = try decoder.decode(from: &buffer)
    XCTAssertNotNil(packet, "decoder wants more bytes for \(hexString(input))", file: file, line: line)
    XCTAssertEqual(buffer.readableBytes, 0, "bytes left over after decoding \(hexString(input))", file: file, line: line)
    return packet
}

/// Asserts that `input` decodes to `expected`, consuming all of it.
func assertDecodes(_ input: [UInt8], version: ProtocolVersion?, to expected: MQTTPacket? = nil,
                   file: StaticString = #filePath, line: UInt = #line) {
    do {
        let packet = try decodeOne(input, version: version, file: file, line: line)
        if let expected { XCTAssertEqual(packet, expected, file: file, line: line) }
    } catch {
        XCTFail("decoding \(hexString(input)) threw \(error)", file: file, line: line)
    }
}

/// Asserts that decoding `input` throws an MQTTCodecError carrying `expected`.
func assertDecodeFails(_ input: [UInt8], version: ProtocolVersion?, _ expected: ReasonCode,
                       maximumPacketSize: Int = .max, file: StaticString = #filePath, line: UInt = #line) {
    var decoder = PacketDecoder(protocolVersion: version, maximumPacketSize: maximumPacketSize)
    var buffer = ByteBuffer(bytes: input)
    do {
        let packet = try decoder.decode(from: &buffer)
        if let packet {
            XCTFail("expected \(expected) but decoded \(packet) from \(hexString(input))", file: file, line: line)
        } else {
            XCTFail("expected \(expected) but the decoder asked for more bytes: \(hexString(input))", file: file, line: line)
        }
    } catch let error as MQTTCodecError {
        XCTAssertEqual(error.reasonCode, expected, "\(error) for \(hexString(input))", file: file, line: line)
    } catch {
        XCTFail("unexpected error type \(error)", file: file, line: line)
    }
}

/// Encodes `packet` for `version`, decodes it with a fresh decoder (server side, version unknown,
/// for CONNECT; told the version otherwise) and checks the result equals `expected` (default:
/// the packet itself) and that the decoder consumed exactly the packet's bytes: a PINGREQ placed
/// right after it must come out next. Returns the encoded bytes.
@discardableResult
func assertRoundTrip(_ packet: MQTTPacket, _ version: ProtocolVersion, expected: MQTTPacket? = nil,
                     file: StaticString = #filePath, line: UInt = #line) -> [UInt8] {
    let encoded = encode(packet, version)
    // The remaining length written in the fixed header must match the body actually written.
    var header = ByteBuffer(bytes: encoded)
    header.moveReaderIndex(forwardBy: 1)
    if let remaining = try? header.readVariableByteInteger() {
        XCTAssertEqual(remaining, header.readableBytes, "remaining length disagrees with body for \(packet.type)", file: file, line: line)
    } else {
        XCTFail("unreadable fixed header \(hexString(encoded.prefix(5)))", file: file, line: line)
    }
    if case .connect(let connect) = packet {
        XCTAssertEqual(connect.protocolVersion, version, "test bug: CONNECT encodes its own version", file: file, line: line)
    }
    var isConnect = false
    if case .connect = packet { isConnect = true }
    var decoder = PacketDecoder(protocolVersion: isConnect ? nil : version)
    var stream = ByteBuffer(bytes: encoded + [0xC0, 0x00])
    do {
        let decoded = try decoder.decode(from: &stream)
        XCTAssertEqual(decoded, expected ?? packet, "round trip in \(version) of \(hexString(encoded))", file: file, line: line)
        XCTAssertEqual(stream.readableBytes, 2, "decoder did not consume exactly the \(packet.type) bytes", file: file, line: line)
        XCTAssertEqual(try decoder.decode(from: &stream), .pingreq, file: file, line: line)
        XCTAssertEqual(stream.readableBytes, 0, file: file, line: line)
        if isConnect { XCTAssertEqual(decoder.protocolVersion, version, file: file, line: line) }
    } catch {
        XCTFail("round trip in \(version) of \(packet.type) threw \(error); bytes \(hexString(encoded))", file: file, line: line)
    }
    return encoded
}
