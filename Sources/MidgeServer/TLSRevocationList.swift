import Foundation
import NIOSSL

/// A listener's `crlfile`: the (issuer, serial number) pairs its certificate revocation lists
/// revoke (RFC 5280 §5.1). NIOSSL has no CRL support, so the PEM file's DER is read here and a
/// client certificate that BoringSSL has already verified is refused when the CRL of its issuer
/// lists its serial number. The file is trusted configuration, like `cafile`: its signature is not
/// re-checked.
struct TLSRevocationList: Sendable {
    struct CertificateRevoked: Error, CustomStringConvertible {
        var description: String { "certificate revoked (crlfile)" }
    }

    struct FormatError: Error, CustomStringConvertible {
        var description: String
    }

    /// DER of the issuer Name → revoked serial numbers (the INTEGER contents).
    private var revoked: [[UInt8]: Set<[UInt8]>] = [:]

    init(pemFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw FormatError(description: "unreadable") }
        let text = String(decoding: data, as: UTF8.self)
        let blocks = Self.pemBlocks(text, label: "X509 CRL")
        if blocks.isEmpty { throw FormatError(description: "no \"BEGIN X509 CRL\" block") }
        for der in blocks {
            let (issuer, serials) = try Self.parseCRL(der)
            revoked[issuer, default: []].formUnion(serials)
        }
    }

    /// Whether `certificate` is on the list of its issuer.
    func revokes(_ certificate: NIOSSLCertificate) -> Bool {
        guard let der = try? certificate.toDERBytes(), let (issuer, serial) = try? Self.issuerAndSerial(der) else { return true }
        return revoked[issuer]?.contains(serial) ?? false
    }

    // MARK: DER

    private struct Element {
        var tag: UInt8
        /// The whole element (tag, length, contents).
        var whole: ArraySlice<UInt8>
        var contents: ArraySlice<UInt8>
    }

    /// The elements one after another in `bytes`.
    private static func elements(_ bytes: ArraySlice<UInt8>) throws -> [Element] {
        var result: [Element] = []
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let start = i
            let tag = bytes[i]
            i += 1
            guard i < bytes.endIndex else { throw FormatError(description: "truncated DER") }
            var length = Int(bytes[i])
            i += 1
            if length & 0x80 != 0 {
                let count = length & 0x7F
                guard count > 0, count <= 4, i + count <= bytes.endIndex else { throw FormatError(description: "bad DER length") }
                length = 0
                for _ in 0..<count {
                    length = length << 8 | Int(bytes[i])
                    i += 1
                }
            }
            guard i + length <= bytes.endIndex else { throw FormatError(description: "truncated DER") }
            result.append(Element(tag: tag, whole: bytes[start..<(i + length)], contents: bytes[i..<(i + length)]))
            i += length
        }
        return result
    }

    private static func sequence(_ element: Element?) throws -> [Element] {
        guard let element, element.tag == 0x30 else { throw FormatError(description: "expected a SEQUENCE") }
        return try elements(element.contents)
    }

    /// TBSCertList: version?, signature, issuer, thisUpdate, nextUpdate?, revokedCertificates?, [0] extensions?
    private static func parseCRL(_ der: [UInt8]) throws -> (issuer: [UInt8], serials: Set<[UInt8]>) {
        let list = try sequence(try elements(der[...]).first)
        var tbs = try sequence(list.first)
        if tbs.first?.tag == 0x02 { tbs.removeFirst() }            // version
        guard tbs.count >= 3, tbs[1].tag == 0x30 else { throw FormatError(description: "not a CRL") }
        let issuer = Array(tbs[1].whole)
        var serials = Set<[UInt8]>()
        // After thisUpdate: nextUpdate (a Time), then the revoked list (a SEQUENCE).
        for element in tbs.dropFirst(3) where element.tag == 0x30 {
            for entry in try elements(element.contents) {
                let fields = try sequence(entry)
                guard let serial = fields.first, serial.tag == 0x02 else { throw FormatError(description: "bad revoked entry") }
                serials.insert(Array(serial.contents))
            }
        }
        return (issuer, serials)
    }

    /// TBSCertificate: [0] version?, serialNumber, signature, issuer, ...
    private static func issuerAndSerial(_ der: [UInt8]) throws -> (issuer: [UInt8], serial: [UInt8]) {
        let certificate = try sequence(try elements(der[...]).first)
        var tbs = try sequence(certificate.first)
        if tbs.first?.tag == 0xA0 { tbs.removeFirst() }
        guard tbs.count >= 3, tbs[0].tag == 0x02, tbs[2].tag == 0x30 else { throw FormatError(description: "not a certificate") }
        return (Array(tbs[2].whole), Array(tbs[0].contents))
    }

    /// The DER of every `-----BEGIN label-----` block.
    private static func pemBlocks(_ text: String, label: String) -> [[UInt8]] {
        var blocks: [[UInt8]] = []
        var base64: String?
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed == "-----BEGIN \(label)-----" {
                base64 = ""
            } else if trimmed == "-----END \(label)-----" {
                if let body = base64, let data = Data(base64Encoded: body) { blocks.append([UInt8](data)) }
                base64 = nil
            } else if base64 != nil {
                base64! += trimmed
            }
        }
        return blocks
    }
}
