#if os(Linux)
import Glibc
import MidgeBroker
import MidgeReactor
import NIOCore

/// A plain TCP listener served by Midge's own epoll loops (`MidgeReactor`): accepts on one loop,
/// enforces `max_connections`, and hands each socket round robin to a loop as a
/// `SocketConnection`. TLS and WebSocket listeners stay on SwiftNIO channels.
final class ReactorListener: @unchecked Sendable {
    let broker: Broker
    let policy: ListenerPolicy
    private let group: EpollEventLoopGroup
    private let limit: ConnectionLimit
    private(set) var socket: SocketListener!

    init(host: String, port: Int, plan: ListenerPlan, broker: Broker, group: EpollEventLoopGroup,
         limit: ConnectionLimit, acceptLoop: EpollEventLoop) throws {
        self.broker = broker
        self.policy = plan.policy
        self.group = group
        self.limit = limit
        socket = try SocketListener(host: host, port: port, backlog: TransportPolicy.listenBacklog,
                                    ipv6Only: TransportPolicy.ipv6Only, loop: acceptLoop) { [unowned self] fd, peer in
            self.accepted(fd, peer: peer)
        }
        socket.start()
    }

    private func accepted(_ fd: Int32, peer: String) {
        guard limit.admit(peer: peer, log: broker.log) else {
            Glibc.close(fd)
            return
        }
        if TransportPolicy.tcpNoDelay { try? SocketListener.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1) }
        let loop = group.nextLoop()
        if loop.inEventLoop {
            attach(fd, loop: loop)
        } else {
            loop.execute { self.attach(fd, loop: loop) }
        }
    }

    private func attach(_ fd: Int32, loop: EpollEventLoop) {
        let connection = SocketConnection(fd: fd, loop: loop, listener: self)
        do {
            try loop.register(connection, events: EpollEvent.input)
        } catch {
            Glibc.close(fd)
            connectionClosed()
            return
        }
        connection.start()
    }

    /// A connection of this listener closed.
    func connectionClosed() {
        limit.release()
    }

    /// Stops accepting; returns once the socket is closed (connections handed to a loop before
    /// that are already queued there).
    func close() {
        let socket = self.socket!
        try? socket.loop.submit { socket.close() }.wait()
    }
}
#endif
