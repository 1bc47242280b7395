import Foundation
import MidgeTestSupport
import XCTest

/// TLS between real processes, with certificates made by `openssl` at test time:
/// mosquitto_pub/mosquitto_sub `--cafile` → the `midge` broker's TLS listener; `midge pub
/// --cafile` → Debian's `mosquitto` with a TLS listener; `midge pub`'s one-line handshake
/// errors; the broker's start-up errors (`FILE:LINE: ...`, exit 1); and a tcpdump capture on
/// `lo` proving that credentials cross a TLS listener encrypted (and a plain one in clear).
final class TLSInteropTests: InteropTestCase {
    var certs: TLSTestCertificates { .shared }
    private func tlsListener(_ extra: String = "") -> String {
        "listener {PORT} 127.0.0.1\nallow_anonymous true\ncertfile \(certs.serverCert)\nkeyfile \(certs.serverKey)\n\(extra)"
    }

    // MARK: mosquitto clients → midge

    func testMosquittoPubWithCAFileToMidgeTLSListener() throws {
        for version in ["mqttv311", "mqttv5"] {
            let broker = try startBroker(config: tlsListener())
            let topic = "tls/\(version)"
            let sub = try startMosquittoSub(broker, ["--cafile", certs.caFile, "-V", version, "-q", "1", "-t", topic, "-v", "-C", "1"])
            try mosquittoPub(broker, ["--cafile", certs.caFile, "-V", version, "-q", "1", "-t", topic, "-m", "sealed \(version)"])
            let result = waitForExit(sub.process, broker: broker)
            XCTAssertEqual(result.exitCode, 0, "\(result)")
            XCTAssertEqual(sub.messages, ["\(topic) sealed \(version)"], "\(result)\n\(brokerLog(broker))")
        }
    }

    func testMosquittoPubWithClientCertificateAndIdentityAsUsernameThroughTheACL() throws {
        let acl = "user alice\ntopic readwrite alice/#\n"
        let broker = try startBroker(config: tlsListener("cafile \(certs.caFile)\nrequire_certificate true\nuse_identity_as_username true\nacl_file {DIR}/acl\n"),
                                     extraFiles: ["acl": acl])
        let clientCert = ["--cafile", certs.caFile, "--cert", certs.clientCert, "--key", certs.clientKey]
        let sub = try startMosquittoSub(broker, clientCert + ["-V", "mqttv5", "-t", "alice/#", "-t", "bob/#", "-v", "-C", "1"])
        // Both granted, as Mosquitto's acl_file does; the ACL keeps bob/x from alice below.
        XCTAssertEqual(sub.grantedQoS, [0, 0], "alice/# and bob/# granted")
        try mosquittoPub(broker, clientCert + ["-t", "bob/x", "-m", "denied"])
        try mosquittoPub(broker, clientCert + ["-t", "alice/x", "-m", "allowed"])
        let result = waitForExit(sub.process, broker: broker)
        XCTAssertEqual(sub.messages, ["alice/x allowed"], "\(result)\n\(brokerLog(broker))")

        // Without a certificate: the handshake is refused.
        let pub = try Executables.require("mosquitto_pub", hint: "apt-get install mosquitto-clients")
        let refused = try ClientProcess.run(pub, ["-h", broker.host, "-p", String(broker.port), "--cafile", certs.caFile, "-t", "alice/x", "-m", "x"],
                                            timeout: peerTimeout, directory: workDir)
        XCTAssertNotEqual(refused.exitCode, 0, "\(refused)")
        // The broker says why, with the client's address.
        XCTAssertTrue(broker.output.contains("failed the TLS handshake: peer did not return a certificate."), brokerLog(broker))
    }

    // MARK: midge pub → mosquitto

    func testMidgePubWithCAFileToMosquittoTLSListener() throws {
        let broker = try startMosquitto(tlsListener())
        let sub = try startMosquittoSub(broker, ["--cafile", certs.caFile, "-t", "tls/midge", "-v", "-C", "1"])
        let result = try ClientProcess.run(try midge(), ["pub", "-h", "localhost", "-p", String(broker.port), "--cafile", certs.caFile,
                                                         "-q", "1", "-t", "tls/midge", "-m", "from midge"],
                                           timeout: peerTimeout, directory: workDir)
        XCTAssertEqual(result.exitCode, 0, "\(result)\n\(brokerLog(broker))")
        let subResult = waitForExit(sub.process, broker: broker)
        XCTAssertEqual(sub.messages, ["tls/midge from midge"], "\(subResult)")
    }

    func testMidgePubMutualTLSWithMosquitto() throws {
        let broker = try startMosquitto(tlsListener("cafile \(certs.caFile)\nrequire_certificate true\n"))
        let base = ["pub", "-h", "127.0.0.1", "-p", String(broker.port), "--cafile", certs.caFile, "-t", "m", "-m", "x"]
        let good = try ClientProcess.run(try midge(), base + ["--cert", certs.clientCert, "--key", certs.clientKey],
                                         timeout: peerTimeout, directory: workDir)
        XCTAssertEqual(good.exitCode, 0, "\(good)\n\(brokerLog(broker))")
        let none = try ClientProcess.run(try midge(), base, timeout: peerTimeout, directory: workDir)
        XCTAssertEqual(none.exitCode, 1, "\(none)")
        XCTAssertEqual(none.stderr, "Error: TLS handshake failed: client certificate required: the broker wants a certificate (--cert and --key)\n")
        let other = try ClientProcess.run(try midge(), base + ["--cert", certs.otherClientCert, "--key", certs.otherClientKey],
                                          timeout: peerTimeout, directory: workDir)
        XCTAssertEqual(other.exitCode, 1, "\(other)")
        XCTAssertTrue(other.stderr.hasPrefix("Error: TLS handshake failed: the broker does not trust our client certificate"), other.stderr)
    }

    // MARK: midge pub's one-line errors

    func testMidgePubSaysWhichCheckFailed() throws {
        let broker = try startBroker(config: tlsListener())
        func pub(_ args: [String], host: String = "localhost") throws -> ProcessResult {
            try ClientProcess.run(try midge(), ["pub", "-h", host, "-p", String(broker.port), "-t", "t", "-m", "x"] + args,
                                  timeout: peerTimeout, directory: workDir)
        }
        let unknown = try pub(["--cafile", certs.otherCAFile])
        XCTAssertEqual(unknown.exitCode, 1)
        XCTAssertTrue(unknown.stderr.hasPrefix("Error: TLS handshake failed: unknown CA"), unknown.stderr)
        XCTAssertEqual(splitLines(unknown.stderr).count, 1, unknown.stderr)
        // Plain MQTT to the TLS port: refused, not hung.
        let plain = try pub([])
        XCTAssertNotEqual(plain.exitCode, 0)
        let missing = try pub(["--cafile", certs.directory + "/nope.crt"])
        XCTAssertEqual(missing.exitCode, 1)
        XCTAssertEqual(missing.stderr, "Error: Unable to open --cafile \"\(certs.directory)/nope.crt\": No such file or directory.\n")
    }

    // MARK: Start-up errors

    func testStartupErrorsNameTheFileAndLine() throws {
        let dir = try Scratch.makeDirectory(prefix: "midge-tls-conf")
        defer { try? FileManager.default.removeItem(at: dir) }
        func start(_ config: String) throws -> ProcessResult {
            let url = try Scratch.writeFile(config, named: "broker.conf", in: dir)
            return try ClientProcess.run(try midge(), ["-c", url.path], timeout: peerTimeout, directory: workDir)
        }
        let port = try BrokerProcess.freeLoopbackPort()
        let unreadable = try start("listener \(port) 127.0.0.1\n\ncertfile \(certs.directory)/absent.crt\nkeyfile \(certs.serverKey)\n")
        XCTAssertEqual(unreadable.exitCode, 1, "\(unreadable)")
        XCTAssertTrue(unreadable.stderr.contains("\(dir.path)/broker.conf:3: Unable to load server certificate \"\(certs.directory)/absent.crt\": No such file or directory."),
                      "\(unreadable)")
        let mismatch = try start("listener \(port) 127.0.0.1\ncertfile \(certs.serverCert)\nkeyfile \(certs.clientKey)\n")
        XCTAssertEqual(mismatch.exitCode, 1, "\(mismatch)")
        XCTAssertTrue(mismatch.stderr.contains("\(dir.path)/broker.conf:3: Server key file \"\(certs.clientKey)\" does not match the certificate"),
                      "\(mismatch)")
    }

    // MARK: Versions

    /// `openssl s_client` limited to one TLS version: its exit code and what it printed.
    /// (OpenSSL 3 offers TLS 1.1 only at security level 0, hence the cipher string.)
    private func handshake(_ broker: BrokerProcess, _ versionFlag: String) throws -> ProcessResult {
        try ClientProcess.run("openssl", ["s_client", "-connect", "127.0.0.1:\(broker.port)", "-CAfile", certs.caFile, versionFlag,
                                          "-cipher", "DEFAULT@SECLEVEL=0"],
                              timeout: peerTimeout, directory: workDir)
    }

    func testTLS12MinimumByDefaultAnd13Preferred() throws {
        let broker = try startBroker(config: tlsListener())
        let preferred = try ClientProcess.run("openssl", ["s_client", "-connect", "127.0.0.1:\(broker.port)", "-CAfile", certs.caFile],
                                              timeout: peerTimeout, directory: workDir)
        XCTAssertEqual(preferred.exitCode, 0, "\(preferred)")
        XCTAssertTrue(preferred.stdout.contains("TLSv1.3"), preferred.stdout)
        XCTAssertEqual(try handshake(broker, "-tls1_2").exitCode, 0)
        XCTAssertNotEqual(try handshake(broker, "-tls1_1").exitCode, 0, "TLS 1.1 is below the default minimum")
    }

    func testTLSVersionSetsTheMinimum() throws {
        let broker = try startBroker(config: tlsListener("tls_version tlsv1.3\n"))
        XCTAssertEqual(try handshake(broker, "-tls1_3").exitCode, 0)
        XCTAssertNotEqual(try handshake(broker, "-tls1_2").exitCode, 0, "tls_version tlsv1.3 refuses TLS 1.2")
        let old = try startBroker(config: tlsListener("tls_version tlsv1.1\n"))
        let accepted = try handshake(old, "-tls1_1")
        XCTAssertEqual(accepted.exitCode, 0, "tls_version tlsv1.1 accepts TLS 1.1: \(accepted)")
        XCTAssertTrue(accepted.stdout.contains("Protocol  : TLSv1.1"), accepted.stdout)
    }

    // MARK: SIGHUP

    func testSIGHUPServesNewCertificatesToNewConnections() throws {
        let broker = try startBroker(config: "listener {PORT} 127.0.0.1\nallow_anonymous true\ncertfile {DIR}/live.crt\nkeyfile {DIR}/live.key\n",
                                     extraFiles: ["live.crt": try String(contentsOfFile: certs.serverCert, encoding: .utf8),
                                                  "live.key": try String(contentsOfFile: certs.serverKey, encoding: .utf8)])
        let pub = try Executables.require("mosquitto_pub", hint: "apt-get install mosquitto-clients")
        func publish(_ tls: [String]) throws -> ProcessResult {
            try ClientProcess.run(pub, ["-h", broker.host, "-p", String(broker.port)] + tls + ["-t", "t", "-m", "x"],
                                  timeout: peerTimeout, directory: workDir)
        }
        XCTAssertEqual(try publish(["--cafile", certs.caFile]).exitCode, 0, brokerLog(broker))
        // Another CA's certificate (CN=mallory, hence --insecure) replaces the files; SIGHUP.
        _ = try Scratch.writeFile(try String(contentsOfFile: certs.otherClientCert, encoding: .utf8), named: "live.crt", in: broker.directory)
        _ = try Scratch.writeFile(try String(contentsOfFile: certs.otherClientKey, encoding: .utf8), named: "live.key", in: broker.directory)
        XCTAssertEqual(sendSignal(broker.process.pid, SIGHUP), 0)
        XCTAssertTrue(broker.process.waitForOutput(containing: "Reloaded the TLS certificates", timeout: 5), brokerLog(broker))
        XCTAssertNotEqual(try publish(["--cafile", certs.caFile]).exitCode, 0, "the old CA no longer matches")
        XCTAssertEqual(try publish(["--cafile", certs.otherCAFile, "--insecure"]).exitCode, 0, brokerLog(broker))
    }

    // MARK: The wire

    func testCaptureOnLoopbackShowsCredentialsOnlyOnThePlainListener() throws {
        let tcpdump = try Executables.require("tcpdump", hint: "apt-get install tcpdump")
        let plainPort = try BrokerProcess.freeLoopbackPort()
        let broker = try startBroker(config: tlsListener() + "listener \(plainPort) 127.0.0.1\nallow_anonymous true\n")
        let capture = workDir.appendingPathComponent("lo.pcap").path
        let dump = try ClientProcess.start(tcpdump, ["-i", "lo", "--immediate-mode", "-U", "-n", "-s", "0", "-w", capture,
                                                     "tcp port \(broker.port) or tcp port \(plainPort)"], directory: workDir, name: "tcpdump",
                                           mergeOutput: true)
        try waitForMarker(dump, "listening on", timeout: 10)
        defer { if dump.isRunning { dump.kill(signal: SIGKILL) } }

        let pub = try Executables.require("mosquitto_pub", hint: "apt-get install mosquitto-clients")
        let overTLS = try ClientProcess.run(pub, ["-h", "127.0.0.1", "-p", String(broker.port), "--cafile", certs.caFile,
                                                  "-u", "tls-user-7f3a", "-P", "tls-secret-91c2", "-t", "wire/tls", "-m", "payload-over-tls"],
                                            timeout: peerTimeout, directory: workDir)
        XCTAssertEqual(overTLS.exitCode, 0, "\(overTLS)")
        let inClear = try ClientProcess.run(pub, ["-h", "127.0.0.1", "-p", String(plainPort),
                                                  "-u", "plain-user-5d1e", "-P", "plain-secret-4b8f", "-t", "wire/plain", "-m", "x"],
                                            timeout: peerTimeout, directory: workDir)
        XCTAssertEqual(inClear.exitCode, 0, "\(inClear)")
        // (--immediate-mode: every packet is handed over at once; SIGINT then flushes and exits.)
        Thread.sleep(forTimeInterval: 1)
        dump.kill(signal: SIGINT)
        _ = dump.waitForExit(timeout: 5)

        let bytes = try Data(contentsOf: URL(fileURLWithPath: capture))
        func captured(_ text: String) -> Bool { bytes.range(of: Data(text.utf8)) != nil }
        // The capture works: the plain listener's credentials are in it...
        XCTAssertTrue(captured("plain-user-5d1e"), "plain username missing: the capture did not work (\(bytes.count) bytes)")
        XCTAssertTrue(captured("plain-secret-4b8f"))
        // ...and the TLS listener's are not, nor its payload; but its traffic was captured.
        XCTAssertFalse(captured("tls-user-7f3a"))
        XCTAssertFalse(captured("tls-secret-91c2"))
        XCTAssertFalse(captured("payload-over-tls"))
        // A TLS record header (handshake, TLS 1.x): the TLS connection is in the capture.
        XCTAssertNotNil(bytes.range(of: Data([0x16, 0x03, 0x01])), "no TLS handshake in the capture")
    }
}
