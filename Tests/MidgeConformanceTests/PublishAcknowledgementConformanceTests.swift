import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// PUBACK, PUBREC, PUBREL and PUBCOMP (spec 3.4 to 3.7) as the broker sends and receives them.
final class PublishAcknowledgementConformanceTests: XCTestCase {
    // [MQTT-3.3.4-1] [3.1.1:MQTT-3.3.4-1] [MQTT-4.3.2-4] [3.1.1:MQTT-4.3.2-2] [MQTT-4.3.3-8] [MQTT-4.3.3-11] [3.1.1:MQTT-4.3.3-2]
    /// The broker answers a PUBLISH as its QoS requires: nothing for QoS 0, PUBACK for QoS 1,
    /// PUBREC for QoS 2 and PUBCOMP for the PUBREL, each with the PUBLISH's packet id.
    func testPublishIsAnsweredAsItsQoSRequires() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let client = try await connectClean(broker, "ack-\(version)", version)
            try await client.publish("ack/t", "zero")
            await expectNothing(client, for: 0.3, "\(version): no answer to QoS 0")
            try await client.send(.publish(PublishPacket(topic: "ack/t", payload: ByteBuffer(text: "one"), qos: .atLeastOnce, packetID: 0x1234)))
            let value1 = await bExpectAck(client, "PUBACK")?.packetID
            XCTAssertEqual(value1, 0x1234, "\(version)")
            try await client.send(.publish(PublishPacket(topic: "ack/t", payload: ByteBuffer(text: "two"), qos: .exactlyOnce, packetID: 0xFFFF)))
            let value2 = await bExpectAck(client, "PUBREC")?.packetID
            XCTAssertEqual(value2, 0xFFFF, "\(version)")
            try await client.send(.pubrel(PubAckPacket(packetID: 0xFFFF)))
            let comp = await bExpectAck(client, "PUBCOMP")
            XCTAssertEqual(comp?.packetID, 0xFFFF, "\(version)")
            XCTAssertEqual(comp?.reasonCode, .success, "\(version)")
            await client.close()
        }
    }

    /// Parses a raw v5 acknowledgement: (first byte, packet id, reason code).
    private func parseAck(_ bytes: [UInt8]) -> (UInt8, UInt16, UInt8)? {
        guard bytes.count >= 4 else { return nil }
        let id = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
        return (bytes[0], id, bytes.count > 4 ? bytes[4] : 0)
    }

    // [MQTT-3.4.2-1] [MQTT-3.5.2-1] [MQTT-3.6.2-1] [MQTT-3.7.2-1] [MQTT-3.4.2-2] [MQTT-3.4.2-3] [MQTT-3.5.2-2] [MQTT-3.5.2-3]
    // [MQTT-3.6.2-2] [MQTT-3.6.2-3] [MQTT-3.7.2-2] [MQTT-3.7.2-3] [MQTT-3.6.1-1]
    /// Byte for byte, to a v5 client with a Maximum Packet Size of 16: each acknowledgement uses a
    /// reason code defined for its packet (PUBACK 0x00, 0x10, 0x83, 0x87; PUBREC 0x00, 0x83, 0x87:
    /// success with no subscriber, as Mosquitto; PUBREL/PUBCOMP 0x00, also for an unknown id, as
    /// Mosquitto), carries the right packet id, PUBREL has flags 0010, and none is larger than the
    /// client allows (no Reason String or User Property pushes it over).
    func testV5AcknowledgementsUseDefinedReasonCodesWithinTheClientMaximum() async throws {
        let broker = try startBroker { $0.messageSizeLimit = 8 }
        let subscriber = try await connectClean(broker, "rc-sub", .v5)
        try await subscribe(subscriber, "rc/sub", qos: .exactlyOnce)

        let raw = try await RawConnection.connect(broker)
        try await raw.send(rawConnect(properties: [0x27, 0, 0, 0, 16, 0x17, 1], payload: mqttString("rc-raw")))
        guard let connack = await bReadRaw(raw, "CONNACK"), connack.first == 0x20 else { return XCTFail("no CONNACK") }
        let pubackCodes: Set<UInt8> = [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]
        let pubrelCodes: Set<UInt8> = [0x00, 0x92]
        let cases: [(String, [UInt8], UInt8, UInt16, UInt8)] = [
            ("QoS 1, delivered", rawPublish(flags: 0x02, topic: Array("rc/sub".utf8), packetID: 1), 0x40, 1, 0x00),
            ("QoS 1, no subscriber", rawPublish(flags: 0x02, topic: Array("rc/none".utf8), packetID: 2), 0x40, 2, 0x10),
            ("QoS 1, $SYS", rawPublish(flags: 0x02, topic: Array("$SYS/x".utf8), packetID: 3), 0x40, 3, 0x87),
            // As Mosquitto (03-publish-dollar-v5): $share is no topic to publish to, and a bridge's
            // state topic is the one $SYS topic a client may write (routed, to nobody here).
            ("QoS 1, $share", rawPublish(flags: 0x02, topic: Array("$share/g/x".utf8), packetID: 10), 0x40, 10, 0x87),
            ("QoS 1, bridge state", rawPublish(flags: 0x02, topic: Array("$SYS/broker/connection/me/state".utf8), packetID: 11), 0x40, 11, 0x10),
            ("QoS 1, over message_size_limit", rawPublish(flags: 0x02, topic: Array("rc/sub".utf8), packetID: 4,
                                                          payload: Array(repeating: 0x41, count: 9)), 0x40, 4, 0x83),   // not Mosquitto's 0x95: no PUBACK code
            ("QoS 2, delivered", rawPublish(flags: 0x04, topic: Array("rc/sub".utf8), packetID: 0x105), 0x50, 0x105, 0x00),
            ("QoS 2, no subscriber", rawPublish(flags: 0x04, topic: Array("rc/none".utf8), packetID: 6), 0x50, 6, 0x00),
            ("QoS 2, $SYS", rawPublish(flags: 0x04, topic: Array("$SYS/x".utf8), packetID: 7), 0x50, 7, 0x87),
            ("PUBREL of a known id", rawPacket(0x62, [1, 5]), 0x70, 0x105, 0x00),
            ("PUBREL of an unknown id", rawPacket(0x62, [0, 8]), 0x70, 8, 0x00),
            ("PUBREC of an unknown id", rawPacket(0x50, [0, 9]), 0x62, 9, 0x00),
        ]
        for (name, bytes, type, id, code) in cases {
            try await raw.send(bytes)
            guard let reply = await bReadRaw(raw, name), let (first, replyID, reason) = parseAck(reply) else { continue }
            XCTAssertLessThanOrEqual(reply.count, 16, "\(name): within the client's Maximum Packet Size: \(hex(reply))")
            XCTAssertEqual(first, type, "\(name): packet type and flags: \(hex(reply))")
            XCTAssertEqual(replyID, id, "\(name): packet id echoed")
            XCTAssertEqual(reason, code, "\(name): reason code: \(hex(reply))")
            XCTAssertTrue((first >> 4 == 4 || first >> 4 == 5 ? pubackCodes : pubrelCodes).contains(reason), "\(name): defined reason code")
        }
        await raw.close()
        // The subscriber got the two delivered messages, and nothing refused.
        let got = try await subscriber.receivePublishes(2)
        XCTAssertEqual(got.count, 2)
    }

    // [MQTT-3.6.1-1] [3.1.1:MQTT-3.6.1-1]
    /// A PUBREL whose fixed header flags are not 0010 is malformed: closed (v5 without DISCONNECT, as Mosquitto).
    func testPubRelWithWrongFlagsIsMalformed() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            for first in [UInt8(0x60), 0x63, 0x6A] {
                try await expectRejectedAfterConnect(broker, version, rawPacket(first, [0, 1]), v5Reason: nil, "PUBREL first byte \(hex([first]))")
            }
        }
        try await assertBrokerServes(broker, "after malformed PUBREL")
    }

    // [MQTT-3.7.2-1] [3.1.1:MQTT-4.3.3-2]
    /// PUBREL for a packet id the broker does not hold still gets a PUBCOMP (reason success, as
    /// from Mosquitto); PUBACK and PUBCOMP for ids the broker never sent are ignored and the
    /// connection stays usable.
    func testAcknowledgementsForUnknownIdentifiers() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let client = try await connectClean(broker, "unknown-\(version)", version)
            try await client.send(.pubrel(PubAckPacket(packetID: 77)))
            let comp = await bExpectAck(client, "PUBCOMP")
            XCTAssertEqual(comp?.packetID, 77, "\(version)")
            XCTAssertEqual(comp?.reasonCode, .success, "\(version)")
            try await client.send(.puback(PubAckPacket(packetID: 78)))
            try await client.send(.pubcomp(PubAckPacket(packetID: 79)))
            try await subscribe(client, "unknown/t", qos: .atLeastOnce)
            try await client.publish("unknown/t", "still fine")
            let got = try await client.receivePublishes(1)
            XCTAssertEqual(got.map(\.text), ["still fine"], "\(version)")
            await client.close()
        }
    }

    // [3.1.1:MQTT-3.3.5-2]
    /// A 3.1.1 PUBLISH the broker does not authorize (here: into `$SYS`, or denied by the ACL) is
    /// acknowledged as usual (PUBACK / PUBREC, PUBCOMP) and dropped; the connection stays open.
    func testV3UnauthorizedPublishIsAcknowledgedAndDropped() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("b-acl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let acl = folder.appendingPathComponent("acl")
        try "topic readwrite open/#\ntopic read closed/#\nuser writer\ntopic readwrite closed/#\ntopic readwrite open/#\n"
            .write(to: acl, atomically: true, encoding: .utf8)
        let broker = try startBroker { $0.security.aclFile = acl.path }
        let watcher = try await connectClean(broker, "acl-watch", .v3_1_1)
        try await subscribe(watcher, "closed/#", qos: .atLeastOnce, packetID: 1)
        try await subscribe(watcher, "open/#", qos: .atLeastOnce, packetID: 2)
        let client = try await connectClean(broker, "acl-pub", .v3_1_1)
        let value3 = try await client.publish("closed/t", "denied", qos: .atLeastOnce, packetID: 1)
        XCTAssertEqual(value3, .success, "PUBACK")
        let value4 = try await client.publish("closed/t", "denied", qos: .exactlyOnce, packetID: 2)
        XCTAssertEqual(value4, .success, "PUBREC, PUBCOMP")
        let value5 = try await client.publish("$SYS/t", "denied", qos: .atLeastOnce, packetID: 3)
        XCTAssertEqual(value5, .success, "PUBACK")
        let (writer, connack) = try await broker.connect("acl-writer", version: .v3_1_1, username: "writer")
        XCTAssertEqual(connack.reasonCode, .success)
        try await writer.publish("closed/t", "allowed", qos: .atLeastOnce, packetID: 1)
        try await client.publish("open/end", "end", qos: .atLeastOnce, packetID: 4)
        let before = try await watcher.publishesBefore(marker: "open/end")
        XCTAssertEqual(before.map(\.text), ["allowed"], "the watcher may read closed/#; the denied messages were dropped")
    }
}
