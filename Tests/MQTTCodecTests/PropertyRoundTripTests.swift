import NIOCore
import XCTest
@testable import MQTTCodec

/// Every v5 property, on every packet the spec's table 2.4 (`PropertyIdentifier.contexts`) allows it on.
final class PropertyRoundTripTests: XCTestCase {

    /// Every context, by name, for messages.
    static let contexts: [(String, PropertyContext)] = [
        ("CONNECT", .connect), ("CONNACK", .connack), ("PUBLISH", .publish), ("Will", .will), ("PUBACK/PUBREC/PUBREL/PUBCOMP", .puback),
        ("SUBSCRIBE", .subscribe), ("SUBACK", .suback), ("UNSUBSCRIBE", .unsubscribe), ("UNSUBACK", .unsuback),
        ("DISCONNECT", .disconnect), ("AUTH", .auth),
    ]

    /// Sets a legal, non-default sample value of `identifier` in `properties`.
    static func setSample(_ identifier: PropertyIdentifier, in p: inout Properties) {
        switch identifier {
        case .payloadFormatIndicator: p.payloadFormatIndicator = 1
        case .messageExpiryInterval: p.messageExpiryInterval = 0xDEAD_BEEF
        case .contentType: p.contentType = "application/json; charset=utf-8"
        case .responseTopic: p.responseTopic = "reply/to/me"
        case .correlationData: p.correlationData = ByteBuffer(bytes: [0x00, 0x01, 0xFF])
        case .subscriptionIdentifier: p.subscriptionIdentifiers = [268_435_455]
        case .sessionExpiryInterval: p.sessionExpiryInterval = 0xFFFF_FFFF
        case .assignedClientIdentifier: p.assignedClientIdentifier = "auto-0001"
        case .serverKeepAlive: p.serverKeepAlive = 0xFFFF
        case .authenticationMethod: p.authenticationMethod = "SCRAM-SHA-256"
        case .authenticationData: p.authenticationData = ByteBuffer(bytes: [0x72, 0x00, 0x3D])
        case .requestProblemInformation: p.requestProblemInformation = 0
        case .willDelayInterval: p.willDelayInterval = 86_400
        case .requestResponseInformation: p.requestResponseInformation = 1
        case .responseInformation: p.responseInformation = "responses/client-1/"
        case .serverReference: p.serverReference = "broker2.example:1883"
        case .reasonString: p.reasonString = "because ☃"
        case .receiveMaximum: p.receiveMaximum = 0xFFFF
        case .topicAliasMaximum: p.topicAliasMaximum = 0  // 0 is legal: no aliases accepted
        case .topicAlias: p.topicAlias = 0xFFFF
        case .maximumQoS: p.maximumQoS = 1
        case .retainAvailable: p.retainAvailable = 0
        case .userProperty: p.userProperties = [UserProperty("k", "v1"), UserProperty("k", "v2"), UserProperty("ü", "")]
        case .maximumPacketSize: p.maximumPacketSize = 268_435_460
        case .wildcardSubscriptionAvailable: p.wildcardSubscriptionAvailable = 0
        case .subscriptionIdentifierAvailable: p.subscriptionIdentifierAvailable = 1
        case .sharedSubscriptionAvailable: p.sharedSubscriptionAvailable = 0
        }
    }

    static func sample(_ identifier: PropertyIdentifier) -> Properties {
        var properties = Properties()
        setSample(identifier, in: &properties)
        return properties
    }

    /// The packets (v5) whose property block for `context` is `properties`.
    static func packets(_ context: PropertyContext, _ properties: Properties) -> [MQTTPacket] {
        switch context {
        case .connect:
            return [.connect(ConnectPacket(protocolVersion: .v5, clientID: "c", properties: properties))]
        case .will:
            return [.connect(ConnectPacket(protocolVersion: .v5, clientID: "c",
                                           will: Will(topic: "w/t", payload: buffer("bye"), qos: .atLeastOnce, properties: properties)))]
        case .connack:
            return [.connack(ConnAckPacket(sessionPresent: true, reasonCode: .success, properties: properties))]
        case .publish:
            return [.publish(PublishPacket(topic: "a/b", payload: buffer("p"), qos: .atLeastOnce, packetID: 1, properties: properties)),
                    .publish(PublishPacket(topic: "a/b", payload: ByteBuffer(), properties: properties))]
        case .puback:
            let ack = PubAckPacket(packetID: 1, reasonCode: .success, properties: properties)
            let failed = PubAckPacket(packetID: 2, reasonCode: .unspecifiedError, properties: properties)
            return [.puback(ack), .pubrec(ack), .pubrel(ack), .pubcomp(ack), .puback(failed), .pubrec(failed)]
        case .subscribe:
            return [.subscribe(SubscribePacket(packetID: 1, subscriptions: [TopicSubscription(filter: "a/#")], properties: properties))]
        case .suback:
            return [.suback(SubAckPacket(packetID: 1, reasonCodes: [.grantedQoS1], properties: properties))]
        case .unsubscribe:
            return [.unsubscribe(UnsubscribePacket(packetID: 1, filters: ["a/#"], properties: properties))]
        case .unsuback:
            return [.unsuback(UnsubAckPacket(packetID: 1, reasonCodes: [.success], properties: properties))]
        case .disconnect:
            return [.disconnect(DisconnectPacket(reasonCode: .normalDisconnection, properties: properties)),
                    .disconnect(DisconnectPacket(reasonCode: .serverShuttingDown, properties: properties))]
        case .auth:
            return [.auth(AuthPacket(reasonCode: .continueAuthentication, properties: properties)),
                    .auth(AuthPacket(reasonCode: .success, properties: properties))]
        default:
            preconditionFailure("unknown context")
        }
    }

    func testContextsTableMatchesSpecTable24() {
        // Spot checks against MQTT 5.0 table 2-4, so that the table driving the other tests is itself checked.
        XCTAssertEqual(PropertyIdentifier.allCases.count, 27)
        XCTAssertEqual(PropertyIdentifier.payloadFormatIndicator.contexts, [.publish, .will])
        XCTAssertEqual(PropertyIdentifier.subscriptionIdentifier.contexts, [.publish, .subscribe])
        XCTAssertEqual(PropertyIdentifier.sessionExpiryInterval.contexts, [.connect, .connack, .disconnect])
        XCTAssertEqual(PropertyIdentifier.authenticationMethod.contexts, [.connect, .connack, .auth])
        XCTAssertEqual(PropertyIdentifier.willDelayInterval.contexts, [.will])
        XCTAssertEqual(PropertyIdentifier.serverReference.contexts, [.connack, .disconnect])
        XCTAssertEqual(PropertyIdentifier.reasonString.contexts, [.connack, .puback, .suback, .unsuback, .disconnect, .auth])
        XCTAssertEqual(PropertyIdentifier.receiveMaximum.contexts, [.connect, .connack])
        XCTAssertEqual(PropertyIdentifier.topicAlias.contexts, [.publish])
        XCTAssertEqual(PropertyIdentifier.userProperty.contexts, .all)
        XCTAssertEqual(PropertyIdentifier.requestProblemInformation.contexts, [.connect])
        XCTAssertEqual(PropertyIdentifier.sharedSubscriptionAvailable.contexts, [.connack])
        // Every context is reachable by some property.
        for (name, context) in Self.contexts {
            XCTAssertTrue(PropertyIdentifier.allCases.contains { $0.contexts.contains(context) }, name)
        }
    }

    func testEveryPropertyRoundTripsOnEveryPacketThatAllowsIt() {
        var checked = 0
        for identifier in PropertyIdentifier.allCases {
            for (name, context) in Self.contexts where identifier.contexts.contains(context) {
                for packet in Self.packets(context, Self.sample(identifier)) {
                    let bytes = assertRoundTrip(packet, .v5)
                    XCTAssertTrue(bytes.contains(identifier.rawValue), "\(identifier) missing from \(name) bytes")
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 60)
    }

    func testAllAllowedPropertiesTogetherOnEachPacket() {
        for (name, context) in Self.contexts {
            var properties = Properties()
            for identifier in PropertyIdentifier.allCases where identifier.contexts.contains(context) {
                Self.setSample(identifier, in: &properties)
            }
            XCTAssertFalse(properties.isEmpty, name)
            for packet in Self.packets(context, properties) {
                assertRoundTrip(packet, .v5)
            }
        }
    }

    func testEncodedLengthMatchesBytesWritten() {
        var everything = Properties()
        for identifier in PropertyIdentifier.allCases {
            let properties = Self.sample(identifier)
            Self.setSample(identifier, in: &everything)
            var out = ByteBuffer()
            properties.write(to: &out)
            XCTAssertEqual(out.readableBytes, properties.encodedLengthWithPrefix, "\(identifier)")
            // Length prefix, then the identifier byte.
            XCTAssertEqual(bytes(of: out).first, UInt8(properties.encodedLength), "\(identifier)")
            XCTAssertEqual(bytes(of: out)[1], identifier.rawValue, "\(identifier)")
        }
        var out = ByteBuffer()
        everything.write(to: &out)
        XCTAssertGreaterThan(everything.encodedLength, 127, "needs a two-byte property length")
        XCTAssertEqual(out.readableBytes, everything.encodedLengthWithPrefix)
        XCTAssertEqual(Properties.none.encodedLengthWithPrefix, 1)
    }

    func testPropertyWireFormatsByteExact() {
        // One property of each data type (spec 2.2.2.2 / 1.5).
        func written(_ p: Properties) -> String { var b = ByteBuffer(); p.write(to: &b); return hexString(bytes(of: b)) }
        var p = Properties()
        p.payloadFormatIndicator = 1                      // Byte
        XCTAssertEqual(written(p), "02 01 01")
        p = Properties(); p.receiveMaximum = 0x0102         // Two Byte Integer
        XCTAssertEqual(written(p), "03 21 01 02")
        p = Properties(); p.sessionExpiryInterval = 0x01020304  // Four Byte Integer
        XCTAssertEqual(written(p), "05 11 01 02 03 04")
        p = Properties(); p.subscriptionIdentifiers = [128]  // Variable Byte Integer
        XCTAssertEqual(written(p), "03 0b 80 01")
        p = Properties(); p.contentType = "ab"              // UTF-8 Encoded String
        XCTAssertEqual(written(p), "05 03 00 02 61 62")
        p = Properties(); p.correlationData = ByteBuffer(bytes: [0xFF])  // Binary Data
        XCTAssertEqual(written(p), "04 09 00 01 ff")
        p = Properties(); p.userProperties = [UserProperty("a", "b")]   // UTF-8 String Pair
        XCTAssertEqual(written(p), "07 26 00 01 61 00 01 62")
    }

    func testSubscriptionIdentifierBoundaries() {
        // Variable Byte Integer 1 ... 268,435,455 (spec 3.8.2.1.2).
        for id in [1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455] {
            var properties = Properties()
            properties.subscriptionIdentifiers = [id]
            assertRoundTrip(.subscribe(SubscribePacket(packetID: 1, subscriptions: [TopicSubscription(filter: "t")], properties: properties)), .v5)
            assertRoundTrip(.publish(PublishPacket(topic: "t", payload: ByteBuffer(), properties: properties)), .v5)
        }
    }

    func testUserPropertiesKeepOrderAndDuplicates() throws {
        var properties = Properties()
        properties.userProperties = [UserProperty("b", "2"), UserProperty("a", "1"), UserProperty("b", "2"), UserProperty("a", "0")]
        let packet = try decodeOne(encode(.puback(PubAckPacket(packetID: 1, properties: properties)), .v5), version: .v5)
        guard case .puback(let ack) = packet else { return XCTFail() }
        XCTAssertEqual(ack.properties.userProperties.map { "\($0.name)=\($0.value)" }, ["b=2", "a=1", "b=2", "a=0"])
    }

    func testPropertyOrderOnTheWireDoesNotMatter() {
        // Hand-written CONNECT properties in an order the encoder does not use: user property, then receive maximum,
        // then session expiry.
        let content = [0x26] + str("k") + str("v") + [0x21] + u16(5) + [0x11] + u32(9)
        var expected = Properties()
        expected.userProperties = [UserProperty("k", "v")]
        expected.receiveMaximum = 5
        expected.sessionExpiryInterval = 9
        assertDecodes(connectFrame(properties: props(content)), version: nil,
                      to: .connect(ConnectPacket(protocolVersion: .v5, cleanStart: true, keepAlive: 60, clientID: "client", properties: expected)))
    }
}
