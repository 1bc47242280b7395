/// What a TLS client's certificate says about it, for `use_identity_as_username` and
/// `use_subject_as_username`. MidgeServer reads it from the TLS handler once the handshake is
/// done; transports without TLS (or a client that sent no certificate) have none.
public struct TLSClientIdentity: Sendable, Equatable {
    /// The subject's Common Name; nil when the certificate has none.
    public var commonName: String?
    /// The whole subject in RFC 2253 form ("CN=client,O=Example,C=GB"), as Mosquitto prints it.
    public var subject: String

    public init(commonName: String?, subject: String) {
        self.commonName = commonName
        self.subject = subject
    }

    /// The username `source` takes from this certificate (nil: a CN is wanted and there is none).
    public func username(_ source: TLSUsernameSource) -> String? {
        switch source {
        case .commonName: return commonName
        case .subject: return subject
        }
    }
}

/// Which part of the client certificate replaces the CONNECT username on a TLS listener.
public enum TLSUsernameSource: Sendable, Equatable {
    /// `use_identity_as_username true`.
    case commonName
    /// `use_subject_as_username true`.
    case subject
}

extension ConnectionTransport {
    /// Default: no TLS client certificate.
    public var tlsClientIdentity: TLSClientIdentity? { nil }
}
