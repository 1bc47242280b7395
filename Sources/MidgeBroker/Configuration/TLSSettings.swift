/// A listener's certificate-based TLS options (mosquitto.conf(5), "Certificate based SSL/TLS
/// support"). As in Mosquitto they always belong to the listener being configured (the default
/// listener before any `listener` line), whatever `per_listener_settings` says. The files are
/// only named here; MidgeServer loads them at start-up (and again on SIGHUP), reporting a problem
/// at the line that named the file.
public struct TLSSettings: Equatable, Sendable {
    /// `tls_version`: the lowest protocol version accepted.
    public enum Version: String, Equatable, Sendable, CaseIterable {
        case tlsv1_1 = "tlsv1.1"
        case tlsv1_2 = "tlsv1.2"
        case tlsv1_3 = "tlsv1.3"
    }

    /// `certfile`: the server certificate chain (PEM).
    public var certFile: String?
    /// `keyfile`: the server's private key (PEM).
    public var keyFile: String?
    /// `cafile`: CA certificates (PEM) that client certificates must chain to.
    public var caFile: String?
    /// `capath`: a directory of CA certificates (OpenSSL hashed names, as made by `openssl rehash`).
    public var caPath: String?
    /// `crlfile`: a certificate revocation list (PEM) checked against client certificates.
    public var crlFile: String?
    /// `require_certificate`: clients must present a certificate signed by the CA.
    public var requireCertificate = false
    /// `use_identity_as_username`: the client certificate's Common Name becomes the username
    /// (the password file is not consulted; a client without a certificate is refused).
    public var useIdentityAsUsername = false
    /// `use_subject_as_username`: the whole subject (RFC 2253 form) becomes the username.
    public var useSubjectAsUsername = false
    /// `tls_version`; nil = TLS 1.2 and 1.3 (1.3 preferred).
    public var minimumVersion: Version?
    /// `ciphers`: OpenSSL cipher list for TLS 1.2 and below; nil = the library's default.
    public var ciphers: String?
    /// `ciphers_tls1.3`: TLS 1.3 suites; nil = all.
    public var ciphersTLS13: String?
    /// `psk_hint`: the listener speaks TLS-PSK (keys from `psk_file`), this hint sent to clients.
    public var pskHint: String?
    /// File and line of each directive given (key: the directive's name), for start-up errors.
    public var sources: [String: ConfigSource] = [:]

    public init() {}

    /// Whether the listener is meant to speak TLS: a certificate, key, CA or CRL file was named
    /// (the server then requires `certfile` and `keyfile`). `require_certificate false` and the
    /// like alone leave a plain listener plain, as in Mosquitto.
    public var isConfigured: Bool {
        certFile != nil || keyFile != nil || caFile != nil || caPath != nil || crlFile != nil || pskHint != nil
    }

    /// Where `directive` was given, or the listener's own line.
    public func source(of directive: String, or fallback: ConfigSource) -> ConfigSource {
        sources[directive] ?? fallback
    }
}
