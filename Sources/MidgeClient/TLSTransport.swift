import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

// How to put this TLS client under another protocol (e.g. MQTT over WebSockets, `wss://`):
//   let setup = try TLSClientSetup(TLSClientOptions(caFile: "ca.crt"))  // once per client: files read here
//   // in the channel initializer, FIRST, then the protocol's own handlers:
//   try setup.addHandlers(to: channel, host: host, onFailure: nil)
// `TLSClientOptions.makeClientConfiguration()` gives the bare NIOSSL `TLSConfiguration`.
// A failed handshake reaches the next handlers' errorCaught as `MQTTClientError.unreachable(
// "TLS handshake failed: <which check>")` and is passed to `onFailure`.

/// The TLS side of a client connection: mosquitto_pub's `--cafile`, `--capath`, `--cert`,
/// `--key`, `--insecure`, `--tls-version`, `--tls-use-os-certs`, `--ciphers`.
public struct TLSClientOptions: Sendable, Equatable {
    /// `--tls-version`: the lowest version offered (TLS 1.3 is preferred when both sides have it).
    public enum Version: String, Sendable, Equatable, CaseIterable {
        case tlsv1_1 = "tlsv1.1"
        case tlsv1_2 = "tlsv1.2"
        case tlsv1_3 = "tlsv1.3"
    }

    /// PEM CA certificates the broker's certificate must chain to.
    public var caFile: String?
    /// Directory of CA certificates (OpenSSL hashed names).
    public var caPath: String?
    /// Client certificate (PEM) and its key, for brokers with `require_certificate true`.
    public var certFile: String?
    public var keyFile: String?
    /// Do not check that the broker's certificate is valid for the host name (the chain still is).
    public var insecure: Bool
    /// Trust the operating system's CA certificates too (the default when no cafile/capath is given).
    public var useOSCertificates: Bool
    /// nil: TLS 1.2.
    public var minimumVersion: Version?
    /// OpenSSL cipher list for TLS 1.2 and below.
    public var ciphers: String?

    public init(caFile: String? = nil, caPath: String? = nil, certFile: String? = nil, keyFile: String? = nil,
                insecure: Bool = false, useOSCertificates: Bool = false, minimumVersion: Version? = nil, ciphers: String? = nil) {
        self.caFile = caFile; self.caPath = caPath; self.certFile = certFile; self.keyFile = keyFile
        self.insecure = insecure; self.useOSCertificates = useOSCertificates
        self.minimumVersion = minimumVersion; self.ciphers = ciphers
    }

    /// The NIOSSL configuration; throws `TLSClientError` (one line naming the file) when a file
    /// cannot be read.
    public func makeClientConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch minimumVersion {
        case .tlsv1_1?: configuration.minimumTLSVersion = .tlsv11
        case .tlsv1_3?: configuration.minimumTLSVersion = .tlsv13
        case .tlsv1_2?, nil: configuration.minimumTLSVersion = .tlsv12
        }
        configuration.maximumTLSVersion = .tlsv13
        configuration.certificateVerification = insecure ? .noHostnameVerification : .fullVerification
        var roots: [NIOSSLAdditionalTrustRoots] = []
        if let caFile {
            try Self.checkReadable(caFile, "cafile")
            guard let certificates = try? NIOSSLCertificate.fromPEMFile(caFile), !certificates.isEmpty else {
                throw TLSClientError(message: "Unable to load CA certificates from cafile \"\(caFile)\": not PEM certificates.")
            }
            roots.append(.certificates(certificates))
        }
        if let caPath {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: caPath, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw TLSClientError(message: "Unable to load CA certificates from capath \"\(caPath)\": not a directory.")
            }
            roots.append(.file(caPath))
        }
        if roots.isEmpty || useOSCertificates {
            configuration.trustRoots = .default
            configuration.additionalTrustRoots = roots
        } else {
            switch roots[0] {
            case .file(let path): configuration.trustRoots = .file(path)
            case .certificates(let certificates): configuration.trustRoots = .certificates(certificates)
            }
            configuration.additionalTrustRoots = Array(roots.dropFirst())
        }
        switch (certFile, keyFile) {
        case (let certFile?, let keyFile?):
            try Self.checkReadable(certFile, "cert")
            guard let chain = try? NIOSSLCertificate.fromPEMFile(certFile), !chain.isEmpty else {
                throw TLSClientError(message: "Unable to load client certificate \"\(certFile)\": not a PEM certificate.")
            }
            try Self.checkReadable(keyFile, "key")
            guard let key = try? NIOSSLPrivateKey(file: keyFile, format: .pem) else {
                throw TLSClientError(message: "Unable to load client key file \"\(keyFile)\": not a PEM private key (or it is encrypted).")
            }
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(key)
        case (nil, nil):
            break
        default:
            throw TLSClientError(message: "Both certfile and keyfile must be provided if one of them is set.")
        }
        if let ciphers { configuration.cipherSuites = ciphers }
        return configuration
    }

    /// The NIOSSL context (files read, key checked against the certificate).
    public func makeContext() throws -> NIOSSLContext {
        let configuration = try makeClientConfiguration()
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            if certFile != nil {
                throw TLSClientError(message: "Unable to use client certificate \"\(certFile ?? "")\" with key \"\(keyFile ?? "")\": they do not match (or the cipher list is invalid).")
            }
            throw TLSClientError(message: "Invalid TLS options (\(error)).")
        }
    }

    /// The handlers to put first in a new channel's pipeline: NIOSSL's, and one that words
    /// handshake failures (see `TLSHandshakeDiagnosis`).
    public func makeHandlers(context: NIOSSLContext, host: String,
                             onFailure: (@Sendable (MQTTClientError) -> Void)?) throws -> [ChannelHandler] {
        let diagnosis = TLSHandshakeDiagnosis(host: host, sentCertificate: certFile != nil)
        // SNI and the host-name check use the name; an IP address is checked against the
        // certificate's IP entries instead (NIOSSL forbids it in SNI).
        let isIPAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        // The (deprecated) observing callback keeps BoringSSL's own verification and shows us
        // the certificate that failed it, to tell "expired" from "unknown CA"; its replacement
        // would replace the verification itself.
        let ssl = try NIOSSLClientHandler(context: context, serverHostname: isIPAddress ? nil : host,
                                          verificationCallback: { result, certificate in
            diagnosis.observe(result, certificate)
            return result
        })
        return [ssl, TLSFailureReporter(diagnosis: diagnosis, onFailure: onFailure)]
    }

    private static func checkReadable(_ path: String, _ option: String) throws {
        guard let file = fopen(path, "r") else {
            throw TLSClientError(message: "Unable to open --\(option) \"\(path)\": \(String(cString: strerror(errno))).")
        }
        fclose(file)
    }
}

/// A TLS option the client cannot use (unreadable file, certificate without key, ...).
public struct TLSClientError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// TLS options made ready once (files read, context built): adds the TLS handlers to each new
/// channel. Usable without importing NIOSSL.
public struct TLSClientSetup: @unchecked Sendable {
    public let options: TLSClientOptions
    private let context: NIOSSLContext

    public init(_ options: TLSClientOptions) throws {
        self.options = options
        self.context = try options.makeContext()
    }

    /// Adds the TLS handlers at the end of `channel`'s pipeline (call before any other handler).
    public func addHandlers(to channel: Channel, host: String, onFailure: (@Sendable (MQTTClientError) -> Void)?) throws {
        try channel.pipeline.syncOperations.addHandlers(options.makeHandlers(context: context, host: host, onFailure: onFailure))
    }
}

extension MQTTTransport {
    /// MQTT over TLS (`mqtts://`). The files are read when the transport is made; a problem with
    /// them fails every connection attempt with that `TLSClientError`.
    public static func tls(_ options: TLSClientOptions) -> MQTTTransport {
        let setup = Result { try TLSClientSetup(options) }
        return MQTTTransport { host, port, eventLoop, handler in
            let ready: TLSClientSetup
            switch setup {
            case .success(let made): ready = made
            case .failure(let error): return eventLoop.makeFailedFuture(error)
            }
            return ClientBootstrap(group: eventLoop)
                .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    do {
                        try ready.addHandlers(to: channel, host: host, onFailure: nil)
                        try channel.pipeline.syncOperations.addHandler(handler)
                        return channel.eventLoop.makeSucceededVoidFuture()
                    } catch {
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                }
                .connect(host: host, port: port)
        }
    }
}

/// Remembers what certificate verification saw, to say which check a failed handshake failed.
final class TLSHandshakeDiagnosis: @unchecked Sendable {
    let host: String
    let sentCertificate: Bool
    private let lock = NIOLock()
    private var failedCertificate: NIOSSLCertificate?

    init(host: String, sentCertificate: Bool) {
        self.host = host
        self.sentCertificate = sentCertificate
    }

    func observe(_ result: NIOSSLVerificationResult, _ certificate: NIOSSLCertificate) {
        if case .failed = result {
            lock.withLock { if failedCertificate == nil { failedCertificate = certificate } }
        }
    }

    /// One line: "TLS handshake failed: <the check that failed>".
    func describe(_ error: Error) -> String {
        let text = "\(error)"
        let reason: String
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            reason = "hostname mismatch: the broker's certificate is not valid for \"\(host)\""
        } else if text.contains("CERTIFICATE_VERIFY_FAILED") {
            let certificate = lock.withLock { failedCertificate }
            let now = time(nil)
            if let certificate, certificate.notValidAfter < now {
                reason = "the broker's certificate has expired (\(Self.subject(certificate)))"
            } else if let certificate, certificate.notValidBefore > now {
                reason = "the broker's certificate is not valid yet (\(Self.subject(certificate)))"
            } else {
                reason = "unknown CA: the broker's certificate is not signed by a trusted CA"
                    + (certificate.map { " (\(Self.subject($0)))" } ?? "")
            }
        } else if text.contains("CERTIFICATE_REQUIRED") || (!sentCertificate && text.contains("HANDSHAKE_FAILURE")) {
            reason = "client certificate required: the broker wants a certificate (--cert and --key)"
        } else if text.contains("ALERT_UNKNOWN_CA") {
            reason = "the broker does not trust our client certificate (unknown CA)"
        } else if text.contains("CERTIFICATE_EXPIRED") {
            reason = "the broker refused our client certificate: it has expired"
        } else if text.contains("CERTIFICATE_REVOKED") {
            reason = "the broker refused our client certificate: it is revoked"
        } else if text.contains("BAD_CERTIFICATE") || text.contains("DECRYPT_ERROR") {
            reason = "the broker refused our client certificate"
        } else if text.contains("WRONG_VERSION_NUMBER") || text.contains("PACKET_LENGTH_TOO_LONG") {
            reason = "the broker does not speak TLS on this port"
        } else if text.contains("PROTOCOL_VERSION") || text.contains("UNSUPPORTED_PROTOCOL") {
            reason = "no TLS version in common with the broker (--tls-version)"
        } else if text.contains("NO_SHARED_CIPHER") || text.contains("HANDSHAKE_FAILURE") {
            reason = "no cipher suite in common with the broker (or it refused our certificate)"
        } else if Self.isUncleanShutdown(error) || text.contains("EOF during handshake") {
            reason = "the broker closed the connection during the handshake (client certificate refused?)"
        } else {
            reason = text
        }
        return "TLS handshake failed: \(reason)"
    }

    static func isUncleanShutdown(_ error: Error) -> Bool {
        if let ssl = error as? NIOSSLError, case .uncleanShutdown = ssl { return true }
        return false
    }

    static func subject(_ certificate: NIOSSLCertificate) -> String {
        certificate.subjectName.first { $0.type == .commonName }.map { "CN=\($0.value)" } ?? "no CN"
    }
}

/// Turns the first TLS error into `MQTTClientError.unreachable("TLS handshake failed: ...")` for
/// the handlers after it (TLS 1.3 reports a refused client certificate only after the client's
/// handshake completed, on the first read: it is caught here too).
final class TLSFailureReporter: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private let diagnosis: TLSHandshakeDiagnosis
    private let onFailure: (@Sendable (MQTTClientError) -> Void)?
    private var reported = false
    private var receivedData = false

    init(diagnosis: TLSHandshakeDiagnosis, onFailure: (@Sendable (MQTTClientError) -> Void)?) {
        self.diagnosis = diagnosis
        self.onFailure = onFailure
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receivedData = true
        context.fireChannelRead(data)
    }

    /// A broker that refuses a client certificate after the TLS 1.3 handshake completed on our
    /// side (e.g. a revoked one, by `crlfile`) may just close: say so rather than "closed".
    func channelInactive(context: ChannelHandlerContext) {
        if !reported && !receivedData && diagnosis.sentCertificate {
            reported = true
            let failure = MQTTClientError.unreachable(
                "TLS handshake failed: the broker closed the connection right after the handshake (client certificate refused, e.g. revoked?)")
            onFailure?(failure)
            context.fireErrorCaught(failure)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard !reported, Self.isTLSError(error) else {
            context.fireErrorCaught(error)
            return
        }
        reported = true
        let failure = MQTTClientError.unreachable(diagnosis.describe(error))
        onFailure?(failure)
        context.fireErrorCaught(failure)
    }

    static func isTLSError(_ error: Error) -> Bool {
        error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError
    }
}
