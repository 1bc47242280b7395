import Foundation
import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeConfig
import MidgeServer
import MidgeTestSupport
import NIOCore
import XCTest

/// TLS listeners over real sockets, with certificates made by `openssl` at test time:
/// server-authenticated TLS, mutual TLS (good certificate, none, another CA's, a revoked one),
/// `use_identity_as_username` feeding the ACL, start-up errors at the configuration line, the
/// client's one-line handshake diagnoses, and SIGHUP's certificate reload.
final class TLSListenerTests: XCTestCase {
    var certs: TLSTestCertificates { .shared }

    /// A broker whose only listener (127.0.0.1, free port) speaks TLS with `tls`.
    private func makeBroker(_ adjust: (inout TLSSettings) -> Void = { _ in }, allowAnonymous: Bool = true,
                            aclFile: String? = nil, connectTimeout: Int = 15) throws -> TestBroker {
        var tls = TLSSettings()
        tls.certFile = certs.serverCert
        tls.keyFile = certs.serverKey
        adjust(&tls)
        for name in ["certfile", "keyfile", "cafile", "require_certificate"] { tls.sources[name] = ConfigSource(file: "test.conf", line: 2) }
        return try TestBroker({ config in
            var listener = ListenerConfiguration(port: 0, bindAddress: "127.0.0.1")
            listener.security.allowAnonymous = allowAnonymous
            listener.security.aclFile = aclFile
            listener.tls = tls
            config.listeners = [listener]
            config.perListenerSettings = true
            config.connectTimeout = connectTimeout
        })
    }

    private func client(_ broker: TestBroker, id: String, host: String = "localhost", version: ProtocolVersion = .v5,
                        username: String? = nil, _ options: TLSClientOptions) -> MQTTClient {
        MQTTClient(configuration: .init(host: host, port: broker.port, version: version, clientID: id, username: username,
                                        timeout: .seconds(5), transport: .tls(options)))
    }

    private func trustingCA(cert: String? = nil, key: String? = nil) -> TLSClientOptions {
        TLSClientOptions(caFile: certs.caFile, certFile: cert, keyFile: key)
    }

    /// The error `connect()` fails with (and a failure if it succeeds).
    private func connectError(_ client: MQTTClient, file: StaticString = #filePath, line: UInt = #line) async -> String {
        do {
            try await client.connect()
            XCTFail("connected, expected a refusal", file: file, line: line)
            await client.disconnect()
            return ""
        } catch {
            return "\(error)"
        }
    }

    // MARK: Stalled handshakes

    func testSocketThatNeverStartsTheHandshakeIsClosedAfterTheConnectTimeout() async throws {
        let broker = try makeBroker(connectTimeout: 1)
        defer { broker.shutdown() }
        let raw = try await broker.rawConnection() // plain TCP: no ClientHello is ever sent
        let start = Date()
        var closed = false
        do { _ = try await raw.receive(timeout: .seconds(4)) } catch PacketConnection.Failure.closed { closed = true }
        XCTAssertTrue(closed, "a TCP connection that never starts TLS must not be held forever")
        XCTAssertLessThanOrEqual(Date().timeIntervalSince(start), 2.5)
        let client = client(broker, id: "after-stall", trustingCA())
        try await client.connect()
        await client.disconnect()
    }

    // MARK: Server-authenticated TLS

    func testPublishSubscribeOverTLSWithTheCAFile() async throws {
        let broker = try makeBroker()
        defer { broker.shutdown() }
        let subscriber = client(broker, id: "sub", trustingCA())
        try await subscriber.connect()
        let granted = try await subscriber.subscribe(to: "tls/t", qos: .atLeastOnce)
        XCTAssertEqual(granted, .grantedQoS1)
        let publisher = client(broker, id: "pub", host: "127.0.0.1", trustingCA())
        try await publisher.connect()
        try await publisher.publish("tls/t", payload: "over tls", qos: .atLeastOnce)
        var iterator = subscriber.messages.makeAsyncIterator()
        let message = try await iterator.next()
        XCTAssertEqual(message?.payloadString, "over tls")
        await publisher.disconnect()
        await subscriber.disconnect()
    }

    func testPlainMQTTClientOnATLSListenerIsNotServed() async throws {
        let broker = try makeBroker()
        defer { broker.shutdown() }
        let plain = MQTTClient(configuration: .init(host: "127.0.0.1", port: broker.port, clientID: "plain", timeout: .seconds(3)))
        let error = await connectError(plain)
        XCTAssertFalse(error.isEmpty)
    }

    // MARK: Client diagnoses

    func testClientSaysUnknownCAWhenTheBrokersCAIsNotTrusted() async throws {
        let broker = try makeBroker()
        defer { broker.shutdown() }
        let error = await connectError(client(broker, id: "c", TLSClientOptions(caFile: certs.otherCAFile)))
        XCTAssertTrue(error.hasPrefix("TLS handshake failed: unknown CA"), error)
    }

    func testClientSaysHostnameMismatch() async throws {
        let broker = try makeBroker { $0.certFile = self.certs.wrongHostServerCert; $0.keyFile = self.certs.wrongHostServerKey }
        defer { broker.shutdown() }
        let error = await connectError(client(broker, id: "c", trustingCA()))
        XCTAssertTrue(error.hasPrefix("TLS handshake failed: hostname mismatch"), error)
        // --insecure skips the host name check only: the chain is still verified.
        var insecure = trustingCA()
        insecure.insecure = true
        let accepted = client(broker, id: "c2", insecure)
        try await accepted.connect()
        await accepted.disconnect()
    }

    func testClientSaysExpired() async throws {
        let broker = try makeBroker { $0.certFile = self.certs.expiredServerCert; $0.keyFile = self.certs.expiredServerKey }
        defer { broker.shutdown() }
        let error = await connectError(client(broker, id: "c", trustingCA()))
        XCTAssertTrue(error.hasPrefix("TLS handshake failed: the broker's certificate has expired"), error)
    }

    // MARK: Mutual TLS

    private func requireCertificate(_ tls: inout TLSSettings) {
        tls.caFile = certs.caFile
        tls.requireCertificate = true
    }

    func testMutualTLSAcceptsAClientCertificateFromTheCA() async throws {
        let broker = try makeBroker(requireCertificate)
        defer { broker.shutdown() }
        let alice = client(broker, id: "alice", trustingCA(cert: certs.clientCert, key: certs.clientKey))
        try await alice.connect()
        let ack = try await alice.publish("m/t", payload: "x", qos: .atLeastOnce).reasonCode
        XCTAssertEqual(ack, .noMatchingSubscribers)
        await alice.disconnect()
    }

    func testMutualTLSRefusesAClientWithoutCertificate() async throws {
        let broker = try makeBroker(requireCertificate)
        defer { broker.shutdown() }
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let error = await connectError(client(broker, id: "nocert", version: version, trustingCA()))
            XCTAssertTrue(error.hasPrefix("TLS handshake failed: client certificate required"), error)
        }
    }

    func testMutualTLSRefusesACertificateFromAnotherCA() async throws {
        let broker = try makeBroker(requireCertificate)
        defer { broker.shutdown() }
        let error = await connectError(client(broker, id: "mallory", trustingCA(cert: certs.otherClientCert, key: certs.otherClientKey)))
        XCTAssertTrue(error.hasPrefix("TLS handshake failed: the broker does not trust our client certificate"), error)
    }

    func testCRLRefusesARevokedClientCertificate() async throws {
        let broker = try makeBroker { self.requireCertificate(&$0); $0.crlFile = self.certs.crlFile }
        defer { broker.shutdown() }
        let error = await connectError(client(broker, id: "revoked", trustingCA(cert: certs.revokedClientCert, key: certs.revokedClientKey)))
        XCTAssertTrue(error.hasPrefix("TLS handshake failed:"), error)
        // A certificate the CRL does not list still gets in.
        let alice = client(broker, id: "alice", trustingCA(cert: certs.clientCert, key: certs.clientKey))
        try await alice.connect()
        await alice.disconnect()
    }

    // MARK: use_identity_as_username

    func testIdentityAsUsernameFeedsTheACL() async throws {
        let acl = certs.path("identity.acl")
        try "user alice\ntopic readwrite alice/#\n".write(toFile: acl, atomically: true, encoding: .utf8)
        let broker = try makeBroker({ self.requireCertificate(&$0); $0.useIdentityAsUsername = true },
                                    allowAnonymous: false, aclFile: acl)
        defer { broker.shutdown() }
        // The CONNECT username ("bob") is replaced by the certificate's CN.
        let alice = client(broker, id: "alice", username: "bob", trustingCA(cert: certs.clientCert, key: certs.clientKey))
        try await alice.connect()
        let grantedOwn = try await alice.subscribe(to: "alice/in", qos: .atLeastOnce)
        XCTAssertEqual(grantedOwn, .grantedQoS1)
        // Granted too (as Mosquitto's acl_file, the ACL filters delivery, not subscriptions); the
        // publish below shows the certificate's name is the one the ACL sees.
        let grantedOther = try await alice.subscribe(to: "other/in", qos: .atLeastOnce)
        XCTAssertEqual(grantedOther, .grantedQoS1)
        let ownAck = try await alice.publish("alice/in", payload: "mine", qos: .atLeastOnce).reasonCode
        XCTAssertEqual(ownAck, .success)
        let otherAck = try await alice.publish("other/in", payload: "not mine", qos: .atLeastOnce).reasonCode
        XCTAssertEqual(otherAck, .notAuthorized)
        var iterator = alice.messages.makeAsyncIterator()
        let message = try await iterator.next()
        XCTAssertEqual(message?.topic, "alice/in")
        await alice.disconnect()
    }

    func testSubjectAsUsernameFeedsTheACL() async throws {
        let acl = certs.path("subject.acl")
        try "user CN=alice\ntopic readwrite alice/#\n".write(toFile: acl, atomically: true, encoding: .utf8)
        let broker = try makeBroker({ self.requireCertificate(&$0); $0.useSubjectAsUsername = true },
                                    allowAnonymous: false, aclFile: acl)
        defer { broker.shutdown() }
        let alice = client(broker, id: "alice", trustingCA(cert: certs.clientCert, key: certs.clientKey))
        try await alice.connect()
        let own = try await alice.publish("alice/in", payload: "mine", qos: .atLeastOnce).reasonCode
        XCTAssertEqual(own, .noMatchingSubscribers)
        let other = try await alice.publish("other/in", payload: "not mine", qos: .atLeastOnce).reasonCode
        XCTAssertEqual(other, .notAuthorized)
        await alice.disconnect()
    }

    func testIdentityAsUsernameWithoutRequiredCertificateRefusesAClientWithNone() async throws {
        let broker = try makeBroker({ $0.caFile = self.certs.caFile; $0.useIdentityAsUsername = true }, allowAnonymous: false)
        defer { broker.shutdown() }
        let anonymous = client(broker, id: "nocert", username: "alice", trustingCA())
        do {
            try await anonymous.connect()
            XCTFail("connected without a certificate")
        } catch MQTTClientError.connectionRefused(let reason, _) {
            XCTAssertEqual(reason, .badUserNameOrPassword)
        }
    }

    // MARK: Start-up errors and reload

    private func startupError(_ text: String) throws -> String {
        let configuration = try ConfigFileParser.parse(text, fileName: "tls.conf")
        do {
            let server = try MidgeServer(configuration: configuration, log: .silent(), threads: 1)
            server.shutdown()
            XCTFail("the server started")
            return ""
        } catch {
            return "\(error)"
        }
    }

    func testUnreadableCertificateIsAStartupErrorAtItsLine() throws {
        let error = try startupError("listener 0 /tmp/x.sock\ncafile \(certs.caFile)\ncertfile \(certs.directory)/missing.crt\nkeyfile \(certs.serverKey)\n")
        XCTAssertTrue(error.hasPrefix("tls.conf:3: Unable to load server certificate"), error)
        XCTAssertTrue(error.contains("No such file or directory"), error)
        let garbage = certs.path("garbage.crt")
        try "not a certificate\n".write(toFile: garbage, atomically: true, encoding: .utf8)
        let error2 = try startupError("listener 0 /tmp/x.sock\ncertfile \(garbage)\nkeyfile \(certs.serverKey)\n")
        XCTAssertTrue(error2.hasPrefix("tls.conf:2: Unable to load server certificate"), error2)
    }

    func testKeyNotMatchingTheCertificateIsAStartupErrorAtTheKeyfileLine() throws {
        let error = try startupError("listener 0 /tmp/x.sock\ncertfile \(certs.serverCert)\n\nkeyfile \(certs.clientKey)\n")
        XCTAssertTrue(error.hasPrefix("tls.conf:4: Server key file"), error)
        XCTAssertTrue(error.contains("does not match"), error)
    }

    func testCertfileWithoutKeyfileAndRequireCertificateWithoutCA() throws {
        XCTAssertTrue(try startupError("listener 0 /tmp/x.sock\ncertfile \(certs.serverCert)\n").hasPrefix("tls.conf:2: certfile given without keyfile"))
        let error = try startupError("listener 0 /tmp/x.sock\ncertfile \(certs.serverCert)\nkeyfile \(certs.serverKey)\nrequire_certificate true\n")
        XCTAssertTrue(error.hasPrefix("tls.conf:4: require_certificate true needs cafile or capath"), error)
    }

    func testReloadServesNewCertificatesToNewConnections() async throws {
        let live = certs.path("live-server.crt"), liveKey = certs.path("live-server.key")
        try? FileManager.default.removeItem(atPath: live)
        try? FileManager.default.removeItem(atPath: liveKey)
        try FileManager.default.copyItem(atPath: certs.serverCert, toPath: live)
        try FileManager.default.copyItem(atPath: certs.serverKey, toPath: liveKey)
        let broker = try makeBroker { $0.certFile = live; $0.keyFile = liveKey }
        defer { broker.shutdown() }
        let before = client(broker, id: "before", trustingCA())
        try await before.connect()

        // The certificate for the wrong host name replaces the good one; SIGHUP's reload.
        try FileManager.default.removeItem(atPath: live)
        try FileManager.default.removeItem(atPath: liveKey)
        try FileManager.default.copyItem(atPath: certs.wrongHostServerCert, toPath: live)
        try FileManager.default.copyItem(atPath: certs.wrongHostServerKey, toPath: liveKey)
        broker.server.reloadSecurity()
        let error = await connectError(client(broker, id: "after", trustingCA()))
        XCTAssertTrue(error.hasPrefix("TLS handshake failed: hostname mismatch"), error)
        // The open connection is untouched.
        let stillAck = try await before.publish("still/here", payload: "x", qos: .atLeastOnce).reasonCode
        XCTAssertEqual(stillAck, .noMatchingSubscribers)

        // A broken file is refused: the previous certificate stays.
        try "broken".write(toFile: live, atomically: true, encoding: .utf8)
        broker.server.reloadSecurity()
        let stillWrong = await connectError(client(broker, id: "after2", trustingCA()))
        XCTAssertTrue(stillWrong.hasPrefix("TLS handshake failed: hostname mismatch"), stillWrong)
        await before.disconnect()
    }
}
