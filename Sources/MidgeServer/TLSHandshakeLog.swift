import Foundation
import MidgeBroker
import NIOCore
import NIOSSL

/// Sits right after a listener's NIOSSLServerHandler until the handshake completes: a failed
/// handshake is logged with the client's address and BoringSSL's reason ("Client connection from
/// 127.0.0.1:53412 failed the TLS handshake: peer did not return a certificate."), as Mosquitto
/// logs OpenSSL's error; then the error goes on (MQTTChannelHandler closes the connection).
/// Removes itself at the first decrypted bytes (the handshake succeeded), so established
/// connections do not pay for it.
final class TLSHandshakeLog: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let log: BrokerLog

    init(log: BrokerLog) {
        self.log = log
    }

    /// The first decrypted bytes: the handshake succeeded, this handler's work is done.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        let address = MQTTChannelHandler.describe(context.channel.remoteAddress)
        log.notice("Client connection from \(address) failed the TLS handshake: \(Self.reason(error)).")
        context.fireErrorCaught(error)
    }

    /// BoringSSL's reason codes in words ("CERTIFICATE_VERIFY_FAILED" → "certificate verify failed").
    static func reason(_ error: Error) -> String {
        if let revoked = error as? TLSRevocationList.CertificateRevoked { return revoked.description }
        let text = "\(error)"
        var reasons: [String] = []
        var rest = Substring(text)
        while let range = rest.range(of: "OPENSSL_internal:") {
            let code = rest[range.upperBound...].prefix { $0.isUppercase || $0.isNumber || $0 == "_" }
            if !code.isEmpty { reasons.append(code.lowercased().replacingOccurrences(of: "_", with: " ")) }
            rest = rest[range.upperBound...]
        }
        return reasons.isEmpty ? text : reasons.joined(separator: ", ")
    }
}
