import NIOCore

/// How Midge treats a client socket, the same whichever loop serves it (Midge's epoll loops for
/// plain TCP, SwiftNIO channels for TLS, WebSocket and Unix sockets). Every listener and every
/// connection transport takes its numbers from here; `TransportContractTests` holds both
/// transports to them.
enum TransportPolicy {
    /// Above this many unsent bytes a connection reports itself not writable (deliveries wait
    /// in the session's bounded queue instead of in memory without bound)…
    static let writeHighWater = 1024 * 1024
    /// …and writable again once it drained below this.
    static let writeLowWater = 256 * 1024
    /// After the broker closes a connection it sends what is pending and shuts its sending
    /// side only; the socket is closed when the peer closes, or after this long. Closing
    /// outright while the peer still sends makes the kernel answer with RST, which can destroy
    /// the DISCONNECT or CONNACK just written before the peer reads it.
    static let closeLinger = TimeAmount.seconds(2)
    /// Reads of one connection per wake-up, so that one busy client cannot starve the others.
    static let readsPerWakeup = 16
    /// `listen(2)` backlog of every TCP listener.
    static let listenBacklog: Int32 = 1024
    /// TCP_NODELAY on every client socket: MQTT packets are small and latency-bound; writes are
    /// already batched per loop tick.
    static let tcpNoDelay = true
    /// IPV6_V6ONLY on IPv6 listeners, so that `::` and `0.0.0.0` share a port as Mosquitto's
    /// two sockets do.
    static let ipv6Only = true
}
