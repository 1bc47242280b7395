import Foundation
import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// DISCONNECT (spec 3.14): the server sends one only after a successful CONNACK, only with the
/// table's reason codes and never with a Session Expiry Interval; it is the last packet before the
/// close; a DISCONNECT with bad flags is malformed; a normal DISCONNECT discards the will.
final class DisconnectConformanceTests: XCTestCase {
    /// Reads until the broker closes `connection`; fails unless the last packet is one DISCONNECT
    /// (and returns it).
    private func expectFinalDisconnect(_ connection: PacketConnection, _ context: String,
                                       file: StaticString = #filePath, line: UInt = #line) async -> DisconnectPacket? {
        let packets = await expectClose(connection, file: file, line: line)
        let disconnects = packets.compactMap { packet -> DisconnectPacket? in
            if case .disconnect(let disconnect) = packet { return disconnect }
            return nil
        }
        guard disconnects.count == 1, case .disconnect(let disconnect)? = packets.last else {
            XCTFail("\(context): expected one DISCONNECT as the last packet before the close, got \(packets)", file: file, line: line)
            return nil
        }
        return disconnect
    }

    // [MQTT-3.14.0-1]
    func testNoDisconnectBeforeASuccessfulConnAck() async throws {
        let broker = try startBroker()
        var withMethod = Properties()
        withMethod.authenticationMethod = "SCRAM-SHA-1"
        let cases: [(String, [UInt8], ReasonCode?)] = [
            ("reserved CONNECT flag", rawConnect(flags: 0x03, payload: mqttString("d-flag")), nil),   // closed, as Mosquitto
            ("authentication method", connectBytes("d-auth", .v5, properties: withMethod), .badAuthenticationMethod),
            ("PUBLISH before CONNECT", rawPacket(0x30, mqttString("a") + [0] + [0x78]), nil),
            ("SUBSCRIBE before CONNECT", sectionCRawSubscribe(.v5, [(Array("a".utf8), 0)]), nil),
            ("DISCONNECT before CONNECT", [0xE0, 0x01, 0x82], nil),
        ]
        for (name, bytes, connack) in cases {
            let connection = try await broker.rawConnection(version: .v5)
            try await connection.send(bytes: bytes)
            let packets = await expectClose(connection)
            if let connack {
                guard packets.count == 1, case .connack(let answer) = packets[0] else {
                    XCTFail("\(name): expected one refusing CONNACK and no DISCONNECT, got \(packets)")
                    continue
                }
                XCTAssertEqual(answer.reasonCode, connack, name)
            } else {
                XCTAssertEqual(packets, [], "\(name): closed without any packet")
            }
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.14.1-1] [3.1.1:MQTT-3.14.1-1] [MQTT-4.13.1-1] [3.1.1:MQTT-4.8.0-1]
    func testDisconnectWithReservedFlagsIsMalformedAndKeepsTheWill() async throws {
        let broker = try startBroker()
        let (watcher, _) = try await connectAccepted(broker, "dflags-watcher")
        try await subscribe(watcher, "dflags/#", qos: .atMostOnce)
        for version in messagingVersions {
            for first: UInt8 in [0xE1, 0xE2, 0xE4, 0xE8, 0xEF] {
                let name = "dflags-\(version)-\(first)"
                let will = Will(topic: "dflags/\(name)", payload: ByteBuffer(text: name))
                let (client, _) = try await connectAccepted(broker, name, version: version, will: will)
                try await client.send(bytes: [first, 0x00])
                // Closed without DISCONNECT (a SHOULD, spec 4.13.1), as Mosquitto for a bad DISCONNECT.
                await expectViolationClose(client, version, v5Reason: nil, name)
                // Not a DISCONNECT: the will is published.
                let published = await expectPublish(watcher, within: 3)
                XCTAssertEqual(published?.topic, "dflags/\(name)")
            }
        }
        // 3.1.1: a DISCONNECT has no body; one with a body is malformed too.
        let will = Will(topic: "dflags/body", payload: ByteBuffer(text: "body"))
        let (client, _) = try await connectAccepted(broker, "dflags-body", version: .v3_1_1, will: will)
        try await client.send(bytes: [0xE0, 0x01, 0x00])
        await expectDisconnect(client, reason: nil, "3.1.1 DISCONNECT with a body")
        let published = await expectPublish(watcher, within: 3)
        XCTAssertEqual(published?.topic, "dflags/body")
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.14.2-1] [MQTT-3.14.2-2] [MQTT-3.14.4-1] [MQTT-3.14.4-2] [MQTT-4.13.1-1] [MQTT-4.13.2-1]
    func testServerDisconnectsUseTheTableAndNoSessionExpiry() async throws {
        let broker = try startBroker { config in config.maxPacketSize = 200 }
        var results: [(String, DisconnectPacket)] = []
        let expiry = sessionExpiry(300)

        // 0x81 Malformed Packet (a PUBLISH with QoS 3; as Mosquitto, errors in PUBLISH, SUBSCRIBE and
        // UNSUBSCRIBE get a DISCONNECT, those in other packets only the close).
        let (malformed, _) = try await connectAccepted(broker, "sd-malformed", properties: expiry)
        try await malformed.send(bytes: rawPacket(0x36, mqttString("a") + [0, 1, 0, 0x78]))
        if let packet = await expectFinalDisconnect(malformed, "malformed") { results.append(("malformed", packet)) }

        // 0x82 Protocol Error (a PUBLISH with a Subscription Identifier).
        let (second, _) = try await connectAccepted(broker, "sd-second", properties: expiry)
        try await second.send(bytes: rawPacket(0x30, mqttString("a") + rawProperties([0x0B, 0x01]) + [0x78]))
        if let packet = await expectFinalDisconnect(second, "protocol error") { results.append(("protocol error", packet)) }

        // 0x8E Session taken over.
        let (old, _) = try await connectAccepted(broker, "sd-takeover", properties: expiry)
        let (new, _) = try await connectAccepted(broker, "sd-takeover", cleanStart: false, properties: expiry)
        if let packet = await expectFinalDisconnect(old, "takeover") { results.append(("takeover", packet)) }

        // 0x94 Topic Alias invalid.
        let (alias, _) = try await connectAccepted(broker, "sd-alias", properties: expiry)
        try await alias.send(bytes: rawPacket(0x30, mqttString("a") + rawProperties([0x23, 0, 0]) + [0x78]))
        if let packet = await expectFinalDisconnect(alias, "topic alias 0") { results.append(("topic alias", packet)) }

        // 0x95 Packet too large.
        let (large, _) = try await connectAccepted(broker, "sd-large", properties: expiry)
        try await large.send(.publish(PublishPacket(topic: "big", payload: ByteBuffer(bytes: Array(repeating: 0x41, count: 300)))))
        if let packet = await expectFinalDisconnect(large, "packet too large") { results.append(("too large", packet)) }

        // 0x93 Receive Maximum exceeded: unreleased QoS 2 messages beyond the broker's Receive Maximum.
        let (flood, connack) = try await connectAccepted(broker, "sd-flood", properties: expiry)
        let window = Int(connack.properties.receiveMaximum ?? 65535)
        XCTAssertLessThan(window, 1000, "the broker announces a Receive Maximum")
        var bytes: [UInt8] = []
        for index in 0...window {
            bytes += encoded(.publish(PublishPacket(topic: "flood", payload: ByteBuffer(text: "x"), qos: .exactlyOnce,
                                                    packetID: UInt16(index + 1))), .v5)
        }
        try await flood.send(bytes: bytes)
        if let packet = await expectFinalDisconnect(flood, "receive maximum") { results.append(("receive maximum", packet)) }

        // 0x8D Keep Alive timeout.
        let (silent, _) = try await connectAccepted(broker, "sd-keepalive", keepAlive: 1, properties: expiry)
        if let packet = await expectFinalDisconnect(silent, "keep alive") { results.append(("keep alive", packet)) }

        XCTAssertEqual(results.map { $0.1.reasonCode.rawValue }, [0x81, 0x82, 0x8E, 0x94, 0x95, 0x93, 0x8D])
        for (name, packet) in results {
            XCTAssertTrue(sectionCServerDisconnectCodes.contains(packet.reasonCode.rawValue), "\(name): \(packet.reasonCode)")
            XCTAssertNil(packet.properties.sessionExpiryInterval, "\(name): no Session Expiry Interval from the server")
        }
        await new.close()
    }

    // [MQTT-3.14.4-1] [MQTT-3.14.4-2]
    func testNothingFollowsTheServerDisconnectEvenWithTrafficPending() async throws {
        let broker = try startBroker()
        let (subscriber, _) = try await connectAccepted(broker, "after-subscriber")
        try await subscribe(subscriber, "after/#", qos: .atMostOnce)
        let (publisher, _) = try await connectAccepted(broker, "after-publisher")
        let stream = Task {
            for index in 0..<300 {
                try await publisher.send(.publish(PublishPacket(topic: "after/t", payload: ByteBuffer(text: "\(index)"))))
            }
        }
        // Let the stream start flowing, then break a rule in the middle of it.
        _ = await expectPublish(subscriber)
        try await subscriber.send(bytes: rawPacket(0x36, mqttString("a") + [0, 1, 0, 0x78]))   // PUBLISH with QoS 3
        let disconnect = await expectFinalDisconnect(subscriber, "in the middle of a stream")
        XCTAssertEqual(disconnect?.reasonCode, .malformedPacket)
        try await stream.value
    }

    // [MQTT-3.14.2-3] [MQTT-3.14.2-4]
    func testDisconnectPropertiesStayWithinTheClientMaximumPacketSize() async throws {
        let broker = try startBroker()
        // The broker's DISCONNECT carries no Reason String or User Property at all (as Mosquitto's):
        // 4 bytes, within any Maximum Packet Size its CONNACK fitted, roomy or tight.
        for (name, maximum) in [("dsize-roomy", UInt32(1000)), ("dsize-tight", 16)] {
            var limits = Properties()
            limits.maximumPacketSize = maximum
            let (client, _) = try await connectAccepted(broker, name, properties: limits)
            try await client.send(bytes: rawPacket(0x30, mqttString("a") + rawProperties([0x0B, 0x01]) + [0x78]))
            let bare = await expectFinalDisconnect(client, name)
            XCTAssertEqual(bare?.reasonCode, .protocolError)
            XCTAssertNil(bare?.properties.reasonString)
            XCTAssertEqual(bare?.properties.userProperties ?? [], [])
            if let bare { XCTAssertLessThanOrEqual(encoded(.disconnect(bare), .v5).count, 4) }
        }
    }

    // [MQTT-3.14.4-3] [3.1.1:MQTT-3.14.4-3]
    func testNormalDisconnectDiscardsTheWill() async throws {
        let broker = try startBroker()
        let (watcher, _) = try await connectAccepted(broker, "dwill-watcher")
        try await subscribe(watcher, "dwill/#", qos: .atMostOnce)
        let cases: [(String, ProtocolVersion, [UInt8])] = [
            ("v311", .v3_1_1, [0xE0, 0x00]),
            ("v5-short", .v5, [0xE0, 0x00]),            // reason 0x00 implied
            ("v5-code", .v5, [0xE0, 0x01, 0x00]),
            ("v5-props", .v5, [0xE0, 0x02, 0x00, 0x00]),
        ]
        for (name, version, bytes) in cases {
            let will = Will(topic: "dwill/\(name)", payload: ByteBuffer(text: name), qos: .atLeastOnce)
            let (client, _) = try await connectAccepted(broker, "dwill-\(name)", version: version, will: will)
            try await client.send(bytes: bytes)
            let after = await expectClose(client, within: 3)
            XCTAssertEqual(after, [], "\(name): nothing after a client DISCONNECT")
        }
        // Control: DISCONNECT 0x04 (Disconnect with Will Message) does publish it, so the watcher works.
        let will = Will(topic: "dwill/control", payload: ByteBuffer(text: "control"))
        let (client, _) = try await connectAccepted(broker, "dwill-control", will: will)
        try await client.send(bytes: [0xE0, 0x01, 0x04])
        let published = await expectPublish(watcher, within: 3)
        XCTAssertEqual(published?.topic, "dwill/control", "only the 0x04 will arrives")
        await expectNothing(watcher, for: 0.3)
    }

    // Session Expiry Interval 0 in CONNECT and non-zero in DISCONNECT is a Protocol Error (spec
    // 3.14.2.2.2); the will is then published. [MQTT-4.13.1-1] [MQTT-4.13.2-1]
    func testSessionExpiryOnDisconnectAfterZeroIsAProtocolError() async throws {
        let broker = try startBroker()
        let (watcher, _) = try await connectAccepted(broker, "dexp-watcher")
        try await subscribe(watcher, "dexp/#", qos: .atMostOnce)
        let will = Will(topic: "dexp/will", payload: ByteBuffer(text: "w"))
        let (client, _) = try await connectAccepted(broker, "dexp", will: will)   // no Session Expiry: 0
        try await client.send(.disconnect(DisconnectPacket(reasonCode: .normalDisconnection, properties: sessionExpiry(60))))
        await expectDisconnect(client, reason: .protocolError, "expiry set on DISCONNECT")
        let published = await expectPublish(watcher, within: 3)
        XCTAssertEqual(published?.topic, "dexp/will", "a refused DISCONNECT does not discard the will")
        // With a Session Expiry in CONNECT, changing it on DISCONNECT is fine.
        let (allowed, _) = try await connectAccepted(broker, "dexp-ok", sessionExpiry: 10)
        try await disconnect(allowed, DisconnectPacket(reasonCode: .normalDisconnection, properties: sessionExpiry(0)))
    }
}
