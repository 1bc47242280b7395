import MidgeBroker
import NIOCore
import NIOSSL

/// The NIO end of one client connection: bytes in go to the engine's `ClientConnection`, bytes
/// out come from it. Implements `ConnectionTransport`; everything runs on the channel's loop
/// (hence no dynamic exclusivity checks on its stored properties).
final class MQTTChannelHandler: ChannelInboundHandler, ConnectionTransport {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let broker: Broker
    private let policy: ListenerPolicy
    private let onClose: () -> Void
    @exclusivity(unchecked) private var context: ChannelHandlerContext?
    @exclusivity(unchecked) private var connection: ClientConnection?
    @exclusivity(unchecked) private(set) var remoteAddress = "unknown"
    let eventLoop: EventLoop
    @exclusivity(unchecked) var allocator: ByteBufferAllocator

    init(broker: Broker, policy: ListenerPolicy, eventLoop: EventLoop, allocator: ByteBufferAllocator, onClose: @escaping () -> Void) {
        self.broker = broker
        self.policy = policy
        self.eventLoop = eventLoop
        self.allocator = allocator
        self.onClose = onClose
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    /// Added to a channel that is already active (after a WebSocket upgrade): no channelActive
    /// will come, so the connection starts now.
    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    private func start(_ context: ChannelHandlerContext) {
        guard connection == nil, self.context == nil else { return }
        self.context = context
        remoteAddress = Self.describe(context.channel.remoteAddress, local: context.channel.localAddress)
        if broker.configuration.connectionMessages {
            broker.log.notice("New connection from \(remoteAddress) on port \(policy.port).")
        }
        connection = broker.makeConnection(transport: self, policy: policy)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection else { return }
        // What the read writes back to this connection is flushed at channelReadComplete.
        connection.readStarted()
        connection.receive(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        connection?.readComplete()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A read cut short by the close gets no channelReadComplete: flush its writes here.
        connection?.readComplete()
        connection?.transportClosed()
        connection = nil
        self.context = nil
        onClose()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { connection?.transportBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A read error comes instead of channelReadComplete.
        connection?.readComplete()
        if let connection, !connection.clientID.isEmpty {
            broker.log.notice("Socket error on client \(connection.clientID), disconnecting.")
        }
        context.close(promise: nil)
    }

    // MARK: ConnectionTransport

    var isWritable: Bool { context?.channel.isWritable ?? false }

    var tlsClientIdentity: TLSClientIdentity? { context.flatMap(TLSListenerContext.clientIdentity(of:)) }

    func write(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    /// Flushes, then shuts down our sending side only: closing outright while the peer is still
    /// sending makes the kernel answer with RST, which can destroy the DISCONNECT or CONNACK we
    /// just wrote before the peer reads it. Input that still arrives is ignored (the connection
    /// is closed in the engine) and the socket is closed when the peer closes, or after 2 s.
    func close() {
        guard let context else { return }
        context.flush()
        let channel = context.channel
        channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
        channel.eventLoop.scheduleTask(in: TransportPolicy.closeLinger) { channel.close(promise: nil) }
    }

    /// Closes the socket below any TLS handler: a handshake that never completed has no session to
    /// shut down, and NIOSSL would otherwise wait for it.
    func abort() {
        guard let context else { return }
        let below = try? context.pipeline.syncOperations.context(handlerType: NIOSSLServerHandler.self)
        (below ?? context).close(promise: nil)
    }

    /// `host:port` of the peer; a Unix-socket client is named after the listener's path with
    /// port 0, as Mosquitto does (its own address is unnamed).
    static func describe(_ address: SocketAddress?, local: SocketAddress? = nil) -> String {
        guard let address else { return "unknown" }
        switch address {
        case .v4, .v6:
            let host = address.ipAddress ?? "?"
            return "\(host):\(address.port ?? 0)"
        case .unixDomainSocket:
            let path = [local?.pathname, address.pathname].compactMap { $0 }.first { !$0.isEmpty } ?? "unix"
            return "\(path):0"
        }
    }
}
