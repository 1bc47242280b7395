import Foundation
import MidgeBroker
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// The keys of a `psk_file`, Mosquitto's format: one `identity:key` a line, the key in hex
/// without "0x"; blank lines and lines starting with `#` are skipped. Read at start-up (a bad
/// line is `FILE:LINE: reason`) and again on SIGHUP with the listener's TLS.
final class TLSPreSharedKeys: @unchecked Sendable {
    let keys: [String: [UInt8]]

    init(file: String) throws {
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: file, line: 0, message: "Unable to open psk_file \"\(file)\".")
        }
        var keys: [String: [UInt8]] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.trimmingCharacters(in: .whitespaces).isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                throw ConfigError(file: file, line: index + 1, message: "Invalid psk_file line (expected identity:hexkey).")
            }
            let identity = String(line[..<colon])
            guard let key = Self.hex(line[line.index(after: colon)...]) else {
                throw ConfigError(file: file, line: index + 1,
                                  message: "Invalid key for identity \"\(identity)\" in psk_file (expected hexadecimal digits).")
            }
            keys[identity] = key
        }
        self.keys = keys
    }

    /// Hex digits (an odd count gets a leading 0, as OpenSSL's BN_hex2bn reads it) to bytes.
    static func hex(_ text: Substring) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard !digits.isEmpty, digits.count <= 512 else { return nil }
        var values: [UInt8] = []
        for d in digits {
            switch d {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(d - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): values.append(d - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): values.append(d - UInt8(ascii: "A") + 10)
            default: return nil
            }
        }
        if values.count % 2 == 1 { values.insert(0, at: 0) }
        return stride(from: 0, to: values.count, by: 2).map { values[$0] << 4 | values[$0 + 1] }
    }

    /// The server callback: the key of the identity the client names (unknown: the handshake
    /// fails), recording the identity in `holder` when there is one.
    func provider(recordingIn holder: IdentityHolder?) -> NIOPSKServerIdentityProvider {
        let keys = self.keys
        return { context in
            guard let key = keys[context.clientIdentity], key.count <= context.maxPSKLength else {
                throw NIOSSLError.handshakeFailed(.sslError([]))
            }
            holder?.identity = context.clientIdentity
            var secret = NIOSSLSecureBytes()
            secret.append(key)
            return PSKServerIdentityResponse(key: secret)
        }
    }

    /// The identity one connection's client used (set on its loop during the handshake).
    final class IdentityHolder: @unchecked Sendable {
        var identity: String?
    }

    /// Keeps a connection's `IdentityHolder` in its pipeline, where `TLSListenerContext.clientIdentity` finds it.
    final class IdentityHandler: ChannelInboundHandler {
        typealias InboundIn = NIOAny
        let holder: IdentityHolder
        init(holder: IdentityHolder) { self.holder = holder }
    }
}
