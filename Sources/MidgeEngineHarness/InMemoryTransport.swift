import MidgeBroker
import MQTTCodec
import NIOCore

/// A `ConnectionTransport` in memory: what the engine writes and flushes is what the peer
/// reads (`takeOutput`), and the peer's bytes are handed to the engine as network reads. It
/// keeps the transport contract the socket transports keep (`TransportContractTests`): nothing is
/// readable before `flush`, writes after `close` go nowhere, `close` flushes first and the
/// engine hears `transportClosed` once, on a later loop turn; `isWritable` is the test's to set.
public final class InMemoryTransport: ConnectionTransport {
    public let loop: VirtualEventLoop
    public let allocator = ByteBufferAllocator()
    public let remoteAddress: String
    public var tlsClientIdentity: TLSClientIdentity? { nil }

    /// The engine side, set by the harness once made.
    public internal(set) var connection: ClientConnection?
    private var unflushed: [ByteBuffer] = []
    /// Flushed bytes the peer has not read yet.
    private var output: ByteBuffer
    /// The protocol version the engine wrote in at its last flush (a refused CONNECT is
    /// answered in its own version, and the connection may be gone by the time the peer reads).
    public private(set) var writtenVersion: MQTTCodec.ProtocolVersion?
    /// The engine called `close()` (output shut down after the flush) or `abort()`.
    public private(set) var closedByEngine = false
    /// `transportClosed` was delivered to the engine.
    public private(set) var isClosed = false
    /// The engine reads this on every delivery; `setWritable(true)` tells it the peer drained.
    public private(set) var isWritable = true

    public var eventLoop: EventLoop { loop }

    init(loop: VirtualEventLoop, remoteAddress: String) {
        self.loop = loop
        self.remoteAddress = remoteAddress
        self.output = allocator.buffer(capacity: 0)
    }

    public func write(_ buffer: ByteBuffer) {
        loop.preconditionInEventLoop()
        guard !closedByEngine else { return }
        unflushed.append(buffer)
    }

    public func flush() {
        loop.preconditionInEventLoop()
        guard !unflushed.isEmpty else { return }
        if let connection { writtenVersion = connection.protocolVersion }
        for var buffer in unflushed { output.writeBuffer(&buffer) }
        unflushed.removeAll()
    }

    /// Flushes, shuts the output, and (as a peer that sees EOF and closes would make happen)
    /// reports the close to the engine on the next loop turn.
    public func close() {
        loop.preconditionInEventLoop()
        guard !closedByEngine else { return }
        flush()
        closedByEngine = true
        loop.execute { self.deliverClosed() }
    }

    public func abort() {
        loop.preconditionInEventLoop()
        guard !closedByEngine else { return }
        unflushed.removeAll()
        closedByEngine = true
        loop.execute { self.deliverClosed() }
    }

    // MARK: The peer's side (on the loop)

    func deliver(_ bytes: ByteBuffer) {
        guard !isClosed, !closedByEngine, let connection else { return }
        connection.readStarted()
        connection.receive(bytes)
        connection.readComplete()
    }

    func deliverClosed() {
        guard !isClosed else { return }
        isClosed = true
        closedByEngine = true
        if let connection {
            connection.readComplete()
            connection.transportClosed()
        }
        self.connection = nil
    }

    func setWritable(_ writable: Bool) {
        let became = writable && !isWritable
        isWritable = writable
        if became { connection?.transportBecameWritable() }
    }

    /// Everything flushed since the last call.
    func takeOutput() -> ByteBuffer {
        let taken = output
        output = allocator.buffer(capacity: 0)
        return taken
    }
}
