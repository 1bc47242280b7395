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
        // Retained messages follow the SUBACK: they are for the test to read.
        unread(Array(packets.dropFirst()))
    }

    func publish(_ topic: String, _ payload: String, qos: QoS = .atMostOnce, retain: Bool = false, packetID: UInt16 = 0,
                 properties: Properties = .none) {
        send(.publish(PublishPacket(topic: topic, payload: bytes(payload), qos: qos, retain: retain, packetID: packetID, properties: properties)))
    }

    /// The PUBLISH packets among what arrived since the last read.
    func receivedPublishes() -> [PublishPacket] {
        receivedPackets().compactMap { if case .publish(let publish) = $0 { return publish } else { return nil } }
    }

    /// DISCONNECT (normal by default); the broker closes the connection.
    func disconnect(_ packet: DisconnectPacket = DisconnectPacket(), file: StaticString = #filePath, line: UInt = #line) {
        send(.disconnect(packet))
        XCTAssertTrue(isClosed, "the broker did not close the connection after DISCONNECT", file: file, line: line)
    }

    /// PUBACK for a QoS 1 PUBLISH (nothing for QoS 0).
    func acknowledge(_ publish: PublishPacket) {
        guard publish.qos == .atLeastOnce else { return }
        send(.puback(PubAckPacket(packetID: publish.packetID)))
    }
}

extension EngineHarness {
    /// Moves the clock on in `step`s until every client in `clients` is closed (or `limit` has
    /// passed) and returns, per client, the seconds from `start` (default: now) to the step that
    /// saw it closed (nil: still open at the limit). Exact to `step` on the virtual clock.
    func closeTimes(_ clients: [HarnessClient], since start: NIODeadline? = nil, step: TimeAmount = .milliseconds(10),
                    limit: TimeAmount = .seconds(30)) -> [Double?] {
        let start = start ?? now
        var times: [Double?] = Array(repeating: nil, count: clients.count)
        while true {
            for (index, client) in clients.enumerated() where times[index] == nil && client.isClosed {
                times[index] = Double((now - start).nanoseconds) / 1e9
            }
            guard times.contains(where: { $0 == nil }), now - start < limit else { return times }
            advance(by: step)
        }
    }
}

/// A CONNECT's bytes, encoded in `version` (for tests that compare raw bytes).
func connectBytes(_ clientID: String, _ version: ProtocolVersion, cleanStart: Bool = true, keepAlive: UInt16 = 60,
                  properties: Properties = .none) -> [UInt8] {
    var buffer = ByteBufferAllocator().buffer(capacity: 64)
    PacketEncoder.encode(.connect(ConnectPacket(protocolVersion: version, cleanStart: cleanStart, keepAlive: keepAlive,
                                                clientID: clientID, properties: properties)),
                         version: version, into: &buffer)
    return buffer.readBytes(length: buffer.readableBytes) ?? []
}

/// Properties with just a Session Expiry Interval.
func sessionExpiry(_ seconds: UInt32?) -> Properties {
    var properties = Properties.none
    properties.sessionExpiryInterval = seconds
    return properties
}

/// Properties with just a Message Expiry Interval.
func messageExpiry(_ seconds: UInt32?) -> Properties {
    var properties = Properties.none
    properties.messageExpiryInterval = seconds
    return properties
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")
}

extension PublishPacket {
    var payloadString: String { String(buffer: payload) }
}
