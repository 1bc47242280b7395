import MidgeBroker

// Security directives. `allow_anonymous`, `allow_zero_length_clientid`, `auto_id_prefix`,
// `password_file` and `acl_file` go to the global settings, or, when `per_listener_settings` is
// true at that point of the file, to the current listener (the default listener before any
// `listener` line). `per_listener_settings true` after any security option (check_retain_source
// included) is an error, as in Mosquitto. The brute-force limits are broker-wide.
extension MosquittoConfReader {
    enum SecurityTarget: Hashable {
        case global
        case defaultListener
        case listener(Int)
    }

    static let securityDirectives: [String: DirectiveHandler] = [
        "per_listener_settings": { r, line, _ in
            let value = try line.bool()
            if value && r.securityOptionSeen {
                throw line.error("per_listener_settings must be set before any other security settings "
                                 + "(allow_anonymous, allow_zero_length_clientid, auto_id_prefix, check_retain_source, ...).")
            }
            r.config.perListenerSettings = value
        },
        "allow_anonymous": securityOption(LineValue.bool) { $0.allowAnonymous = $1 },
        "allow_zero_length_clientid": securityOption(LineValue.bool) { $0.allowZeroLengthClientID = $1 },
        "auto_id_prefix": { r, line, scope in
            let value = try line.freeText()
            let target = r.securityTarget(scope.cursor)
            if r.autoIDPrefixSet.contains(target) {
                throw line.error("Duplicate auto_id_prefix value in configuration.")
            }
            r.autoIDPrefixSet.insert(target)
            try r.updateSecurity(line, scope.cursor) { $0.autoIDPrefix = value }
        },
        "password_file": securityOption(LineValue.freeText) { $0.passwordFile = $1 },
        "acl_file": securityOption(LineValue.freeText) { $0.aclFile = $1 },
        "psk_file": securityOption(LineValue.freeText) { $0.pskFile = $1 },
        "auth_plugin_deny_special_chars": { r, line, _ in
            // Mosquitto's meaning: an option of the preceding auth_plugin (error without one).
            guard r.authPluginSeen else {
                throw line.error("An auth_plugin_deny_special_chars option exists in the config file without an auth_plugin.")
            }
            r.config.authPluginDenySpecialChars = try line.bool()
        },
        "check_retain_source": { r, line, _ in
            // Global, but Mosquitto counts it as a security option for per_listener_settings ordering.
            let value = try line.bool()
            r.securityOptionSeen = true
            r.config.checkRetainSource = value
        },
        "auth_failure_limit": { r, line, _ in r.config.authFailureLimit = try line.int(in: 0...1_000_000) },
        "auth_failure_window": { r, line, _ in r.config.authFailureWindow = try line.int(in: 1...86_400) },
        "auth_ban_time": { r, line, _ in r.config.authBanTime = try line.int(in: 1...86_400) },
        "connection_rate_limit": { r, line, _ in r.config.connectionRateLimit = try line.int(in: 0...1_000_000) },
        "acl_refuses_subscriptions": { r, line, _ in r.config.aclRefusesSubscriptions = try line.bool() },
    ]

    /// A handler that reads the value with `read`, then stores it with `set` in the security
    /// settings the line applies to (global or the current listener's).
    static func securityOption<Value>(_ read: @escaping @Sendable (MosquittoConfLine) throws -> Value,
                                      _ set: @escaping @Sendable (inout SecuritySettings, Value) -> Void) -> DirectiveHandler {
        { r, line, scope in
            let value = try read(line)
            try r.updateSecurity(line, scope.cursor) { set(&$0, value) }
        }
    }

    func securityTarget(_ cursor: ListenerCursor) -> SecurityTarget {
        guard config.perListenerSettings else { return .global }
        if let index = cursor { return .listener(index) }
        return .defaultListener
    }

    mutating func updateSecurity(_ line: MosquittoConfLine, _ cursor: ListenerCursor,
                                 _ body: (inout SecuritySettings) -> Void) throws {
        securityOptionSeen = true
        switch securityTarget(cursor) {
        case .global:
            body(&config.security)
        case .listener(let index):
            body(&listeners[index].security)
        case .defaultListener:
            body(&defaultListener.security)
            if defaultTouched == nil { defaultTouched = (line.directive, line.source) }
        }
    }
}
