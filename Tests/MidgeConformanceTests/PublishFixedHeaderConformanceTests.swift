import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// The PUBLISH fixed header flags (spec 3.3.1): DUP and QoS, inbound and outbound.
final class PublishFixedHeaderConformanceTests: XCTestCase {
    // [MQTT-3.3.1-4] [3.1.1:MQTT-3.3.1-4]
    /// A PUBLISH with both QoS bits set is malformed: v5 gets DISCONNECT 0x81, 3.1.1 a bare close;
    /// it is not routed, and the broker keeps serving.
    func testQoS3PublishClosesTheConnection() async throws {
        let broker = try startBroker()
        let watcher = try await connectClean(broker, "qos3-watcher", .v5)
        try await subscribe(watcher, "qos3/#", qos: .atLeastOnce)
        for version in messagingVersions {
            try await expectRejectedAfterConnect(broker, version, rawPublish(version, flags: 0x06, topic: "qos3/t", packetID: 1), v5Reason: .malformedPacket,
                                                 "QoS 3 PUBLISH")
        }
        await expectNothing(watcher, for: 0.3, "a QoS 3 PUBLISH must not be routed")
        try await assertBrokerServes(broker, "after QoS 3 PUBLISH")
    }

    // [MQTT-3.3.1-2] [3.1.1:MQTT-3.3.1-2]
    /// DUP is always 0 on QoS 0: a QoS 0 PUBLISH with DUP 1 from a client is malformed (v5 0x81,
    /// 3.1.1 closed), and QoS 0 deliveries from the broker carry DUP 0.
    func testQoS0WithDupIsMalformed() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            try await expectRejectedAfterConnect(broker, version, rawPublish(version, flags: 0x08, topic: "dup0/t"), v5Reason: .malformedPacket,
                                                 "QoS 0 PUBLISH with DUP")
        }
        try await assertBrokerServes(broker, "after QoS 0 PUBLISH with DUP")
    }

    // [MQTT-3.3.1-3] [3.1.1:MQTT-3.3.1-3] [MQTT-3.3.1-2] [3.1.1:MQTT-3.3.1-2] [MQTT-4.3.1-1] [3.1.1:MQTT-4.3.1-1]
    // [MQTT-4.3.2-2] [MQTT-4.3.3-2] [3.1.1:MQTT-4.3.2-1] [3.1.1:MQTT-4.3.3-1]
    /// The DUP flag a publisher sets is not passed on: a first delivery goes out with DUP 0 at every
    /// QoS, even when the publisher's PUBLISH (a retransmission to the broker) had DUP 1.
    func testIncomingDupIsNotPropagated() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            var subscribers: [(QoS, PacketConnection)] = []
            for qos in QoS.all {
                let subscriber = try await connectClean(broker, "dup-sub-\(qos.rawValue)-\(version)", version)
                try await subscribe(subscriber, "dup/\(version)", qos: qos)
                subscribers.append((qos, subscriber))
            }
            let publisher = try await connectClean(broker, "dup-pub-\(version)", version)
            for publishedQoS in [QoS.atLeastOnce, .exactlyOnce] {
                try await publisher.send(.publish(PublishPacket(topic: "dup/\(version)", payload: ByteBuffer(text: "d"), qos: publishedQoS,
                                                                dup: true, packetID: 7)))
                if publishedQoS == .atLeastOnce {
                    _ = await bExpectAck(publisher, "PUBACK")
                } else {
                    _ = await bExpectAck(publisher, "PUBREC")
                    try await publisher.send(.pubrel(PubAckPacket(packetID: 7)))
                    _ = await bExpectAck(publisher, "PUBCOMP")
                }
                for (qos, subscriber) in subscribers {
                    guard let publish = await expectPublish(subscriber) else { continue }
                    let expected = QoS(rawValue: min(qos.rawValue, publishedQoS.rawValue))!
                    XCTAssertEqual(publish.qos, expected, "\(version): delivery QoS")
                    XCTAssertFalse(publish.dup, "\(version): first delivery at QoS \(expected.rawValue) has DUP 0 (published with DUP 1)")
                    if expected != .atMostOnce { XCTAssertNotEqual(publish.packetID, 0, "\(version): QoS > 0 delivery has a packet id") }
                    try await acknowledge(publish, on: subscriber)
                }
            }
        }
    }
}
