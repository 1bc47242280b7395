import MidgeBroker

// Broker-wide limits and message behaviour: keep alive, packet and message sizes, inflight and
// queue limits, retained messages, QoS, session expiry, TCP and connection options, and the
// options Mosquitto 2.0 still accepts but ignores.
extension MosquittoConfReader {
    static let limitDirectives: [String: DirectiveHandler] = [
        "max_keepalive": { r, line, _ in r.config.maxKeepalive = try line.int(in: 0...65535) },
        "max_packet_size": { r, line, _ in
            let n = try line.int()
            guard n >= 20 else {
                throw line.error("Invalid max_packet_size value \(n) (must be at least 20 bytes).")
            }
            r.config.maxPacketSize = n
        },
        "message_size_limit": { r, line, _ in
            r.warn(line, "It is recommended to replace 'message_size_limit' with 'max_packet_size'.")
            r.config.messageSizeLimit = try line.int(in: 0...268_435_455)
        },
        "max_inflight_messages": { r, line, _ in
            let n = try line.int()
            if n > 65535 { throw line.error("Invalid max_inflight_messages value \(n) (must be at most 65535).") }
            r.config.maxInflightMessages = (n < 0 || n == 65535) ? 0 : n
        },
        // Negative byte and queue limits mean: no limit (0).
        "max_inflight_bytes": { r, line, _ in r.config.maxInflightBytes = max(0, try line.int()) },
        "max_queued_messages": { r, line, _ in r.config.maxQueuedMessages = max(0, try line.int()) },
        "max_queued_bytes": { r, line, _ in r.config.maxQueuedBytes = max(0, try line.int()) },
        "queue_qos0_messages": { r, line, _ in r.config.queueQoS0Messages = try line.bool() },
        "retain_available": { r, line, _ in r.config.retainAvailable = try line.bool() },
        "upgrade_outgoing_qos": { r, line, _ in r.config.upgradeOutgoingQoS = try line.bool() },
        "persistent_client_expiration": { r, line, _ in r.config.persistentClientExpiration = try parseExpiration(line) },
        "set_tcp_nodelay": { r, line, _ in r.config.setTCPNoDelay = try line.bool() },
        "connection_messages": { r, line, _ in r.config.connectionMessages = try line.bool() },
        "connect_timeout": { r, line, _ in r.config.connectTimeout = try line.int(in: 0...86_400) },
        "allow_duplicate_messages": { r, line, _ in
            // Mosquitto 2.0's notice. Its default (false) sends a 3.1.1 client one copy of a message its
            // overlapping subscriptions match; Midge always does that, for every version, so the
            // value changes nothing.
            let value = try line.bool()
            r.warn(line, "The 'allow_duplicate_messages' option is now deprecated and will be removed in a future version."
                   + (value ? " Midge sends one copy of a message to a client whatever its overlapping subscriptions (as with false)." : ""))
        },
        "clientid_prefixes": { r, line, _ in
            r.warn(line, "The 'clientid_prefixes' option is now deprecated and will be removed in a future version.")
            r.config.clientIDPrefixes = try line.freeText()
        },
        "memory_limit": { r, line, _ in
            let v = try line.single()
            guard let n = Int(v), n >= 0 else { throw line.error("Invalid memory_limit value (\(v)).") }
            r.config.memoryLimit = n
        },
        "websockets_headers_size": { r, line, _ in
            let n = try line.int()
            guard (0...65535).contains(n) else {
                throw line.error("Websockets headers size must be between 0 and 65535 inclusive.")
            }
            r.config.websocketsHeadersSize = n
        },
        "websockets_log_level": { r, line, _ in r.config.websocketsLogLevel = try line.int() },
        "sys_interval": { r, line, _ in
            let n = try line.int()
            guard (0...65535).contains(n) else { throw line.error("Invalid sys_interval value (\(n)).") }
            r.config.sysInterval = n
            if n > 0 {
                r.warn(line, "sys_interval \(n) is kept, but Midge publishes no $SYS tree yet (a later version will).")
            }
        },
        "retry_interval": { r, line, _ in
            // Mosquitto 2.0 ignores the option (and its value) with a warning.
            r.warn(line, "The retry_interval option is no longer available; ignored.")
        },
    ]

    /// `persistent_client_expiration`: a positive number followed by h, d, w, m (30 days) or y, in seconds.
    static func parseExpiration(_ line: MosquittoConfLine) throws -> Int {
        let value = try line.single()
        let invalid = line.error("Invalid persistent_client_expiration value \"\(value)\" "
                                 + "(expected a positive number followed by h, d, w, m or y, e.g. 14d).")
        guard let unit = value.last else { throw invalid }
        let multiplier: Int
        switch unit {
        case "h": multiplier = 3600
        case "d": multiplier = 86400
        case "w": multiplier = 86400 * 7
        case "m": multiplier = 86400 * 30
        case "y": multiplier = 86400 * 365
        default: throw invalid
        }
        let number = value.dropLast()
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && $0.isNumber }),
              let n = Int(number), n > 0, n <= Int(Int32.max) else { throw invalid }
        return n * multiplier
    }
}
