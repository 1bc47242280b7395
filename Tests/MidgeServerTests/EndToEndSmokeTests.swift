import MQTTCodec
import MidgeClient
import MidgeTestSupport
import NIOCore
import XCTest

/// The thinnest end-to-end path over real sockets: CONNECT → SUBSCRIBE → PUBLISH → delivery,
/// for every protocol version and QoS.
final class EndToEndSmokeTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try TestBroker() }
    override func tearDown() { broker.shutdown() }

    func testPublishReachesSubscriberInEveryVersionAndQoS() async throws {
        for version in [ProtocolVersion.v3_1, .v3_1_1, .v5] {
            for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
                let (subscriber, subAck) = try await broker.connect("sub-\(version.rawValue)-\(qos.rawValue)", version: version)
                XCTAssertEqual(subAck.reasonCode, .success)
                try await subscriber.send(.subscribe(SubscribePacket(packetID: 1, subscriptions: [
                    TopicSubscription(filter: "smoke/\(version.rawValue)/+", options: SubscriptionOptions(qos: qos)),
                ])))
                guard case .suback(let suback) = try await subscriber.receive() else { return XCTFail("no SUBACK") }
                XCTAssertEqual(suback.reasonCodes, [ReasonCode(rawValue: qos.rawValue)])

                let (publisher, _) = try await broker.connect("pub-\(version.rawValue)-\(qos.rawValue)", version: version)
                try await publisher.send(.publish(PublishPacket(topic: "smoke/\(version.rawValue)/x", payload: ByteBuffer(text: "hello"),
                                                                qos: qos, packetID: qos == .atMostOnce ? 0 : 7)))
                switch qos {
                case .atMostOnce: break
                case .atLeastOnce:
                    guard case .puback(let ack) = try await publisher.receive() else { return XCTFail("no PUBACK") }
                    XCTAssertEqual(ack.packetID, 7)
                case .exactlyOnce:
                    guard case .pubrec(let rec) = try await publisher.receive() else { return XCTFail("no PUBREC") }
                    XCTAssertEqual(rec.packetID, 7)
                    try await publisher.send(.pubrel(PubAckPacket(packetID: 7)))
                    guard case .pubcomp = try await publisher.receive() else { return XCTFail("no PUBCOMP") }
                }
                guard case .publish(let delivered) = try await subscriber.receive() else { return XCTFail("no PUBLISH") }
                XCTAssertEqual(delivered.topic, "smoke/\(version.rawValue)/x")
                XCTAssertEqual(delivered.payload.text, "hello")
                XCTAssertEqual(delivered.qos, qos)
                XCTAssertFalse(delivered.retain)
                if qos == .atLeastOnce {
                    try await subscriber.send(.puback(PubAckPacket(packetID: delivered.packetID)))
                } else if qos == .exactlyOnce {
                    try await subscriber.send(.pubrec(PubAckPacket(packetID: delivered.packetID)))
                    guard case .pubrel(let rel) = try await subscriber.receive() else { return XCTFail("no PUBREL") }
                    XCTAssertEqual(rel.packetID, delivered.packetID)
                    try await subscriber.send(.pubcomp(PubAckPacket(packetID: delivered.packetID)))
                }
                try await publisher.send(.disconnect(DisconnectPacket()))
                try await subscriber.send(.disconnect(DisconnectPacket()))
                _ = try await subscriber.waitForClose()
            }
        }
    }
}
