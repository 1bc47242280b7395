import Foundation
import MidgeBroker
import MQTTCodec
import NIOCore

/// One socket to bind, resolved from the configuration: where, and with which client policy.
public struct ListenerPlan: Sendable {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }
    public var endpoint: Endpoint
    public var policy: ListenerPolicy
    public var maxConnections: Int
    /// The listener this socket belongs to (several sockets share one counter of connections).
    public var listenerIndex: Int
    /// The listener's TLS (`certfile` ...), shared by its sockets; nil = plain TCP.
    public var tls: TLSListenerContext? = nil
    /// `protocol websockets`: MQTT over WebSocket (WebSocketServerPipeline.swift) instead of plain MQTT.
    public var webSockets = false
    /// `http_dir` of a websockets listener, resolved (no symbolic link in it): files served by
    /// plain HTTP GET (WebSocketHTTPFiles.swift).
    public var httpRoot: String? = nil

    /// Mosquitto 2.0's rules: with no listener in the configuration (and no `-p`), listen on the
    /// loopback interfaces only, port 1883, anonymous clients allowed ("local only mode"). Ports
    /// given with `-p` are also loopback-only. A configured listener without `allow_anonymous
    /// true` refuses anonymous clients.
    public static func resolve(configuration: BrokerConfiguration, commandLinePorts: [Int]) throws -> [ListenerPlan] {
        var plans: [ListenerPlan] = []
        let global = configuration.security
        // Without per_listener_settings every listener shares one policy (one password file
        // and ACL, loaded once); anonymous access still follows each listener's defaults.
        var sharedPolicies: [Bool: SecurityPolicy] = [:]
        func securityPolicy(_ settings: SecuritySettings, allowAnonymous: Bool, shared: Bool) throws -> SecurityPolicy {
            if shared, let existing = sharedPolicies[allowAnonymous] { return existing }
            let policy = try SecurityPolicy(settings: settings, allowAnonymous: allowAnonymous)
            if shared { sharedPolicies[allowAnonymous] = policy }
            return policy
        }
        func localOnly(port: Int, index: Int) throws {
            let anonymous = global.allowAnonymous ?? true
            let policy = ListenerPolicy(port: port,
                                        allowZeroLengthClientID: global.allowZeroLengthClientID, autoIDPrefix: global.autoIDPrefix,
                                        security: try securityPolicy(global, allowAnonymous: anonymous, shared: true))
            plans.append(ListenerPlan(endpoint: .tcp(host: "127.0.0.1", port: port), policy: policy, maxConnections: -1, listenerIndex: index))
            plans.append(ListenerPlan(endpoint: .tcp(host: "::1", port: port), policy: policy, maxConnections: -1, listenerIndex: index))
        }
        var index = 0
        for port in commandLinePorts {
            try localOnly(port: port, index: index)
            index += 1
        }
        if configuration.listeners.isEmpty && commandLinePorts.isEmpty {
            try localOnly(port: 1883, index: index)
            return plans
        }
        for listener in configuration.listeners {
            defer { index += 1 }
            let security = configuration.security(for: listener)
            let anonymous = security.allowAnonymous ?? false
            let tls = try listener.tls.isConfigured
                ? TLSListenerContext(settings: listener.tls, listenerSource: listener.source, pskFile: security.pskFile) : nil
            let policy = ListenerPolicy(port: listener.port,
                                        allowZeroLengthClientID: security.allowZeroLengthClientID,
                                        autoIDPrefix: security.autoIDPrefix, maxTopicAlias: listener.maxTopicAlias,
                                        security: try securityPolicy(security, allowAnonymous: anonymous,
                                                                     shared: !configuration.perListenerSettings))
            policy.tlsUsername = tls?.usernameSource
            policy.mountPoint = listener.mountPoint
            policy.maxQoS = QoS(rawValue: UInt8(listener.maxQoS)) ?? .exactlyOnce
            policy.useUsernameAsClientID = listener.useUsernameAsClientID
            let webSockets = listener.protocolName == "websockets"
            let httpRoot = try webSockets ? listener.httpDir.map { try WebSocketHTTPFiles.resolveRoot($0, source: listener.httpDirSource ?? listener.source) } : nil
            if let path = listener.unixSocketPath {
                plans.append(ListenerPlan(endpoint: .unix(path: path), policy: policy, maxConnections: listener.maxConnections, listenerIndex: index, tls: tls,
                                          webSockets: webSockets, httpRoot: httpRoot))
                continue
            }
            var hosts: [String]
            if let interface = listener.bindInterface {
                hosts = try interfaceAddresses(interface, source: listener.source)
            } else if let address = listener.bindAddress {
                hosts = [address]
            } else {
                hosts = ["0.0.0.0", "::"]
            }
            switch listener.socketDomain {
            case .ipv4?: hosts = hosts.filter { !$0.contains(":") }
            case .ipv6?: hosts = hosts.filter { $0.contains(":") }
            case nil: break
            }
            for host in hosts {
                plans.append(ListenerPlan(endpoint: .tcp(host: host, port: listener.port), policy: policy,
                                          maxConnections: listener.maxConnections, listenerIndex: index, tls: tls,
                                          webSockets: webSockets, httpRoot: httpRoot))
            }
        }
        return plans
    }

    /// The IPv4 and IPv6 addresses of a network interface (for `bind_interface`).
    static func interfaceAddresses(_ name: String, source: ConfigSource) throws -> [String] {
        var result: [String] = []
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else {
            throw ConfigError(file: source.file, line: source.line, message: "cannot list network interfaces")
        }
        defer { freeifaddrs(list) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard String(cString: entry.pointee.ifa_name) == name, let address = entry.pointee.ifa_addr else { continue }
            let family = Int32(address.pointee.sa_family)
            guard family == AF_INET || family == AF_INET6 else { continue }
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            let length = socklen_t(family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
            if getnameinfo(address, length, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 {
                var text = String(cString: host)
                if let percent = text.firstIndex(of: "%") { text = String(text[..<percent]) }
                result.append(text)
            }
        }
        if result.isEmpty {
            throw ConfigError(file: source.file, line: source.line, message: "bind_interface \(name): no such interface or it has no address")
        }
        return result
    }
}
