import Foundation
import MidgeTestSupport
import XCTest

/// mosquitto.conf(5) directives shown on the `midge` process itself: a config file, the broker
/// started with `-c`, real clients (mosquitto_pub/sub, raw sockets). Each test covers directives
/// whose effect no engine-level test shows (docs/conformance.md, "mosquitto.conf(5): every
/// directive", names these tests).
final class ConfigDirectiveInteropTests: InteropTestCase {
    // MARK: - Logging

    /// A loopback listener open to anonymous clients, logging to stdout (what the test reads),
    /// followed by `directives`.
    private func loggingListener(_ directives: String) -> String {
        "listener {PORT} 127.0.0.1\nallow_anonymous true\nlog_dest stdout\n" + directives
    }

    /// `log_type error` keeps only errors: a client connecting and publishing logs nothing.
    func testLogTypeErrorKeepsOnlyErrors() throws {
        let broker = try startBroker(config: loggingListener("""
            log_type error
            """))
        try mosquittoPub(broker, ["-t", "log/type", "-m", "x"])
        let out = brokerLog(broker)
        XCTAssertFalse(out.contains("New connection from"), out)
        XCTAssertFalse(out.contains("New client connected"), out)
        XCTAssertFalse(out.contains("running"), out)
    }

    /// `connection_messages false`: no line per connection or disconnection, other notices stay.
    func testConnectionMessagesFalseHidesConnectionLines() throws {
        let broker = try startBroker(config: loggingListener("""
            connection_messages false
            """))
        try mosquittoPub(broker, ["-i", "quiet-client", "-t", "log/conn", "-m", "x"])
        let out = brokerLog(broker)
        XCTAssertTrue(out.contains("running"), out)
        XCTAssertFalse(out.contains("New client connected"), out)
        XCTAssertFalse(out.contains("quiet-client"), out)
    }

    /// `log_timestamp_format` (strftime) replaces the Unix time stamp; `log_timestamp false`
    /// removes it.
    func testLogTimestampFormatAndLogTimestamp() throws {
        let formatted = try startBroker(config: loggingListener("""
            log_timestamp_format %Y-%m-%dT%H:%M:%S
            """))
        formatted.stop()
        let lines = formatted.output.split(separator: "\n").filter { $0.contains("running") }
        XCTAssertEqual(lines.count, 1, formatted.output)
        let stamp = try XCTUnwrap(lines.first?.split(separator: " ").first)
        XCTAssertNotNil(try Regex(#"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d:"#).wholeMatch(in: String(stamp)), "\(stamp)")

        let plain = try startBroker(config: loggingListener("""
            log_timestamp false
            """))
        plain.stop()
        let running = plain.output.split(separator: "\n").filter { $0.contains("running") }
        XCTAssertEqual(running.count, 1, plain.output)
        XCTAssertTrue(running.first?.hasPrefix("midge version") ?? false, plain.output)
    }

    /// Debian's `pid_file /run/mosquitto/mosquitto.pid` without the folder (systemd's unit makes
    /// it): start-up stops with exit code 1, and the reason reaches the terminal even though the
    /// log goes to a file (Mosquitto prints it on stderr too).
    func testPidFileThatCannotBeWrittenStopsStartUpAndSaysSoOnStderr() throws {
        let dir = workDir.appendingPathComponent("pid-case")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let config = dir.appendingPathComponent("m.conf")
        try """
            pid_file \(dir.path)/missing/mosquitto.pid
            log_dest file \(dir.path)/m.log
            listener 0 \(dir.path)/m.sock
            """.write(to: config, atomically: true, encoding: .utf8)
        let r = try ClientProcess.run(try midge(), ["-c", config.path], timeout: peerTimeout, directory: workDir)
        XCTAssertEqual(r.exitCode, 1, "\(r)")
        XCTAssertTrue(r.stderr.contains("Error: Unable to write pid file \(dir.path)/missing/mosquitto.pid: No such file or directory."), "\(r)")
        let log = try String(contentsOf: dir.appendingPathComponent("m.log"), encoding: .utf8)
        XCTAssertTrue(log.contains("Unable to write pid file"), log)
    }

    // MARK: - Listeners

    /// `port` and `bind_address` (Mosquitto's deprecated default listener) serve clients, on
    /// that address only.
    func testPortAndBindAddressConfigureTheDefaultListener() throws {
        let broker = try startBroker(config: """
            port {PORT}
            bind_address 127.0.0.1
            allow_anonymous true
            """)
        try mosquittoPub(broker, ["-t", "default/listener", "-m", "x"])
        XCTAssertFalse(Self.canConnectIPv6Loopback(port: broker.port), "bind_address 127.0.0.1 also listens on ::1")
    }

    /// `socket_domain ipv4` on a listener with no address: IPv4 only, nothing on `::1`.
    func testSocketDomainIPv4ListensOnIPv4Only() throws {
        let broker = try startBroker(config: """
            listener {PORT}
            socket_domain ipv4
            allow_anonymous true
            """)
        XCTAssertTrue(BrokerProcess.canConnect(port: broker.port))
        XCTAssertFalse(Self.canConnectIPv6Loopback(port: broker.port), "socket_domain ipv4 still listens on ::1")
        try mosquittoPub(broker, ["-t", "domain", "-m", "x"])
    }

    /// Without `socket_domain`, the same listener takes both families (the control for the
    /// test above).
    func testListenerWithoutAddressListensOnBothFamilies() throws {
        guard Self.hasIPv6Loopback() else { throw XCTSkip("no IPv6 loopback on this machine") }
        let broker = try startBroker(config: """
            listener {PORT}
            allow_anonymous true
            """)
        XCTAssertTrue(BrokerProcess.canConnect(port: broker.port))
        XCTAssertTrue(Self.canConnectIPv6Loopback(port: broker.port), brokerLog(broker))
    }

    /// `bind_interface lo`: the listener takes the addresses of `lo` only, so a non-loopback
    /// address of this machine (when it has one) is not served.
    func testBindInterfaceListensOnThatInterfaceOnly() throws {
        let broker = try startBroker(config: """
            listener {PORT}
            bind_interface lo
            allow_anonymous true
            """)
        try mosquittoPub(broker, ["-t", "iface", "-m", "x"])
        if let other = Self.nonLoopbackIPv4Address() {
            XCTAssertFalse(Self.canConnect(host: other, port: broker.port), "bind_interface lo listens on \(other)")
        }
    }

    // MARK: - Limits

    /// `max_inflight_bytes`: a subscriber that never acknowledges gets QoS 1 messages until
    /// their payloads reach the limit (the first always goes), then nothing more.
    func testMaxInflightBytesHoldsBackMessagesOverTheLimit() throws {
        let broker = try startBroker(config: """
            listener {PORT} 127.0.0.1
            allow_anonymous true
            max_inflight_messages 0
            max_inflight_bytes 250
            """)
        // A raw v3.1.1 subscriber that never sends PUBACK; it prints how many PUBLISHes arrived.
        let script = """
        import socket, sys, time
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
        s.sendall(bytes([0x10, 16, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 4]) + b"slow")
        s.recv(4)
        s.sendall(bytes([0x82, 10, 0, 1, 0, 5]) + b"bytes" + bytes([1]))
        s.recv(5)
        print("subscribed", flush=True)
        s.settimeout(3)
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk: break
                data += chunk
        except socket.timeout:
            pass
        count, i = 0, 0
        while i < len(data):
            length, mult, j = 0, 1, i + 1
            while True:
                b = data[j]; length += (b & 127) * mult; mult *= 128; j += 1
                if b < 128: break
            if data[i] >> 4 == 3: count += 1
            i = j + length
        print("publishes", count, flush=True)
        """
        let sub = try startPython(script, [String(broker.port)], name: "slow-subscriber")
        try waitForMarker(sub, "subscribed", broker: broker)
        let payload = String(repeating: "p", count: 100)
        for _ in 0..<10 {
            try mosquittoPub(broker, ["-q", "1", "-t", "bytes", "-m", payload])
        }
        let r = waitForExit(sub, broker: broker)
        // 100 + 100 fit in 250; the third would make 300.
        XCTAssertTrue(r.stdout.contains("publishes 2\n"), "\(r)")
    }

    // MARK: - TLS

    private var certs: TLSTestCertificates { .shared }

    /// `capath`: a folder of hashed CA certificates (`openssl rehash`) is what client
    /// certificates must chain to, as `cafile` is.
    func testCAPathVerifiesClientCertificates() throws {
        let caDir = workDir.appendingPathComponent("ca-dir")
        try FileManager.default.createDirectory(at: caDir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: certs.caFile, toPath: caDir.appendingPathComponent("ca.pem").path)
        let openssl = try Executables.require("openssl", hint: "apt-get install openssl")
        let rehash = try ClientProcess.run(openssl, ["rehash", caDir.path], timeout: peerTimeout, directory: workDir)
        XCTAssertEqual(rehash.exitCode, 0, "\(rehash)")
        let broker = try startBroker(config: """
            listener {PORT} 127.0.0.1
            allow_anonymous true
            certfile \(certs.serverCert)
            keyfile \(certs.serverKey)
            capath \(caDir.path)
            require_certificate true
            """)
        try mosquittoPub(broker, ["--cafile", certs.caFile, "--cert", certs.clientCert, "--key", certs.clientKey, "-t", "capath", "-m", "x"])
        let pub = try Executables.require("mosquitto_pub", hint: "apt-get install mosquitto-clients")
        let refused = try ClientProcess.run(pub, ["-h", broker.host, "-p", String(broker.port), "--cafile", certs.caFile, "-t", "capath", "-m", "x"],
                                            timeout: peerTimeout, directory: workDir)
        XCTAssertNotEqual(refused.exitCode, 0, "a client without certificate was served: \(refused)")
    }

    /// `ciphers` limits the TLS 1.2 cipher suites: a client offering only others fails the
    /// handshake. `ciphers_tls1.3` is accepted with a warning (BoringSSL always offers its three
    /// TLS 1.3 suites) and TLS 1.3 clients are served.
    func testCiphersLimitTheTLS12SuitesAndCiphersTLS13IsAcceptedWithAWarning() throws {
        let broker = try startBroker(config: loggingListener("""
            certfile \(certs.serverCert)
            keyfile \(certs.serverKey)
            ciphers ECDHE-ECDSA-AES256-GCM-SHA384
            ciphers_tls1.3 TLS_AES_256_GCM_SHA384
            """))
        // openssl s_client held to TLS 1.2 (mosquitto_pub's --tls-version only sets a minimum).
        let openssl = try Executables.require("openssl", hint: "apt-get install openssl")
        func handshake(_ cipher: String) throws -> ProcessResult {
            try ClientProcess.run(openssl, ["s_client", "-connect", "127.0.0.1:\(broker.port)", "-tls1_2", "-cipher", cipher,
                                            "-CAfile", certs.caFile, "-verify_return_error"],
                                  stdin: "", timeout: peerTimeout, directory: workDir)
        }
        let allowed = try handshake("ECDHE-ECDSA-AES256-GCM-SHA384")
        XCTAssertEqual(allowed.exitCode, 0, "\(allowed)")
        let refused = try handshake("ECDHE-ECDSA-AES128-GCM-SHA256")
        XCTAssertNotEqual(refused.exitCode, 0, "a cipher outside `ciphers` was accepted: \(refused)")
        try mosquittoPub(broker, ["--cafile", certs.caFile, "--tls-version", "tlsv1.3", "-t", "ciphers", "-m", "x"])
        XCTAssertTrue(brokerLog(broker).contains("ciphers_tls1.3 is accepted but"), brokerLog(broker))
    }

    // MARK: - Accepted for compatibility

    /// Options with no meaning in Midge start the broker (with Mosquitto's warnings for the
    /// deprecated ones) and change nothing for clients.
    func testCompatibilityOptionsStartTheBrokerWithTheirWarnings() throws {
        let broker = try startBroker(config: loggingListener("""
            allow_duplicate_messages false
            retry_interval 20
            autosave_interval 60
            autosave_on_changes false
            set_tcp_nodelay false
            """))
        let sub = try startMosquittoSub(broker, ["-q", "1", "-t", "compat", "-C", "1"])
        try mosquittoPub(broker, ["-q", "1", "-t", "compat", "-m", "still works"])
        let r = waitForExit(sub.process, broker: broker)
        XCTAssertEqual(sub.messages, ["still works"], "\(r)")
        let out = brokerLog(broker)
        XCTAssertTrue(out.contains("allow_duplicate_messages"), out)
        XCTAssertTrue(out.contains("retry_interval"), out)
    }

    // MARK: - Sockets

    static func canConnect(host: String, port: Int) -> Bool {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { return false }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    static func canConnectIPv6Loopback(port: Int) -> Bool {
        var addr = sockaddr_in6()
        addr.sin6_family = sa_family_t(AF_INET6)
        addr.sin6_port = in_port_t(UInt16(port).bigEndian)
        addr.sin6_addr = in6addr_loopback
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
            }
        }
    }

    /// True when `::1` can be bound (IPv6 enabled on loopback).
    static func hasIPv6Loopback() -> Bool {
        var addr = sockaddr_in6()
        addr.sin6_family = sa_family_t(AF_INET6)
        addr.sin6_addr = in6addr_loopback
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
            }
        }
    }

    /// An IPv4 address of this machine outside 127/8, if it has one.
    static func nonLoopbackIPv4Address() -> String? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let sa = entry.pointee.ifa_addr, sa.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            let address = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            var copy = address
            guard inet_ntop(AF_INET, &copy, &text, socklen_t(text.count)) != nil else { continue }
            let s = String(cString: text)
            if !s.hasPrefix("127.") { return s }
        }
        return nil
    }
}
