import MidgeBroker
import MidgeEngineHarness
import MQTTCodec
import NIOCore
import XCTest

func bytes(_ string: String) -> ByteBuffer { ByteBuffer(string: string) }

extension HarnessClient {
    /// CONNECT and expect CONNACK 0 (returns it).
    @discardableResult
    func connectAccepted(_ id: String, version: ProtocolVersion = .v5, cleanStart: Bool = true, keepAlive: UInt16 = 0,
                         will: Will? = nil, properties: Properties = .none,
                         file: StaticString = #filePath, line: UInt = #line) -> ConnAckPacket? {
        send(.connect(ConnectPacket(protocolVersion: version, cleanStart: cleanStart, keepAlive: keepAlive, clientID: id,
                                    will: will, properties: properties)))
        let packets = receivedPackets()
        guard case .connack(let ack)? = packets.first else {
            XCTFail("expected CONNACK, got \(packets)", file: file, line: line)
            return nil
        }
        // What a resumed session sends after CONNACK is for the test to read.
        unread(Array(packets.dropFirst()))
        XCTAssertEqual(ack.reasonCode, .success, file: file, line: line)
        return ack
    }

    func subscribe(_ filter: String, qos: QoS = .atMostOnce, packetID: UInt16 = 1, file: StaticString = #filePath, line: UInt = #line) {
        send(.subscribe(SubscribePacket(packetID: packetID, subscriptions: [TopicSubscription(filter: filter, options: .init(qos: qos))])))
        let packets = receivedPackets()
        guard case .suback(let ack)? = packets.first else {
            XCTFail("expected SUBACK, got \(packets)", file: file, line: line)
            return
        }
        XCTAssertEqual(ack.packetID, packetID, file: file, line: line)
    }

    func publish(_ topic: String, _ payload: String, qos: QoS = .atMostOnce, retain: Bool = false, packetID: UInt16 = 0,
                 properties: Properties = .none) {
        send(.publish(PublishPacket(topic: topic, payload: bytes(payload), qos: qos, retain: retain, packetID: packetID, properties: properties)))
    }

    /// The PUBLISH packets among what arrived since the last read.
    func receivedPublishes() -> [PublishPacket] {
        receivedPackets().compactMap { if case .publish(let publish) = $0 { return publish } else { return nil } }
    }
}

extension PublishPacket {
    var payloadString: String { String(buffer: payload) }
}
