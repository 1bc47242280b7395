import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Receive Maximum in both directions (spec 3.3.4) and Maximum Packet Size for PUBLISH.
final class PublishFlowControlConformanceTests: XCTestCase {
    // [MQTT-3.3.4-9] [MQTT-3.3.4-10]
    /// The broker never has more unacknowledged QoS 1/2 PUBLISHes towards a v5 client than the
    /// client's Receive Maximum; while the window is full it still answers PINGREQ, SUBSCRIBE and
    /// the client's own PUBLISHes at once, and each acknowledgement releases the next message.
    func testBrokerRespectsTheClientReceiveMaximum() async throws {
        let broker = try startBroker()
        let subscriber = try await connectClean(broker, "rm-sub", .v5, properties: .with(receiveMaximum: 2))
        try await subscribe(subscriber, "rm/t", qos: .exactlyOnce)
        let publisher = try await connectClean(broker, "rm-pub", .v5)
        for index in 1...5 { try await publisher.publish("rm/t", "\(index)", qos: index.isMultiple(of: 2) ? .exactlyOnce : .atLeastOnce,
                                                         packetID: UInt16(index)) }
        let window = try await subscriber.receivePublishes(2, acknowledge: false)
        XCTAssertEqual(window.map(\.text), ["1", "2"])
        await expectNothing(subscriber, for: 0.3, "window of 2 full")

        // Non-PUBLISH packets are not held back by the full window.
        try await subscriber.send(.pingreq)
        guard case .pingresp? = await expectPacket(subscriber, "PINGRESP") else { return XCTFail("no PINGRESP while the window is full") }
        try await subscribe(subscriber, "rm/other", qos: .atMostOnce, packetID: 9)
        try await subscriber.publish("rm/self", "mine", qos: .atLeastOnce, packetID: 50)

        // Acknowledging the QoS 1 message frees one slot; PUBREC alone keeps the QoS 2 one in flight.
        try await subscriber.send(.puback(PubAckPacket(packetID: window[0].packetID)))
        let third = try await subscriber.expectPublish()
        XCTAssertEqual(third.text, "3")
        try await subscriber.send(.pubrec(PubAckPacket(packetID: window[1].packetID)))
        _ = await bExpectAck(subscriber, "PUBREL")
        await expectNothing(subscriber, for: 0.3, "PUBREC'd but not PUBCOMP'd: still in flight")
        try await subscriber.send(.pubcomp(PubAckPacket(packetID: window[1].packetID)))
        try await subscriber.acknowledge(third)
        let rest = try await subscriber.receivePublishes(2)
        XCTAssertEqual(rest.map(\.text), ["4", "5"])
    }

    /// The client side of Receive Maximum (MQTT-3.3.4-7 binds the client): one QoS 2 PUBLISH
    /// beyond the broker's Receive Maximum gets DISCONNECT 0x93 Receive Maximum exceeded.
    func testClientExceedingTheBrokerReceiveMaximumGets0x93() async throws {
        let broker = try startBroker { $0.maxInflightMessages = 3 }
        let (client, connack) = try await connectAccepted(broker, "rm-in")
        XCTAssertEqual(connack.properties.receiveMaximum, 3)
        for id in UInt16(1)...3 {
            try await client.send(.publish(PublishPacket(topic: "rm/in", payload: ByteBuffer(text: "x"), qos: .exactlyOnce, packetID: id)))
            _ = await bExpectAck(client, "PUBREC")
        }
        try await client.send(.publish(PublishPacket(topic: "rm/in", payload: ByteBuffer(text: "x"), qos: .exactlyOnce, packetID: 4)))
        await expectDisconnect(client, reason: .receiveMaximumExceeded, "fourth unreleased QoS 2 PUBLISH")
        try await assertBrokerServes(broker, "after 0x93")
    }

    // [MQTT-3.1.2-24]
    /// Maximum Packet Size both ways: a PUBLISH above the broker's maximum gets DISCONNECT 0x95
    /// (3.1.1: closed); the broker never sends a client a PUBLISH above the client's maximum; it
    /// skips that message for that client and delivers the next one.
    func testPacketSizeLimitsOnPublish() async throws {
        let broker = try startBroker { $0.maxPacketSize = 64 }
        for version in messagingVersions {
            let big = rawPublish(flags: 0, topic: Array("mps/t".utf8), properties: version == .v5 ? [] : nil, payload: Array(repeating: 0x41, count: 80))
            try await expectRejectedAfterConnect(broker, version, big, v5Reason: .packetTooLarge, "PUBLISH of \(big.count) bytes")
        }
        var small = Properties()
        small.maximumPacketSize = 30
        let subscriber = try await connectClean(broker, "mps-sub", .v5, properties: small)
        try await subscribe(subscriber, "mps/#", qos: .atLeastOnce)
        let publisher = try await connectClean(broker, "mps-pub", .v5)
        try await publisher.publish("mps/t", String(repeating: "B", count: 40), qos: .atLeastOnce, packetID: 1)
        try await publisher.publish("mps/t", "fits", qos: .atLeastOnce, packetID: 2)
        let got = try await subscriber.receivePublishes(1)
        XCTAssertEqual(got.map(\.text), ["fits"], "the oversized message is skipped for this client only")
        try await assertBrokerServes(broker, "after oversized packets")
    }
}
