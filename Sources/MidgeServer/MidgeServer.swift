import Foundation
import MidgeBroker
#if os(Linux)
import MidgeReactor
#endif
import NIOCore
import NIOPosix
import NIOSSL

/// The broker on the network: one event-loop thread per core, one listening socket per
/// resolved endpoint, the engine behind them.
///
/// Plain TCP listeners run on Midge's own epoll loops (`MidgeReactor`: a connection is a file
/// descriptor and one small object); TLS, WebSocket and Unix-socket listeners run on SwiftNIO
/// channels (and every listener where epoll is not available). Each set of loops is made only
/// when a listener needs it; the engine sees both as its event loops.
public final class MidgeServer: @unchecked Sendable {
    public static let version = "0.1.0"

    public let configuration: BrokerConfiguration
    public let broker: Broker
    /// The loops of the SwiftNIO listeners (nil when there are none).
    private let group: MultiThreadedEventLoopGroup?
    private let plans: [ListenerPlan]
    private var channels: [Channel] = []
    #if os(Linux)
    private let reactor: EpollEventLoopGroup?
    private var reactorListeners: [ReactorListener] = []
    #endif
    /// Bound addresses in listener order (NIO channels' and reactor sockets').
    private var bound: [SocketAddress] = []
    /// Paths of the Unix-domain sockets bound by `start()`, removed by `shutdown()`.
    private var unixSocketPaths: [String] = []
    /// `max_connections` of each listener (by listener index), shared by its sockets.
    private var connectionLimits: [ConnectionLimit] = []
    /// Where persistent state goes (persistence on), closed by `shutdown()`.
    private let store: SessionStore?

    /// - Parameters:
    ///   - commandLinePorts: ports from `-p` (loopback listeners).
    ///   - threads: event-loop threads; default one per core.
    ///   - store: persistence (the broker first restores `restoring`, what the store loaded).
    public init(configuration: BrokerConfiguration, commandLinePorts: [Int] = [], log: BrokerLog,
                threads: Int = System.coreCount, store: SessionStore? = nil, restoring state: PersistedState? = nil) throws {
        self.configuration = configuration
        self.store = store
        let plans = try ListenerPlan.resolve(configuration: configuration, commandLinePorts: commandLinePorts)
        self.plans = plans
        let threads = max(1, threads)
        var loops: [EventLoop] = []
        let needsReactor = plans.contains(where: Self.runsOnReactor)
        #if os(Linux)
        if needsReactor {
            let reactor = try EpollEventLoopGroup(numberOfThreads: threads)
            self.reactor = reactor
            loops += reactor.loops as [EventLoop]
        } else {
            self.reactor = nil
        }
        #endif
        // (With no listener at all the engine still needs a loop.)
        let needsNIO = plans.contains { !Self.runsOnReactor($0) } || !needsReactor
        if needsNIO {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
            self.group = group
            loops += Array(group.makeIterator())
        } else {
            self.group = nil
        }
        self.broker = Broker(configuration: configuration, eventLoops: loops, log: log, store: store)
        // Before any listener opens: no client can see a half-restored broker.
        // Until their clients reconnect, restored sessions (and check_retain_source's publishers)
        // are checked against the rules every listener shares: without per_listener_settings, or
        // with a single listener (otherwise the listener they will come through is not known).
        if let state {
            let policies = Set(plans.map { ObjectIdentifier($0.policy.security) })
            var byPort: [Int: SecurityPolicy] = [:]
            for plan in plans where byPort[plan.policy.port] == nil { byPort[plan.policy.port] = plan.policy.security }
            broker.restore(state, security: policies.count == 1 ? plans.first?.policy.security : nil, securityByPort: byPort)
        }
        let listenerCount = (plans.map(\.listenerIndex).max() ?? -1) + 1
        self.connectionLimits = (0..<listenerCount).map { index in
            ConnectionLimit(limit: plans.first { $0.listenerIndex == index }?.maxConnections ?? -1)
        }
    }

    /// The bound addresses (for tests binding port 0).
    public var boundAddresses: [SocketAddress] { bound }

    /// Whether a listener is served by the epoll reactor (plain TCP on Linux) or by SwiftNIO.
    static func runsOnReactor(_ plan: ListenerPlan) -> Bool {
        #if os(Linux)
        if case .tcp = plan.endpoint, plan.tls == nil, !plan.webSockets { return true }
        #endif
        return false
    }

    /// The first bound TCP port.
    public var port: Int? { boundAddresses.compactMap { $0.port }.first }

    /// Binds every listener. Throws the first bind error (e.g. address in use).
    public func start() throws {
        let log = broker.log
        var loggedWebSocketListeners = Set<Int>()
        var warnedTLS = Set<ObjectIdentifier>()
        var warnedSecurity = Set<ObjectIdentifier>()
        for plan in plans {
            if let tls = plan.tls, warnedTLS.insert(ObjectIdentifier(tls)).inserted {
                for warning in tls.warnings { log.warning("Warning: \(warning)") }
            }
            if warnedSecurity.insert(ObjectIdentifier(plan.policy.security)).inserted {
                for warning in plan.policy.security.warnings { log.error("Error: \(warning)") }
            }
            let channel: Channel
            switch plan.endpoint {
            case .tcp(let host, let port):
                let family = host.contains(":") ? "ipv6" : "ipv4"
                if !plan.webSockets {
                    log.info("Opening \(family) listen socket on port \(port).")
                } else if loggedWebSocketListeners.insert(plan.listenerIndex).inserted {
                    log.info("Opening websockets listen socket on port \(port).")
                }
                do {
                    #if os(Linux)
                    if Self.runsOnReactor(plan), let reactor {
                        let listener = try ReactorListener(host: host, port: port, plan: plan, broker: broker, group: reactor,
                                                           limit: connectionLimits[plan.listenerIndex], acceptLoop: reactor.loops[0])
                        reactorListeners.append(listener)
                        bound.append(listener.socket.localAddress)
                        continue
                    }
                    #endif
                    channel = try makeBootstrap(plan).bind(host: host, port: port).wait()
                } catch {
                    // ::1 or :: may not exist on a host without IPv6; Mosquitto carries on likewise.
                    if family == "ipv6", Self.isAddressUnavailable(error) {
                        log.warning("Warning: IPv6 is not available for \(host): \(error)")
                        continue
                    }
                    throw ServerError(message: "Error: \(Self.describe(error)) (\(host) port \(port))")
                }
            case .unix(let path):
                log.info("Opening unix listen socket on path \(path).")
                do {
                    channel = try makeBootstrap(plan).bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
                    UnixSocketFile.grantGroupAccess(path)
                    unixSocketPaths.append(path)
                } catch {
                    throw ServerError(message: "Error: \(Self.describe(error)) (\(path))")
                }
            }
            channels.append(channel)
            if let address = channel.localAddress { bound.append(address) }
        }
    }

    private func makeBootstrap(_ plan: ListenerPlan) -> ServerBootstrap {
        let broker = self.broker
        let limit = connectionLimits[plan.listenerIndex]
        var bootstrap = ServerBootstrap(group: group!)
            .serverChannelOption(ChannelOptions.backlog, value: TransportPolicy.listenBacklog)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: UInt(TransportPolicy.readsPerWakeup))
            // A subscriber above the high water mark is "not writable": its messages wait in its
            // session queue (bounded by max_queued_messages/bytes) instead of in memory without bound.
            .childChannelOption(ChannelOptions.writeBufferWaterMark,
                                value: .init(low: TransportPolicy.writeLowWater, high: TransportPolicy.writeHighWater))
            // NIO keeps each channel's receive buffer for the life of the channel (its pooled
            // receive allocator reuses it), so the initial size is paid by every idle connection:
            // start small (a CONNECT fits in 128 bytes) and let busy connections grow it by
            // doubling on each full read, up to 64 KiB. 2 KiB here cost ~2 KiB per connection.
            .childChannelOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 128, maximum: 65536))
            .childChannelInitializer { channel in
                guard limit.admit(peer: MQTTChannelHandler.describe(channel.remoteAddress), log: broker.log) else {
                    return channel.close()
                }
                if let tls = plan.tls {
                    // TLS first: everything after it sees plain bytes.
                    do { try channel.pipeline.syncOperations.addHandlers(tls.makeHandlers(log: broker.log)) } catch { return channel.eventLoop.makeFailedFuture(error) }
                }
                if plan.webSockets {
                    // HTTP upgrade, then WebSocket frames carry the MQTT bytes. Counted until the
                    // socket closes, upgraded or not.
                    channel.closeFuture.whenComplete { _ in limit.release() }
                    return WebSocketServerPipeline.configure(channel, maxPacketSize: broker.configuration.maxPacketSize,
                                                             httpFiles: plan.httpRoot.map { WebSocketHTTPFiles(root: $0, log: broker.log) },
                                                             requestLog: WebSocketServerPipeline.logsRequests(level: broker.configuration.websocketsLogLevel)
                                                                ? broker.log : nil) {
                        MQTTChannelHandler(broker: broker, policy: plan.policy, eventLoop: channel.eventLoop,
                                           allocator: channel.allocator, onClose: {})
                    }
                }
                let handler = MQTTChannelHandler(broker: broker, policy: plan.policy, eventLoop: channel.eventLoop,
                                                 allocator: channel.allocator, onClose: { limit.release() })
                return channel.pipeline.addHandler(handler)
            }
        if case .tcp(let host, _) = plan.endpoint {
            if TransportPolicy.tcpNoDelay {
                bootstrap = bootstrap.childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            }
            if host.contains(":") && TransportPolicy.ipv6Only {
                // IPV6_V6ONLY is an IPPROTO_IPV6 option (`ipOption` would set IPPROTO_IP's option 26,
                // leaving the socket dual-stack and colliding with the IPv4 socket of the port).
                bootstrap = bootstrap.serverChannelOption(ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only), value: 1)
            }
        }
        return bootstrap
    }

    /// SIGHUP: re-reads every password file and ACL, and every TLS listener's certificates (for
    /// new connections). A file that fails keeps its previous state (logged); connections stay
    /// up and clients are re-checked on their next operation.
    public func reloadSecurity() {
        var seenTLS = Set<ObjectIdentifier>()
        for plan in plans {
            guard let tls = plan.tls, seenTLS.insert(ObjectIdentifier(tls)).inserted else { continue }
            if let error = tls.reload() {
                broker.log.error("Error: \(error); keeping the previous certificates.")
            } else {
                broker.log.notice("Reloaded the TLS certificates of the listener on port \(plan.policy.port).")
            }
        }
        var seen = Set<ObjectIdentifier>()
        for plan in plans where seen.insert(ObjectIdentifier(plan.policy.security)).inserted {
            let security = plan.policy.security
            guard security.settings.passwordFile != nil || security.settings.aclFile != nil else { continue }
            if let error = security.reload() {
                broker.log.error("Error: \(error); keeping the previous password and ACL rules.")
            } else {
                for warning in security.warnings { broker.log.error("Error: \(warning)") }
                broker.log.notice("Reloaded \([security.settings.passwordFile, security.settings.aclFile].compactMap { $0 }.joined(separator: " and ")).")
            }
        }
    }

    /// Stops listening, closes every connection, stops the threads.
    public func shutdown() {
        for channel in channels { try? channel.close().wait() }
        channels.removeAll()
        #if os(Linux)
        if let reactor {
            for listener in reactorListeners { listener.close() }
            reactorListeners.removeAll()
            // Close every connection on its loop (the engine sees each close, as with NIO's).
            for loop in reactor.loops {
                try? loop.submit {
                    for source in loop.registeredSources { (source as? SocketConnection)?.closeNow() }
                }.wait()
            }
        }
        #endif
        // Like Mosquitto, remove the socket files we created.
        for path in unixSocketPaths { UnixSocketFile.remove(path) }
        unixSocketPaths.removeAll()
        try? group?.syncShutdownGracefully()
        #if os(Linux)
        try? reactor?.syncShutdownGracefully()
        #endif
        bound.removeAll()
        // After the loops: what their last ticks recorded (sessions disconnected by the
        // shutdown) is written before the store closes.
        store?.close()
    }

    private static func isAddressUnavailable(_ error: Error) -> Bool {
        if let io = error as? IOError { return io.errnoCode == EADDRNOTAVAIL || io.errnoCode == EAFNOSUPPORT }
        return false
    }

    static func describe(_ error: Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }
}

public struct ServerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
