import MQTTCodec
import NIOCore

extension MQTTClient {
    /// Everything that goes into CONNECT, and how the client behaves afterwards.
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var version: ProtocolVersion
        /// Empty: the broker assigns one (v5) or generates one (v3.1.1 with clean session).
        public var clientID: String
        public var cleanStart: Bool
        /// Seconds; 0 disables keep alive.
        public var keepAlive: UInt16
        /// v5 Session Expiry Interval (seconds); nil = not sent (0).
        public var sessionExpiryInterval: UInt32?
        public var username: String?
        public var password: [UInt8]?
        public var will: Will?
        /// Extra CONNECT properties (v5): Receive Maximum, Maximum Packet Size, user properties...
        public var connectProperties: Properties
        /// How long to wait for CONNACK, SUBACK and the like.
        public var timeout: TimeAmount
        /// Reconnect automatically after a connection loss (not after `disconnect()`), resuming
        /// the session and resending unacknowledged messages with DUP.
        public var reconnect: ReconnectPolicy?
        /// Use topic aliases for repeated topics when the broker allows them (v5).
        public var useTopicAliases: Bool
        /// How to reach the broker (TCP by default; other transports plug in here).
        public var transport: MQTTTransport
        /// Called with every packet sent and received (for `-d` traces).
        public var packetObserver: (@Sendable (PacketDirection, MQTTPacket) -> Void)?

        public init(host: String = "localhost", port: Int = 1883, version: ProtocolVersion = .v3_1_1, clientID: String = "",
                    cleanStart: Bool = true, keepAlive: UInt16 = 60, sessionExpiryInterval: UInt32? = nil,
                    username: String? = nil, password: [UInt8]? = nil, will: Will? = nil, connectProperties: Properties = .none,
                    timeout: TimeAmount = .seconds(10), reconnect: ReconnectPolicy? = nil, useTopicAliases: Bool = true,
                    transport: MQTTTransport = .tcp, packetObserver: (@Sendable (PacketDirection, MQTTPacket) -> Void)? = nil) {
            self.host = host; self.port = port; self.version = version; self.clientID = clientID
            self.cleanStart = cleanStart; self.keepAlive = keepAlive; self.sessionExpiryInterval = sessionExpiryInterval
            self.username = username; self.password = password; self.will = will; self.connectProperties = connectProperties
            self.timeout = timeout; self.reconnect = reconnect; self.useTopicAliases = useTopicAliases
            self.transport = transport; self.packetObserver = packetObserver
        }
    }

    /// Exponential back-off between reconnection attempts.
    public struct ReconnectPolicy: Sendable {
        public var initialDelay: TimeAmount
        public var maximumDelay: TimeAmount
        /// nil = forever.
        public var maximumAttempts: Int?
        public init(initialDelay: TimeAmount = .milliseconds(500), maximumDelay: TimeAmount = .seconds(30), maximumAttempts: Int? = nil) {
            self.initialDelay = initialDelay; self.maximumDelay = maximumDelay; self.maximumAttempts = maximumAttempts
        }
    }
}

public enum PacketDirection: Sendable { case sent, received }

/// How the client opens its connection. TCP now; TLS and WebSocket add cases without changing the client API.
public struct MQTTTransport: Sendable {
    /// Opens a channel to host:port on `eventLoop` and adds `handler` at the end of its pipeline.
    public let connect: @Sendable (_ host: String, _ port: Int, _ eventLoop: EventLoop, _ handler: ChannelHandler & Sendable) -> EventLoopFuture<Channel>

    public init(connect: @escaping @Sendable (_ host: String, _ port: Int, _ eventLoop: EventLoop, _ handler: ChannelHandler & Sendable) -> EventLoopFuture<Channel>) {
        self.connect = connect
    }
}
