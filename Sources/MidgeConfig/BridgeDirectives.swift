import MidgeBroker

// Bridge directives (mosquitto.conf(5), "Configuring Bridges"): `connection` starts a bridge that
// the following bridge options apply to, as `listener` does for listener options.
//
// Not implemented yet. When bridges come, their handlers go in `bridgeDirectives` (a name found
// there is read, whatever `pendingBridgeDirectives` says) and their names leave the pending list;
// until then every name below is refused with "directive 'NAME' is not supported yet".
extension MosquittoConfReader {
    static let bridgeDirectives: [String: DirectiveHandler] = [:]

    static let pendingBridgeDirectives: Set<String> = [
        "connection", "address", "addresses", "topic", "bridge_alpn", "bridge_attempt_unsubscribe",
        "bridge_bind_address", "bridge_cafile", "bridge_capath", "bridge_certfile", "bridge_identity",
        "bridge_insecure", "bridge_keyfile", "bridge_max_packet_size", "bridge_outgoing_retain",
        "bridge_protocol_version", "bridge_psk", "bridge_require_ocsp", "bridge_tls_version",
        "cleansession", "local_cleansession", "clientid", "remote_clientid", "local_clientid",
        "password", "remote_password", "local_password", "username", "remote_username",
        "local_username", "idle_timeout", "keepalive_interval", "notifications",
        "notifications_local_only", "notification_topic", "restart_timeout", "round_robin",
        "start_type", "threshold", "try_private",
    ]
}
