import NIOCore

/// What the engine needs from a network connection. MidgeServer implements it over a NIO
/// channel; tests implement it in memory. Every call happens on `eventLoop`.
public protocol ConnectionTransport: AnyObject {
    var eventLoop: EventLoop { get }
    var allocator: ByteBufferAllocator { get }
    /// `address:port` of the peer, for log lines.
    var remoteAddress: String { get }
    /// False while the peer reads slower than we write (the outbound buffer is above its high
    /// water mark): deliveries then wait in the session's bounded queue. The transport calls
    /// `ClientConnection.transportBecameWritable()` when it drains.
    var isWritable: Bool { get }
    /// Queues bytes without flushing (the broker flushes once per loop tick).
    func write(_ buffer: ByteBuffer)
    func flush()
    /// Flushes what was written, then closes.
    func close()
    /// Drops the connection at once, writing nothing more (not even a TLS close_notify): for a
    /// socket that never became an MQTT connection. Defaults to `close()`.
    func abort()
    /// The client certificate's names on a TLS connection (TLSClientIdentity.swift; default nil).
    var tlsClientIdentity: TLSClientIdentity? { get }
    /// Reads what the peer already sent (what waits in the socket's receive buffer) and hands it
    /// to the engine now, before returning, including the peer's close. Called when another
    /// connection takes the client id over: what the client sent before it reconnected is
    /// handled before the new connection gets the session. Defaults to nothing (a transport
    /// that cannot read synchronously).
    func readPending()
}

extension ConnectionTransport {
    public func abort() { close() }
    public func readPending() {}
}
