import MQTTCodec
import MidgeClient
import NIOCore
import XCTest

/// A test failure raised from inside a helper (an unexpected packet, a missing one).
public struct FlowError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension PacketConnection {
    // MARK: Subscribing

    /// Sends one SUBSCRIBE and returns its SUBACK (checking the packet id).
    @discardableResult
    public func subscribe(_ subscriptions: [TopicSubscription], packetID: UInt16 = 1, subscriptionID: Int? = nil,
                          file: StaticString = #filePath, line: UInt = #line) async throws -> SubAckPacket {
        var properties = Properties()
        if let subscriptionID { properties.subscriptionIdentifiers = [subscriptionID] }
        try await send(.subscribe(SubscribePacket(packetID: packetID, subscriptions: subscriptions, properties: properties)))
        let reply = try await receive()
        guard case .suback(let suback) = reply else { throw FlowError("expected SUBACK, got \(reply)") }
        XCTAssertEqual(suback.packetID, packetID, "SUBACK packet id", file: file, line: line)
        return suback
    }

    /// Subscribes to one filter at `qos` and checks the subscription was granted at that QoS.
    public func subscribe(_ filter: String, qos: QoS = .atMostOnce, options: SubscriptionOptions? = nil, subscriptionID: Int? = nil,
                          file: StaticString = #filePath, line: UInt = #line) async throws {
        let options = options ?? SubscriptionOptions(qos: qos)
        let suback = try await subscribe([TopicSubscription(filter: filter, options: options)], subscriptionID: subscriptionID,
                                         file: file, line: line)
        XCTAssertEqual(suback.reasonCodes, [ReasonCode(rawValue: options.qos.rawValue)], "SUBACK for \(filter)", file: file, line: line)
    }

    /// Sends one UNSUBSCRIBE and returns its UNSUBACK.
    @discardableResult
    public func unsubscribe(_ filters: [String], packetID: UInt16 = 2) async throws -> UnsubAckPacket {
        try await send(.unsubscribe(UnsubscribePacket(packetID: packetID, filters: filters)))
        let reply = try await receive()
        guard case .unsuback(let unsuback) = reply else { throw FlowError("expected UNSUBACK, got \(reply)") }
        guard unsuback.packetID == packetID else { throw FlowError("UNSUBACK for packet id \(unsuback.packetID), expected \(packetID)") }
        return unsuback
    }

    // MARK: Publishing

    /// Publishes and completes the sender side of the QoS flow (PUBACK, or PUBREC → PUBREL →
    /// PUBCOMP). Returns the reason code of the PUBACK / PUBREC (nil for QoS 0). The next packets
    /// from the broker must be the acknowledgements.
    @discardableResult
    public func publish(_ topic: String, _ payload: String, qos: QoS = .atMostOnce, retain: Bool = false, packetID: UInt16 = 1,
                 properties: Properties = .none) async throws -> ReasonCode? {
        try await publish(topic, payload: ByteBuffer(string: payload), qos: qos, retain: retain, packetID: packetID, properties: properties)
    }

    @discardableResult
    public func publish(_ topic: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false, packetID: UInt16 = 1,
                 properties: Properties = .none) async throws -> ReasonCode? {
        let id = qos == .atMostOnce ? 0 : packetID
        try await send(.publish(PublishPacket(topic: topic, payload: payload, qos: qos, retain: retain, packetID: id, properties: properties)))
        switch qos {
        case .atMostOnce:
            return nil
        case .atLeastOnce:
            let reply = try await receive()
            guard case .puback(let ack) = reply, ack.packetID == id else { throw FlowError("expected PUBACK \(id), got \(reply)") }
            return ack.reasonCode
        case .exactlyOnce:
            let reply = try await receive()
            guard case .pubrec(let rec) = reply, rec.packetID == id else { throw FlowError("expected PUBREC \(id), got \(reply)") }
            if !rec.reasonCode.isSuccess { return rec.reasonCode }
            try await send(.pubrel(PubAckPacket(packetID: id)))
            let completion = try await receive()
            guard case .pubcomp(let comp) = completion, comp.packetID == id else { throw FlowError("expected PUBCOMP \(id), got \(completion)") }
            return rec.reasonCode
        }
    }

    // MARK: Receiving

    /// The next packet, which must be a PUBLISH.
    public func expectPublish(timeout: TimeAmount = .seconds(5)) async throws -> PublishPacket {
        let packet = try await receive(timeout: timeout)
        guard case .publish(let publish) = packet else { throw FlowError("expected PUBLISH, got \(packet)") }
        return publish
    }

    /// Asserts that nothing arrives within `interval` (use sparingly: it costs wall time).
    public func expectSilence(for interval: TimeAmount = .milliseconds(200), _ message: String = "",
                       file: StaticString = #filePath, line: UInt = #line) async throws {
        do {
            let packet = try await receive(timeout: interval)
            XCTFail("expected nothing \(message), got \(packet)", file: file, line: line)
        } catch PacketConnection.Failure.timeout {
            return
        }
    }

    /// Acknowledges a received PUBLISH as a subscriber: PUBACK for QoS 1; PUBREC, the PUBREL
    /// (which must be the next packet) and PUBCOMP for QoS 2.
    public func acknowledge(_ publish: PublishPacket) async throws {
        switch publish.qos {
        case .atMostOnce:
            return
        case .atLeastOnce:
            try await send(.puback(PubAckPacket(packetID: publish.packetID)))
        case .exactlyOnce:
            try await send(.pubrec(PubAckPacket(packetID: publish.packetID)))
            let reply = try await receive()
            guard case .pubrel(let rel) = reply, rel.packetID == publish.packetID else {
                throw FlowError("expected PUBREL \(publish.packetID), got \(reply)")
            }
            try await send(.pubcomp(PubAckPacket(packetID: publish.packetID)))
        }
    }

    /// Receives `count` PUBLISH packets, acknowledging each at once (PUBACK / PUBREC, then PUBCOMP
    /// for each PUBREL that comes back) when `acknowledge` is true; returns them in arrival order
    /// once every QoS 2 flow has completed. Any other packet is an error.
    public func receivePublishes(_ count: Int, acknowledge: Bool = true, timeout: TimeAmount = .seconds(5)) async throws -> [PublishPacket] {
        var received: [PublishPacket] = []
        var awaitingRelease: Set<UInt16> = []
        while received.count < count || !awaitingRelease.isEmpty {
            let packet = try await receive(timeout: timeout)
            switch packet {
            case .publish(let publish):
                received.append(publish)
                guard acknowledge else { continue }
                if publish.qos == .atLeastOnce {
                    try await send(.puback(PubAckPacket(packetID: publish.packetID)))
                } else if publish.qos == .exactlyOnce {
                    awaitingRelease.insert(publish.packetID)
                    try await send(.pubrec(PubAckPacket(packetID: publish.packetID)))
                }
            case .pubrel(let rel) where awaitingRelease.contains(rel.packetID):
                awaitingRelease.remove(rel.packetID)
                try await send(.pubcomp(PubAckPacket(packetID: rel.packetID)))
            default:
                throw FlowError("unexpected \(packet) after \(received.count) of \(count) PUBLISH packets")
            }
        }
        return received
    }

    /// Receives (and acknowledges) PUBLISH packets until one on `marker` arrives; returns those
    /// before it. Lets a test prove that something was *not* delivered without waiting: publish
    /// the marker after it from the same client, so it is routed after it.
    public func publishesBefore(marker: String, timeout: TimeAmount = .seconds(5)) async throws -> [PublishPacket] {
        var received: [PublishPacket] = []
        var awaitingRelease: Set<UInt16> = []
        var sawMarker = false
        while !sawMarker || !awaitingRelease.isEmpty {
            let packet = try await receive(timeout: timeout)
            switch packet {
            case .publish(let publish):
                if publish.qos == .atLeastOnce {
                    try await send(.puback(PubAckPacket(packetID: publish.packetID)))
                } else if publish.qos == .exactlyOnce {
                    awaitingRelease.insert(publish.packetID)
                    try await send(.pubrec(PubAckPacket(packetID: publish.packetID)))
                }
                if publish.topic == marker { sawMarker = true } else { received.append(publish) }
            case .pubrel(let rel) where awaitingRelease.contains(rel.packetID):
                awaitingRelease.remove(rel.packetID)
                try await send(.pubcomp(PubAckPacket(packetID: rel.packetID)))
            default:
                throw FlowError("unexpected \(packet) while waiting for marker \(marker)")
            }
        }
        return received
    }

    /// Sends DISCONNECT and waits until the broker has closed the connection (by then it has
    /// finished with the session: the next message routed to it finds it offline).
    public func disconnect(_ packet: DisconnectPacket = DisconnectPacket()) async throws {
        try await send(.disconnect(packet))
        _ = try await waitForClose()
    }
}

extension PublishPacket {
    public var text: String { payload.getString(at: payload.readerIndex, length: payload.readableBytes) ?? "" }
}
