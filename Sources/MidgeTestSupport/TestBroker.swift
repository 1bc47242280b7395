import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeServer
import MidgeStore
import NIOCore
import NIOPosix

/// An in-process broker on a free loopback port, for end-to-end tests over real sockets.
public final class TestBroker: @unchecked Sendable {
    public let server: MidgeServer
    public let port: Int
    /// Event loops for the test's own client connections.
    public let clientGroup: MultiThreadedEventLoopGroup

    /// Starts a broker with `configuration` (its listeners are replaced by one on 127.0.0.1:0
    /// with anonymous access unless `allowAnonymous` is false).
    public init(_ configure: (inout BrokerConfiguration) -> Void = { _ in }, allowAnonymous: Bool = true,
                threads: Int = 2, log: BrokerLog = .silent()) throws {
        var configuration = BrokerConfiguration.defaults
        configure(&configuration)
        if configuration.listeners.isEmpty {
            // The listener inherits `configuration.security` (allow_zero_length_clientid,
            // auto_id_prefix) so tests can set them there; `allowAnonymous` decides anonymous access.
            var listener = ListenerConfiguration(port: 0, bindAddress: "127.0.0.1", security: configuration.security)
            listener.security.allowAnonymous = allowAnonymous
            configuration.listeners = [listener]
            configuration.perListenerSettings = true
        }
        // Persistence as `midge` opens it (the store in configuration.storePath).
        var persistence: (store: SessionStore, state: PersistedState)?
        if configuration.persistence { persistence = try PersistenceStartup.open(configuration, log: log) }
        server = try MidgeServer(configuration: configuration, log: log, threads: threads,
                                 store: persistence?.store, restoring: persistence?.state)
        try server.start()
        port = server.port!
        clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    public var broker: Broker { server.broker }

    /// Opens a TCP connection without sending anything.
    public func rawConnection(version: ProtocolVersion = .v5) async throws -> PacketConnection {
        try await PacketConnection.connect(port: port, version: version, group: clientGroup)
    }

    /// Connects and completes CONNECT/CONNACK; fails the test's expectation if refused.
    public func connect(_ clientID: String, version: ProtocolVersion = .v5, cleanStart: Bool = true, keepAlive: UInt16 = 60,
                        will: Will? = nil, username: String? = nil, password: [UInt8]? = nil,
                        properties: Properties = .none) async throws -> (PacketConnection, ConnAckPacket) {
        var passwordBuffer: ByteBuffer?
        if let password { passwordBuffer = ByteBuffer(bytes: password) }
        let connect = ConnectPacket(protocolVersion: version, cleanStart: cleanStart, keepAlive: keepAlive, clientID: clientID,
                                    will: will, username: username, password: passwordBuffer, properties: properties)
        return try await PacketConnection.connectMQTT(port: port, connect, group: clientGroup)
    }

    public func shutdown() {
        server.shutdown()
        try? clientGroup.syncShutdownGracefully()
    }
}

extension ByteBuffer {
    /// A buffer holding the UTF-8 of `string` (test convenience).
    public init(text string: String) {
        self.init(string: string)
    }

    /// The readable bytes as a String (test convenience).
    public var text: String { getString(at: readerIndex, length: readableBytes) ?? "" }
}
