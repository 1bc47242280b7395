import XCTest
import MidgeBroker
@testable import MidgeConfig

/// The certificate-based TLS directives of mosquitto.conf(5): always options of the current
/// listener (per_listener_settings or not), values checked with the line in errors.
final class ConfigFileParserTLSTests: XCTestCase {
    private func parse(_ text: String) throws -> BrokerConfiguration {
        try ConfigFileParser.parse(text, fileName: "tls.conf")
    }

    private func error(_ text: String) -> String {
        do {
            _ = try parse(text)
            return "parsed"
        } catch {
            return "\(error)"
        }
    }

    func testEveryTLSDirectiveGoesToItsListenerWithItsLine() throws {
        let config = try parse("""
            listener 1883
            listener 8883
            certfile /etc/midge/server crt.pem
            keyfile /etc/midge/server.key
            cafile /etc/midge/ca.crt
            capath /etc/ssl/certs
            crlfile /etc/midge/crl.pem
            require_certificate true
            use_identity_as_username true
            use_subject_as_username false
            tls_version tlsv1.3
            ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256
            ciphers_tls1.3 TLS_AES_256_GCM_SHA384
            """)
        XCTAssertEqual(config.listeners.count, 2)
        XCTAssertFalse(config.listeners[0].tls.isConfigured)
        let tls = config.listeners[1].tls
        XCTAssertEqual(tls.certFile, "/etc/midge/server crt.pem")
        XCTAssertEqual(tls.keyFile, "/etc/midge/server.key")
        XCTAssertEqual(tls.caFile, "/etc/midge/ca.crt")
        XCTAssertEqual(tls.caPath, "/etc/ssl/certs")
        XCTAssertEqual(tls.crlFile, "/etc/midge/crl.pem")
        XCTAssertTrue(tls.requireCertificate)
        XCTAssertTrue(tls.useIdentityAsUsername)
        XCTAssertFalse(tls.useSubjectAsUsername)
        XCTAssertEqual(tls.minimumVersion, .tlsv1_3)
        XCTAssertEqual(tls.ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256")
        XCTAssertEqual(tls.ciphersTLS13, "TLS_AES_256_GCM_SHA384")
        XCTAssertEqual(tls.sources["certfile"], ConfigSource(file: "tls.conf", line: 3))
        XCTAssertEqual(tls.sources["keyfile"], ConfigSource(file: "tls.conf", line: 4))
    }

    func testTLSOptionsStayPerListenerWithPerListenerSettings() throws {
        let config = try parse("per_listener_settings true\nlistener 8883\ncertfile a.crt\nkeyfile a.key\nlistener 8884\ncertfile b.crt\nkeyfile b.key\n")
        XCTAssertEqual(config.listeners.map(\.tls.certFile), ["a.crt", "b.crt"])
    }

    func testTLSOptionsBeforeAnyListenerConfigureTheDefaultListener() throws {
        let config = try parse("port 8883\ncertfile a.crt\nkeyfile a.key\n")
        XCTAssertEqual(config.listeners.count, 1)
        XCTAssertEqual(config.listeners[0].port, 8883)
        XCTAssertEqual(config.listeners[0].tls.certFile, "a.crt")
    }

    func testPSKDirectives() throws {
        // psk_hint belongs to its listener and makes it a TLS listener; psk_file is a security
        // option (global, or the listener's with per_listener_settings); tls_keyform pem is accepted.
        var config = try parse("psk_file keys.psk\nlistener 8883\npsk_hint my hint\ntls_keyform pem\nlistener 1883\n")
        XCTAssertEqual(config.security.pskFile, "keys.psk")
        XCTAssertEqual(config.listeners[0].tls.pskHint, "my hint")
        XCTAssertTrue(config.listeners[0].tls.isConfigured)
        XCTAssertEqual(config.listeners[0].tls.sources["psk_hint"], ConfigSource(file: "tls.conf", line: 3))
        XCTAssertFalse(config.listeners[1].tls.isConfigured)
        config = try parse("per_listener_settings true\nlistener 8883\npsk_hint h\npsk_file a.psk\nlistener 8884\npsk_file b.psk\n")
        XCTAssertNil(config.security.pskFile)
        XCTAssertEqual(config.listeners.map(\.security.pskFile), ["a.psk", "b.psk"])
        // Before any listener: the default listener's, which it creates (as in Mosquitto).
        config = try parse("port 1884\npsk_hint h\n")
        XCTAssertEqual(config.listeners.first?.tls.pskHint, "h")
    }

    /// (configuration, the whole error it must give) rows.
    func testBadValuesAndPendingOptionsAreErrorsAtTheirLine() {
        let rows: [(text: String, error: String)] = [
            ("listener 8883\ntls_version tlsv1.0\n",
             "tls.conf:2: Invalid tls_version value \"tlsv1.0\" (expected tlsv1.3, tlsv1.2 or tlsv1.1)."),
            ("listener 8883\nrequire_certificate yes\n",
             "tls.conf:2: Invalid value for require_certificate: \"yes\" (expected true or false)."),
            ("listener 8883\ncertfile a\n\ncertfile b\n", "tls.conf:4: Duplicate certfile value in configuration."),
            ("listener 8883\ncafile\n", "tls.conf:2: Missing value for cafile."),
            // OpenSSL engines and finite-field DHE: refused with the reason (BoringSSL has neither).
            ("listener 8883\ntls_engine pkcs11\n",
             "tls.conf:2: tls_engine is not available: Midge's TLS (BoringSSL) has no OpenSSL engines; use a PEM keyfile."),
            ("listener 8883\ntls_engine_kpass_sha1 0123\n",
             "tls.conf:2: tls_engine_kpass_sha1 is not available: Midge's TLS (BoringSSL) has no OpenSSL engines."),
            ("listener 8883\ntls_keyform engine\n",
             "tls.conf:2: tls_keyform engine is not available: Midge's TLS (BoringSSL) has no OpenSSL engines; use a PEM keyfile (tls_keyform pem)."),
            ("listener 8883\ntls_keyform der\n", "tls.conf:2: Invalid tls_keyform value \"der\" (expected pem or engine)."),
            ("listener 8883\ndhparamfile dh.pem\n",
             "tls.conf:2: dhparamfile is not available: Midge's TLS (BoringSSL) has no finite-field DHE; its ECDHE suites "
             + "give forward secrecy without DH parameters. Remove the line."),
            // Certificates and PSK on one listener: refused in both orders.
            ("listener 8883\npsk_hint h\ncertfile a\n", "tls.conf:3: Cannot use both certificate and psk encryption in a single listener."),
            ("listener 8883\ncafile a\npsk_hint h\n", "tls.conf:3: Cannot use both certificate and psk encryption in a single listener."),
            ("listener 8883\npsk_hint\n", "tls.conf:2: Missing value for psk_hint."),
        ]
        for row in rows {
            XCTAssertEqual(error(row.text), row.error, row.text.debugDescription)
        }
    }
}
