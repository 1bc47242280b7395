import Foundation

/// Certificates for TLS tests, made at test time with the `openssl` command (never committed):
/// a test CA and, signed by it, a server certificate for `localhost`/127.0.0.1, client
/// certificates, an expired server certificate, one for the wrong host name and a revoked
/// client certificate with its CRL; and a second, unrelated CA with a client certificate of its
/// own. Every file is world-readable in a world-readable folder (Debian's mosquitto drops root
/// privileges before reading them). Keys are EC P-256, unencrypted PEM.
public struct TLSTestCertificates: Sendable {
    public let directory: String
    public var caFile: String { path("ca/ca.crt") }
    public var serverCert: String { path("server.crt") }
    public var serverKey: String { path("server.key") }
    /// CN=alice, signed by the test CA.
    public var clientCert: String { path("alice.crt") }
    public var clientKey: String { path("alice.key") }
    /// CN=mallory, signed by the other CA.
    public var otherClientCert: String { path("mallory.crt") }
    public var otherClientKey: String { path("mallory.key") }
    public var otherCAFile: String { path("otherca/ca.crt") }
    /// A server certificate for localhost that expired in 2020.
    public var expiredServerCert: String { path("expired.crt") }
    public var expiredServerKey: String { path("expired.key") }
    /// A server certificate for `wrong.example` only.
    public var wrongHostServerCert: String { path("wronghost.crt") }
    public var wrongHostServerKey: String { path("wronghost.key") }
    /// CN=revoked, signed by the test CA and listed in `crlFile`.
    public var revokedClientCert: String { path("revoked.crt") }
    public var revokedClientKey: String { path("revoked.key") }
    public var crlFile: String { path("ca/crl.pem") }

    public func path(_ name: String) -> String { directory + "/" + name }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Generates everything in a new temporary folder (about a second).
    public static func generate() throws -> TLSTestCertificates {
        let directory = NSTemporaryDirectory() + "midge-tls-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
        let certificates = TLSTestCertificates(directory: directory)
        try certificates.make()
        return certificates
    }

    /// One set for the whole test process, made at its first use and removed when the process
    /// exits: generating takes about a second, and no test changes the generated files (tests
    /// that need files of their own add them under new names).
    public static let shared: TLSTestCertificates = {
        let certificates = try! generate()
        sharedDirectory = certificates.directory
        atexit { if let directory = TLSTestCertificates.sharedDirectory { try? FileManager.default.removeItem(atPath: directory) } }
        return certificates
    }()

    nonisolated(unsafe) private static var sharedDirectory: String?

    /// Removes the folder.
    public func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func make() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try makeCA("ca", commonName: "Midge Test CA")
        try makeCA("otherca", commonName: "Another CA")
        try issue("server", ca: "ca", commonName: "localhost", altNames: "DNS:localhost,IP:127.0.0.1")
        try issue("alice", ca: "ca", commonName: "alice")
        try issue("mallory", ca: "otherca", commonName: "mallory")
        try issue("expired", ca: "ca", commonName: "localhost", altNames: "DNS:localhost,IP:127.0.0.1",
                  dates: ("20200101000000Z", "20200102000000Z"))
        try issue("wronghost", ca: "ca", commonName: "wrong.example", altNames: "DNS:wrong.example")
        try issue("revoked", ca: "ca", commonName: "revoked")
        try openssl(["ca", "-batch", "-config", path("ca/ca.cnf"), "-revoke", path("revoked.crt")])
        try openssl(["ca", "-batch", "-config", path("ca/ca.cnf"), "-gencrl", "-out", crlFile])
        try makeWorldReadable(directory)
    }

    private func makeCA(_ name: String, commonName: String) throws {
        let dir = path(name)
        try FileManager.default.createDirectory(atPath: dir + "/newcerts", withIntermediateDirectories: true)
        try write("", to: dir + "/index.txt")
        try write("1000\n", to: dir + "/serial")
        try write("1000\n", to: dir + "/crlnumber")
        try write("""
            [ ca ]
            default_ca = test_ca
            [ test_ca ]
            dir = \(dir)
            database = \(dir)/index.txt
            new_certs_dir = \(dir)/newcerts
            serial = \(dir)/serial
            crlnumber = \(dir)/crlnumber
            certificate = \(dir)/ca.crt
            private_key = \(dir)/ca.key
            default_md = sha256
            default_days = 3
            default_crl_days = 3
            policy = any_name
            unique_subject = no
            [ any_name ]
            commonName = supplied

            """, to: dir + "/ca.cnf")
        try openssl(["req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", dir + "/ca.key", "-out", dir + "/ca.crt", "-days", "3", "-subj", "/CN=\(commonName)",
                     "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    }

    private func issue(_ name: String, ca: String, commonName: String, altNames: String? = nil,
                       dates: (String, String)? = nil) throws {
        try openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", "/CN=\(commonName)"])
        var extensions = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\n"
            + "extendedKeyUsage=serverAuth,clientAuth\n"
        if let altNames { extensions += "subjectAltName=\(altNames)\n" }
        try write(extensions, to: path("\(name).ext"))
        var arguments = ["ca", "-batch", "-notext", "-config", path("\(ca)/ca.cnf"), "-in", path("\(name).csr"),
                         "-out", path("\(name).crt"), "-extfile", path("\(name).ext")]
        if let (start, end) = dates { arguments += ["-startdate", start, "-enddate", end] }
        try openssl(arguments)
    }

    private func write(_ text: String, to file: String) throws {
        try text.write(toFile: file, atomically: true, encoding: .utf8)
    }

    private func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "openssl \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): \(text)")
        }
    }

    private func makeWorldReadable(_ root: String) throws {
        let manager = FileManager.default
        try manager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root)
        for item in manager.enumerator(atPath: root)?.compactMap({ $0 as? String }) ?? [] {
            var isDirectory: ObjCBool = false
            let full = root + "/" + item
            _ = manager.fileExists(atPath: full, isDirectory: &isDirectory)
            try manager.setAttributes([.posixPermissions: isDirectory.boolValue ? 0o755 : 0o644], ofItemAtPath: full)
        }
    }
}
