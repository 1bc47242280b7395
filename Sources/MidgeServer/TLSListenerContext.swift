import Foundation
import MidgeBroker
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

// How to put TLS in front of another protocol (e.g. MQTT over WebSockets, `wss`):
//   - `ListenerPlan.tls` is a `TLSListenerContext` for every listener with `certfile`, built
//     (and its files checked) at start-up;
//   - in the child channel initializer, add the TLS handlers FIRST, then the protocol's own:
//     `try channel.pipeline.syncOperations.addHandlers(tls.makeHandlers(log: broker.log))`
//     (`tls.makeHandler()` alone gives the NIOSSLServerHandler without the failure log);
//   - SIGHUP calls `reload()`: new connections get the re-read certificates, open ones keep theirs.
//   - `MQTTChannelHandler.tlsClientIdentity` finds the NIOSSLHandler anywhere in the pipeline,
//     so `use_identity_as_username` works behind other handlers too.

/// The server side of one TLS listener: the NIOSSL context made from the listener's `certfile`,
/// `keyfile`, `cafile`/`capath`, `crlfile`, `require_certificate`, `tls_version` and `ciphers`.
/// Every problem with those files is found here, at start-up, as `FILE:LINE: ...` (the line
/// that named the file), not at the first connection.
public final class TLSListenerContext: @unchecked Sendable {
    public let settings: TLSSettings
    /// The `listener` line (for problems that belong to no single directive).
    public let listenerSource: ConfigSource
    /// Non-fatal notes for the log (e.g. a `ciphers_tls1.3` BoringSSL cannot honour).
    public let warnings: [String]
    private let lock = NIOLock()
    private var current: Loaded

    private struct Loaded {
        var context: NIOSSLContext
        var revocations: TLSRevocationList?
        /// TLS-PSK (`psk_hint`): the keys of `psk_file` and the configuration to make a context
        /// per connection with when the identity becomes the username.
        var psk: (keys: TLSPreSharedKeys, configuration: TLSConfiguration)?
    }

    /// `psk_file` of this listener (its own with per_listener_settings, else the global one).
    public let pskFile: String?

    /// Loads and checks every file now.
    public init(settings: TLSSettings, listenerSource: ConfigSource, pskFile: String? = nil) throws {
        self.settings = settings
        self.listenerSource = listenerSource
        self.pskFile = pskFile
        var warnings: [String] = []
        self.current = try Self.load(settings, listenerSource, pskFile: pskFile, warnings: &warnings)
        self.warnings = warnings
    }

    /// `use_identity_as_username` / `use_subject_as_username`, if set.
    public var usernameSource: TLSUsernameSource? {
        if settings.useIdentityAsUsername { return .commonName }
        if settings.useSubjectAsUsername { return .subject }
        return nil
    }

    /// A new server-side TLS handler for one accepted connection: the first handler of its pipeline.
    public func makeHandler() -> NIOSSLServerHandler {
        makeHandlerAndPSKIdentity().handler
    }

    /// The TLS handler and, on a PSK listener whose identity is the username, the holder the
    /// identity the client used is put in during the handshake (its own context's callback).
    private func makeHandlerAndPSKIdentity() -> (handler: NIOSSLServerHandler, identity: TLSPreSharedKeys.IdentityHolder?) {
        let loaded = lock.withLock { current }
        if let psk = loaded.psk, settings.useIdentityAsUsername {
            let holder = TLSPreSharedKeys.IdentityHolder()
            var configuration = psk.configuration
            configuration.pskServerProvider = psk.keys.provider(recordingIn: holder)
            if let context = try? NIOSSLContext(configuration: configuration) {
                return (NIOSSLServerHandler(context: context), holder)
            }
        }
        return (makeSharedHandler(loaded), nil)
    }

    private func makeSharedHandler(_ loaded: Loaded) -> NIOSSLServerHandler {
        guard let revocations = loaded.revocations else {
            return NIOSSLServerHandler(context: loaded.context)
        }
        // After BoringSSL has verified the chain: refuse a client certificate the CRL revokes.
        return NIOSSLServerHandler._makeSSLServerHandler(context: loaded.context) { certificate, channel in
            if revocations.revokes(certificate) {
                return channel.eventLoop.makeFailedFuture(TLSRevocationList.CertificateRevoked())
            }
            return channel.eventLoop.makeSucceededVoidFuture()
        }
    }

    /// The handlers to put first in an accepted connection's pipeline: the TLS handler and,
    /// until the handshake is done, the log line of a failed handshake (TLSHandshakeLog).
    public func makeHandlers(log: BrokerLog) -> [ChannelHandler] {
        let (handler, identity) = makeHandlerAndPSKIdentity()
        guard let identity else { return [handler, TLSHandshakeLog(log: log)] }
        return [handler, TLSHandshakeLog(log: log), TLSPreSharedKeys.IdentityHandler(holder: identity)]
    }

    /// SIGHUP: re-reads the files; on error keeps the previous context and returns the error.
    @discardableResult
    public func reload() -> ConfigError? {
        var ignored: [String] = []
        do {
            let loaded = try Self.load(settings, listenerSource, pskFile: pskFile, warnings: &ignored)
            lock.withLock { current = loaded }
            return nil
        } catch let error as ConfigError {
            return error
        } catch {
            return ConfigError(file: listenerSource.file, line: listenerSource.line, message: "\(error)")
        }
    }

    // MARK: Loading

    private static func load(_ settings: TLSSettings, _ listener: ConfigSource, pskFile: String?,
                             warnings: inout [String]) throws -> Loaded {
        func fail(_ directive: String, _ message: String) -> ConfigError {
            let source = settings.source(of: directive, or: listener)
            return ConfigError(file: source.file, line: source.line, message: message)
        }
        if let hint = settings.pskHint {
            return try loadPSK(settings, hint: hint, pskFile: pskFile, fail: fail)
        }
        guard let certFile = settings.certFile else {
            let first = settings.sources.min { ($0.value.file, $0.value.line) < ($1.value.file, $1.value.line) }
            let source = first?.value ?? listener
            throw ConfigError(file: source.file, line: source.line,
                              message: "TLS options given for this listener but no certfile (the server certificate).")
        }
        guard let keyFile = settings.keyFile else {
            throw fail("certfile", "certfile given without keyfile: both must be provided together.")
        }

        try checkReadable(certFile) { fail("certfile", "Unable to load server certificate \"\(certFile)\": \($0).") }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certFile)
        } catch {
            throw fail("certfile", "Unable to load server certificate \"\(certFile)\": not a PEM certificate.")
        }
        guard !chain.isEmpty else {
            throw fail("certfile", "Unable to load server certificate \"\(certFile)\": no certificate in the file.")
        }
        try checkReadable(keyFile) { fail("keyfile", "Unable to load server key file \"\(keyFile)\": \($0).") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw fail("keyfile", "Unable to load server key file \"\(keyFile)\": not a PEM private key (or it is encrypted).")
        }

        // Read here (before the server configuration) to complete the chain below.
        var caCertificates: [NIOSSLCertificate] = []
        if let caFile = settings.caFile {
            try checkReadable(caFile) { fail("cafile", "Unable to load CA certificates from \"\(caFile)\": \($0).") }
            do {
                caCertificates = try NIOSSLCertificate.fromPEMFile(caFile)
            } catch {
                throw fail("cafile", "Unable to load CA certificates from \"\(caFile)\": not PEM certificates.")
            }
            if caCertificates.isEmpty { throw fail("cafile", "Unable to load CA certificates from \"\(caFile)\": no certificate in the file.") }
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: completeChain(chain, from: caCertificates).map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = version(settings.minimumVersion)
        configuration.maximumTLSVersion = .tlsv13

        // (makeServerConfiguration trusts the system's CAs; only the configured ones must count.)
        var hasCA = false
        if !caCertificates.isEmpty {
            configuration.trustRoots = .certificates(caCertificates)
            hasCA = true
        }
        if let caPath = settings.caPath {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: caPath, isDirectory: &isDirectory), isDirectory.boolValue,
                  FileManager.default.isReadableFile(atPath: caPath) else {
                throw fail("capath", "Unable to load CA certificates from capath \"\(caPath)\": not a readable directory.")
            }
            if hasCA {
                configuration.additionalTrustRoots = [.file(caPath)]
            } else {
                configuration.trustRoots = .file(caPath)
            }
            hasCA = true
        }
        if settings.requireCertificate {
            guard hasCA else {
                throw fail("require_certificate", "require_certificate true needs cafile or capath (the CA client certificates must chain to).")
            }
            // Mosquitto: SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT. Clients have no host name to check.
            configuration.certificateVerification = .noHostnameVerification
        } else {
            // Mosquitto does not ask for a client certificate unless require_certificate is set.
            configuration.certificateVerification = .none
        }
        if let ciphers = settings.ciphers {
            var probe = TLSConfiguration.makeClientConfiguration()
            probe.cipherSuites = ciphers
            do {
                _ = try NIOSSLContext(configuration: probe)
            } catch {
                throw fail("ciphers", "Invalid ciphers value \"\(ciphers)\": no usable cipher in the list.")
            }
            configuration.cipherSuites = ciphers
        }
        if let suites = settings.ciphersTLS13 {
            let known: Set<String> = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                                      "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"]
            let names = suites.split(separator: ":").map(String.init)
            if names.isEmpty || names.contains(where: { !known.contains($0) }) {
                throw fail("ciphers_tls1.3", "Invalid ciphers_tls1.3 value \"\(suites)\" (expected TLS 1.3 suite names separated by ':').")
            }
            let source = settings.source(of: "ciphers_tls1.3", or: listener)
            warnings.append("\(source.file):\(source.line): ciphers_tls1.3 is accepted but BoringSSL always offers "
                            + "TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384 and TLS_CHACHA20_POLY1305_SHA256 (all strong).")
        }
        var revocations: TLSRevocationList?
        // Without require_certificate no client certificate is asked for: nothing to revoke.
        if let crlFile = settings.crlFile, settings.requireCertificate {
            try checkReadable(crlFile) { fail("crlfile", "Unable to load certificate revocation list \"\(crlFile)\": \($0).") }
            do {
                revocations = try TLSRevocationList(pemFile: crlFile)
            } catch {
                throw fail("crlfile", "Unable to load certificate revocation list \"\(crlFile)\": \(error).")
            }
        }

        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            // The files were each readable and well-formed: what is left is a key that is not the
            // certificate's (BoringSSL checks the pair when the context is made).
            throw fail("keyfile", "Server key file \"\(keyFile)\" does not match the certificate in \"\(certFile)\" (\(describe(error))).")
        }
        return Loaded(context: context, revocations: revocations)
    }

    /// The server's chain as OpenSSL (and so Mosquitto) sends it when `certfile` holds only the
    /// leaf: followed by the intermediate CAs from `cafile` that issued it, up to (not including)
    /// a self-signed root, so that clients trusting only the root can verify it.
    static func completeChain(_ chain: [NIOSSLCertificate], from authorities: [NIOSSLCertificate]) -> [NIOSSLCertificate] {
        func same(_ a: [SSLCertificateName], _ b: [SSLCertificateName]) -> Bool {
            a.count == b.count && zip(a, b).allSatisfy { "\($0.type)" == "\($1.type)" && $0.value == $1.value }
        }
        var result = chain
        while let last = result.last, !same(last.issuerName, last.subjectName), result.count < 10,
              let issuer = authorities.first(where: { same($0.subjectName, last.issuerName) && !result.contains($0) }),
              !same(issuer.issuerName, issuer.subjectName) {
            result.append(issuer)
        }
        return result
    }

    /// A TLS-PSK listener (`psk_hint`, keys from `psk_file`). BoringSSL does PSK with TLS 1.2
    /// and below only (its TLS 1.3 has no external PSK callback), so the listener speaks at most
    /// TLS 1.2, with the PSK suites (or `ciphers`).
    private static func loadPSK(_ settings: TLSSettings, hint: String, pskFile: String?,
                                fail: (String, String) -> ConfigError) throws -> Loaded {
        guard let pskFile else {
            throw fail("psk_hint", "psk_hint needs psk_file (the identities and keys of the clients).")
        }
        if settings.minimumVersion == .tlsv1_3 {
            throw fail("tls_version", "tls_version tlsv1.3 cannot be used with psk_hint: Midge's TLS-PSK is TLS 1.2 and below.")
        }
        let keys = try TLSPreSharedKeys(file: pskFile)
        var configuration = TLSConfiguration.makePreSharedKeyConfiguration()
        configuration.minimumTLSVersion = version(settings.minimumVersion)
        configuration.maximumTLSVersion = .tlsv12
        configuration.pskHint = hint
        configuration.cipherSuites = settings.ciphers ?? "PSK"
        configuration.pskServerProvider = keys.provider(recordingIn: nil)
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw fail(settings.ciphers == nil ? "psk_hint" : "ciphers", "Unable to set up TLS-PSK: \(describe(error)).")
        }
        return Loaded(context: context, revocations: nil, psk: (keys, configuration))
    }

    private static func version(_ version: TLSSettings.Version?) -> TLSVersion {
        switch version {
        case .tlsv1_1?: return .tlsv11
        case .tlsv1_3?: return .tlsv13
        case .tlsv1_2?, nil: return .tlsv12
        }
    }

    /// Throws `failure(reason)` when `path` cannot be opened for reading (missing, permissions).
    private static func checkReadable(_ path: String, _ failure: (String) -> ConfigError) throws {
        guard let file = fopen(path, "r") else {
            throw failure(String(cString: strerror(errno)))
        }
        fclose(file)
    }

    static func describe(_ error: Error) -> String {
        if let ssl = error as? NIOSSLError, case .failedToLoadPrivateKey = ssl { return "key values mismatch" }
        if case BoringSSLError.unknownError(let stack) = error, let first = stack.first { return "\(first)" }
        return "\(error)"
    }

    // MARK: Client identity

    /// The client certificate of the TLS connection `context` belongs to (any NIOSSLHandler in
    /// its pipeline), for `use_identity_as_username`; nil without TLS or without a certificate.
    public static func clientIdentity(of context: ChannelHandlerContext) -> TLSClientIdentity? {
        if let psk = try? context.pipeline.syncOperations.handler(type: TLSPreSharedKeys.IdentityHandler.self),
           let identity = psk.holder.identity {
            // TLS-PSK: the identity the client used stands for the certificate's name.
            return TLSClientIdentity(commonName: identity, subject: identity)
        }
        guard let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
              let certificate = handler.peerCertificate else { return nil }
        return identity(of: certificate)
    }

    /// The certificate's Common Name and its subject in RFC 2253 form (last name first, as
    /// OpenSSL's `XN_FLAG_RFC2253` prints it for Mosquitto's `use_subject_as_username`).
    public static func identity(of certificate: NIOSSLCertificate) -> TLSClientIdentity {
        let names = certificate.subjectName
        let commonName = names.last { $0.type == .commonName }?.value
        let subject = names.reversed().map { "\(shortName($0.type))=\(escapeRFC2253($0.value))" }.joined(separator: ",")
        return TLSClientIdentity(commonName: commonName, subject: subject)
    }

    private static func shortName(_ type: SSLCertificateNameType) -> String {
        switch type {
        case .commonName: return "CN"
        case .country: return "C"
        case .state: return "ST"
        case .city: return "L"
        case .organization: return "O"
        case .organizationalUnit: return "OU"
        case .emailAddress: return "emailAddress"
        case .userId: return "UID"
        default: return "?"
        }
    }

    private static func escapeRFC2253(_ value: String) -> String {
        var out = ""
        for (index, character) in value.enumerated() {
            if ",+\"\\<>;".contains(character) || (index == 0 && (character == "#" || character == " "))
                || (index == value.count - 1 && character == " ") {
                out.append("\\")
            }
            out.append(character)
        }
        return out
    }
}
