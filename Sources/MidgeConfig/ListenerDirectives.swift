import MidgeBroker

// Listener directives and listener scoping, as Mosquitto's reader (src/conf.c): `listener` starts
// a listener that the following listener options of the same file apply to; before any
// `listener` line (in each file) they apply to the deprecated default listener, which `port` and
// `bind_address` always configure and which `finishListeners` appends last when it is wanted.
extension MosquittoConfReader {
    static let listenerDirectives: [String: DirectiveHandler] = [
        "listener": { r, line, scope in try r.parseListener(line, cursor: &scope.cursor) },
        "port": { r, line, _ in try r.parseDefaultPort(line) },
        "bind_address": { r, line, _ in try r.parseDefaultBindAddress(line) },
        "bind_interface": { r, line, scope in
            let value = try line.single()
            try r.updateListener(line, scope.cursor) { l in
                if l.bindInterface != nil { throw line.error("Duplicate bind_interface value for this listener.") }
                l.bindInterface = value
            }
        },
        "socket_domain": { r, line, scope in
            let value = try line.single()
            guard let domain = SocketDomain(rawValue: value) else {
                throw line.error("Invalid value for socket_domain: \"\(value)\" (expected ipv4 or ipv6).")
            }
            try r.updateListener(line, scope.cursor) { $0.socketDomain = domain }
        },
        "max_connections": { r, line, scope in
            let n = try line.int()
            try r.updateListener(line, scope.cursor) { $0.maxConnections = n < 0 ? -1 : n }
        },
        "protocol": { r, line, scope in
            let value = try line.single()
            guard value == "mqtt" || value == "websockets" else {
                throw line.error("Invalid value for protocol: \"\(value)\" (expected mqtt or websockets).")
            }
            try r.updateListener(line, scope.cursor) { $0.protocolName = value }
        },
        "max_topic_alias": { r, line, scope in
            let n = try line.int(in: 0...65535)
            try r.updateListener(line, scope.cursor) { $0.maxTopicAlias = n }
            r.directiveCount += 1
            r.topicAliasOrder[scope.cursor] = r.directiveCount
        },
        "mount_point": { r, line, scope in
            // As Mosquitto: only after a `listener` line (of any file), and a valid topic prefix.
            guard !r.listeners.isEmpty else {
                throw line.error("You must create a listener before using the mount_point option in the configuration file.")
            }
            let value = try line.freeText()
            guard !value.contains("+"), !value.contains("#"), !value.utf8.contains(0) else {
                throw line.error("Invalid mount_point '\(value)'. Does it contain a wildcard character?")
            }
            try r.updateListener(line, scope.cursor) { $0.mountPoint = value }
        },
        "max_qos": maxQoSHandler,
        "maximum_qos": maxQoSHandler,
        "use_username_as_clientid": { r, line, scope in
            let value = try line.bool()
            try r.updateListener(line, scope.cursor) { $0.useUsernameAsClientID = value }
        },
        "http_dir": { r, line, scope in
            let value = try line.freeText()
            try r.updateListener(line, scope.cursor) {
                $0.httpDir = value
                $0.httpDirSource = line.source
            }
        },
    ]

    static let maxQoSHandler: DirectiveHandler = { r, line, scope in
        let n = try line.int()
        guard (0...2).contains(n) else { throw line.error("max_qos must be between 0 and 2 inclusive.") }
        try r.updateListener(line, scope.cursor) { $0.maxQoS = n }
    }

    mutating func parseListener(_ line: MosquittoConfLine, cursor: inout ListenerCursor) throws {
        localOnly = false
        let values = line.values
        guard let portText = values.first else {
            throw line.error("Missing port for listener (expected: listener PORT [BIND_ADDRESS|UNIX_SOCKET_PATH]).")
        }
        if values.count > 2 {
            throw line.error("Unexpected extra value \"\(values[2])\" for listener (expected: listener PORT [BIND_ADDRESS|UNIX_SOCKET_PATH]).")
        }
        let port = try line.int(portText)
        guard (0...65535).contains(port) else {
            throw line.error("Invalid listener port \(port) (must be between 1 and 65535, or 0 with a Unix socket path).")
        }
        var listener = ListenerConfiguration(port: port, source: line.source)
        if values.count == 2 {
            if port == 0 {
                listener.unixSocketPath = values[1]
            } else {
                listener.bindAddress = values[1]
            }
        } else if port == 0 {
            throw line.error("A listener with port 0 must provide a Unix socket path.")
        }
        listeners.append(listener)
        cursor = listeners.count - 1
    }

    /// `port`: always the default listener's, wherever it stands.
    mutating func parseDefaultPort(_ line: MosquittoConfLine) throws {
        warn(line, "The 'port' option is deprecated; use 'listener' instead.")
        localOnly = false
        let port = try line.int()
        guard (1...65535).contains(port) else {
            throw line.error("Invalid port value \(port) (must be between 1 and 65535).")
        }
        if defaultPortSource != nil {
            warn(line, "Default listener port specified multiple times. Only the latest will be used.")
        }
        defaultListener.port = port
        defaultPortSource = line.source
    }

    /// `bind_address`: always the default listener's, wherever it stands.
    mutating func parseDefaultBindAddress(_ line: MosquittoConfLine) throws {
        warn(line, "The 'bind_address' option is deprecated; use 'listener PORT ADDRESS' instead.")
        localOnly = false
        let address = try line.single()
        if defaultListener.bindAddress != nil {
            throw line.error("Duplicate bind_address value (bind_address applies to the default listener only).")
        }
        defaultListener.bindAddress = address
        defaultBindAddressSource = line.source
    }

    /// Applies a listener option to the current listener (the default listener when `cursor` is nil).
    mutating func updateListener(_ line: MosquittoConfLine, _ cursor: ListenerCursor,
                                 _ body: (inout ListenerConfiguration) throws -> Void) throws {
        if let index = cursor {
            try body(&listeners[index])
        } else {
            try body(&defaultListener)
            if defaultTouched == nil { defaultTouched = (line.directive, line.source) }
        }
    }

    /// The listeners in Mosquitto's order (the default listener last, when the file is not
    /// local-only and the default listener was configured) and the broker-wide topic alias maximum.
    mutating func finishListeners(into result: inout BrokerConfiguration) {
        var all = listeners
        var lastTopicAlias: (order: Int, value: Int)?
        for (index, listener) in listeners.enumerated() {
            if let order = topicAliasOrder[index], order > (lastTopicAlias?.order ?? 0) {
                lastTopicAlias = (order, listener.maxTopicAlias)
            }
        }

        let d = defaultListener
        let configured = defaultPortSource != nil || d.bindAddress != nil || d.bindInterface != nil
            || d.socketDomain != nil || d.maxConnections != -1 || d.protocolName != "mqtt"
            || d.security.allowZeroLengthClientID != true || d.tls.isConfigured
            || d.mountPoint != nil || d.maxQoS != 2 || d.useUsernameAsClientID || d.security.pskFile != nil
        if !localOnly && configured {
            var listener = d
            if defaultPortSource == nil { listener.port = 1883 }
            listener.source = defaultPortSource ?? defaultBindAddressSource ?? defaultTouched?.source ?? listener.source
            all.append(listener)
            if let order = topicAliasOrder[nil], order > (lastTopicAlias?.order ?? 0) {
                lastTopicAlias = (order, listener.maxTopicAlias)
            }
        } else if let touched = defaultTouched {
            let reason = localOnly
                ? "no listener is defined, so the broker runs in local-only mode"
                : "the default listener is not defined (no 'port' or 'bind_address')"
            result.warnings.append("\(touched.source.file):\(touched.source.line): '\(touched.name)' appears before any "
                                   + "'listener' line and so applies to the default listener, but \(reason); it has no effect.")
        }
        for listener in all where listener.httpDir != nil && listener.protocolName != "websockets" {
            let source = listener.httpDirSource ?? listener.source
            result.warnings.append("\(source.file):\(source.line): http_dir has no effect on a listener without 'protocol websockets'.")
        }
        result.listeners = all
        result.maxTopicAlias = lastTopicAlias?.value ?? 10
    }
}
