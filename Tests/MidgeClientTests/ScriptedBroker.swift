import MQTTCodec
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A scripted MQTT server for client tests: records every packet each connection sends and
/// answers as the test's `respond` closure says (nothing by default, so acknowledgements can
/// be withheld); `dropConnections()` closes every socket, as a crashing broker would.
final class ScriptedBroker: @unchecked Sendable {
    struct Received { let connection: Int; let packet: MQTTPacket }

    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private(set) var channel: Channel!
    private let lock = NIOLock()
    private var received: [Received] = []
    private var connections: [Channel] = []
    /// (connection index, packet) → packets to send back. Default: CONNACK for CONNECT only.
    var respond: @Sendable (Int, MQTTPacket) -> [MQTTPacket]
    let version: ProtocolVersion

    init(version: ProtocolVersion = .v5, connackProperties: Properties = .none, sessionPresentAfterFirst: Bool = true) throws {
        self.version = version
        respond = { index, packet in
            if case .connect = packet {
                return [.connack(ConnAckPacket(sessionPresent: sessionPresentAfterFirst && index > 0, properties: connackProperties))]
            }
            return []
        }
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [unowned self] channel in
                let index: Int = self.lock.withLock {
                    self.connections.append(channel)
                    return self.connections.count - 1
                }
                return channel.pipeline.addHandler(Handler(broker: self, index: index))
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    var port: Int { channel.localAddress!.port! }
    var packets: [Received] { lock.withLock { received } }
    var connectionCount: Int { lock.withLock { connections.count } }

    func publishes(onConnection index: Int? = nil) -> [PublishPacket] {
        packets.compactMap { item in
            guard index == nil || item.connection == index, case .publish(let publish) = item.packet else { return nil }
            return publish
        }
    }

    /// Sends packets to connection `index`.
    func send(_ packets: [MQTTPacket], toConnection index: Int) {
        let target = lock.withLock { connections[index] }
        for packet in packets {
            target.writeAndFlush(PacketEncoder.encode(packet, version: version), promise: nil)
        }
    }

    func dropConnections() {
        for connection in lock.withLock({ connections }) { connection.close(promise: nil) }
    }

    func shutdown() {
        dropConnections()
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    fileprivate func record(_ packet: MQTTPacket, from index: Int) -> [MQTTPacket] {
        lock.withLock { received.append(Received(connection: index, packet: packet)) }
        return respond(index, packet)
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let broker: ScriptedBroker
        let index: Int
        var stream = PacketStreamDecoder(PacketDecoder(protocolVersion: nil))

        init(broker: ScriptedBroker, index: Int) {
            self.broker = broker
            self.index = index
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            try? stream.decode(unwrapInboundIn(data)) { packet in
                for reply in broker.record(packet, from: index) {
                    context.writeAndFlush(wrapOutboundOut(PacketEncoder.encode(reply, version: broker.version)), promise: nil)
                }
                return true
            }
        }
    }
}
