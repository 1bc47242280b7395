import Foundation
import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// What a v5 client asks for in its CONNECT properties and the broker must obey towards it:
/// Maximum Packet Size (nothing larger is sent; a too-large message is dropped as if sent),
/// Topic Alias Maximum (no alias above it, none when absent), Request Response Information 0
/// (no Response Information) and Request Problem Information 0 (no Reason String or User Property
/// except on PUBLISH, CONNACK and DISCONNECT).
final class ConnectRequestedLimitsConformanceTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker() }

    private func properties(_ build: (inout Properties) -> Void) -> Properties {
        var properties = Properties()
        build(&properties)
        return properties
    }

    // [MQTT-3.1.2-24] [MQTT-3.1.2-25]
    func testNothingLargerThanTheClientsMaximumPacketSizeIsSent() async throws {
        let limit: UInt32 = 64
        let (client, _) = try await connectAccepted(broker, "small", cleanStart: false, sessionExpiry: 60,
                                                    properties: properties { $0.maximumPacketSize = limit })
        try await subscribe(client, "small/#", qos: .atLeastOnce)
        let (publisher, _) = try await connectAccepted(broker, "small-pub")
        let big = String(repeating: "x", count: 100)
        // Retained big message first: not sent on SUBSCRIBE either.
        try await publish(publisher, "small/retained", big, qos: .atLeastOnce, retain: true, packetID: 1)
        try await subscribe(client, "small/retained", qos: .atLeastOnce, packetID: 2)
        for (index, qos) in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce].enumerated() {
            try await publish(publisher, "small/t", big, qos: qos, packetID: UInt16(10 + index))
        }
        try await publish(publisher, "small/t", "fits", qos: .atLeastOnce, packetID: 20)
        // Only the small one arrives: the big ones were dropped, and the flow goes on as if they were sent.
        guard let message = await expectPublish(client) else { return }
        XCTAssertEqual(message.payload.text, "fits")
        try await acknowledge(message, on: client)
        await expectNothing(client, for: 0.3, "nothing above \(limit) bytes")
        // Not resent on reconnection either: treated as delivered.
        await client.close()
        let (again, connack) = try await connectAccepted(broker, "small", cleanStart: false, sessionExpiry: 60,
                                                         properties: properties { $0.maximumPacketSize = limit })
        XCTAssertTrue(connack.sessionPresent)
        await expectNothing(again, for: 0.3, "dropped messages are not redelivered")
        // Exactly at the limit: sent. PUBLISH QoS 0 "small/t" with n bytes: 2 + (2 + 7) + 1 + n = limit.
        try await publish(publisher, "small/t", String(repeating: "y", count: Int(limit) - 12), qos: .atMostOnce)
        let exact = await expectPublish(again)
        XCTAssertEqual(exact?.payload.readableBytes, Int(limit) - 12, "a packet of exactly Maximum Packet Size is allowed")
        try await disconnect(again)
    }

    // [MQTT-3.1.2-24] [MQTT-3.1.2-25]
    func testMessagesQueuedOfflineObeyTheNewConnectionsMaximumPacketSize() async throws {
        // Queued while the client was away (it had no limit then); it comes back with a limit of 64:
        // the big queued message is dropped, the small one behind it delivered.
        let (away, _) = try await connectAccepted(broker, "queued-small", cleanStart: false, sessionExpiry: 60)
        try await subscribe(away, "queued/t", qos: .atLeastOnce)
        try await disconnect(away)
        let (publisher, _) = try await connectAccepted(broker, "queued-small-pub")
        try await publish(publisher, "queued/t", String(repeating: "z", count: 100), qos: .atLeastOnce, packetID: 1)
        try await publish(publisher, "queued/t", "small", qos: .atLeastOnce, packetID: 2)
        let (back, connack) = try await connectAccepted(broker, "queued-small", cleanStart: false, sessionExpiry: 60,
                                                        properties: properties { $0.maximumPacketSize = 64 })
        XCTAssertTrue(connack.sessionPresent)
        let message = await expectPublish(back)
        XCTAssertEqual(message?.payload.text, "small")
        if let message { try await acknowledge(message, on: back) }
        await expectNothing(back, for: 0.3, "the big queued message is never sent")
        try await disconnect(back)
    }

    // [MQTT-3.1.2-24]
    func testBrokersDisconnectFitsTheClientsMaximumPacketSize() async throws {
        // An error DISCONNECT is 4 bytes, without properties (no Reason String, as Mosquitto), so
        // it fits any Maximum Packet Size that the CONNACK fitted.
        for maximum: UInt32 in [16, 1000] {
            let (client, _) = try await connectAccepted(broker, "disconnect-\(maximum)", properties: properties { $0.maximumPacketSize = maximum })
            try await client.send(bytes: rawPacket(0x36, mqttString("a") + [0, 1, 0, 0x78]))   // PUBLISH QoS 3
            let packets = await expectClose(client)
            XCTAssertEqual(packets, [.disconnect(DisconnectPacket(reasonCode: .malformedPacket))], "DISCONNECT 0x81 without properties")
        }
    }

    // [MQTT-3.1.2-24]
    func testConnAckLargerThanTheClientsMaximumPacketSizeIsNotSent() async throws {
        // A v5 CONNACK is at least 5 bytes: a client allowing fewer is closed without one, as
        // Mosquitto does (12-prop-maximum-packet-size-connect); so is one whose maximum the CONNACK's
        // properties (here Topic Alias Maximum and Assigned Client Identifier) would exceed.
        for (maximum, id) in [(UInt32(2), "tiny-max"), (4, "tiny-max4"), (12, "")] {
            let (received, closed) = try await sectionASend(broker, rawConnect(properties: [0x27] + withUnsafeBytes(of: maximum.bigEndian, Array.init),
                                                                             payload: mqttString(id)))
            XCTAssertTrue(closed, "maximum \(maximum)")
            XCTAssertEqual(received, [], "maximum \(maximum): nothing may exceed it, got \(hex(received))")
        }
        XCTAssertEqual(broker.broker.connectedClientCount, 0)
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.1.2-26] [MQTT-3.1.2-27]
    func testTopicAliasesStayWithinTheClientsMaximum() async throws {
        let (withAliases, _) = try await connectAccepted(broker, "aliases", properties: properties { $0.topicAliasMaximum = 2 })
        let (without, _) = try await connectAccepted(broker, "no-aliases")
        let (zero, _) = try await connectAccepted(broker, "zero-aliases", properties: properties { $0.topicAliasMaximum = 0 })
        for client in [withAliases, without, zero] { try await subscribe(client, "alias/#", qos: .atMostOnce) }
        let (publisher, _) = try await connectAccepted(broker, "alias-pub")
        let topics = ["alias/a", "alias/b", "alias/c", "alias/a", "alias/d", "alias/b", "alias/c"]
        for topic in topics { try await publish(publisher, topic, topic) }
        var seen: [UInt16: String] = [:]
        for topic in topics {
            guard let message = await expectPublish(withAliases) else { break }
            if let alias = message.properties.topicAlias {
                XCTAssertTrue((1...2).contains(alias), "alias \(alias) above the client's Topic Alias Maximum 2")
                if message.topic.isEmpty {
                    XCTAssertEqual(seen[alias], topic, "alias \(alias) names the topic it was set for")
                } else {
                    seen[alias] = message.topic
                }
            }
            XCTAssertEqual(message.payload.text, topic)
        }
        for client in [without, zero] {
            for topic in topics {
                guard let message = await expectPublish(client) else { break }
                XCTAssertNil(message.properties.topicAlias, "no Topic Alias to a client whose maximum is absent or 0")
                XCTAssertEqual(message.topic, topic)
            }
        }
    }

    // [MQTT-3.1.2-28]
    func testNoResponseInformationUnlessRequested() async throws {
        for request: UInt8? in [nil, 0] {
            let (client, connack) = try await connectAccepted(broker, "rri", properties: properties { $0.requestResponseInformation = request })
            XCTAssertNil(connack.properties.responseInformation, "Request Response Information \(String(describing: request))")
            try await disconnect(client)
        }
        // Asking for it is allowed; Midge offers none (the spec lets the server not send it).
        let (client, connack) = try await connectAccepted(broker, "rri1", properties: properties { $0.requestResponseInformation = 1 })
        XCTAssertEqual(connack.reasonCode, .success)
        try await disconnect(client)
    }

    // [MQTT-3.1.2-29]
    func testRequestProblemInformationZeroKeepsReasonStringsOffOtherPackets() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("secA-acl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let acl = directory.appendingPathComponent("acl")
        try "topic readwrite #\ntopic deny denied/#\n".write(to: acl, atomically: true, encoding: .utf8)
        broker = try startBroker { $0.security.aclFile = acl.path }
        let (client, _) = try await connectAccepted(broker, "rpi0", properties: properties { $0.requestProblemInformation = 0 })
        var acknowledgements: [MQTTPacket] = []
        // SUBACK (both granted: the ACL decides delivery, not subscriptions, as in Mosquitto).
        try await client.send(.subscribe(SubscribePacket(packetID: 1, subscriptions: [
            TopicSubscription(filter: "denied/x", options: SubscriptionOptions(qos: .atLeastOnce)),
            TopicSubscription(filter: "rpi/own", options: SubscriptionOptions(qos: .exactlyOnce)),
        ])))
        if let packet = await expectPacket(client, "SUBACK") { acknowledgements.append(packet) }
        // PUBACK 0x87 (ACL) and 0x10 (no subscribers), PUBREC and PUBCOMP (unknown id) success, UNSUBACK 0x11.
        try await client.send(.publish(PublishPacket(topic: "denied/x", payload: ByteBuffer(text: "x"), qos: .atLeastOnce, packetID: 2)))
        if let packet = await expectPacket(client, "PUBACK") { acknowledgements.append(packet) }
        try await client.send(.publish(PublishPacket(topic: "nobody/x", payload: ByteBuffer(text: "x"), qos: .atLeastOnce, packetID: 3)))
        if let packet = await expectPacket(client, "PUBACK") { acknowledgements.append(packet) }
        try await client.send(.publish(PublishPacket(topic: "nobody/x", payload: ByteBuffer(text: "x"), qos: .exactlyOnce, packetID: 4)))
        if let packet = await expectPacket(client, "PUBREC") { acknowledgements.append(packet) }
        try await client.send(.pubrel(PubAckPacket(packetID: 999)))
        if let packet = await expectPacket(client, "PUBCOMP") { acknowledgements.append(packet) }
        try await client.send(.unsubscribe(UnsubscribePacket(packetID: 5, filters: ["never/subscribed"])))
        if let packet = await expectPacket(client, "UNSUBACK") { acknowledgements.append(packet) }
        // A QoS 2 exchange both ways with ourselves: PUBREC and PUBCOMP for ours, PUBREL for the broker's.
        try await client.send(.publish(PublishPacket(topic: "rpi/own", payload: ByteBuffer(text: "o"), qos: .exactlyOnce, packetID: 6)))
        for _ in 0..<4 {
            guard let packet = await expectPacket(client, "QoS 2 flow") else { break }
            switch packet {
            case .publish(let publish): try await client.send(.pubrec(PubAckPacket(packetID: publish.packetID)))
            case .pubrec(let ack): acknowledgements.append(packet); try await client.send(.pubrel(PubAckPacket(packetID: ack.packetID)))
            case .pubrel(let ack): acknowledgements.append(packet); try await client.send(.pubcomp(PubAckPacket(packetID: ack.packetID)))
            default: acknowledgements.append(packet)
            }
        }
        XCTAssertEqual(acknowledgements.count, 9, "\(acknowledgements)")
        var codes: [UInt8] = []
        for packet in acknowledgements {
            let properties: Properties
            switch packet {
            case .suback(let ack): properties = ack.properties; codes += ack.reasonCodes.map(\.rawValue)
            case .unsuback(let ack): properties = ack.properties; codes += ack.reasonCodes.map(\.rawValue)
            case .puback(let ack), .pubrec(let ack), .pubrel(let ack), .pubcomp(let ack): properties = ack.properties; codes.append(ack.reasonCode.rawValue)
            default: XCTFail("unexpected \(packet)"); continue
            }
            XCTAssertNil(properties.reasonString, "no Reason String on \(packet.type)")
            XCTAssertEqual(properties.userProperties, [], "no User Property on \(packet.type)")
        }
        // The error cases really happened (else the test would prove nothing).
        XCTAssertTrue(codes.contains(0x87) && codes.contains(0x10) && codes.contains(0x11),
                      "codes: \(codes.map { String($0, radix: 16) })")
        // PUBLISH keeps its User Properties.
        var userProperties = Properties()
        userProperties.userProperties = [UserProperty("k", "v")]
        try await client.send(.publish(PublishPacket(topic: "rpi/own", payload: ByteBuffer(text: "u"), properties: userProperties)))
        let forwarded = await expectPublish(client)
        XCTAssertEqual(forwarded?.properties.userProperties, userProperties.userProperties)
        try await disconnect(client)
    }
}
