import MidgeBroker

// Directives Mosquitto 2.0 knows and Midge will implement in a later stage. They are refused with
// "directive 'NAME' is not supported yet" (not "Unknown configuration variable"), so a Mosquitto
// file says clearly what it still needs. Bridges keep their list beside their (empty) handler
// table: BridgeDirectives.swift.
extension MosquittoConfReader {
    static let pendingOtherDirectives: Set<String> = [
        // Authentication / access control
        "psk_file", "psk_hint", "auth_plugin", "plugin",
        "auth_plugin_deny_special_chars",
        // TLS (the certificate-based options are supported: TLSDirectives.swift)
        "tls_engine", "tls_engine_kpass_sha1", "tls_keyform", "dhparamfile",
        // Other listener options
        "use_username_as_clientid", "mount_point", "max_qos", "maximum_qos", "http_dir",
        // Miscellaneous
        "websockets_log_level", "websockets_headers_size", "sys_interval", "memory_limit",
        "clientid_prefixes",
    ]

    /// Directive-name prefixes that are not supported yet (`auth_opt_*`, `plugin_opt_*`).
    static let notSupportedYetPrefixes = ["auth_opt_", "plugin_opt_"]

    static let notSupportedYet: Set<String> =
        pendingOtherDirectives.union(pendingBridgeDirectives)

    static func isNotSupportedYet(_ name: String) -> Bool {
        notSupportedYet.contains(name) || notSupportedYetPrefixes.contains(where: { name.hasPrefix($0) })
    }
}
