import Foundation
import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// CONNACK as the answer to CONNECT: 0x00 when accepted and always the broker's first packet;
/// when refused (authentication, retain, unsupported authentication method) a code from the
/// CONNACK table, Session Present 0, the close, and nothing the client sent afterwards processed;
/// a second connection with the same id closes the first. Also what the CONNACK announces.
final class ConnectAcknowledgementConformanceTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker() }

    /// The reason codes the spec allows in a CONNACK (v5 table 3-1).
    private let connAckReasonCodes: Set<UInt8> = [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C,
                                                 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F]

    // [MQTT-3.1.4-5] [MQTT-3.2.0-1] [3.1.1:MQTT-3.1.4-4] [3.1.1:MQTT-3.2.0-1]
    func testAcceptedConnectGetsConnAckSuccessFirst() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let id = "first\(version.rawValue)"
            // A stored session with messages waiting, and packets pipelined behind the CONNECT:
            // the CONNACK (0x00) still comes before anything else.
            let (stored, _) = try await connectAccepted(broker, id, version: version, cleanStart: false, sessionExpiry: version == .v5 ? 60 : nil)
            try await subscribe(stored, "\(id)/t", qos: .atLeastOnce)
            try await disconnect(stored)
            let (publisher, _) = try await connectAccepted(broker, "\(id)-pub")
            for index in 0..<3 { try await publish(publisher, "\(id)/t", "q\(index)", qos: .atLeastOnce, packetID: UInt16(index + 1)) }
            let raw = try await RawConnection.connect(broker)
            let props: [UInt8] = version == .v5 ? [0x00] : []
            try await raw.send(connectBytes(id, version, cleanStart: false, properties: version == .v5 ? sessionExpiry(60) : .none)
                               + [0xC0, 0x00] + rawPacket(0x82, [0, 9] + props + mqttString("\(id)/u") + [0x01]))
            let connack = await raw.readPacket() ?? []
            XCTAssertEqual(connack.first, 0x20, "CONNACK first (\(version)): \(hex(connack))")
            XCTAssertEqual(connack.count > 3 ? connack[3] : 0xFF, 0x00, "reason / return code 0x00 (\(version))")
            if version == .v3_1_1 { XCTAssertEqual(connack, [0x20, 0x02, 0x01, 0x00]) }
            var rest: [UInt8] = []
            for _ in 0..<5 { if let packet = await raw.readPacket() { rest.append(packet[0]) } }
            XCTAssertFalse(rest.contains(0x20), "one CONNACK only (\(version)): \(hex(rest))")
            XCTAssertEqual(rest.filter { $0 & 0xF0 == 0x30 }.count, 3, "the queued messages follow (\(version)): \(hex(rest))")
            XCTAssertTrue(rest.contains(0xD0) && rest.contains(0x90), "PINGRESP and SUBACK follow (\(version)): \(hex(rest))")
            await raw.close()
        }
    }

    // [MQTT-3.2.0-1] [3.1.1:MQTT-3.2.0-1]
    func testMalformedPacketPipelinedBehindConnectNeverPrecedesConnAck() async throws {
        // CONNECT and a malformed PUBLISH (QoS 3) in one write, for a new and for a stored session:
        // the broker may close at once, but whatever it sends starts with the CONNACK.
        for version in [ProtocolVersion.v3_1_1, .v5] {
            for resume in [false, true] {
                let id = "piped-bad\(version.rawValue)\(resume)"
                if resume {
                    let (stored, _) = try await connectAccepted(broker, id, version: version, cleanStart: false,
                                                                sessionExpiry: version == .v5 ? 60 : nil)
                    try await disconnect(stored)
                }
                let props: [UInt8] = version == .v5 ? [0x00] : []
                let bytes = connectBytes(id, version, cleanStart: !resume, properties: version == .v5 && resume ? sessionExpiry(60) : .none)
                    + rawPacket(0x36, mqttString("a") + [0, 1] + props + [0x78])
                let (received, closed) = try await sectionASend(broker, bytes)
                XCTAssertTrue(closed, "\(id)")
                if !received.isEmpty {
                    XCTAssertEqual(received.first, 0x20, "CONNACK first (\(id)): \(hex(received))")
                    XCTAssertEqual(received.count > 3 ? received[3] : 0xFF, 0x00, "\(id): \(hex(received))")
                    let rest = Array(received.dropFirst(RawConnection.completePacketLength(received) ?? 0))
                    XCTAssertTrue(rest.isEmpty || (version == .v5 && rest.first == 0xE0 && rest.count > 2 && rest[2] == 0x81),
                                  "after the CONNACK only DISCONNECT 0x81 (\(id)): \(hex(rest))")
                }
            }
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.1.4-2] [MQTT-3.2.2-6] [MQTT-3.2.2-7] [MQTT-3.2.2-8] [3.1.1:MQTT-3.2.2-4] [3.1.1:MQTT-3.2.2-5]
    func testFailedAuthenticationIsRefusedWithSessionPresentZeroAndClosed() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("secA-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let passwords = directory.appendingPathComponent("passwd")
        try "ciel:\(PasswordFile.Hash.make(password: "secret").encoded)\n".write(to: passwords, atomically: true, encoding: .utf8)
        broker = try startBroker(allowAnonymous: false) { $0.security.passwordFile = passwords.path; $0.authFailureLimit = 0 }
        // A stored session for the id first (good password).
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let (good, connack) = try await broker.connect("auth\(version.rawValue)", version: version, cleanStart: false, username: "ciel",
                                                           password: Array("secret".utf8), properties: version == .v5 ? sessionExpiry(60) : .none)
            XCTAssertEqual(connack.reasonCode, .success, "good password accepted (\(version))")
            try await disconnect(good)
        }
        let cases: [(String, String?, [UInt8]?, UInt8, UInt8)] = [
            // name, user, password, v5 reason, 3.1.1 return code: "not authorised" for all, as
            // Mosquitto answers (01-connect-uname-password-denied)
            ("wrong password", "ciel", Array("nope".utf8), 0x87, 0x05),
            ("unknown user", "nobody", Array("secret".utf8), 0x87, 0x05),
            ("empty password", "ciel", [], 0x87, 0x05),
            ("anonymous", nil, nil, 0x87, 0x05),
        ]
        for (name, user, password, reason, returnCode) in cases {
            for version in [ProtocolVersion.v3_1_1, .v5] {
                let (client, connack) = try await broker.connect("auth\(version.rawValue)", version: version, cleanStart: false,
                                                                 username: user, password: password,
                                                                 properties: version == .v5 ? sessionExpiry(60) : .none)
                XCTAssertFalse(connack.sessionPresent, "a refusal never reports a session (\(name), \(version))")
                if version == .v5 {
                    XCTAssertEqual(connack.reasonCode.rawValue, reason, "\(name)")
                    XCTAssertTrue(connAckReasonCodes.contains(connack.reasonCode.rawValue))
                } else {
                    XCTAssertEqual(connack.returnCode?.rawValue ?? connack.reasonCode.rawValue, returnCode, "\(name) (3.1.1)")
                }
                await expectDisconnect(client, reason: nil, "after the refusing CONNACK (\(name), \(version))")
            }
        }
        XCTAssertEqual(broker.broker.connectedClientCount, 0)
    }

    // [MQTT-3.1.4-2] [MQTT-3.2.2-7] [MQTT-3.2.2-8]
    func testUnsupportedAuthenticationMethodIsRefused() async throws {
        // Midge has no enhanced authentication: any Authentication Method gets 0x8C and the close.
        for method in ["SCRAM-SHA-1", "GS2-KRB5", ""] {
            var properties = Properties()
            properties.authenticationMethod = method
            properties.authenticationData = ByteBuffer(bytes: [1, 2, 3])
            let (client, connack) = try await broker.connect("authm", properties: properties)
            XCTAssertEqual(connack.reasonCode, .badAuthenticationMethod, "'\(method)'")
            XCTAssertFalse(connack.sessionPresent)
            XCTAssertNil(connack.properties.authenticationMethod)
            await expectDisconnect(client, reason: nil, "after CONNACK 0x8C")
        }
        XCTAssertNil(broker.broker.session(clientID: "authm"))
    }

    // [MQTT-3.1.4-6] [3.1.1:MQTT-3.1.4-5]
    func testNothingAfterARefusedConnectIsProcessed() async throws {
        broker = try startBroker(allowAnonymous: false)
        // A refused anonymous CONNECT followed, in the same write, by a retained PUBLISH, a
        // SUBSCRIBE and a PINGREQ: the broker sends the refusing CONNACK only, and nothing was published.
        let (watcher, _) = try await broker.connect("watcher", username: "someone")
        _ = watcher
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let props: [UInt8] = version == .v5 ? [0x00] : []
            let bytes = connectBytes("refused\(version.rawValue)", version)
                + rawPacket(0x31, mqttString("refused/t") + props + Array("sneaky".utf8))
                + rawPacket(0x82, [0, 1] + props + mqttString("#") + [0x00])
                + [0xC0, 0x00]
            let (received, closed) = try await sectionASend(broker, bytes)
            XCTAssertTrue(closed)
            let connackLength = RawConnection.completePacketLength(received) ?? 0
            XCTAssertEqual(received.first, 0x20, "\(version): \(hex(received))")
            XCTAssertEqual(received.count, connackLength, "only the CONNACK (\(version)): \(hex(received))")
        }
        XCTAssertTrue(broker.broker.retained.matching("refused/t").isEmpty, "the PUBLISH after a refused CONNECT was not processed")
    }

    // [MQTT-3.1.4-3] [3.1.1:MQTT-3.1.4-2]
    func testSameClientIdClosesTheExistingConnection() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let id = "taken\(version.rawValue)"
            let (old, _) = try await connectAccepted(broker, id, version: version)
            let (new, _) = try await connectAccepted(broker, id, version: version)
            // v5: DISCONNECT 0x8E (Session taken over) then the close; 3.1.1: the close.
            await expectDisconnect(old, reason: version == .v5 ? .sessionTakenOver : nil, "old connection (\(version))")
            XCTAssertEqual(broker.broker.connectedClientCount, 1)
            try await subscribe(new, "\(id)/t", qos: .atLeastOnce)
            try await disconnect(new)
        }
    }

    // [MQTT-3.2.2-9] [MQTT-3.2.2-10] [MQTT-3.2.2-12]
    func testBrokerSupportsEveryQoSAndSaysNothingAboutIt() async throws {
        // Midge supports QoS 1 and 2, so CONNACK carries no Maximum QoS, every requested QoS is
        // granted, and a will of QoS 2 is accepted (and published at QoS 2).
        let (watch, connack) = try await connectAccepted(broker, "qos-watch")
        XCTAssertNil(connack.properties.maximumQoS)
        try await watch.send(.subscribe(SubscribePacket(packetID: 3, subscriptions: [QoS.atMostOnce, .atLeastOnce, .exactlyOnce].map {
            TopicSubscription(filter: "qos/\($0.rawValue)", options: SubscriptionOptions(qos: $0))
        })))
        guard case .suback(let suback)? = await expectPacket(watch, "SUBACK") else { return XCTFail("SUBACK expected") }
        XCTAssertEqual(suback.reasonCodes, [.grantedQoS0, .grantedQoS1, .grantedQoS2])
        let (willer, accepted) = try await connectAccepted(broker, "qos-will", will: Will(topic: "qos/2", payload: ByteBuffer(text: "w"), qos: .exactlyOnce))
        XCTAssertEqual(accepted.reasonCode, .success)
        await willer.close()
        let will = await expectPublish(watch)
        XCTAssertEqual(will?.qos, .exactlyOnce)
    }

    // [MQTT-3.2.2-13] [MQTT-3.2.2-7] [MQTT-3.2.2-8]
    func testWillRetainRefusedWhenRetainIsUnavailable() async throws {
        broker = try startBroker { $0.retainAvailable = false }
        let (probe, connack) = try await connectAccepted(broker, "retain-probe")
        XCTAssertEqual(connack.properties.retainAvailable, 0, "CONNACK says Retain Available 0")
        try await disconnect(probe)
        let retained = Will(topic: "r/w", payload: ByteBuffer(text: "w"), retain: true)
        let (client, refused) = try await broker.connect("retain-will", will: retained)
        XCTAssertEqual(refused.reasonCode, .retainNotSupported)
        XCTAssertFalse(refused.sessionPresent)
        await expectDisconnect(client, reason: nil, "after CONNACK 0x9A")
        // A will without retain is fine.
        let (plain, ok) = try await connectAccepted(broker, "retain-will", will: Will(topic: "r/w", payload: ByteBuffer(text: "w")))
        XCTAssertEqual(ok.reasonCode, .success)
        try await disconnect(plain)
    }

    // [MQTT-3.2.2-19] [MQTT-3.2.2-20]
    func testRefusingConnAckFitsTheClientsMaximumPacketSize() async throws {
        broker = try startBroker(allowAnonymous: false)
        // Even with room, the refusal carries no Reason String (as Mosquitto's: the reason is logged).
        var roomy = Properties()
        roomy.maximumPacketSize = 1000
        let (_, explained) = try await broker.connect("explained", properties: roomy)
        XCTAssertEqual(explained.reasonCode, .notAuthorized)
        XCTAssertNil(explained.properties.reasonString)
        // With a Maximum Packet Size of 8 the CONNACK must fit in 8 bytes: no Reason String, no User Property.
        var properties = Properties()
        properties.maximumPacketSize = 8
        let raw = try await RawConnection.connect(broker)
        try await raw.send(connectBytes("tight", .v5, properties: properties))
        let (bytes, closed) = await raw.readUntilClose(timeout: 4)
        XCTAssertTrue(closed)
        XCTAssertEqual(bytes, [0x20, 0x03, 0x00, 0x87, 0x00], "CONNACK within 8 bytes: \(hex(bytes))")
        // Below 5 bytes no CONNACK fits: the connection is just closed.
        properties.maximumPacketSize = 4
        let tiny = try await RawConnection.connect(broker)
        try await tiny.send(connectBytes("tiny", .v5, properties: properties))
        let (none, tinyClosed) = await tiny.readUntilClose(timeout: 4)
        XCTAssertTrue(tinyClosed)
        XCTAssertEqual(none, [], "nothing fits in 4 bytes: \(hex(none))")
    }
    /// CONNACK tells a v5 client the broker's limits (Receive Maximum, Topic Alias Maximum, Maximum
    /// Packet Size, Server Keep Alive), leaves out the features that are simply available, and the
    /// broker then holds the client to what it announced.
    func testConnAckAnnouncesTheConfiguredLimitsAndTheBrokerEnforcesThem() async throws {
        broker = try startBroker { configuration in
            configuration.maxInflightMessages = 5
            configuration.maxPacketSize = 200
            configuration.maxKeepalive = 1
            var security = configuration.security
            security.allowAnonymous = true
            configuration.listeners = [ListenerConfiguration(port: 0, bindAddress: "127.0.0.1", maxTopicAlias: 3, security: security)]
            configuration.perListenerSettings = true
        }
        let start = Date()
        let (client, connack) = try await connectAccepted(broker, "limits", keepAlive: 60)
        XCTAssertEqual(connack.properties.receiveMaximum, 5)
        XCTAssertEqual(connack.properties.topicAliasMaximum, 3)
        XCTAssertEqual(connack.properties.maximumPacketSize, 200)
        XCTAssertEqual(connack.properties.serverKeepAlive, 1)
        for absent in [connack.properties.maximumQoS, connack.properties.retainAvailable, connack.properties.wildcardSubscriptionAvailable,
                       connack.properties.subscriptionIdentifierAvailable, connack.properties.sharedSubscriptionAvailable] {
            XCTAssertNil(absent, "available features are not announced")
        }
        // Available indeed: wildcard, shared and identified subscriptions are granted.
        var properties = Properties()
        properties.subscriptionIdentifiers = [7]
        try await client.send(.subscribe(SubscribePacket(packetID: 1, subscriptions: [
            TopicSubscription(filter: "lim/#", options: SubscriptionOptions(qos: .atLeastOnce)),
            TopicSubscription(filter: "$share/g/lim/+", options: SubscriptionOptions(qos: .atLeastOnce)),
        ], properties: properties)))
        guard case .suback(let suback)? = await expectPacket(client, "SUBACK") else { return XCTFail("SUBACK expected") }
        XCTAssertEqual(suback.reasonCodes, [.grantedQoS1, .grantedQoS1])
        // The Server Keep Alive of 1 s is what the broker applies: closed about 1.5 s after the CONNECT.
        let packets = await expectClose(client, within: 4)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 1.4)
        XCTAssertLessThan(Date().timeIntervalSince(start), 3.0)
        if case .disconnect(let disconnect)? = packets.last { XCTAssertEqual(disconnect.reasonCode, .keepAliveTimeout) }
        // Topic Alias above the announced maximum: DISCONNECT 0x94; a packet above 200 bytes: 0x95.
        var alias = Properties()
        alias.topicAlias = 4
        let (aliasClient, _) = try await connectAccepted(broker, "limits-alias", keepAlive: 0)
        try await aliasClient.send(.publish(PublishPacket(topic: "lim/a", payload: ByteBuffer(text: "x"), properties: alias)))
        await expectDisconnect(aliasClient, reason: .topicAliasInvalid)
        let (bigClient, _) = try await connectAccepted(broker, "limits-big", keepAlive: 0)
        try await bigClient.send(.publish(PublishPacket(topic: "lim/a", payload: ByteBuffer(bytes: [UInt8](repeating: 1, count: 250)))))
        await expectDisconnect(bigClient, reason: .packetTooLarge)
    }
}
