import Glibc
import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// The QoS flows byte for byte as Mosquitto 2.0.11 answers them (its test/broker suite: 02-subpub-qos2,
/// 03-publish-qos2, 02-subpub-qos1-nolocal, the 02-subpub-*-bad-* tests, 03-publish-qos1-max-inflight-expire,
/// 04-retain-check-source-persist), over real sockets.
final class MosquittoQoSFlowTests: MessagingTestCase {
    /// CONNECT on a raw socket and read the CONNACK.
    private func rawClient(_ clientID: String, _ version: ProtocolVersion, cleanStart: Bool = true,
                           properties: Properties = .none) async throws -> RawConnection {
        let raw = try await RawConnection.connect(broker)
        try await raw.send(connectBytes(clientID, version, cleanStart: cleanStart, properties: properties))
        let connack = await raw.readPacket()
        XCTAssertEqual(connack?.first, 0x20, "\(clientID): CONNACK")
        return raw
    }

    private func subscribeBytes(_ filter: String, options: UInt8, _ version: ProtocolVersion, packetID: UInt16 = 1) -> [UInt8] {
        rawPacket(0x82, [UInt8(packetID >> 8), UInt8(packetID & 0xFF)] + (version == .v5 ? [0] : []) + mqttString(filter) + [options])
    }

    // [MQTT-4.3.3-8]
    /// QoS 2 from a client that subscribed to the topic itself: the PUBREC (success, `50 02 ..`)
    /// comes before the broker's PUBLISH of the same message on the same socket.
    func testPubRecComesBeforeThePublishersOwnCopy() async throws {
        for version in messagingVersions {
            let raw = try await rawClient("own-q2-\(version.rawValue)", version)
            try await raw.send(subscribeBytes("own/q2", options: 2, version))
            let packet1 = await raw.readPacket()

            XCTAssertEqual(packet1?.first, 0x90, "\(version): SUBACK")
            try await raw.send(rawPublish(version, flags: 0x04, topic: "own/q2", packetID: 301))
            let packet2 = await raw.readPacket()

            XCTAssertEqual(packet2, [0x50, 0x02, 0x01, 0x2D], "\(version): PUBREC first, reason success")
            let copy = await raw.readPacket()
            XCTAssertEqual(copy?.first.map { $0 & 0xF6 }, 0x34, "\(version): then the QoS 2 PUBLISH: \(hex(copy ?? []))")
            await raw.close()
        }
    }

    // [MQTT-3.4.2-1]
    /// v5: PUBREC says success even with no subscriber (Mosquitto's `50 02 ..`); PUBACK says 0x10
    /// only when no subscription matched at all: a No Local subscription of the publisher itself
    /// counts as a match, though it gets no copy.
    func testNoMatchingSubscribersAndNoLocal() async throws {
        let raw = try await rawClient("nolocal-rc", .v5)
        try await raw.send(rawPublish(.v5, flags: 0x04, topic: "nobody/q2", packetID: 7))
        let packet3 = await raw.readPacket()

        XCTAssertEqual(packet3, [0x50, 0x02, 0x00, 0x07], "PUBREC success with no subscriber")
        try await raw.send(rawPacket(0x62, [0, 7]))
        let packet4 = await raw.readPacket()

        XCTAssertEqual(packet4, [0x70, 0x02, 0x00, 0x07])
        try await raw.send(rawPublish(.v5, flags: 0x02, topic: "nobody/q1", packetID: 8))
        let packet5 = await raw.readPacket()

        XCTAssertEqual(packet5, [0x40, 0x03, 0x00, 0x08, 0x10], "PUBACK 0x10 with no subscriber")
        // [MQTT-3.8.3-3] No Local (options 0x05): no copy back, but a match.
        try await raw.send(subscribeBytes("mine/q1", options: 0x05, .v5))
        let packet6 = await raw.readPacket()

        XCTAssertEqual(packet6?.first, 0x90)
        try await raw.send(rawPublish(.v5, flags: 0x02, topic: "mine/q1", packetID: 9))
        let packet7 = await raw.readPacket()

        XCTAssertEqual(packet7, [0x40, 0x02, 0x00, 0x09], "the own No Local subscription matched")
        let nothing = await raw.readPacket(timeout: 0.3)
        XCTAssertNil(nothing, "no copy for the No Local subscriber: \(hex(nothing ?? []))")
        await raw.close()
    }

    /// An acknowledgement of the wrong kind for the message in flight under its id (PUBCOMP or
    /// PUBREC for QoS 1, PUBACK for QoS 2, PUBCOMP before the PUBREC) is a Protocol Error: the
    /// connection is closed, without DISCONNECT, as Mosquitto closes it. Unknown ids are ignored
    /// (a PUBREC for one still gets its PUBREL, as from Mosquitto).
    func testWrongAcknowledgementTypeClosesTheConnection() async throws {
        let cases: [(name: String, qos: UInt8, reply: UInt8)] = [
            ("PUBCOMP for QoS 1", 1, 0x70), ("PUBREC for QoS 1", 1, 0x50),
            ("PUBACK for QoS 2", 2, 0x40), ("PUBCOMP for QoS 2 before PUBREC", 2, 0x70),
        ]
        let publisher = try await connect("bad-ack-pub", .v5)
        for version in messagingVersions {
            for (index, test) in cases.enumerated() {
                let topic = "bad/\(version.rawValue)/\(index)"
                let raw = try await rawClient("bad-ack-\(version.rawValue)-\(index)", version)
                try await raw.send(subscribeBytes(topic, options: test.qos, version))
                let packet8 = await raw.readPacket()

                XCTAssertEqual(packet8?.first, 0x90)
                // An acknowledgement for an id the broker never used is ignored.
                try await raw.send(rawPacket(test.reply, [0x12, 0x34]))
                if test.reply == 0x50 {
                    let pubrel = await raw.readPacket()
                    XCTAssertEqual(pubrel, [0x62, 0x02, 0x12, 0x34], "\(version): PUBREL for the unknown id")
                }
                _ = try await publisher.publish(topic, "m", qos: test.qos == 1 ? .atLeastOnce : .exactlyOnce)
                guard let publish = await raw.readPacket(), publish.count > 4 else { XCTFail("\(version) \(test.name): no PUBLISH"); continue }
                let topicLength = Int(publish[2]) << 8 | Int(publish[3])
                let id = Array(publish[(4 + topicLength)...(5 + topicLength)])
                try await raw.send(rawPacket(test.reply, id))
                let (bytes, closed) = await raw.readUntilClose(timeout: 3)
                XCTAssertTrue(closed, "\(version) \(test.name): the connection must be closed")
                XCTAssertEqual(bytes, [], "\(version) \(test.name): nothing sent before the close (no PUBREL, no DISCONNECT)")
            }
        }
        await publisher.close()
    }

    /// A message gets its packet id when it is queued for the client, not when it is sent: a
    /// queued message that expired before its client came back still used its id (Mosquitto's
    /// 03-publish-qos1-max-inflight-expire).
    func testPacketIDIsGivenWhenTheMessageIsQueued() async throws {
        let (subscriber, _) = try await connectPersistent("queued-ids", .v5, resume: false)
        try await subscriber.subscribe("queued/ids", qos: .atLeastOnce)
        await subscriber.close()
        let publisher = try await connect("queued-ids-pub", .v5)
        var shortLived = Properties()
        shortLived.messageExpiryInterval = 1
        _ = try await publisher.publish("queued/ids", "expires", qos: .atLeastOnce, properties: shortLived)
        try await Task.sleep(nanoseconds: 1_600_000_000)
        _ = try await publisher.publish("queued/ids", "kept", qos: .atLeastOnce, packetID: 2)
        let (back, present) = try await connectPersistent("queued-ids", .v5, resume: true)
        XCTAssertTrue(present)
        let delivered = try await back.expectPublish()
        XCTAssertEqual(delivered.text, "kept")
        XCTAssertEqual(delivered.packetID, 2, "the expired message had id 1")
        await back.close(); await publisher.close()
    }

    /// A PUBLISH a client sends just before it closes its connection and reconnects with the same
    /// client id at once (on another event loop) is routed before the new connection takes the
    /// client id over: a retained message is there for the new connection's SUBSCRIBE.
    func testPublishSentJustBeforeAReconnectIsRoutedFirst() async throws {
        for round in 0..<20 {
            let topic = "race/\(round)"
            // A blocking socket, as Mosquitto's Python test uses: CONNECT, CONNACK, PUBLISH, close,
            // and the next connection at once.
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(broker.port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            XCTAssertEqual(connected, 0)
            let connect = connectBytes("race", .v3_1_1)
            _ = connect.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            var connack = [UInt8](repeating: 0, count: 4)
            XCTAssertEqual(connack.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, 4, Int32(MSG_WAITALL)) }, 4)
            let publish = rawPublish(.v3_1_1, flags: 0x01, topic: topic)
            _ = publish.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            Glibc.close(fd)
            let second = try await rawClient("race", .v3_1_1)
            try await second.send(subscribeBytes(topic, options: 0, .v3_1_1))
            let packet9 = await second.readPacket()

            XCTAssertEqual(packet9?.first, 0x90)
            let retained = await second.readPacket(timeout: 2)
            XCTAssertEqual(retained?.first, 0x31, "round \(round): the retained PUBLISH sent before the reconnect")
            await second.close()
        }
    }
}
