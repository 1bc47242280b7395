import NIOCore
import XCTest
@testable import MQTTCodec

/// Malformed CONNECT and CONNACK packets (spec 3.1, 3.2).
final class ConnectValidationTests: XCTestCase {

    /// Will fields (v5: will properties, topic, payload) after the client identifier.
    static func willPayload(v5: Bool, topic: [UInt8] = Array("w/t".utf8)) -> [UInt8] {
        str("c") + (v5 ? props() : []) + bin(topic) + bin([0x01])
    }

    func testBaselinesDecode() {
        assertDecodes(connectFrame(), version: nil)
        assertDecodes(connectFrame(level: 4), version: nil)
        assertDecodes(connectFrame(name: "MQIsdp", level: 3), version: nil)
        assertDecodes(connectFrame(flags: 0x06 | 0x10 | 0x20, payload: Self.willPayload(v5: true)), version: nil)
        assertDecodes(connectFrame(level: 4, flags: 0x06 | 0x08, payload: Self.willPayload(v5: false)), version: nil)
    }

    func testReservedConnectFlagIsMalformed() {
        // [MQTT-3.1.2-3] [3.1.1:MQTT-3.1.2-3]: the reserved flag (bit 0) must be 0.
        assertDecodeFails(connectFrame(flags: 0x03), version: nil, .malformedPacket)
        assertDecodeFails(connectFrame(flags: 0x01), version: nil, .malformedPacket)
        assertDecodeFails(connectFrame(level: 4, flags: 0x03), version: nil, .malformedPacket)
        assertDecodeFails(connectFrame(name: "MQIsdp", level: 3, flags: 0x01), version: nil, .malformedPacket)
    }

    func testWillQoS3IsMalformed() {
        // Will QoS 3 is not allowed (spec 3.1.2.6; the client rule MQTT-3.1.2-12).
        assertDecodeFails(connectFrame(flags: 0x02 | 0x04 | 0x18, payload: Self.willPayload(v5: true)), version: nil, .malformedPacket)
        assertDecodeFails(connectFrame(level: 4, flags: 0x04 | 0x18, payload: Self.willPayload(v5: false)), version: nil, .malformedPacket)
    }

    func testWillQoSOrRetainWithoutWillFlagIsMalformed() {
        // Will QoS must be 0 without a will, and so must Will Retain (the client rules MQTT-3.1.2-11
        // and MQTT-3.1.2-13).
        for level: UInt8 in [3, 4, 5] {
            let name = level == 3 ? "MQIsdp" : "MQTT"
            for flags: UInt8 in [0x02 | 0x08, 0x02 | 0x10, 0x02 | 0x20, 0x02 | 0x38] {
                assertDecodeFails(connectFrame(name: name, level: level, flags: flags), version: nil, .malformedPacket)
            }
        }
    }

    func testPasswordWithoutUsernameBeforeV5IsMalformed() {
        // 3.1.1: a password needs a user name (its client rule MQTT-3.1.2-22); 5.0 lifts this.
        assertDecodeFails(connectFrame(level: 4, flags: 0x42, payload: str("c") + bin([1, 2])), version: nil, .malformedPacket)
        assertDecodeFails(connectFrame(name: "MQIsdp", level: 3, flags: 0x42, payload: str("c") + bin([1, 2])), version: nil, .malformedPacket)
        assertDecodes(connectFrame(level: 5, flags: 0x42, payload: str("c") + bin([1, 2])), version: nil,
                      to: .connect(ConnectPacket(protocolVersion: .v5, clientID: "c", password: ByteBuffer(bytes: [1, 2]))))
    }

    func testInvalidProtocolNameIsProtocolError() {
        // [MQTT-3.1.2-1] [3.1.1:MQTT-3.1.2-1]: an incorrect protocol name.
        for name in ["MQTX", "mqtt", "MQTT ", "", "MQIsdP", "HTTP"] {
            assertDecodeFails(connectFrame(name: name, level: 4), version: nil, .protocolError)
            assertDecodeFails(connectFrame(name: name, level: 5), version: nil, .protocolError)
        }
    }

    func testUnknownProtocolLevelIsUnsupportedProtocolVersion() {
        // [MQTT-3.1.2-2]: an unsupported level is answered with 0x84 (3.1.1: return code 0x01).
        for level: UInt8 in [0, 1, 2, 6, 7, 0x83, 0xFF] {
            assertDecodeFails(connectFrame(name: "MQTT", level: level, properties: []), version: nil, .unsupportedProtocolVersion)
            assertDecodeFails(connectFrame(name: "MQIsdp", level: level, properties: []), version: nil, .unsupportedProtocolVersion)
        }
    }

    func testMismatchedProtocolNameAndLevel() {
        // "MQIsdp" belongs to level 3 only, "MQTT" to 4 and 5.
        assertDecodeFails(connectFrame(name: "MQIsdp", level: 4), version: nil, .unsupportedProtocolVersion)
        assertDecodeFails(connectFrame(name: "MQIsdp", level: 5), version: nil, .unsupportedProtocolVersion)
        assertDecodeFails(connectFrame(name: "MQTT", level: 3), version: nil, .unsupportedProtocolVersion)
    }

    func testDecoderLearnsTheVersionOnlyFromAValidConnect() throws {
        for (name, level, version) in [("MQIsdp", UInt8(3), ProtocolVersion.v3_1), ("MQTT", 4, .v3_1_1), ("MQTT", 5, .v5)] {
            var decoder = PacketDecoder()
            var input = ByteBuffer(bytes: connectFrame(name: name, level: level))
            guard case .connect(let connect) = try decoder.decode(from: &input) else { return XCTFail() }
            XCTAssertEqual(connect.protocolVersion, version)
            XCTAssertEqual(decoder.protocolVersion, version)
        }
        var decoder = PacketDecoder()
        var input = ByteBuffer(bytes: connectFrame(name: "MQTT", level: 9))
        XCTAssertThrowsError(try decoder.decode(from: &input))
        XCTAssertNil(decoder.protocolVersion)
    }

    func testTruncatedConnectFields() {
        let body = connectBody(flags: 0xC2, payload: str("c") + str("user") + bin([9, 9]))
        assertDecodes(frame(0x10, body), version: nil)
        // Every shorter body (remaining length shortened to match) ends inside some field.
        for length in 0..<body.count {
            assertDecodeFails(frame(0x10, Array(body.prefix(length))), version: nil, .malformedPacket)
        }
    }

    func testFlagsPromiseFieldsThatAreMissing() {
        // User name flag set but the payload stops after the client id.
        assertDecodeFails(connectFrame(flags: 0x82), version: nil, .malformedPacket)
        // Password flag set (v5, no user name) but no password.
        assertDecodeFails(connectFrame(flags: 0x42), version: nil, .malformedPacket)
        // Will flag set but no will.
        assertDecodeFails(connectFrame(flags: 0x06), version: nil, .malformedPacket)
        assertDecodeFails(connectFrame(level: 4, flags: 0x06), version: nil, .malformedPacket)
        // String length running past the packet.
        assertDecodeFails(connectFrame(payload: u16(10) + Array("abc".utf8)), version: nil, .malformedPacket)
        // v5 property length running past the packet.
        assertDecodeFails(connectFrame(properties: [0x05, 0x11, 0x00], payload: []), version: nil, .malformedPacket)
    }

    func testWillTopicMustBeATopicName() {
        // The will topic becomes a PUBLISH topic name: no wildcards [MQTT-3.3.2-2], at least one character [MQTT-4.7.3-1].
        for topic in ["a/+", "#", "a/#", ""] {
            assertDecodeFails(connectFrame(flags: 0x06, payload: Self.willPayload(v5: true, topic: Array(topic.utf8))), version: nil, .topicNameInvalid)
            assertDecodeFails(connectFrame(level: 4, flags: 0x06, payload: Self.willPayload(v5: false, topic: Array(topic.utf8))), version: nil, .topicNameInvalid)
        }
    }

    func testBinaryFieldsAcceptAnyBytes() throws {
        // Password, will payload and correlation data are Binary Data: no UTF-8 rule applies.
        let raw: [UInt8] = [0x00, 0xFF, 0xED, 0xA0, 0x80, 0xC0, 0x80]
        let input = connectFrame(flags: 0xC6, payload: str("c") + props([0x09] + bin(raw)) + str("w") + bin(raw) + str("u") + bin(raw))
        guard case .connect(let connect) = try decodeOne(input, version: nil) else { return XCTFail() }
        XCTAssertEqual(connect.password.map(bytes(of:)), raw)
        XCTAssertEqual(connect.will.map { bytes(of: $0.payload) }, raw)
        XCTAssertEqual(connect.will?.properties.correlationData.map(bytes(of:)), raw)
    }

    // MARK: CONNACK

    func testConnAckReservedFlagsAreMalformed() {
        // Connect Acknowledge Flags bits 7-1 are reserved (spec 3.2.2.1): a client's decoder refuses them.
        for flags: UInt8 in [0x02, 0x80, 0xFE] {
            assertDecodeFails([0x20, 0x02, flags, 0x00], version: .v3_1_1, .malformedPacket)
            assertDecodeFails([0x20, 0x03, flags, 0x00, 0x00], version: .v5, .malformedPacket)
        }
    }

    func testConnAckUnknownV3ReturnCodeIsMalformed() {
        // 3.1.1 return codes 6-255 are reserved.
        for code: UInt8 in [6, 0x80, 0xFF] {
            assertDecodeFails([0x20, 0x02, 0x00, code], version: .v3_1_1, .malformedPacket)
        }
    }
}
