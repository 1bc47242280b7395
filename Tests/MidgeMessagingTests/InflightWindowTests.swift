import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Flow control: the broker never has more unacknowledged QoS 1/2 PUBLISH packets outstanding
/// towards a client than the client's Receive Maximum (v5 [MQTT-3.3.4-9], [MQTT-4.9.0-2]) or
/// `max_inflight_messages` (3.1.1); the rest waits and follows, in order, as acknowledgements
/// come back. In the other direction the broker announces its own Receive Maximum and
/// disconnects a v5 client that exceeds it with 0x93.
final class InflightWindowTests: MessagingTestCase {
    /// Publishes `total` messages, then drains them from `subscriber` acknowledging one at a
    /// time, oldest first, only when `window` are outstanding; asserts that never more than
    /// `window` are outstanding and that they arrive in order.
    private func checkWindow(subscriber: PacketConnection, publisher: PacketConnection, topic: String, window: Int, total: Int,
                             qos: QoS, label: String) async throws {
        for index in 0..<total {
            try await publisher.publish(topic, "\(index)", qos: qos, packetID: UInt16(index + 1))
        }
        var outstanding: [PublishPacket] = []
        var received: [String] = []
        var checkedSilence = 0
        while received.count < total || !outstanding.isEmpty {
            if outstanding.count == window || (received.count == total && !outstanding.isEmpty) {
                if outstanding.count == window && checkedSilence < 2 {
                    // The window is full: nothing more may come until we acknowledge.
                    try await subscriber.expectSilence(for: .milliseconds(150), "\(label): window of \(window) is full")
                    checkedSilence += 1
                }
                let oldest = outstanding.removeFirst()
                if qos == .exactlyOnce {
                    // After PUBREC the message still counts until PUBCOMP: PUBREL comes, no new PUBLISH;
                    // packets other than PUBLISH are not held back by the full window [MQTT-4.9.0-3].
                    try await subscriber.send(.pubrec(PubAckPacket(packetID: oldest.packetID)))
                    let reply = try await subscriber.receive()
                    guard case .pubrel(let rel) = reply, rel.packetID == oldest.packetID else {
                        throw FlowError("\(label): expected PUBREL \(oldest.packetID), got \(reply)")
                    }
                    try await subscriber.send(.pubcomp(PubAckPacket(packetID: oldest.packetID)))
                } else {
                    try await subscriber.send(.puback(PubAckPacket(packetID: oldest.packetID)))
                }
                continue
            }
            let publish = try await subscriber.expectPublish()
            outstanding.append(publish)
            received.append(publish.text)
            XCTAssertLessThanOrEqual(outstanding.count, window, "\(label): more than \(window) unacknowledged PUBLISH packets")
            if outstanding.count > window { return }
        }
        XCTAssertEqual(received, (0..<total).map { "\($0)" }, "\(label): order")
    }

    /// v5 client Receive Maximum 3, 9 messages, QoS 1 and QoS 2.
    func testV5ClientReceiveMaximumLimitsOutstandingPublishes() async throws {
        for qos in [QoS.atLeastOnce, .exactlyOnce] {
            var properties = Properties()
            properties.receiveMaximum = 3
            let subscriber = try await connect("rm-sub-\(qos.rawValue)", .v5, properties: properties)
            try await subscriber.subscribe("rm/\(qos.rawValue)", qos: qos)
            let publisher = try await connect("rm-pub-\(qos.rawValue)", .v5)
            try await checkWindow(subscriber: subscriber, publisher: publisher, topic: "rm/\(qos.rawValue)", window: 3, total: 9,
                                  qos: qos, label: "v5 QoS \(qos.rawValue)")
            await subscriber.close(); await publisher.close()
        }
    }

    /// 3.1.1 clients get `max_inflight_messages` (here 3) as their window.
    func testV3MaxInflightMessagesLimitsOutstandingPublishes() async throws {
        try restartBroker { $0.maxInflightMessages = 3 }
        for qos in [QoS.atLeastOnce, .exactlyOnce] {
            let subscriber = try await connect("mi-sub-\(qos.rawValue)", .v3_1_1)
            try await subscriber.subscribe("mi/\(qos.rawValue)", qos: qos)
            let publisher = try await connect("mi-pub-\(qos.rawValue)", .v3_1_1)
            try await checkWindow(subscriber: subscriber, publisher: publisher, topic: "mi/\(qos.rawValue)", window: 3, total: 9,
                                  qos: qos, label: "3.1.1 QoS \(qos.rawValue)")
            await subscriber.close(); await publisher.close()
        }
    }

    /// A full window does not hold back QoS 0 messages (spec 4.9: with a send quota of zero the
    /// sender MAY continue to send QoS 0 PUBLISH packets; Mosquitto and Midge do).
    func testQoS0IsNotHeldBackByAFullWindow() async throws {
        var properties = Properties()
        properties.receiveMaximum = 1
        let subscriber = try await connect("rm0-sub", .v5, properties: properties)
        try await subscriber.subscribe("rm0/#", qos: .atLeastOnce)
        let publisher = try await connect("rm0-pub", .v5)
        try await publisher.publish("rm0/one", "first", qos: .atLeastOnce, packetID: 1)
        try await publisher.publish("rm0/one", "second", qos: .atLeastOnce, packetID: 2)
        try await publisher.publish("rm0/zero", "zero", qos: .atMostOnce)
        let first = try await subscriber.expectPublish()
        XCTAssertEqual(first.text, "first")
        let zero = try await subscriber.expectPublish()
        XCTAssertEqual(zero.text, "zero", "QoS 0 message must not wait behind the full window")
        try await subscriber.acknowledge(first)
        let second = try await subscriber.expectPublish()
        XCTAssertEqual(second.text, "second")
        await subscriber.close(); await publisher.close()
    }

    /// The broker's own Receive Maximum in CONNACK is `max_inflight_messages` (default 20;
    /// Mosquitto's behaviour; spec 3.2.2.3.3).
    func testConnAckCarriesBrokerReceiveMaximum() async throws {
        let (client, connack) = try await broker.connect("rm-connack", version: .v5)
        XCTAssertEqual(connack.properties.receiveMaximum, 20)
        await client.close()

        try restartBroker { $0.maxInflightMessages = 5 }
        let (other, connack5) = try await broker.connect("rm-connack-5", version: .v5)
        XCTAssertEqual(connack5.properties.receiveMaximum, 5)
        await other.close()
    }

    /// A v5 client sending more unreleased QoS 2 PUBLISH packets than the broker's Receive
    /// Maximum is disconnected with 0x93 Receive Maximum exceeded (spec 3.3.4 / 4.9, the
    /// receiving side of the client rule MQTT-3.3.4-7); the packets within the limit are acknowledged.
    func testV5ClientExceedingBrokerReceiveMaximumIsDisconnectedWith0x93() async throws {
        try restartBroker { $0.maxInflightMessages = 2 }
        let (client, connack) = try await broker.connect("rm-exceed", version: .v5)
        XCTAssertEqual(connack.properties.receiveMaximum, 2)
        for id in UInt16(1)...3 {
            try await client.send(.publish(PublishPacket(topic: "rmx", payload: ByteBuffer(string: "\(id)"), qos: .exactlyOnce, packetID: id)))
        }
        let packets = try await client.waitForClose()
        guard packets.count == 3 else { return XCTFail("expected PUBREC, PUBREC, DISCONNECT; got \(packets)") }
        guard case .pubrec(let rec1) = packets[0], case .pubrec(let rec2) = packets[1] else { return XCTFail("\(packets)") }
        XCTAssertEqual([rec1.packetID, rec2.packetID], [1, 2])
        guard case .disconnect(let disconnect) = packets[2] else { return XCTFail("no DISCONNECT: \(packets)") }
        XCTAssertEqual(disconnect.reasonCode, .receiveMaximumExceeded)
    }

    /// Releasing QoS 2 messages (PUBREL) frees the broker's receive window again; QoS 1 messages
    /// never fill it (they are acknowledged at once).
    func testReleasedQoS2MessagesFreeTheBrokerWindow() async throws {
        try restartBroker { $0.maxInflightMessages = 2 }
        let client = try await connect("rm-free", .v5)
        for round in 0..<3 {
            // Two unreleased QoS 2 messages fill the window of 2 ...
            for id in UInt16(1)...2 {
                try await client.send(.publish(PublishPacket(topic: "rmf", payload: ByteBuffer(string: "\(round)-\(id)"),
                                                             qos: .exactlyOnce, packetID: id)))
            }
            for id in UInt16(1)...2 {
                guard case .pubrec(let rec) = try await client.receive(), rec.packetID == id else { return XCTFail("round \(round): no PUBREC \(id)") }
            }
            // ... and releasing them empties it for the next round.
            for id in UInt16(1)...2 { try await client.send(.pubrel(PubAckPacket(packetID: id))) }
            for id in UInt16(1)...2 {
                guard case .pubcomp(let comp) = try await client.receive(), comp.packetID == id else { return XCTFail("round \(round): no PUBCOMP \(id)") }
            }
        }
        for id in UInt16(1)...5 {
            try await client.send(.publish(PublishPacket(topic: "rmf", payload: ByteBuffer(string: "qos1"), qos: .atLeastOnce, packetID: id)))
        }
        for id in UInt16(1)...5 {
            guard case .puback(let ack) = try await client.receive(), ack.packetID == id else { return XCTFail("no PUBACK \(id)") }
        }
        try await client.send(.pingreq)
        guard case .pingresp = try await client.receive() else { return XCTFail("connection not usable") }
        await client.close()
    }

    /// A v5 client that reconnects with a smaller Receive Maximum than the number of messages
    /// still unacknowledged must not get more than that many resent at once [MQTT-3.3.4-9]; the
    /// rest follow, in order with their original packet ids, as acknowledgements come back.
    func testResendOnReconnectRespectsTheNewReceiveMaximum() async throws {
        var (subscriber, _) = try await connectPersistent("rm-resume", .v5, resume: false)
        try await subscriber.subscribe("rmr", qos: .atLeastOnce)
        let publisher = try await connect("rm-resume-pub", .v5)
        for index in 0..<6 { try await publisher.publish("rmr", "\(index)", qos: .atLeastOnce, packetID: UInt16(index + 1)) }
        let original = try await subscriber.receivePublishes(6, acknowledge: false)
        try await subscriber.disconnect()

        var smaller = Properties()
        smaller.receiveMaximum = 2
        (subscriber, _) = try await connectPersistent("rm-resume", .v5, resume: true, properties: smaller)
        var outstanding: [PublishPacket] = []
        var resent: [PublishPacket] = []
        while resent.count < 6 {
            if outstanding.count == 2 || (resent.count + outstanding.count == 6 && !outstanding.isEmpty) {
                if outstanding.count == 2 && resent.isEmpty {
                    try await subscriber.expectSilence(for: .milliseconds(150), "window of 2 is full")
                }
                let oldest = outstanding.removeFirst()
                try await subscriber.send(.puback(PubAckPacket(packetID: oldest.packetID)))
                resent.append(oldest)
                continue
            }
            let publish = try await subscriber.expectPublish()
            outstanding.append(publish)
            XCTAssertLessThanOrEqual(outstanding.count, 2, "more than the new Receive Maximum outstanding")
            if outstanding.count > 2 { break }
        }
        XCTAssertEqual(resent.map(\.text), original.map(\.text))
        XCTAssertEqual(resent.map(\.packetID), original.map(\.packetID))
        XCTAssertTrue(resent.allSatisfy(\.dup))
        await subscriber.close(); await publisher.close()
    }
}
