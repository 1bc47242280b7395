import Foundation
import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestSupport
import NIOCore
import NIOPosix
import XCTest

// Shared helpers of the conformance tests (copied from MidgeConnectionTests): a broker per test,
// expectations with short timeouts, and a raw byte-level client for byte-exact checks.

extension XCTestCase {
    /// A broker on a free port, shut down when the test ends.
    func startBroker(allowAnonymous: Bool = true, _ configure: (inout BrokerConfiguration) -> Void = { _ in }) throws -> TestBroker {
        let broker = try TestBroker(configure, allowAnonymous: allowAnonymous)
        addTeardownBlock { broker.shutdown() }
        return broker
    }

    /// The next packet, or nil (with a failure) when none arrives in time or the connection closes.
    func expectPacket(_ connection: PacketConnection, within seconds: Double = 5, _ what: String = "a packet",
                      file: StaticString = #filePath, line: UInt = #line) async -> MQTTPacket? {
        do {
            return try await connection.receive(timeout: .milliseconds(Int64(seconds * 1000)))
        } catch {
            XCTFail("expected \(what), got \(error)", file: file, line: line)
            return nil
        }
    }

    /// The next packet, which must be a PUBLISH.
    func expectPublish(_ connection: PacketConnection, within seconds: Double = 5,
                       file: StaticString = #filePath, line: UInt = #line) async -> PublishPacket? {
        guard let packet = await expectPacket(connection, within: seconds, "PUBLISH", file: file, line: line) else { return nil }
        guard case .publish(let publish) = packet else {
            XCTFail("expected PUBLISH, got \(packet)", file: file, line: line)
            return nil
        }
        return publish
    }

    /// Asserts that nothing arrives for `seconds` (and the connection stays open unless `allowClose`).
    func expectNothing(_ connection: PacketConnection, for seconds: Double, _ why: String = "",
                       file: StaticString = #filePath, line: UInt = #line) async {
        do {
            let packet = try await connection.receive(timeout: .milliseconds(Int64(seconds * 1000)))
            XCTFail("expected nothing \(why), got \(packet)", file: file, line: line)
        } catch PacketConnection.Failure.timeout {
            // As expected.
        } catch {
            XCTFail("expected the connection to stay open \(why), got \(error)", file: file, line: line)
        }
    }

    /// Waits for the broker to close `connection`; returns what arrived before. Fails when it stays open.
    @discardableResult
    func expectClose(_ connection: PacketConnection, within seconds: Double = 5,
                     file: StaticString = #filePath, line: UInt = #line) async -> [MQTTPacket] {
        var packets: [MQTTPacket] = []
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else {
                XCTFail("connection still open after \(seconds) s (received \(packets))", file: file, line: line)
                return packets
            }
            do {
                packets.append(try await connection.receive(timeout: .milliseconds(Int64(left * 1000) + 1)))
            } catch PacketConnection.Failure.closed {
                return packets
            } catch PacketConnection.Failure.timeout {
                continue
            } catch {
                XCTFail("unexpected error while waiting for close: \(error)", file: file, line: line)
                return packets
            }
        }
    }

    /// Asserts that the broker closes the connection after (optionally) a v5 DISCONNECT with `reason`;
    /// with `reason` nil, nothing at all may arrive before the close (the v3 behaviour).
    func expectDisconnect(_ connection: PacketConnection, reason: ReasonCode?, within seconds: Double = 5, _ context: String = "",
                          file: StaticString = #filePath, line: UInt = #line) async {
        let packets = await expectClose(connection, within: seconds, file: file, line: line)
        guard let reason else {
            XCTAssertEqual(packets, [], "no packet may precede the close \(context)", file: file, line: line)
            return
        }
        guard packets.count == 1, case .disconnect(let disconnect) = packets[0] else {
            XCTFail("expected exactly one DISCONNECT \(reason) before the close \(context), got \(packets)", file: file, line: line)
            return
        }
        XCTAssertEqual(disconnect.reasonCode, reason, "DISCONNECT reason \(context)", file: file, line: line)
    }

    /// Subscribes and checks the SUBACK grants `qos`.
    func subscribe(_ connection: PacketConnection, _ filter: String, qos: QoS = .atLeastOnce, packetID: UInt16 = 1,
                   file: StaticString = #filePath, line: UInt = #line) async throws {
        try await connection.send(.subscribe(SubscribePacket(packetID: packetID, subscriptions: [
            TopicSubscription(filter: filter, options: SubscriptionOptions(qos: qos)),
        ])))
        guard let packet = await expectPacket(connection, "SUBACK", file: file, line: line) else { return }
        guard case .suback(let suback) = packet else { return XCTFail("expected SUBACK, got \(packet)", file: file, line: line) }
        XCTAssertEqual(suback.packetID, packetID, file: file, line: line)
        XCTAssertEqual(suback.reasonCodes, [ReasonCode(rawValue: qos.rawValue)], file: file, line: line)
    }

    /// Publishes and completes the QoS flow as a sender.
    func publish(_ connection: PacketConnection, _ topic: String, _ payload: String, qos: QoS = .atMostOnce, retain: Bool = false,
                 packetID: UInt16 = 100, file: StaticString = #filePath, line: UInt = #line) async throws {
        try await connection.send(.publish(PublishPacket(topic: topic, payload: ByteBuffer(text: payload), qos: qos, retain: retain,
                                                         packetID: qos == .atMostOnce ? 0 : packetID)))
        switch qos {
        case .atMostOnce: break
        case .atLeastOnce:
            guard let packet = await expectPacket(connection, "PUBACK", file: file, line: line) else { return }
            guard case .puback = packet else { return XCTFail("expected PUBACK, got \(packet)", file: file, line: line) }
        case .exactlyOnce:
            guard let packet = await expectPacket(connection, "PUBREC", file: file, line: line) else { return }
            guard case .pubrec = packet else { return XCTFail("expected PUBREC, got \(packet)", file: file, line: line) }
            try await connection.send(.pubrel(PubAckPacket(packetID: packetID)))
            guard let done = await expectPacket(connection, "PUBCOMP", file: file, line: line) else { return }
            guard case .pubcomp = done else { return XCTFail("expected PUBCOMP, got \(done)", file: file, line: line) }
        }
    }

    /// Acknowledges a received PUBLISH as a receiver (PUBACK, or PUBREC/PUBREL/PUBCOMP).
    func acknowledge(_ publish: PublishPacket, on connection: PacketConnection,
                     file: StaticString = #filePath, line: UInt = #line) async throws {
        switch publish.qos {
        case .atMostOnce: break
        case .atLeastOnce: try await connection.send(.puback(PubAckPacket(packetID: publish.packetID)))
        case .exactlyOnce:
            try await connection.send(.pubrec(PubAckPacket(packetID: publish.packetID)))
            guard let packet = await expectPacket(connection, "PUBREL", file: file, line: line) else { return }
            guard case .pubrel = packet else { return XCTFail("expected PUBREL, got \(packet)", file: file, line: line) }
            try await connection.send(.pubcomp(PubAckPacket(packetID: publish.packetID)))
        }
    }

    /// Sends DISCONNECT (normal) and waits for the broker to close.
    func disconnect(_ connection: PacketConnection, _ packet: DisconnectPacket = DisconnectPacket(),
                    file: StaticString = #filePath, line: UInt = #line) async throws {
        try await connection.send(.disconnect(packet))
        let packets = await expectClose(connection, within: 3, file: file, line: line)
        XCTAssertEqual(packets, [], "nothing expected after a client DISCONNECT", file: file, line: line)
    }

    /// Connects and fails unless the CONNACK accepts the connection.
    func connectAccepted(_ broker: TestBroker, _ clientID: String, version: ProtocolVersion = .v5, cleanStart: Bool = true,
                         keepAlive: UInt16 = 60, will: Will? = nil, username: String? = nil, sessionExpiry: UInt32? = nil,
                         properties: Properties = .none,
                         file: StaticString = #filePath, line: UInt = #line) async throws -> (PacketConnection, ConnAckPacket) {
        var properties = properties
        if let sessionExpiry { properties.sessionExpiryInterval = sessionExpiry }
        let (connection, connack) = try await broker.connect(clientID, version: version, cleanStart: cleanStart, keepAlive: keepAlive,
                                                             will: will, username: username, properties: properties)
        XCTAssertEqual(connack.reasonCode, .success, "CONNACK for \(clientID) (\(version))", file: file, line: line)
        return (connection, connack)
    }

    /// A fresh v5 client can still connect, subscribe and get its own QoS 1 message back: the broker
    /// survived whatever the test did to it.
    func assertBrokerServes(_ broker: TestBroker, _ context: String = "",
                            file: StaticString = #filePath, line: UInt = #line) async throws {
        let id = "alive-\(UUID().uuidString.prefix(8))"
        let (probe, connack) = try await broker.connect(id)
        XCTAssertEqual(connack.reasonCode, .success, "broker refused a fresh client \(context)", file: file, line: line)
        try await subscribe(probe, "alive/\(id)", qos: .atLeastOnce, file: file, line: line)
        try await probe.send(.publish(PublishPacket(topic: "alive/\(id)", payload: ByteBuffer(text: "ok"), qos: .atLeastOnce, packetID: 9)))
        var sawPublish = false, sawAck = false
        for _ in 0..<2 {
            guard let packet = await expectPacket(probe, within: 3, "PUBLISH/PUBACK from a healthy broker \(context)", file: file, line: line) else { break }
            switch packet {
            case .publish(let publish):
                XCTAssertEqual(publish.payload.text, "ok", file: file, line: line)
                sawPublish = true
                try await probe.send(.puback(PubAckPacket(packetID: publish.packetID)))
            case .puback: sawAck = true
            default: XCTFail("unexpected \(packet) \(context)", file: file, line: line)
            }
        }
        XCTAssertTrue(sawPublish && sawAck, "broker did not serve a fresh client \(context)", file: file, line: line)
        await probe.close()
    }

    /// Polls `condition` every 20 ms until true or `seconds` pass.
    func eventually(within seconds: Double = 3, _ what: String, file: StaticString = #filePath, line: UInt = #line,
                    _ condition: () -> Bool) async {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        XCTAssertTrue(condition(), what, file: file, line: line)
    }
}

/// Properties with a Session Expiry Interval (v5).
func sessionExpiry(_ seconds: UInt32) -> Properties {
    var properties = Properties()
    properties.sessionExpiryInterval = seconds
    return properties
}

/// The bytes `packet` encodes to for `version`.
func encoded(_ packet: MQTTPacket, _ version: ProtocolVersion) -> [UInt8] {
    let buffer = PacketEncoder.encode(packet, version: version)
    return buffer.getBytes(at: buffer.readerIndex, length: buffer.readableBytes) ?? []
}

/// A valid CONNECT's bytes for `version`.
func connectBytes(_ clientID: String, _ version: ProtocolVersion, cleanStart: Bool = true, keepAlive: UInt16 = 60,
                  will: Will? = nil, username: String? = nil, properties: Properties = .none) -> [UInt8] {
    encoded(.connect(ConnectPacket(protocolVersion: version, cleanStart: cleanStart, keepAlive: keepAlive, clientID: clientID,
                                   will: will, username: username, properties: properties)), version)
}

/// Index of the Connect Flags byte in a CONNECT whose remaining length is below 128.
func connectFlagsIndex(_ version: ProtocolVersion) -> Int {
    2 + version.protocolName.mqttEncodedLength + 1
}

/// A TCP client that sends and receives raw bytes: for checking the broker's output byte for byte
/// and for sending what a well-behaved encoder never would.
final class RawConnection: @unchecked Sendable {
    private final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let lock = NSLock()
        var bytes: [UInt8] = []
        var closed = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            lock.lock()
            bytes.append(contentsOf: buffer.readableBytesView)
            lock.unlock()
        }

        func channelInactive(context: ChannelHandlerContext) {
            lock.lock()
            closed = true
            lock.unlock()
        }
    }

    let channel: Channel
    private let collector: Collector

    private init(channel: Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    static func connect(_ broker: TestBroker) async throws -> RawConnection {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: broker.clientGroup)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { $0.pipeline.addHandler(collector) }
            .connect(host: "127.0.0.1", port: broker.port).get()
        return RawConnection(channel: channel, collector: collector)
    }

    func send(_ bytes: [UInt8]) async throws {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try await channel.writeAndFlush(buffer).get()
    }

    private func snapshot() -> (bytes: [UInt8], closed: Bool) {
        collector.lock.lock()
        defer { collector.lock.unlock() }
        return (collector.bytes, collector.closed)
    }

    private func consume(_ count: Int) -> [UInt8] {
        collector.lock.lock()
        defer { collector.lock.unlock() }
        let taken = Array(collector.bytes.prefix(count))
        collector.bytes.removeFirst(taken.count)
        return taken
    }

    /// The bytes of the next complete MQTT packet, or nil if the connection closes or nothing
    /// complete arrives in time.
    func readPacket(timeout seconds: Double = 5) async -> [UInt8]? {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let (bytes, closed) = snapshot()
            if let length = Self.completePacketLength(bytes) { return consume(length) }
            if closed || Date() >= deadline { return nil }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    /// Everything received until the peer closes; `closed` is false if it stayed open for `seconds`.
    func readUntilClose(timeout seconds: Double = 5) async -> (bytes: [UInt8], closed: Bool) {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let (_, closed) = snapshot()
            if closed || Date() >= deadline { return (consume(Int.max), closed) }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    func close() async {
        try? await channel.close().get()
    }

    /// Length of the first complete packet in `bytes`, if there is one.
    static func completePacketLength(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        var value = 0, multiplier = 1, index = 1
        while true {
            guard index < bytes.count, index <= 4 else { return nil }
            let byte = bytes[index]
            value += Int(byte & 0x7F) * multiplier
            index += 1
            if byte & 0x80 == 0 { break }
            multiplier *= 128
        }
        return bytes.count >= index + value ? index + value : nil
    }
}

/// Hex rendering for readable failure messages.
func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined(separator: " ") }

// MARK: Raw packet builders

/// A UTF-8 Encoded String (two-byte length, then the bytes).
func mqttString(_ string: String) -> [UInt8] { mqttBinary(Array(string.utf8)) }

/// Binary Data / a string given as raw bytes (two-byte length, then the bytes).
func mqttBinary(_ bytes: [UInt8]) -> [UInt8] { [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes }

/// A Variable Byte Integer.
func variableByteInteger(_ value: Int) -> [UInt8] {
    var remaining = value
    var bytes: [UInt8] = []
    repeat {
        var byte = UInt8(remaining & 0x7F)
        remaining >>= 7
        if remaining > 0 { byte |= 0x80 }
        bytes.append(byte)
    } while remaining > 0
    return bytes
}

/// A packet from its first byte and body (the remaining length is computed).
func rawPacket(_ first: UInt8, _ body: [UInt8]) -> [UInt8] { [first] + variableByteInteger(body.count) + body }

/// v5 properties with their length prefix.
func rawProperties(_ bytes: [UInt8]) -> [UInt8] { variableByteInteger(bytes.count) + bytes }

/// A CONNECT built field by field; `properties` are the v5 property bytes without their length
/// (nil: no property section, as in v3), `payload` everything after (client id, will, ...).
func rawConnect(name: String = "MQTT", level: UInt8 = 5, flags: UInt8 = 0x02, keepAlive: UInt16 = 60,
                properties: [UInt8]? = [], payload: [UInt8]) -> [UInt8] {
    var body = mqttString(name) + [level, flags, UInt8(keepAlive >> 8), UInt8(keepAlive & 0xFF)]
    if let properties { body += rawProperties(properties) }
    return rawPacket(0x10, body + payload)
}
