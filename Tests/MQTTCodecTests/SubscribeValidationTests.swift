import NIOCore
import XCTest
@testable import MQTTCodec

/// Malformed SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK packets (spec 3.8 - 3.11).
final class SubscribeValidationTests: XCTestCase {

    static func subscribe(_ entries: [([UInt8], UInt8)], packetID: UInt16 = 1, v5: Bool, properties: [UInt8] = props()) -> [UInt8] {
        frame(0x82, u16(packetID) + (v5 ? properties : []) + entries.flatMap { $0.0 + [$0.1] })
    }

    static func unsubscribe(_ filters: [[UInt8]], packetID: UInt16 = 1, v5: Bool, properties: [UInt8] = props()) -> [UInt8] {
        frame(0xA2, u16(packetID) + (v5 ? properties : []) + filters.flatMap { $0 })
    }

    func testEveryValidV5OptionByteDecodes() throws {
        // QoS 0-2, No Local, Retain As Published, Retain Handling 0-2: 36 legal bytes, none with bits 6-7.
        var legal = 0
        for options in UInt8(0)...0xFF {
            let qos = options & 0x03, handling = (options >> 4) & 0x03
            guard qos < 3, handling < 3, options & 0xC0 == 0 else { continue }
            legal += 1
            let packet = try decodeOne(Self.subscribe([(str("a/b"), options)], v5: true), version: .v5)
            guard case .subscribe(let subscribe) = packet else { return XCTFail() }
            XCTAssertEqual(subscribe.subscriptions.first?.options.byte, options)
        }
        XCTAssertEqual(legal, 36)
    }

    func testV5OptionsReservedBitsAreMalformed() {
        // [MQTT-3.8.3-5]: bits 6 and 7 of the Subscription Options are reserved.
        for options: UInt8 in [0x40, 0x80, 0xC0, 0x41, 0x6E] {
            assertDecodeFails(Self.subscribe([(str("a"), options)], v5: true), version: .v5, .malformedPacket)
        }
    }

    func testV5RetainHandling3IsProtocolError() {
        // Spec 3.8.3.1: "It is a Protocol Error to send a Retain Handling value of 3."
        for options: UInt8 in [0x30, 0x31, 0x3E] {
            assertDecodeFails(Self.subscribe([(str("a"), options)], v5: true), version: .v5, .protocolError)
        }
    }

    func testV5MaximumQoS3IsProtocolError() {
        // Spec 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3."
        for options: UInt8 in [0x03, 0x07, 0x2F] {
            assertDecodeFails(Self.subscribe([(str("a"), options)], v5: true), version: .v5, .protocolError)
        }
    }

    func testV5NoLocalOnSharedSubscriptionIsProtocolError() {
        // [MQTT-3.8.3-4]: "It is a Protocol Error to set the No Local bit to 1 on a Shared Subscription."
        assertDecodeFails(Self.subscribe([(str("$share/g/a/b"), 0x04)], v5: true), version: .v5, .protocolError)
        assertDecodeFails(Self.subscribe([(str("a"), 0x00), (str("$share/g/#"), 0x05)], v5: true), version: .v5, .protocolError)
        // No Local on a plain filter, and a shared filter without No Local, are fine.
        assertDecodes(Self.subscribe([(str("$share/g/a/b"), 0x01), (str("a/b"), 0x04)], v5: true), version: .v5)
    }

    func testV3OptionBitsAboveQoSAreMalformed() {
        // 3.1.1 [3.1.1:MQTT-3.8.3-4]: the upper six bits of the requested QoS byte are reserved, and QoS 3 is malformed.
        for version in [ProtocolVersion.v3_1, .v3_1_1] {
            for options: UInt8 in [0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x05, 0xFC, 0x03] {
                assertDecodeFails(Self.subscribe([(str("a"), options)], v5: false), version: version, .malformedPacket)
            }
            for qos: UInt8 in 0...2 { assertDecodes(Self.subscribe([(str("a"), qos)], v5: false), version: version) }
        }
    }

    func testSubscribeWithoutFiltersIsProtocolError() {
        // [MQTT-3.8.3-2] [3.1.1:MQTT-3.8.3-3]: at least one Topic Filter / options pair.
        assertDecodeFails(Self.subscribe([], v5: true), version: .v5, .protocolError)
        assertDecodeFails(Self.subscribe([], v5: true, properties: props([0x0B, 0x01])), version: .v5, .protocolError)
        assertDecodeFails(Self.subscribe([], v5: false), version: .v3_1_1, .protocolError)
        assertDecodeFails(Self.subscribe([], v5: false), version: .v3_1, .protocolError)
    }

    func testSubscribePacketIdentifierZeroIsProtocolError() {
        // SUBSCRIBE carries a non-zero packet identifier ([3.1.1:MQTT-2.3.1-1]; in 5.0 the client rule
        // MQTT-2.2.1-3).
        assertDecodeFails(Self.subscribe([(str("a"), 0)], packetID: 0, v5: true), version: .v5, .protocolError)
        assertDecodeFails(Self.subscribe([(str("a"), 0)], packetID: 0, v5: false), version: .v3_1_1, .protocolError)
    }

    func testTwoSubscriptionIdentifiersOnSubscribeIsProtocolError() {
        // Spec 3.8.2.1.2: "It is a Protocol Error to include the Subscription Identifier more than once."
        assertDecodes(Self.subscribe([(str("a"), 0)], v5: true, properties: props([0x0B, 0x05])), version: .v5)
        assertDecodeFails(Self.subscribe([(str("a"), 0)], v5: true, properties: props([0x0B, 0x05, 0x0B, 0x06])), version: .v5, .protocolError)
        assertDecodeFails(Self.subscribe([(str("a"), 0)], v5: true, properties: props([0x0B, 0x05, 0x26] + str("k") + str("v") + [0x0B, 0x05])),
                          version: .v5, .protocolError)
    }

    func testSubscribeFilterWithoutOptionsByteIsMalformed() {
        assertDecodeFails(frame(0x82, u16(1) + props() + str("a")), version: .v5, .malformedPacket)
        assertDecodeFails(frame(0x82, u16(1) + str("a")), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(frame(0x82, u16(1) + props() + u16(4) + Array("ab".utf8)), version: .v5, .malformedPacket)
    }

    // MARK: UNSUBSCRIBE

    func testUnsubscribeWithoutFiltersIsProtocolError() {
        // [MQTT-3.10.3-2]: at least one Topic Filter.
        assertDecodeFails(Self.unsubscribe([], v5: true), version: .v5, .protocolError)
        assertDecodeFails(Self.unsubscribe([], v5: false), version: .v3_1_1, .protocolError)
        assertDecodeFails(Self.unsubscribe([], v5: false), version: .v3_1, .protocolError)
        assertDecodes(Self.unsubscribe([str("a")], v5: true), version: .v5)
    }

    func testUnsubscribePacketIdentifierZeroIsProtocolError() {
        assertDecodeFails(Self.unsubscribe([str("a")], packetID: 0, v5: true), version: .v5, .protocolError)
        assertDecodeFails(Self.unsubscribe([str("a")], packetID: 0, v5: false), version: .v3_1_1, .protocolError)
    }

    func testUnsubscribeTruncatedFilterIsMalformed() {
        assertDecodeFails(Self.unsubscribe([u16(3) + [0x61]], v5: true), version: .v5, .malformedPacket)
        assertDecodeFails(Self.unsubscribe([str("a"), [0x00]], v5: false), version: .v3_1_1, .malformedPacket)
    }

    // MARK: SUBACK, UNSUBACK

    func testSubAckTruncated() {
        assertDecodeFails(hex("90 01 00"), version: .v3_1_1, .malformedPacket)
        assertDecodeFails(hex("90 02 00 01"), version: .v5, .malformedPacket)  // no property length
        assertDecodeFails(hex("90 04 00 01 05 00"), version: .v5, .malformedPacket)  // property length past the packet
    }

    func testUnsubAckV5Truncated() {
        assertDecodeFails(hex("b0 03 00 01 03"), version: .v5, .malformedPacket)
        assertDecodeFails(hex("b0 05 00 01 02 1f 00"), version: .v5, .malformedPacket)
    }
}
