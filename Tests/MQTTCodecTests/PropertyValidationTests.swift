import NIOCore
import XCTest
@testable import MQTTCodec

/// Malformed v5 properties (spec 2.2.2): placement, repetition, values.
final class PropertyValidationTests: XCTestCase {

    /// A v5 packet for `context` whose property block is `block` (length prefix included), built by
    /// hand so the property bytes need not be something the encoder would write.
    static func packet(_ context: PropertyContext, _ block: [UInt8], ackFirst: UInt8 = 0x40) -> (bytes: [UInt8], version: ProtocolVersion?) {
        switch context {
        case .connect: return (connectFrame(properties: block), nil)
        case .will: return (connectFrame(flags: 0x0E, payload: str("c") + block + str("w") + bin([1])), nil)
        case .connack: return (frame(0x20, [0x00, 0x00] + block), .v5)
        case .publish: return (frame(0x32, str("t") + u16(1) + block + [0x70]), .v5)
        case .puback: return (frame(ackFirst, u16(1) + [0x00] + block), .v5)
        case .subscribe: return (frame(0x82, u16(1) + block + str("t") + [0x01]), .v5)
        case .suback: return (frame(0x90, u16(1) + block + [0x01]), .v5)
        case .unsubscribe: return (frame(0xA2, u16(1) + block + str("t")), .v5)
        case .unsuback: return (frame(0xB0, u16(1) + block + [0x00]), .v5)
        case .disconnect: return (frame(0xE0, [0x00] + block), .v5)
        case .auth: return (frame(0xF0, [0x18] + block), .v5)
        default: preconditionFailure("unknown context")
        }
    }

    /// The wire bytes of one sample of `identifier` (no length prefix).
    static func content(_ identifier: PropertyIdentifier) -> [UInt8] {
        let properties = PropertyRoundTripTests.sample(identifier)
        var out = ByteBuffer()
        properties.write(to: &out)
        _ = try! out.readVariableByteInteger()
        return bytes(of: out)
    }

    /// Contexts as listed for the tests, PUBACK-family expanded to its four first bytes.
    static var placements: [(String, PropertyContext, UInt8)] {
        var result: [(String, PropertyContext, UInt8)] = []
        for (name, context) in PropertyRoundTripTests.contexts {
            if context == .puback {
                for (n, first) in [("PUBACK", UInt8(0x40)), ("PUBREC", 0x50), ("PUBREL", 0x62), ("PUBCOMP", 0x70)] { result.append((n, context, first)) }
            } else {
                result.append((name, context, 0x40))
            }
        }
        return result
    }

    func testHandBuiltBlocksDecodeWhereAllowed() {
        for identifier in PropertyIdentifier.allCases {
            for (_, context, first) in Self.placements where identifier.contexts.contains(context) {
                let (bytes, version) = Self.packet(context, props(Self.content(identifier)), ackFirst: first)
                assertDecodes(bytes, version: version)
            }
        }
    }

    func testEveryPropertyOnEveryPacketThatDoesNotAllowItIsMalformed() {
        // Spec 2.2.2.2: an identifier not valid for its packet type is a Malformed Packet.
        var checked = 0
        for identifier in PropertyIdentifier.allCases {
            for (_, context, first) in Self.placements where !identifier.contexts.contains(context) {
                let (bytes, version) = Self.packet(context, props(Self.content(identifier)), ackFirst: first)
                assertDecodeFails(bytes, version: version, .malformedPacket)
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 200)
    }

    func testEncoderOutputWithMisplacedPropertyIsRejected() {
        // The encoder writes whatever it is given; the decoder is the one that enforces table 2.4.
        var properties = Properties()
        properties.topicAlias = 1
        assertDecodeFails(encode(.connect(ConnectPacket(protocolVersion: .v5, clientID: "c", properties: properties)), .v5), version: nil, .malformedPacket)
        properties = Properties()
        properties.willDelayInterval = 1
        assertDecodeFails(encode(.publish(PublishPacket(topic: "t", payload: ByteBuffer(), properties: properties)), .v5), version: .v5, .malformedPacket)
        properties = Properties()
        properties.sessionExpiryInterval = 1
        assertDecodeFails(encode(.connect(ConnectPacket(protocolVersion: .v5, clientID: "c", will: Will(topic: "w", payload: ByteBuffer(), properties: properties))), .v5),
                          version: nil, .malformedPacket)
    }

    func testDuplicatedPropertyIsProtocolError() {
        // Spec 2.2.2.2: including a property more than once is a Protocol Error, except User Property, and
        // Subscription Identifier on PUBLISH.
        for identifier in PropertyIdentifier.allCases {
            for (_, context, first) in Self.placements where identifier.contexts.contains(context) {
                let once = Self.content(identifier)
                let (bytes, version) = Self.packet(context, props(once + once), ackFirst: first)
                if identifier == .userProperty || (identifier == .subscriptionIdentifier && context == .publish) {
                    assertDecodes(bytes, version: version)
                } else {
                    assertDecodeFails(bytes, version: version, .protocolError)
                }
            }
        }
    }

    func testRepeatedSubscriptionIdentifiersOnPublishAreAllKept() throws {
        let (bytes, version) = Self.packet(.publish, props([0x0B, 0x01, 0x0B, 0x80, 0x01, 0x0B, 0x01]))
        guard case .publish(let publish) = try decodeOne(bytes, version: version) else { return XCTFail() }
        XCTAssertEqual(publish.properties.subscriptionIdentifiers, [1, 128, 1])
    }

    func testTopicAliasZeroIsTopicAliasInvalid() {
        // [MQTT-3.3.2-8]: a Topic Alias of 0 is not permitted.
        let (bytes, version) = Self.packet(.publish, props([0x23] + u16(0)))
        assertDecodeFails(bytes, version: version, .topicAliasInvalid)
        assertDecodeFails(frame(0x30, str("") + props([0x23] + u16(0))), version: .v5, .topicAliasInvalid)
    }

    func testZeroValuesThatAreProtocolErrors() {
        // Receive Maximum 0 (3.1.2.11.3, 3.2.2.3.3), Maximum Packet Size 0 (3.1.2.11.4, 3.2.2.3.6),
        // Subscription Identifier 0 (3.3.2.3.8, 3.8.2.1.2).
        for context in [PropertyContext.connect, .connack] {
            for block in [props([0x21] + u16(0)), props([0x27] + u32(0))] {
                let (bytes, version) = Self.packet(context, block)
                assertDecodeFails(bytes, version: version, .protocolError)
            }
        }
        for context in [PropertyContext.subscribe, .publish] {
            let (bytes, version) = Self.packet(context, props([0x0B, 0x00]))
            assertDecodeFails(bytes, version: version, .protocolError)
        }
        // The smallest legal values pass.
        assertDecodes(Self.packet(.connect, props([0x21] + u16(1) + [0x27] + u32(1))).bytes, version: nil)
        assertDecodes(Self.packet(.subscribe, props([0x0B, 0x01])).bytes, version: .v5)
        assertDecodes(Self.packet(.connack, props([0x22] + u16(0))).bytes, version: .v5)  // Topic Alias Maximum 0 is fine
    }

    func testByteValuedPropertiesMustBeZeroOrOne() {
        // Request Problem / Response Information (3.1.2.11.6-7), Maximum QoS
        // (3.2.2.3.4), Retain / Wildcard / Subscription Identifier / Shared Subscription Available (3.2.2.3.5, .11-.13).
        let cases: [(PropertyIdentifier, PropertyContext)] = [
            (.requestProblemInformation, .connect), (.requestResponseInformation, .connect),
            (.maximumQoS, .connack), (.retainAvailable, .connack), (.wildcardSubscriptionAvailable, .connack),
            (.subscriptionIdentifierAvailable, .connack), (.sharedSubscriptionAvailable, .connack),
        ]
        for (identifier, context) in cases {
            for value: UInt8 in [0, 1] {
                let (bytes, version) = Self.packet(context, props([identifier.rawValue, value]))
                assertDecodes(bytes, version: version)
            }
            for value: UInt8 in [2, 0x80, 0xFF] {
                let (bytes, version) = Self.packet(context, props([identifier.rawValue, value]))
                assertDecodeFails(bytes, version: version, .protocolError)
            }
        }
    }

    func testPayloadFormatIndicatorKeepsAnyValue() {
        // The spec defines 0 and 1 without making another value an error; it is forwarded
        // unaltered [MQTT-3.3.2-4], as Mosquitto does (its test 12-prop-subpub-payload-format sends 0xED).
        for context in [PropertyContext.publish, .will] {
            for value: UInt8 in [0, 1, 2, 0xED, 0xFF] {
                let (bytes, version) = Self.packet(context, props([PropertyIdentifier.payloadFormatIndicator.rawValue, value]))
                assertDecodes(bytes, version: version)
            }
        }
        var buffer = ByteBuffer(bytes: [0x02, 0x01, 0xED])
        XCTAssertEqual(try Properties.read(from: &buffer, context: .publish).payloadFormatIndicator, 0xED)
    }

    func testResponseTopicWithWildcardIsRejected() {
        // [MQTT-3.3.2-14]: the Response Topic is a Topic Name, without wildcards.
        for context in [PropertyContext.publish, .will] {
            let (bytes, version) = Self.packet(context, props([0x08] + str("reply/+")))
            assertDecodeFails(bytes, version: version, .protocolError)
        }
    }

    func testUnknownPropertyIdentifierIsMalformed() {
        for identifier: [UInt8] in [[0x00], [0x04], [0x0A], [0x14], [0x2B], [0x7F], [0x80, 0x01]] {
            let (bytes, version) = Self.packet(.publish, props(identifier + [0x00]))
            assertDecodeFails(bytes, version: version, .malformedPacket)
        }
        // A known identifier written as a non-minimal Variable Byte Integer.
        let (bytes, version) = Self.packet(.publish, props([0x81, 0x00, 0x01]))
        assertDecodeFails(bytes, version: version, .malformedPacket)
    }

    func testPropertyValueCutShortIsMalformed() {
        // Each value runs past the end of the property block (the block length is honest about its bytes).
        let cases: [(PropertyContext, [UInt8])] = [
            (.publish, [0x01]),                   // Byte missing
            (.connect, [0x21, 0x00]),             // Two Byte Integer, one byte
            (.connect, [0x11, 0x00, 0x00, 0x00]), // Four Byte Integer, three bytes
            (.publish, [0x0B]),                   // Variable Byte Integer missing
            (.publish, [0x0B, 0x80]),             // Variable Byte Integer cut short
            (.publish, [0x03, 0x00, 0x05, 0x61]), // String, 1 of 5 bytes
            (.publish, [0x09, 0x00]),             // Binary length cut short
            (.auth, [0x26] + str("k") + [0x00]),  // String pair, value cut short
        ]
        for (context, content) in cases {
            let (bytes, version) = Self.packet(context, props(content))
            assertDecodeFails(bytes, version: version, .malformedPacket)
        }
    }

    func testPropertyLengthBeyondThePacketIsMalformed() {
        for context in [PropertyContext.connect, .connack, .puback, .disconnect, .auth] {
            let (bytes, version) = Self.packet(context, [0x7F] + [0x26] + str("k") + str("v"))
            assertDecodeFails(bytes, version: version, .malformedPacket)
        }
    }
}
