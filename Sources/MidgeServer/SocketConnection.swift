#if os(Linux)
import Glibc
import MidgeBroker
import MidgeReactor
import NIOCore

/// One client's TCP socket on an `EpollEventLoop`, as the engine's `ConnectionTransport`: bytes
/// read go to its `ClientConnection`, bytes written are sent at `flush`. This object, the file
/// descriptor and the engine's own state are all an idle connection costs.
///
/// Reads go into the loop's shared 64 KiB buffer; a short read is copied into a buffer of its own
/// size before the engine sees it (payloads stay slices of it, shared with subscribers), so the
/// shared buffer stays free for the next read and a kept message never pins 64 KiB.
/// Writes are kept until `flush`: the first as the caller's buffer (a PUBLISH encoded once for
/// all its subscribers), any further ones appended into a buffer of our own, then sent with one
/// `send`. What the kernel does not take waits for `EPOLLOUT`.
final class SocketConnection: EpollSource, ConnectionTransport {
    /// Above this many unsent bytes the connection is not writable (deliveries wait in the
    /// session's bounded queue); below the low mark it is again (TransportPolicy).
    static let highWater = TransportPolicy.writeHighWater
    static let lowWater = TransportPolicy.writeLowWater
    /// Reads up to this size are copied out of the loop's buffer.
    static let copyLimit = EpollEventLoop.readBufferCapacity / 4
    private static let sharedAllocator = ByteBufferAllocator()

    unowned(unsafe) let loop: EpollEventLoop
    let listener: ReactorListener
    @exclusivity(unchecked) private var connection: ClientConnection?
    @exclusivity(unchecked) private var output: ByteBuffer?
    /// `output` is our own buffer (appendable), not the caller's.
    @exclusivity(unchecked) private var outputOwned = false
    @exclusivity(unchecked) private var watchingWritable = false
    @exclusivity(unchecked) private(set) var isWritable = true
    /// `close()` was called: nothing more is written; the socket's sending side is shut down once
    /// `output` is sent.
    @exclusivity(unchecked) private var closing = false

    init(fd: Int32, loop: EpollEventLoop, listener: ReactorListener) {
        self.loop = loop
        self.listener = listener
        super.init(fd: fd)
    }

    /// On the loop, once registered: the engine takes over.
    func start() {
        let broker = listener.broker
        if broker.configuration.connectionMessages {
            broker.log.notice("New connection from \(remoteAddress) on port \(listener.policy.port).")
        }
        connection = broker.makeConnection(transport: self, policy: listener.policy)
    }

    // MARK: ConnectionTransport

    var eventLoop: EventLoop { loop }
    var allocator: ByteBufferAllocator { Self.sharedAllocator }
    var tlsClientIdentity: TLSClientIdentity? { nil }

    /// Asked of the socket when needed (log lines, CONNECT checks) rather than kept: 16 bytes
    /// less for every idle connection.
    var remoteAddress: String { isRegistered ? SocketListener.peerAddress(of: fd) : "unknown" }

    func write(_ buffer: ByteBuffer) {
        guard !closing, isRegistered else { return }
        guard output != nil else {
            output = buffer
            outputOwned = false
            if buffer.readableBytes > Self.highWater { isWritable = false }
            return
        }
        if !outputOwned {
            var owned = Self.sharedAllocator.buffer(capacity: max(512, output!.readableBytes + buffer.readableBytes))
            owned.writeImmutableBuffer(output!)
            output = owned
            outputOwned = true
        } else if output!.readerIndex >= 65536 {
            output!.discardReadBytes()
        }
        output!.writeImmutableBuffer(buffer)
        if isWritable, output!.readableBytes > Self.highWater { isWritable = false }
    }

    func flush() {
        guard output != nil, !watchingWritable, isRegistered else { return }
        send()
    }

    /// Sends what was written, then shuts down our sending side only: closing outright while the
    /// peer is still sending makes the kernel answer with RST, which can destroy the DISCONNECT or
    /// CONNACK just written before the peer reads it. Input that still arrives is read and
    /// ignored; the socket is closed when the peer closes, or after `TransportPolicy.closeLinger`.
    func close() {
        guard isRegistered, !closing else { return }
        closing = true
        if output == nil {
            _ = shutdown(fd, Int32(SHUT_WR))
        } else if !watchingWritable {
            send()  // shuts down the sending side once everything is sent
        }
        _ = loop.scheduleTask(in: TransportPolicy.closeLinger) { self.closeNow() }
    }

    func abort() { closeNow() }

    /// Reads until the socket has nothing more (or closes): what the peer sent is handled now.
    func readPending() {
        while isRegistered, receive() {}
    }

    // MARK: Events

    override func ready(_ events: UInt32) {
        if events & EpollEvent.output != 0 { send() }
        if events & (EpollEvent.input | EpollEvent.hangUp | EpollEvent.error) != 0, isRegistered { receive() }
    }

    /// Returns true when it stopped after its reads with more perhaps waiting (not drained,
    /// not closed).
    @discardableResult
    private func receive() -> Bool {
        let connection = self.connection
        connection?.readStarted()
        defer { connection?.readComplete() }
        // Up to 16 reads per wake-up, so that one busy client cannot starve the others on this loop.
        for _ in 0..<TransportPolicy.readsPerWakeup {
            var result = 0
            loop.readBuffer.clear()
            loop.readBuffer.writeWithUnsafeMutableBytes(minimumWritableBytes: EpollEventLoop.readBufferCapacity) { space in
                result = Glibc.read(fd, space.baseAddress, space.count)
                return max(result, 0)
            }
            if result > 0 {
                if let connection {
                    if result <= Self.copyLimit {
                        var bytes = Self.sharedAllocator.buffer(capacity: result)
                        bytes.writeImmutableBuffer(loop.readBuffer)
                        connection.receive(bytes)
                    } else {
                        connection.receive(loop.readBuffer)
                    }
                }
                guard isRegistered else { return false }
                if result < EpollEventLoop.readBufferCapacity { return false }  // drained for now
            } else if result == 0 {
                closeNow()  // the peer closed
                return false
            } else {
                switch errno {
                case EAGAIN, EWOULDBLOCK: return false
                case EINTR: continue
                default:
                    closeNow(socketError: true)
                    return false
                }
            }
        }
        return true
    }

    private func send() {
        while var pending = output {
            output = nil  // keep `pending` uniquely referenced while we move its reader index
            let sent = pending.withUnsafeReadableBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            }
            if sent >= 0 {
                pending.moveReaderIndex(forwardBy: sent)
                if pending.readableBytes > 0 {
                    output = pending
                    continue
                }
                outputOwned = false
                break
            }
            output = pending
            switch errno {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                if !watchingWritable {
                    watchingWritable = true
                    loop.modify(self, events: EpollEvent.input | EpollEvent.output)
                }
                if !isWritable, pending.readableBytes <= Self.lowWater { becameWritable() }
                return
            default:
                // The peer is gone (EPIPE, ECONNRESET): drop what is unsent; the close runs after
                // the current flush, not inside it.
                output = nil
                closing = true
                loop.execute { self.closeNow(socketError: true) }
                return
            }
        }
        // Everything was sent.
        if watchingWritable {
            watchingWritable = false
            loop.modify(self, events: EpollEvent.input)
        }
        if closing { _ = shutdown(fd, Int32(SHUT_WR)) }
        if !isWritable { becameWritable() }
    }

    private func becameWritable() {
        isWritable = true
        connection?.transportBecameWritable()
    }

    /// Closes the socket now and tells the engine (once).
    func closeNow(socketError: Bool = false) {
        guard isRegistered else { return }
        loop.deregister(self)
        Glibc.close(fd)
        output = nil
        closing = true
        if let connection {
            self.connection = nil
            // A read cut short by the close: flush its writes first (they go nowhere now, but the
            // loop's bookkeeping is kept straight).
            connection.readComplete()
            if socketError, !connection.clientID.isEmpty {
                listener.broker.log.notice("Socket error on client \(connection.clientID), disconnecting.")
            }
            connection.transportClosed()
        }
        listener.connectionClosed()
    }
}
#endif
