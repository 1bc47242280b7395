import Foundation
import MidgeTestSupport
import XCTest

/// Listener directives against real processes: a TLS-PSK listener (`psk_hint`, `psk_file`,
/// `use_identity_as_username`) with Debian's mosquitto_pub/mosquitto_sub `--psk`, and
/// `http_dir` answering plain HTTP requests (python's http.client, raw paths) on a
/// websockets listener, logged with `websockets_log_level`.
final class ListenerDirectivesInteropTests: InteropTestCase {
    private let pskFile = "# identities and keys\nalice:deadbeef\nbob:0123456789abcdef\n"

    func testPSKListenerAcceptsKnownIdentitiesAndRefusesWrongKeys() throws {
        let broker = try startBroker(config: "listener {PORT} 127.0.0.1\nallow_anonymous true\npsk_hint midge\npsk_file {DIR}/keys.psk\n",
                                     extraFiles: ["keys.psk": pskFile])
        let sub = try startMosquittoSub(broker, ["--psk", "0123456789abcdef", "--psk-identity", "bob", "-t", "psk/#", "-v", "-C", "1"])
        try mosquittoPub(broker, ["--psk", "deadbeef", "--psk-identity", "alice", "-q", "1", "-t", "psk/x", "-m", "pre-shared"])
        let result = waitForExit(sub.process, broker: broker)
        XCTAssertEqual(sub.messages, ["psk/x pre-shared"], "\(result)\n\(brokerLog(broker))")
        // A wrong key, or an unknown identity: the handshake fails.
        let pub = try Executables.require("mosquitto_pub", hint: "apt-get install mosquitto-clients")
        for (key, identity) in [("deadbeee", "alice"), ("deadbeef", "mallory")] {
            let refused = try ClientProcess.run(pub, ["-h", broker.host, "-p", String(broker.port), "--psk", key, "--psk-identity", identity,
                                                      "-t", "psk/x", "-m", "x"], timeout: peerTimeout, directory: workDir)
            XCTAssertNotEqual(refused.exitCode, 0, "\(identity) \(key): \(refused)")
        }
    }

    func testPSKIdentityIsTheUsernameWithUseIdentityAsUsername() throws {
        // The ACL lets alice write alice/# only: her identity is her user name.
        let broker = try startBroker(config: "listener {PORT} 127.0.0.1\nallow_anonymous false\npsk_hint midge\npsk_file {DIR}/keys.psk\n"
                                             + "use_identity_as_username true\nacl_file {DIR}/acl\n",
                                     extraFiles: ["keys.psk": pskFile, "acl": "user alice\ntopic readwrite alice/#\nuser bob\ntopic read #\n"])
        let sub = try startMosquittoSub(broker, ["--psk", "0123456789abcdef", "--psk-identity", "bob", "-t", "#", "-v", "-C", "1"])
        try mosquittoPub(broker, ["--psk", "deadbeef", "--psk-identity", "alice", "-t", "bob/x", "-m", "denied"])
        try mosquittoPub(broker, ["--psk", "deadbeef", "--psk-identity", "alice", "-t", "alice/x", "-m", "allowed"])
        let result = waitForExit(sub.process, broker: broker)
        XCTAssertEqual(sub.messages, ["alice/x allowed"], "\(result)\n\(brokerLog(broker))")
    }

    func testPSKStartupErrorsNameTheLine() throws {
        let dir = try Scratch.makeDirectory(prefix: "midge-psk-conf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let port = try BrokerProcess.freeLoopbackPort()
        func start(_ config: String) throws -> ProcessResult {
            let url = try Scratch.writeFile(config, named: "broker.conf", in: dir)
            return try ClientProcess.run(try midge(), ["-c", url.path], timeout: peerTimeout, directory: workDir)
        }
        let noFile = try start("listener \(port) 127.0.0.1\n\npsk_hint h\n")
        XCTAssertEqual(noFile.exitCode, 1, "\(noFile)")
        XCTAssertTrue(noFile.stderr.contains("\(dir.path)/broker.conf:3: psk_hint needs psk_file"), "\(noFile)")
        _ = try Scratch.writeFile("alice:xyz\n", named: "bad.psk", in: dir)
        let badKey = try start("psk_file \(dir.path)/bad.psk\nlistener \(port) 127.0.0.1\npsk_hint h\n")
        XCTAssertEqual(badKey.exitCode, 1, "\(badKey)")
        XCTAssertTrue(badKey.stderr.contains("\(dir.path)/bad.psk:1: Invalid key for identity \"alice\""), "\(badKey)")
    }

    func testOptionsBoringSSLCannotHonourStopStartUpWithTheReason() throws {
        let dir = try Scratch.makeDirectory(prefix: "midge-engine-conf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let port = try BrokerProcess.freeLoopbackPort()
        for (line, reason) in [("tls_engine pkcs11", "tls_engine is not available: Midge's TLS (BoringSSL) has no OpenSSL engines"),
                               ("tls_keyform engine", "tls_keyform engine is not available"),
                               ("tls_engine_kpass_sha1 5d41402abc4b2a76b9719d911017c592", "tls_engine_kpass_sha1 is not available"),
                               ("dhparamfile /etc/dh.pem", "dhparamfile is not available: Midge's TLS (BoringSSL) has no finite-field DHE")] {
            let url = try Scratch.writeFile("listener \(port) 127.0.0.1\n\(line)\n", named: "broker.conf", in: dir)
            let result = try ClientProcess.run(try midge(), ["-c", url.path], timeout: peerTimeout, directory: workDir)
            XCTAssertEqual(result.exitCode, 1, "\(result)")
            let lines = splitLines(result.stderr).filter { $0.contains("\(url.path):2: ") }
            XCTAssertEqual(lines.count, 1, "\(result)")
            XCTAssertTrue(lines.first?.contains(reason) ?? false, "\(result)")
        }
    }

    func testAcceptedOptionsStartTheBrokerAndSayWhatTheyDo() throws {
        // sys_interval is kept with a warning (no $SYS tree yet); tls_keyform pem, the websockets
        // options and memory_limit are accepted; clientid_prefixes warns as Mosquitto's notice.
        let broker = try startBroker(config: "listener {PORT} 127.0.0.1\nallow_anonymous true\nsys_interval 10\ntls_keyform pem\n"
                                             + "websockets_headers_size 4096\nwebsockets_log_level 0\nmemory_limit 1073741824\n"
                                             + "clientid_prefixes pub\n")
        try mosquittoPub(broker, ["-i", "pub-1", "-t", "t", "-m", "x"])
        XCTAssertTrue(broker.output.contains("sys_interval 10 is kept, but Midge publishes no $SYS tree yet"), brokerLog(broker))
        XCTAssertTrue(broker.output.contains("The 'clientid_prefixes' option is now deprecated"), brokerLog(broker))
    }

    // MARK: http_dir

    /// Status, Location and body of each request `paths` (METHOD PATH), made raw with http.client.
    private func httpAnswers(_ broker: BrokerProcess, _ requests: [String]) throws -> [String] {
        let script = """
            import http.client, sys
            port = int(sys.argv[1])
            for request in sys.argv[2:]:
                method, path = request.split(" ", 1)
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.putrequest(method, path, skip_accept_encoding=True)
                c.endheaders()
                r = c.getresponse()
                body = r.read().decode("utf-8", "replace").strip()
                print("%d|%s|%s" % (r.status, r.getheader("Location") or "", body if r.status == 200 else ""))
                c.close()
            """
        let result = try runPython(script, [String(broker.port)] + requests)
        XCTAssertEqual(result.exitCode, 0, "\(result)")
        return splitLines(result.stdout)
    }

    func testHTTPDirServesItsFilesAndNothingOutsideIt() throws {
        let root = try Scratch.makeDirectory(prefix: "midge-http")
        defer { try? FileManager.default.removeItem(at: root) }
        let www = root.appendingPathComponent("www")
        try FileManager.default.createDirectory(at: www.appendingPathComponent("app"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: www.appendingPathComponent("empty"), withIntermediateDirectories: true)
        try "home page".write(to: www.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        try "app page".write(to: www.appendingPathComponent("app/index.html"), atomically: true, encoding: .utf8)
        try "secret".write(to: root.appendingPathComponent("secret.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: www.path + "/out", withDestinationPath: root.path + "/secret.txt")
        try FileManager.default.createSymbolicLink(atPath: www.path + "/in", withDestinationPath: www.path + "/index.html")
        let broker = try startBroker(config: "listener {PORT} 127.0.0.1\nprotocol websockets\nallow_anonymous true\nhttp_dir \(www.path)\n"
                                             + "log_type websockets\nwebsockets_log_level 8\n")
        let answers = try httpAnswers(broker, [
            "GET /", "GET /index.html?x=1", "GET /app", "GET /app/", "GET /in",
            "GET /../secret.txt", "GET /%2e%2e/secret.txt", "GET /app/../../secret.txt", "GET /out",
            "GET /empty/", "GET /missing.html", "POST /index.html", "GET /bad%zz", "GET //evil.example",
        ])
        XCTAssertEqual(answers, [
            "200||home page", "200||home page", "302|/app/|", "200||app page", "200||home page",
            // Outside the folder, by dots, escaped dots or a symbolic link: 403.
            "403||", "403||", "403||", "403||",
            // No directory listing; missing file; only GET/HEAD; bad escape.
            "404||", "404||", "405||", "400||", "404||",
        ])
        // websockets_log_level with info (8) and log_type websockets: each request is logged.
        XCTAssertTrue(broker.output.contains("HTTP GET /index.html?x=1 from 127.0.0.1:"), brokerLog(broker))
        XCTAssertTrue(broker.output.contains("HTTP GET /out from 127.0.0.1:") && broker.output.contains(": 403."), brokerLog(broker))
    }

    func testHTTPDirMustBeAFolder() throws {
        let dir = try Scratch.makeDirectory(prefix: "midge-http-conf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let port = try BrokerProcess.freeLoopbackPort()
        let url = try Scratch.writeFile("listener \(port) 127.0.0.1\nprotocol websockets\nhttp_dir \(dir.path)/absent\n", named: "broker.conf", in: dir)
        let result = try ClientProcess.run(try midge(), ["-c", url.path], timeout: peerTimeout, directory: workDir)
        XCTAssertEqual(result.exitCode, 1, "\(result)")
        XCTAssertTrue(result.stderr.contains("\(url.path):3: http_dir \"\(dir.path)/absent\" is not a folder."), "\(result)")
    }
}
