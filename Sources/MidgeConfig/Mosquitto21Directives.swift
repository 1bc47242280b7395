import MidgeBroker

// Directives that Mosquitto 2.1 added to mosquitto.conf(5) (its man page on the develop branch
// against v2.0.11's) and that Midge does not read yet. A Mosquitto 2.1 file using one stops with
// `FILE:LINE: 'NAME' is a Mosquitto 2.1 option that Midge does not support yet (REASON)` instead
// of "Unknown configuration variable", so the user knows it is known and what it needs.
// docs/conformance.md, "Mosquitto 2.1's new directives", lists each with what Midge does.
extension MosquittoConfReader {
    static let mosquitto21Directives: [String: String] = [
        "accept_protocol_versions": "limiting a listener to some MQTT versions",
        "disable_client_cert_date_checks": "accepting expired client certificates",
        "enable_control_api": "the $CONTROL API of Mosquitto's plugins; the auth issue brings dynamic security",
        "enable_proxy_protocol": "the PROXY protocol in front of a listener",
        "proxy_protocol_v2_require_tls": "the PROXY protocol in front of a listener",
        "global_max_clients": "a broker-wide limit on client sessions",
        "global_max_connections": "a broker-wide limit on connections; max_connections limits each listener",
        "global_plugin": "plugins; the auth issue brings Midge's own backends",
        "max_topic_alias_broker": "a limit on the topic aliases the broker creates",
        "websockets_origin": "checking the Origin of WebSocket upgrades",
        "bridge_ciphers": "bridges",
        "bridge_ciphers_tls1.3": "bridges",
        "bridge_max_topic_alias": "bridges",
        "bridge_receive_maximum": "bridges",
        "bridge_reload_type": "bridges",
        "bridge_session_expiry_interval": "bridges",
        "bridge_tcp_keepalive": "bridges",
        "bridge_tcp_user_timeout": "bridges",
        "bridge_tls_use_os_certs": "bridges",
    ]

    static func mosquitto21Refusal(_ name: String) -> String? {
        mosquitto21Directives[name].map { "'\(name)' is a Mosquitto 2.1 option that Midge does not support yet (\($0))." }
    }
}
