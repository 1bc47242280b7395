import Foundation

// Configuration model for Midge, mirroring the semantics of Eclipse Mosquitto 2.0's
// mosquitto.conf(5). The parser that fills it is the MidgeConfig target's
// ConfigFileParser: the engine only takes a BrokerConfiguration.

/// A `log_type` value.
///
/// `logTypes` in `BrokerConfiguration` is normalised so that `contains(_:)` answers
/// "is this type logged?":
/// - `log_type all` yields every case except `.none` (so it contains `.all` *and* each concrete type);
/// - `log_type none` yields exactly `[.none]`; a later `log_type X` line removes `.none` again.
public enum LogType: String, CaseIterable, Sendable {
    case debug, error, warning, notice, information, subscribe, unsubscribe, websockets, none, all
}

/// A `log_dest` value. `logDestinations` is `[.none]` when logging was disabled with `log_dest none`.
public enum LogDestination: Equatable, Sendable {
    case stdout, stderr, file(String), syslog, topic, dlt, none
}

/// `socket_domain` value of a listener.
public enum SocketDomain: String, Sendable {
    case ipv4, ipv6
}

/// Settings that Mosquitto makes per-listener when `per_listener_settings true`, and global otherwise.
public struct SecuritySettings: Equatable, Sendable {
    /// nil = not set in the file (the server applies Mosquitto 2.0 defaults: true when the
    /// broker runs in local-only mode because no listener/port/bind_address was configured,
    /// false otherwise).
    public var allowAnonymous: Bool?
    /// `allow_zero_length_clientid`, default true.
    public var allowZeroLengthClientID: Bool
    /// `auto_id_prefix`, default "auto-".
    public var autoIDPrefix: String
    /// `password_file`: Mosquitto password file (`user:$7$...`), nil = none.
    public var passwordFile: String?
    /// `acl_file`: Mosquitto ACL file, nil = every client may do everything.
    public var aclFile: String?
    /// `psk_file`: `identity:hexkey` lines, the pre-shared keys of the listeners with `psk_hint`.
    public var pskFile: String?

    public init(allowAnonymous: Bool? = nil, allowZeroLengthClientID: Bool = true, autoIDPrefix: String = "auto-",
                passwordFile: String? = nil, aclFile: String? = nil) {
        self.allowAnonymous = allowAnonymous
        self.allowZeroLengthClientID = allowZeroLengthClientID
        self.autoIDPrefix = autoIDPrefix
        self.passwordFile = passwordFile
        self.aclFile = aclFile
    }
}

/// A file name and 1-based line number in a configuration file.
public struct ConfigSource: Equatable, Sendable {
    public var file: String
    public var line: Int

    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }
}

/// One network listener (`listener PORT [ADDRESS|PATH]`, or the deprecated default listener made by
/// `port` / `bind_address`).
public struct ListenerConfiguration: Equatable, Sendable {
    /// TCP port; 0 together with `unixSocketPath` for `listener 0 /path/to/socket`.
    public var port: Int
    /// Address/host to bind to; nil = all interfaces. Set by the second argument of `listener`, or
    /// (for the default listener only) by the deprecated global `bind_address`.
    public var bindAddress: String?
    /// `bind_interface` (Linux SO_BINDTODEVICE); nil = not set.
    public var bindInterface: String?
    /// `socket_domain`; nil = both IPv4 and IPv6.
    public var socketDomain: SocketDomain?
    /// `max_connections`; -1 = unlimited (default). Negative values in the file become -1.
    public var maxConnections: Int
    /// `protocol`: "mqtt" (default) or "websockets".
    public var protocolName: String
    /// Path of the Unix domain socket for `listener 0 PATH`.
    public var unixSocketPath: String?
    /// `max_topic_alias` (per listener in Mosquitto 2.0), 0...65535, default 10.
    public var maxTopicAlias: Int
    /// `mount_point`: prefix put before every topic of this listener's clients (and removed from
    /// what they receive); nil = none.
    public var mountPoint: String?
    /// `max_qos` / `maximum_qos`, 0...2, default 2: v5 Maximum QoS; a PUBLISH above it closes the
    /// connection (v5 DISCONNECT 0x9B), subscriptions are granted at most this QoS.
    public var maxQoS: Int = 2
    /// `use_username_as_clientid`: the client id becomes the username (no username: refused).
    public var useUsernameAsClientID = false
    /// `http_dir`: on a websockets listener, plain HTTP GET serves the files of this folder.
    public var httpDir: String?
    /// File and line of `http_dir` (for start-up errors).
    public var httpDirSource: ConfigSource?
    /// Security settings made while this listener was current; only used when
    /// `BrokerConfiguration.perListenerSettings` is true.
    public var security: SecuritySettings
    /// Certificate-based TLS options (`certfile`, `cafile`, ...); see TLSSettings.swift.
    public var tls = TLSSettings()
    /// File and line of the `listener` line (for the default listener: the `port` line, else the
    /// `bind_address` line, else the first listener option that applied to it). `("", 0)` for
    /// listeners not read from a file (e.g. the server's local-only listeners).
    public var source: ConfigSource

    public init(port: Int,
                bindAddress: String? = nil,
                bindInterface: String? = nil,
                socketDomain: SocketDomain? = nil,
                maxConnections: Int = -1,
                protocolName: String = "mqtt",
                unixSocketPath: String? = nil,
                maxTopicAlias: Int = 10,
                security: SecuritySettings = SecuritySettings(),
                source: ConfigSource = ConfigSource(file: "", line: 0)) {
        self.port = port
        self.bindAddress = bindAddress
        self.bindInterface = bindInterface
        self.socketDomain = socketDomain
        self.maxConnections = maxConnections
        self.protocolName = protocolName
        self.unixSocketPath = unixSocketPath
        self.maxTopicAlias = maxTopicAlias
        self.security = security
        self.source = source
    }
}

/// The whole broker configuration as read from a mosquitto.conf-compatible file.
public struct BrokerConfiguration: Equatable, Sendable {
    /// Listeners in the order Mosquitto creates them: every `listener` section in file order, then
    /// the default listener (deprecated `port` / `bind_address` form) if one is defined.
    /// Empty when the file defines no `listener`, `port` or `bind_address`: Mosquitto 2.0 then runs in
    /// local-only mode (127.0.0.1 and ::1, port 1883, anonymous allowed); the server handles that.
    public var listeners: [ListenerConfiguration]
    /// `per_listener_settings`, default false.
    public var perListenerSettings: Bool
    /// Global security values (used when `perListenerSettings` is false).
    public var security: SecuritySettings
    /// `max_keepalive`, 0...65535, default 65535 (the value mosquitto.conf(5) documents).
    public var maxKeepalive: Int
    /// `max_packet_size`, default 0 = no limit. Explicit values must be >= 20.
    public var maxPacketSize: Int
    /// `message_size_limit` (max PUBLISH payload), default 0 = no limit, max 268435455.
    public var messageSizeLimit: Int
    /// `max_inflight_messages`, default 20, 0 = unlimited (negative and 65535 also mean 0).
    public var maxInflightMessages: Int
    /// `max_inflight_bytes`, default 0 = no limit.
    public var maxInflightBytes: Int
    /// `max_queued_messages`, default 1000, 0 = unlimited.
    public var maxQueuedMessages: Int
    /// `max_queued_bytes`, default 0 = no limit.
    public var maxQueuedBytes: Int
    /// `queue_qos0_messages`, default false.
    public var queueQoS0Messages: Bool
    /// `retain_available`, default true.
    public var retainAvailable: Bool
    /// `persistent_client_expiration` in seconds; nil = never expire (default).
    public var persistentClientExpiration: Int?
    /// `upgrade_outgoing_qos`, default false.
    public var upgradeOutgoingQoS: Bool
    /// `pid_file`: written with the process id at start-up (failure stops it), removed at exit.
    public var pidFile: String?
    /// `user`: started as root, the process becomes this user (and its groups) once its listeners
    /// and files are open; nil = "mosquitto" (or "nobody" when no such user exists), as Mosquitto.
    public var user: String?
    /// `log_facility` 0...7 (local0...local7) for `log_dest syslog`; nil = daemon (the default).
    public var logFacility: Int?
    /// `persistence` (and its obsolete synonym `retained_persistence`), default false: sessions,
    /// subscriptions, queued and in-flight messages and retained messages survive a restart, and
    /// (Midge's guarantee) every acknowledgement waits until what it acknowledges is stored.
    public var persistence: Bool
    /// `persistence_file`, default "mosquitto.db": where the store is kept (a Mosquitto database
    /// found there is imported, see `importedStorePath`).
    public var persistenceFile: String
    /// `persistence_location`, a folder (ends with "/"), default nil = the working directory.
    public var persistenceLocation: String?
    /// `autosave_interval` (seconds, default 1800) and `autosave_on_changes` (default false):
    /// read for compatibility. Midge writes every change as it happens (group commit), so there
    /// is no snapshot to schedule; see docs/persistence.md.
    public var autosaveInterval: Int
    public var autosaveOnChanges: Bool
    /// Midge's `persistence_fsync`, default false: stored changes survive a crash of the process
    /// (kill -9) without it; with true each group commit is also fsync'd (power-loss safety).
    public var persistenceFsync: Bool
    /// `check_retain_source`, default false (Mosquitto's actual default; the man page text says true).
    public var checkRetainSource: Bool
    /// `log_type` values (see `LogType` for the normalisation). Default error, warning, notice, information.
    public var logTypes: Set<LogType>
    /// `log_dest` values in first-appearance order, without duplicates. Default `[.stderr]`.
    public var logDestinations: [LogDestination]
    /// `log_timestamp`, default true.
    public var logTimestamp: Bool
    /// `log_timestamp_format` (strftime format), default nil = seconds since the epoch.
    public var logTimestampFormat: String?
    /// `connection_messages`, default true.
    public var connectionMessages: Bool
    /// Broker-wide topic alias maximum, default 10. Mosquitto 2.0 applies `max_topic_alias` per listener
    /// (see `ListenerConfiguration.maxTopicAlias`, which servers should prefer); this value is the one
    /// given by the last `max_topic_alias` line that configured a listener present in `listeners`
    /// (10 if none), so it is exact whenever only one listener sets it.
    public var maxTopicAlias: Int
    /// `set_tcp_nodelay`, default false.
    public var setTCPNoDelay: Bool
    /// Midge's brute-force protection (no Mosquitto equivalent): after `auth_failure_limit`
    /// failed logins from one address within `auth_failure_window` seconds, that address is
    /// refused for `auth_ban_time` seconds, doubling with each further ban up to one hour.
    /// A limit of 0 turns it off. Defaults 10, 60, 60.
    public var authFailureLimit: Int
    public var authFailureWindow: Int
    public var authBanTime: Int
    /// Midge's `acl_refuses_subscriptions` (no Mosquitto equivalent), default false: a SUBSCRIBE
    /// filter the ACL gives no read access to is refused with SUBACK 0x80 for that filter. Off, as
    /// in Mosquitto's `acl_file`, every valid filter is granted and the ACL only filters delivery.
    public var aclRefusesSubscriptions: Bool
    /// Midge's `connection_rate_limit`: new connections per second accepted from one address
    /// (beyond it, v5 CONNACK 0x9F Connection rate exceeded); 0 = no limit (default).
    public var connectionRateLimit: Int
    /// Midge's `connect_timeout`: seconds a new connection may take (TLS handshake included) to
    /// send its CONNECT before it is closed; 0 = wait forever, as Mosquitto does. Default 15.
    public var connectTimeout: Int
    /// `clientid_prefixes` (deprecated in Mosquitto): only client ids starting with it may
    /// connect (others: CONNACK Not authorized); nil = any.
    public var clientIDPrefixes: String?
    /// `memory_limit` in bytes, 0 = none: beyond it an incoming PUBLISH closes its connection
    /// (see MemoryLimit.swift for what is measured).
    public var memoryLimit: Int
    /// `websockets_headers_size` (0 = libwebsockets' default, 1024): kept for compatibility;
    /// Midge's HTTP parser (SwiftNIO's) takes request heads up to 80 KiB, more than the largest
    /// value (65535), so every head libwebsockets would take is taken.
    public var websocketsHeadersSize: Int
    /// `websockets_log_level`: kept for compatibility (a libwebsockets bit mask; Midge has no
    /// libwebsockets: its WebSocket events follow `log_type websockets`).
    public var websocketsLogLevel: Int
    /// `sys_interval` seconds, default 10 (0 = no $SYS). Kept: Midge publishes no $SYS tree yet.
    public var sysInterval: Int
    /// `auth_plugin_deny_special_chars` of the last `auth_plugin` (default true).
    public var authPluginDenySpecialChars: Bool
    /// Non-fatal diagnostics ("file:line: text"), e.g. deprecated or obsolete options that
    /// Mosquitto accepts with a notice or warning.
    public var warnings: [String]

    /// The default log types: error, warning, notice, information.
    public static let defaultLogTypes: Set<LogType> = [.error, .warning, .notice, .information]

    public init() {
        listeners = []
        perListenerSettings = false
        security = SecuritySettings()
        maxKeepalive = 65535
        maxPacketSize = 0
        messageSizeLimit = 0
        maxInflightMessages = 20
        maxInflightBytes = 0
        maxQueuedMessages = 1000
        maxQueuedBytes = 0
        queueQoS0Messages = false
        retainAvailable = true
        persistentClientExpiration = nil
        upgradeOutgoingQoS = false
        pidFile = nil
        user = nil
        logFacility = nil
        persistence = false
        persistenceFile = "mosquitto.db"
        persistenceLocation = nil
        autosaveInterval = 1800
        autosaveOnChanges = false
        persistenceFsync = false
        checkRetainSource = false
        logTypes = BrokerConfiguration.defaultLogTypes
        logDestinations = [.stderr]
        logTimestamp = true
        logTimestampFormat = nil
        connectionMessages = true
        maxTopicAlias = 10
        setTCPNoDelay = false
        authFailureLimit = 10
        authFailureWindow = 60
        authBanTime = 60
        connectionRateLimit = 0
        aclRefusesSubscriptions = false
        connectTimeout = 15
        clientIDPrefixes = nil
        memoryLimit = 0
        websocketsHeadersSize = 0
        websocketsLogLevel = 0
        sysInterval = 10
        authPluginDenySpecialChars = true
        warnings = []
    }

    /// Everything default, listeners empty.
    public static var defaults: BrokerConfiguration { BrokerConfiguration() }

    /// Effective security for a listener (listener's own when perListenerSettings, else the global one).
    public func security(for listener: ListenerConfiguration) -> SecuritySettings {
        perListenerSettings ? listener.security : security
    }

    /// The database `persistence_file` names (in `persistence_location`): where Midge keeps its
    /// store, as Mosquitto keeps its database there (scripts and Mosquitto's own tests expect
    /// that file). When the file is a database Mosquitto wrote, Midge imports it into
    /// `importedStorePath` instead and leaves it as it is (see docs/persistence.md).
    public var mosquittoDatabasePath: String {
        if persistenceFile.hasPrefix("/") && persistenceLocation == nil { return persistenceFile }
        return (persistenceLocation ?? "") + persistenceFile
    }

    /// Midge's store when `persistence_file` holds Mosquitto's own database: beside it, `.midge` added.
    public var importedStorePath: String { mosquittoDatabasePath + ".midge" }

    /// Topic alias maximum for a listener (`max_topic_alias` is a per-listener option).
    public func maxTopicAlias(for listener: ListenerConfiguration) -> Int {
        listener.maxTopicAlias
    }
}

/// A configuration problem, located at a file and line.
public struct ConfigError: Error, Equatable, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int
    public var message: String

    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { "\(file):\(line): \(message)" }
}
