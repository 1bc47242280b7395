import NIOCore
import XCTest
@testable import MQTTCodec

/// encode → decode → equal, and the decoder consumes exactly the packet's bytes, for every packet
/// type in every protocol version where it exists.
final class RoundTripTests: XCTestCase {

    // MARK: CONNECT

    func testConnectMinimalEveryVersion() {
        for version in allVersions {
            for cleanStart in [true, false] {
                for keepAlive: UInt16 in [0, 1, 60, 0xFFFF] {
                    assertRoundTrip(.connect(ConnectPacket(protocolVersion: version, cleanStart: cleanStart, keepAlive: keepAlive,
                                                           clientID: "client-1")), version)
                }
            }
        }
    }

    func testConnectEmptyClientID() {
        // A zero-byte ClientId is allowed by 3.1.1 and 5.0 (spec 3.1.3.1); the codec carries it either way.
        for version in allVersions {
            assertRoundTrip(.connect(ConnectPacket(protocolVersion: version, clientID: "")), version)
        }
    }

    func testConnectWithWillEveryQoSAndRetainEveryVersion() {
        for version in allVersions {
            for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
                for retain in [false, true] {
                    let will = Will(topic: "clients/c1/status", payload: buffer("offline"), qos: qos, retain: retain)
                    let bytes = assertRoundTrip(.connect(ConnectPacket(protocolVersion: version, clientID: "c1", will: will)), version)
                    // Connect flags: bit 2 will, bits 3-4 will QoS, bit 5 will retain, bit 1 clean start.
                    let flagsOffset = 2 + version.protocolName.mqttEncodedLength + 1
                    XCTAssertEqual(bytes[flagsOffset], 0x02 | 0x04 | (qos.rawValue << 3) | (retain ? 0x20 : 0))
                }
            }
        }
    }

    func testConnectWillWithEmptyAndBinaryPayload() {
        for version in allVersions {
            assertRoundTrip(.connect(ConnectPacket(protocolVersion: version, clientID: "c", will: Will(topic: "w", payload: ByteBuffer()))), version)
            assertRoundTrip(.connect(ConnectPacket(protocolVersion: version, clientID: "c",
                                                   will: Will(topic: "w", payload: ByteBuffer(bytes: [0, 0xFF, 0x80, 0])))), version)
        }
    }

    func testConnectWillWithPropertiesV5() {
        var willProperties = Properties()
        willProperties.willDelayInterval = 120
        willProperties.payloadFormatIndicator = 1
        willProperties.messageExpiryInterval = 3600
        willProperties.contentType = "text/plain"
        willProperties.responseTopic = "replies/c1"
        willProperties.correlationData = ByteBuffer(bytes: [1, 2, 3])
        willProperties.userProperties = [UserProperty("a", "1"), UserProperty("a", "2")]
        let will = Will(topic: "clients/c1/status", payload: buffer("gone"), qos: .exactlyOnce, retain: true, properties: willProperties)
        assertRoundTrip(.connect(ConnectPacket(protocolVersion: .v5, clientID: "c1", will: will)), .v5)
    }

    func testConnectUsernameAndPasswordEveryVersion() {
        for version in allVersions {
            assertRoundTrip(.connect(ConnectPacket(protocolVersion: version, clientID: "c", username: "alice")), version)
            assertRoundTrip(.connect(ConnectPacket(protocolVersion: version, clientID: "c", username: "alice", password: buffer("s3cret"))), version)
            assertRoundTrip(.connect(ConnectPacket(protocolVersion: version, clientID: "c", username: "", password: ByteBuffer())), version)
            assertRoundTrip(.connect(ConnectPacket(protocolVersion: version, clientID: "c",
                                                   will: Will(topic: "w", payload: buffer("x"), qos: .atLeastOnce),
                                                   username: "bob", password: ByteBuffer(bytes: [0, 1, 2, 0xFE]))), version)
        }
    }

    func testConnectV5PasswordWithoutUsername() {
        // 5.0 allows a password without a user name (spec 3.1.2.9); flags 0x40 | 0x02.
        let bytes = assertRoundTrip(.connect(ConnectPacket(protocolVersion: .v5, clientID: "c", password: buffer("token"))), .v5)
        XCTAssertEqual(bytes[9], 0x42)
    }

    func testConnectV5WithProperties() {
        var properties = Properties()
        properties.sessionExpiryInterval = 0xFFFF_FFFF
        properties.receiveMaximum = 20
        properties.maximumPacketSize = 1 << 20
        properties.topicAliasMaximum = 10
        properties.requestResponseInformation = 1
        properties.requestProblemInformation = 0
        properties.authenticationMethod = "SCRAM-SHA-256"
        properties.authenticationData = ByteBuffer(bytes: [9, 8, 7])
        properties.userProperties = [UserProperty("region", "eu"), UserProperty("", "")]
        assertRoundTrip(.connect(ConnectPacket(protocolVersion: .v5, cleanStart: false, keepAlive: 30, clientID: "props", properties: properties)), .v5)
    }

    func testConnectV31ByteExact() {
        // MQTT 3.1 introduces itself as "MQIsdp" level 3.
        let bytes = encode(.connect(ConnectPacket(protocolVersion: .v3_1, cleanStart: true, keepAlive: 10, clientID: "a")), .v3_1)
        XCTAssertEqual(hexString(bytes), "10 0f 00 06 4d 51 49 73 64 70 03 02 00 0a 00 01 61")
        assertRoundTrip(.connect(ConnectPacket(protocolVersion: .v3_1, cleanStart: true, keepAlive: 10, clientID: "a")), .v3_1)
    }

    func testConnectV311ByteExact() {
        let bytes = encode(.connect(ConnectPacket(protocolVersion: .v3_1_1, cleanStart: true, keepAlive: 60, clientID: "a",
                                                  username: "u", password: buffer("p"))), .v3_1_1)
        XCTAssertEqual(hexString(bytes), "10 13 00 04 4d 51 54 54 04 c2 00 3c 00 01 61 00 01 75 00 01 70")
    }

    func testConnectV3DropsV5OnlyFields() {
        var properties = Properties()
        properties.sessionExpiryInterval = 10
        var willProperties = Properties()
        willProperties.willDelayInterval = 5
        let rich = ConnectPacket(protocolVersion: .v3_1_1, clientID: "c", will: Will(topic: "w", payload: buffer("x"), properties: willProperties),
                                 properties: properties)
        let plain = ConnectPacket(protocolVersion: .v3_1_1, clientID: "c", will: Will(topic: "w", payload: buffer("x")))
        XCTAssertEqual(encode(.connect(rich), .v3_1_1), encode(.connect(plain), .v3_1_1))
        assertRoundTrip(.connect(rich), .v3_1_1, expected: .connect(plain))
    }

    // MARK: CONNACK

    func testConnAckV3EveryReturnCode() {
        let mapped: [ConnectReturnCode: ReasonCode] = [
            .accepted: .success, .unacceptableProtocolVersion: .unsupportedProtocolVersion, .identifierRejected: .clientIdentifierNotValid,
            .serverUnavailable: .serverUnavailable, .badUsernameOrPassword: .badUserNameOrPassword, .notAuthorized: .notAuthorized,
        ]
        for version in [ProtocolVersion.v3_1, .v3_1_1] {
            for code in [ConnectReturnCode.accepted, .unacceptableProtocolVersion, .identifierRejected, .serverUnavailable,
                         .badUsernameOrPassword, .notAuthorized] {
                let sessionPresent = code == .accepted
                let bytes = assertRoundTrip(.connack(ConnAckPacket(sessionPresent: sessionPresent, reasonCode: mapped[code]!, returnCode: code)), version)
                XCTAssertEqual(bytes, [0x20, 0x02, sessionPresent ? 1 : 0, code.rawValue])
            }
        }
    }

    func testConnAckV311AcceptedByteExact() {
        XCTAssertEqual(encode(.connack(ConnAckPacket()), .v3_1_1), hex("20 02 00 00"))
        XCTAssertEqual(encode(.connack(ConnAckPacket(sessionPresent: true)), .v3_1_1), hex("20 02 01 00"))
        // The decoder fills in the v3 return code it read.
        assertRoundTrip(.connack(ConnAckPacket()), .v3_1_1, expected: .connack(ConnAckPacket(returnCode: .accepted)))
    }

    func testConnAckV3MapsV5ReasonCodes() {
        let cases: [(ReasonCode, UInt8)] = [
            (.success, 0), (.unsupportedProtocolVersion, 1), (.clientIdentifierNotValid, 2), (.serverUnavailable, 3),
            (.serverBusy, 3), (.unspecifiedError, 3), (.badUserNameOrPassword, 4), (.badAuthenticationMethod, 4),
            (.notAuthorized, 5), (.banned, 5),
        ]
        for (reason, wire) in cases {
            XCTAssertEqual(encode(.connack(ConnAckPacket(reasonCode: reason)), .v3_1_1), [0x20, 0x02, 0x00, wire], "\(reason)")
        }
        // An explicit return code wins over the mapping.
        XCTAssertEqual(encode(.connack(ConnAckPacket(reasonCode: .banned, returnCode: .serverUnavailable)), .v3_1_1), hex("20 02 00 03"))
    }

    func testConnAckV5() {
        XCTAssertEqual(encode(.connack(ConnAckPacket()), .v5), hex("20 03 00 00 00"))
        for reason in [ReasonCode.success, .unspecifiedError, .malformedPacket, .protocolError, .unsupportedProtocolVersion,
                       .clientIdentifierNotValid, .badUserNameOrPassword, .notAuthorized, .serverUnavailable, .serverBusy, .banned,
                       .badAuthenticationMethod, .useAnotherServer, .serverMoved, .connectionRateExceeded] {
            assertRoundTrip(.connack(ConnAckPacket(sessionPresent: false, reasonCode: reason)), .v5)
        }
        assertRoundTrip(.connack(ConnAckPacket(sessionPresent: true)), .v5)
        var properties = Properties()
        properties.assignedClientIdentifier = "auto-7f3a"
        properties.serverKeepAlive = 120
        properties.receiveMaximum = 100
        properties.maximumQoS = 1
        properties.retainAvailable = 0
        properties.maximumPacketSize = 65536
        properties.topicAliasMaximum = 16
        properties.wildcardSubscriptionAvailable = 1
        properties.subscriptionIdentifierAvailable = 0
        properties.sharedSubscriptionAvailable = 1
        properties.reasonString = "welcome"
        properties.responseInformation = "resp/"
        properties.serverReference = "other:1883"
        properties.sessionExpiryInterval = 300
        properties.authenticationMethod = "PLAIN"
        properties.authenticationData = ByteBuffer(bytes: [1])
        properties.userProperties = [UserProperty("x", "y")]
        assertRoundTrip(.connack(ConnAckPacket(sessionPresent: true, reasonCode: .success, properties: properties)), .v5)
    }

    // MARK: PUBLISH

    func testPublishEveryQoSDupRetainEveryVersion() {
        for version in allVersions {
            for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
                for dup in [false, true] where !(dup && qos == .atMostOnce) {  // DUP must be 0 for QoS 0 (spec 3.3.1.1)
                    for retain in [false, true] {
                        let packetID: UInt16 = qos == .atMostOnce ? 0 : 0xBEEF
                        let publish = PublishPacket(topic: "a/b/c", payload: buffer("hello"), qos: qos, retain: retain, dup: dup, packetID: packetID)
                        let bytes = assertRoundTrip(.publish(publish), version)
                        XCTAssertEqual(bytes[0], 0x30 | (dup ? 0x08 : 0) | (qos.rawValue << 1) | (retain ? 1 : 0))
                        XCTAssertEqual(PacketEncoder.publishPacketSize(publish, version: version), bytes.count)
                    }
                }
            }
        }
    }

    func testPublishByteExact() {
        // QoS 1, packet id 10, v3.1.1: 32 | len | 00 03 "a/b" | 00 0a | "hi"
        XCTAssertEqual(encode(.publish(PublishPacket(topic: "a/b", payload: buffer("hi"), qos: .atLeastOnce, packetID: 10)), .v3_1_1),
                       hex("32 09 00 03 61 2f 62 00 0a 68 69"))
        // Same in v5: property length 0 between the packet id and the payload.
        XCTAssertEqual(encode(.publish(PublishPacket(topic: "a/b", payload: buffer("hi"), qos: .atLeastOnce, packetID: 10)), .v5),
                       hex("32 0a 00 03 61 2f 62 00 0a 00 68 69"))
        // QoS 2, DUP, RETAIN: first byte 0x3D.
        XCTAssertEqual(encode(.publish(PublishPacket(topic: "t", payload: ByteBuffer(), qos: .exactlyOnce, retain: true, dup: true, packetID: 1)), .v3_1_1),
                       hex("3d 05 00 01 74 00 01"))
    }

    func testPublishEmptyAndBinaryPayload() {
        for version in allVersions {
            assertRoundTrip(.publish(PublishPacket(topic: "t", payload: ByteBuffer())), version)
            assertRoundTrip(.publish(PublishPacket(topic: "t", payload: ByteBuffer(bytes: Array(0...255)), qos: .atLeastOnce, packetID: 1)), version)
        }
    }

    func testPublishUnicodeTopic() {
        for version in allVersions {
            assertRoundTrip(.publish(PublishPacket(topic: "maison/température/€/𝄞", payload: buffer("21"))), version)
            assertRoundTrip(.publish(PublishPacket(topic: "/", payload: buffer("x"))), version)
            assertRoundTrip(.publish(PublishPacket(topic: "$SYS/broker/uptime", payload: buffer("x"))), version)
        }
    }

    func testPublishV5WithProperties() {
        var properties = Properties()
        properties.payloadFormatIndicator = 1
        properties.messageExpiryInterval = 60
        properties.topicAlias = 3
        properties.responseTopic = "reply/here"
        properties.correlationData = ByteBuffer(bytes: [0xCA, 0xFE])
        properties.userProperties = [UserProperty("k", "v"), UserProperty("k", "v")]  // repeats allowed, order kept
        properties.subscriptionIdentifiers = [1, 127, 128, 16_384, 268_435_455]   // several on a server PUBLISH
        properties.contentType = "application/json"
        for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
            assertRoundTrip(.publish(PublishPacket(topic: "a", payload: buffer("{}"), qos: qos, packetID: qos == .atMostOnce ? 0 : 7,
                                                   properties: properties)), .v5)
        }
    }

    func testPublishV5EmptyTopicWithTopicAlias() {
        // An empty topic name is allowed when a Topic Alias is present (spec 3.3.2.3.4).
        var properties = Properties()
        properties.topicAlias = 1
        assertRoundTrip(.publish(PublishPacket(topic: "", payload: buffer("x"), properties: properties)), .v5)
    }

    func testPublishV3DropsProperties() {
        var properties = Properties()
        properties.messageExpiryInterval = 5
        let rich = PublishPacket(topic: "t", payload: buffer("p"), properties: properties)
        let plain = PublishPacket(topic: "t", payload: buffer("p"))
        XCTAssertEqual(encode(.publish(rich), .v3_1_1), hex("30 04 00 01 74 70"))
        assertRoundTrip(.publish(rich), .v3_1_1, expected: .publish(plain))
        XCTAssertEqual(PacketEncoder.publishPacketSize(rich, version: .v3_1_1), 6)
    }

    // MARK: PUBACK, PUBREC, PUBREL, PUBCOMP

    private static let ackKinds: [(String, UInt8, (PubAckPacket) -> MQTTPacket)] = [
        ("PUBACK", 0x40, MQTTPacket.puback), ("PUBREC", 0x50, MQTTPacket.pubrec),
        ("PUBREL", 0x62, MQTTPacket.pubrel), ("PUBCOMP", 0x70, MQTTPacket.pubcomp),
    ]

    func testAcksEveryVersion() {
        for version in allVersions {
            for (name, first, make) in Self.ackKinds {
                for id: UInt16 in [1, 0x1234, 0xFFFF] {
                    let bytes = assertRoundTrip(make(PubAckPacket(packetID: id)), version)
                    XCTAssertEqual(bytes, [first, 0x02] + u16(id), name)
                }
            }
        }
    }

    func testAckV5ShortFormByteExact() {
        // v5 success with no properties omits reason code and property length (spec 3.4.2.1).
        XCTAssertEqual(encode(.puback(PubAckPacket(packetID: 1)), .v5), hex("40 02 00 01"))
        XCTAssertEqual(encode(.pubrel(PubAckPacket(packetID: 1)), .v5), hex("62 02 00 01"))
        // A reason code without properties: remaining length 3.
        XCTAssertEqual(encode(.puback(PubAckPacket(packetID: 1, reasonCode: .noMatchingSubscribers)), .v5), hex("40 03 00 01 10"))
        // Properties force the long form even for Success.
        var properties = Properties()
        properties.reasonString = "ok"
        XCTAssertEqual(encode(.pubcomp(PubAckPacket(packetID: 2, properties: properties)), .v5), hex("70 09 00 02 00 05 1f 00 02 6f 6b"))
    }

    func testAcksV5WithReasonCodesAndProperties() {
        let reasons: [ReasonCode] = [.success, .noMatchingSubscribers, .unspecifiedError, .implementationSpecificError, .notAuthorized,
                                     .topicNameInvalid, .packetIdentifierInUse, .packetIdentifierNotFound, .quotaExceeded, .payloadFormatInvalid]
        var properties = Properties()
        properties.reasonString = "quota"
        properties.userProperties = [UserProperty("trace", "42")]
        for (_, _, make) in Self.ackKinds {
            for reason in reasons {
                assertRoundTrip(make(PubAckPacket(packetID: 9, reasonCode: reason)), .v5)
                assertRoundTrip(make(PubAckPacket(packetID: 9, reasonCode: reason, properties: properties)), .v5)
            }
        }
    }

    func testAckV5DecodesExplicitSuccessWithEmptyProperties() {
        // The long forms of a plain success decode to the same value as the short form.
        assertDecodes(hex("40 03 00 05 00"), version: .v5, to: .puback(PubAckPacket(packetID: 5)))
        assertDecodes(hex("50 04 00 05 00 00"), version: .v5, to: .pubrec(PubAckPacket(packetID: 5)))
    }

    func testAckV3DropsReasonCode() {
        var properties = Properties()
        properties.reasonString = "nope"
        let ack = PubAckPacket(packetID: 3, reasonCode: .quotaExceeded, properties: properties)
        XCTAssertEqual(encode(.pubrec(ack), .v3_1_1), hex("50 02 00 03"))
        assertRoundTrip(.pubrec(ack), .v3_1, expected: .pubrec(PubAckPacket(packetID: 3)))
    }

    // MARK: SUBSCRIBE

    func testSubscribeV5EveryOptionCombination() {
        var subscriptions: [TopicSubscription] = []
        for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
            for noLocal in [false, true] {
                for retainAsPublished in [false, true] {
                    for handling in [RetainHandling.sendOnSubscribe, .sendOnNewSubscribe, .doNotSend] {
                        let options = SubscriptionOptions(qos: qos, noLocal: noLocal, retainAsPublished: retainAsPublished, retainHandling: handling)
                        let subscription = TopicSubscription(filter: "f/\(subscriptions.count)/+", options: options)
                        subscriptions.append(subscription)
                        let bytes = assertRoundTrip(.subscribe(SubscribePacket(packetID: 1, subscriptions: [subscription])), .v5)
                        // The options byte (spec 3.8.3.1): QoS bits 0-1, No Local bit 2, RAP bit 3, Retain Handling bits 4-5.
                        XCTAssertEqual(bytes.last, qos.rawValue | (noLocal ? 4 : 0) | (retainAsPublished ? 8 : 0) | (handling.rawValue << 4))
                    }
                }
            }
        }
        XCTAssertEqual(subscriptions.count, 36)
        assertRoundTrip(.subscribe(SubscribePacket(packetID: 0xFFFF, subscriptions: subscriptions)), .v5)
    }

    func testSubscribeV5WithProperties() {
        var properties = Properties()
        properties.subscriptionIdentifiers = [268_435_455]
        properties.userProperties = [UserProperty("a", "b")]
        assertRoundTrip(.subscribe(SubscribePacket(packetID: 2, subscriptions: [TopicSubscription(filter: "#")], properties: properties)), .v5)
    }

    func testSubscribeV3EveryQoS() {
        for version in [ProtocolVersion.v3_1, .v3_1_1] {
            let subscriptions = [QoS.atMostOnce, .atLeastOnce, .exactlyOnce].map {
                TopicSubscription(filter: "sensors/\($0.rawValue)/#", options: SubscriptionOptions(qos: $0))
            }
            for subscription in subscriptions {
                assertRoundTrip(.subscribe(SubscribePacket(packetID: 10, subscriptions: [subscription])), version)
            }
            assertRoundTrip(.subscribe(SubscribePacket(packetID: 10, subscriptions: subscriptions)), version)
        }
    }

    func testSubscribeByteExact() {
        XCTAssertEqual(encode(.subscribe(SubscribePacket(packetID: 1, subscriptions: [TopicSubscription(filter: "a/+", options: .init(qos: .atLeastOnce))])), .v3_1_1),
                       hex("82 08 00 01 00 03 61 2f 2b 01"))
        let options = SubscriptionOptions(qos: .exactlyOnce, noLocal: true, retainAsPublished: true, retainHandling: .doNotSend)
        XCTAssertEqual(encode(.subscribe(SubscribePacket(packetID: 1, subscriptions: [TopicSubscription(filter: "a", options: options)])), .v5),
                       hex("82 07 00 01 00 00 01 61 2e"))
    }

    func testSubscribeV3KeepsOnlyQoS() {
        let options = SubscriptionOptions(qos: .atLeastOnce, noLocal: true, retainAsPublished: true, retainHandling: .doNotSend)
        var properties = Properties()
        properties.subscriptionIdentifiers = [5]
        let packet = SubscribePacket(packetID: 4, subscriptions: [TopicSubscription(filter: "x", options: options)], properties: properties)
        XCTAssertEqual(encode(.subscribe(packet), .v3_1_1), hex("82 06 00 04 00 01 78 01"))
        assertRoundTrip(.subscribe(packet), .v3_1_1,
                        expected: .subscribe(SubscribePacket(packetID: 4, subscriptions: [TopicSubscription(filter: "x", options: .init(qos: .atLeastOnce))])))
    }

    // MARK: SUBACK

    func testSubAckV3() {
        for version in [ProtocolVersion.v3_1, .v3_1_1] {
            assertRoundTrip(.suback(SubAckPacket(packetID: 1, reasonCodes: [.grantedQoS0, .grantedQoS1, .grantedQoS2, .unspecifiedError])), version)
        }
    }

    func testSubAckV3FailureWrittenAs0x80() {
        // 3.1.1 knows only 0x00, 0x01, 0x02 and 0x80 Failure [3.1.1:MQTT-3.9.3-2]: any v5 failure code becomes 0x80.
        let packet = SubAckPacket(packetID: 1, reasonCodes: [.notAuthorized, .grantedQoS1, .topicFilterInvalid, .quotaExceeded])
        XCTAssertEqual(encode(.suback(packet), .v3_1_1), hex("90 06 00 01 80 01 80 80"))
        assertRoundTrip(.suback(packet), .v3_1_1,
                        expected: .suback(SubAckPacket(packetID: 1, reasonCodes: [.unspecifiedError, .grantedQoS1, .unspecifiedError, .unspecifiedError])))
    }

    func testSubAckV5() {
        let codes: [ReasonCode] = [.grantedQoS0, .grantedQoS1, .grantedQoS2, .unspecifiedError, .implementationSpecificError, .notAuthorized,
                                   .topicFilterInvalid, .packetIdentifierInUse, .quotaExceeded, .sharedSubscriptionsNotSupported,
                                   .subscriptionIdentifiersNotSupported, .wildcardSubscriptionsNotSupported]
        XCTAssertEqual(encode(.suback(SubAckPacket(packetID: 1, reasonCodes: [.notAuthorized])), .v5), hex("90 04 00 01 00 87"))
        assertRoundTrip(.suback(SubAckPacket(packetID: 77, reasonCodes: codes)), .v5)
        var properties = Properties()
        properties.reasonString = "partly"
        properties.userProperties = [UserProperty("u", "p")]
        assertRoundTrip(.suback(SubAckPacket(packetID: 77, reasonCodes: codes, properties: properties)), .v5)
    }

    // MARK: UNSUBSCRIBE, UNSUBACK

    func testUnsubscribeEveryVersion() {
        for version in allVersions {
            let bytes = assertRoundTrip(.unsubscribe(UnsubscribePacket(packetID: 3, filters: ["a/b"])), version)
            XCTAssertEqual(bytes[0], 0xA2)
            assertRoundTrip(.unsubscribe(UnsubscribePacket(packetID: 3, filters: ["a/b", "#", "+/x", "$share/g/t", "ü"])), version)
        }
        XCTAssertEqual(encode(.unsubscribe(UnsubscribePacket(packetID: 3, filters: ["a"])), .v3_1_1), hex("a2 05 00 03 00 01 61"))
        XCTAssertEqual(encode(.unsubscribe(UnsubscribePacket(packetID: 3, filters: ["a"])), .v5), hex("a2 06 00 03 00 00 01 61"))
    }

    func testUnsubscribeV5WithProperties() {
        var properties = Properties()
        properties.userProperties = [UserProperty("why", "done")]
        assertRoundTrip(.unsubscribe(UnsubscribePacket(packetID: 3, filters: ["a"], properties: properties)), .v5)
    }

    func testUnsubAckEveryVersion() {
        for version in [ProtocolVersion.v3_1, .v3_1_1] {
            let bytes = assertRoundTrip(.unsuback(UnsubAckPacket(packetID: 0x0102)), version)
            XCTAssertEqual(bytes, hex("b0 02 01 02"))
            // v3 UNSUBACK has no payload: v5 codes are dropped.
            assertRoundTrip(.unsuback(UnsubAckPacket(packetID: 5, reasonCodes: [.success])), version, expected: .unsuback(UnsubAckPacket(packetID: 5)))
        }
        XCTAssertEqual(encode(.unsuback(UnsubAckPacket(packetID: 1, reasonCodes: [.success, .noSubscriptionExisted])), .v5),
                       hex("b0 05 00 01 00 00 11"))
        var properties = Properties()
        properties.reasonString = "r"
        properties.userProperties = [UserProperty("a", "b")]
        assertRoundTrip(.unsuback(UnsubAckPacket(packetID: 1, reasonCodes: [.success, .noSubscriptionExisted, .notAuthorized,
                                                                             .topicFilterInvalid, .unspecifiedError])), .v5)
        assertRoundTrip(.unsuback(UnsubAckPacket(packetID: 1, reasonCodes: [.success], properties: properties)), .v5)
    }

    // MARK: PINGREQ, PINGRESP

    func testPingEveryVersion() {
        for version in allVersions {
            XCTAssertEqual(assertRoundTrip(.pingreq, version), hex("c0 00"))
            XCTAssertEqual(assertRoundTrip(.pingresp, version), hex("d0 00"))
        }
    }

    // MARK: DISCONNECT

    func testDisconnectV3() {
        for version in [ProtocolVersion.v3_1, .v3_1_1] {
            XCTAssertEqual(assertRoundTrip(.disconnect(DisconnectPacket()), version), hex("e0 00"))
            // A v5 reason code cannot be carried: v3 DISCONNECT has no variable header.
            var properties = Properties()
            properties.reasonString = "bye"
            XCTAssertEqual(encode(.disconnect(DisconnectPacket(reasonCode: .serverShuttingDown, properties: properties)), version), hex("e0 00"))
        }
    }

    func testDisconnectV5() {
        XCTAssertEqual(assertRoundTrip(.disconnect(DisconnectPacket()), .v5), hex("e0 00"))
        XCTAssertEqual(assertRoundTrip(.disconnect(DisconnectPacket(reasonCode: .disconnectWithWillMessage)), .v5), hex("e0 01 04"))
        for reason in [ReasonCode.normalDisconnection, .disconnectWithWillMessage, .unspecifiedError, .malformedPacket, .protocolError,
                       .serverShuttingDown, .keepAliveTimeout, .sessionTakenOver, .topicAliasInvalid, .packetTooLarge,
                       .receiveMaximumExceeded, .useAnotherServer, .maximumConnectTime] {
            assertRoundTrip(.disconnect(DisconnectPacket(reasonCode: reason)), .v5)
        }
        var properties = Properties()
        properties.sessionExpiryInterval = 0
        properties.reasonString = "moving"
        properties.serverReference = "b.example"
        properties.userProperties = [UserProperty("x", "1")]
        assertRoundTrip(.disconnect(DisconnectPacket(reasonCode: .serverMoved, properties: properties)), .v5)
        assertRoundTrip(.disconnect(DisconnectPacket(reasonCode: .normalDisconnection, properties: properties)), .v5)
        // A reason code without a property length (remaining length 1) decodes with no properties.
        assertDecodes(hex("e0 01 8e"), version: .v5, to: .disconnect(DisconnectPacket(reasonCode: .sessionTakenOver)))
    }

    // MARK: AUTH (v5 only)

    func testAuthV5() {
        XCTAssertEqual(assertRoundTrip(.auth(AuthPacket()), .v5), hex("f0 00"))
        XCTAssertEqual(assertRoundTrip(.auth(AuthPacket(reasonCode: .continueAuthentication)), .v5), hex("f0 01 18"))
        var properties = Properties()
        properties.authenticationMethod = "SCRAM-SHA-1"
        properties.authenticationData = ByteBuffer(bytes: [0x6e, 0x2c, 0x2c, 0x00, 0xFF])
        properties.reasonString = "step 2"
        properties.userProperties = [UserProperty("k", "v")]
        for reason in [ReasonCode.success, .continueAuthentication, .reAuthenticate] {
            assertRoundTrip(.auth(AuthPacket(reasonCode: reason, properties: properties)), .v5)
        }
    }

    // MARK: Encoder plumbing

    func testEncodeIntoAppendsToExistingBytes() {
        var out = ByteBuffer(bytes: [0xAA])
        PacketEncoder.encode(.pingreq, version: .v5, into: &out)
        PacketEncoder.encode(.puback(PubAckPacket(packetID: 1)), version: .v5, into: &out)
        XCTAssertEqual(bytes(of: out), hex("aa c0 00 40 02 00 01"))
    }
}
