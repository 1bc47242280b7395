import MQTTCodec
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A packet-level MQTT connection: send any packet (or any bytes, well-formed or not) and read
/// the decoded packets that come back. The building block of the client library, and the raw
/// test client that checks a broker byte for byte.
public final class PacketConnection: @unchecked Sendable {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// Nothing arrived in time.
        case timeout
        /// The peer closed the connection.
        case closed
        /// The peer sent something that does not decode.
        case undecodable(MQTTCodecError)

        public var description: String {
            switch self {
            case .timeout: return "timed out waiting for a packet"
            case .closed: return "connection closed"
            case .undecodable(let error): return "undecodable packet from peer: \(error)"
            }
        }
    }

    public let channel: Channel
    private let handler: InboundPacketHandler
    /// The protocol version used to encode and decode; set by sending a CONNECT.
    public private(set) var version: ProtocolVersion

    private init(channel: Channel, handler: InboundPacketHandler, version: ProtocolVersion) {
        self.channel = channel
        self.handler = handler
        self.version = version
    }

    /// Opens a TCP connection (no MQTT traffic yet).
    public static func connect(host: String = "127.0.0.1", port: Int, version: ProtocolVersion = .v5,
                               group: EventLoopGroup) async throws -> PacketConnection {
        let handler = InboundPacketHandler(version: version)
        let channel = try await ClientBootstrap(group: group)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in channel.pipeline.addHandler(handler) }
            .connect(host: host, port: port).get()
        return PacketConnection(channel: channel, handler: handler, version: version)
    }

    /// Encodes and sends one packet (a CONNECT also sets the version used from then on).
    public func send(_ packet: MQTTPacket) async throws {
        if case .connect(let connect) = packet {
            version = connect.protocolVersion
            let newVersion = version
            try await channel.eventLoop.submit { self.handler.stream.decoder.protocolVersion = newVersion }.get()
        }
        let buffer = PacketEncoder.encode(packet, version: version, allocator: channel.allocator)
        try await channel.writeAndFlush(buffer).get()
    }

    /// Sends raw bytes.
    public func send(bytes: [UInt8]) async throws {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try await channel.writeAndFlush(buffer).get()
    }

    /// The next packet from the peer.
    public func receive(timeout: TimeAmount = .seconds(5)) async throws -> MQTTPacket {
        try await channel.eventLoop.flatSubmit { self.handler.next(timeout: timeout) }.get()
    }

    /// Raw bytes received and not yet decoded into packets are not kept; this returns all
    /// packets already received without waiting.
    public func drain() async throws -> [MQTTPacket] {
        try await channel.eventLoop.submit { self.handler.takeAll() }.get()
    }

    /// Waits until the peer closes the connection; returns the packets that arrived before.
    /// Throws `.timeout` if it stays open.
    public func waitForClose(timeout: TimeAmount = .seconds(5)) async throws -> [MQTTPacket] {
        var packets: [MQTTPacket] = []
        while true {
            do {
                packets.append(try await receive(timeout: timeout))
            } catch Failure.closed {
                return packets
            }
        }
    }

    public var isActive: Bool { channel.isActive }

    /// Closes the TCP connection without sending DISCONNECT.
    public func close() async {
        try? await channel.close().get()
    }

    /// Connects, sends CONNECT and returns the CONNACK (throws if something else arrives).
    public static func connectMQTT(port: Int, _ connect: ConnectPacket, group: EventLoopGroup,
                                   host: String = "127.0.0.1") async throws -> (PacketConnection, ConnAckPacket) {
        let connection = try await PacketConnection.connect(host: host, port: port, version: connect.protocolVersion, group: group)
        try await connection.send(.connect(connect))
        let reply = try await connection.receive()
        guard case .connack(let connack) = reply else {
            throw Failure.undecodable(.protocolError("expected CONNACK, got \(reply.type)"))
        }
        return (connection, connack)
    }
}

/// Decodes inbound bytes into packets and hands them to waiting readers. Loop-confined.
final class InboundPacketHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    var stream: PacketStreamDecoder
    private var packets: [MQTTPacket] = []
    private var waiters: [(promise: EventLoopPromise<MQTTPacket>, timeout: Scheduled<Void>?)] = []
    private var failure: PacketConnection.Failure?
    private var eventLoop: EventLoop?

    init(version: ProtocolVersion) {
        stream = PacketStreamDecoder(PacketDecoder(protocolVersion: version))
    }

    func handlerAdded(context: ChannelHandlerContext) { eventLoop = context.eventLoop }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try stream.decode(unwrapInboundIn(data)) { packet in
                deliver(packet)
                return true
            }
        } catch let error as MQTTCodecError {
            fail(.undecodable(error))
            context.close(promise: nil)
        } catch {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if failure == nil { fail(.closed) }
    }

    private func deliver(_ packet: MQTTPacket) {
        if !waiters.isEmpty {
            let waiter = waiters.removeFirst()
            waiter.timeout?.cancel()
            waiter.promise.succeed(packet)
        } else {
            packets.append(packet)
        }
    }

    private func fail(_ error: PacketConnection.Failure) {
        failure = error
        let pending = waiters
        waiters = []
        for waiter in pending {
            waiter.timeout?.cancel()
            waiter.promise.fail(error)
        }
    }

    func takeAll() -> [MQTTPacket] {
        let all = packets
        packets = []
        return all
    }

    func next(timeout: TimeAmount) -> EventLoopFuture<MQTTPacket> {
        let loop = eventLoop!
        if !packets.isEmpty { return loop.makeSucceededFuture(packets.removeFirst()) }
        if let failure { return loop.makeFailedFuture(failure) }
        let promise = loop.makePromise(of: MQTTPacket.self)
        let scheduled = loop.scheduleTask(in: timeout) { [weak self] in
            guard let self else { return }
            if let index = self.waiters.firstIndex(where: { $0.promise.futureResult === promise.futureResult }) {
                self.waiters.remove(at: index)
                promise.fail(PacketConnection.Failure.timeout)
            }
        }
        waiters.append((promise, scheduled))
        return promise.futureResult
    }
}
