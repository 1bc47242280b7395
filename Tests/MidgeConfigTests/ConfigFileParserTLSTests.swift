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

    /// (configuration, the whole error it must give) rows.
    func testBadValuesAndPendingOptionsAreErrorsAtTheirLine() {
        let rows: [(text: String, error: String)] = [
            ("listener 8883\ntls_version tlsv1.0\n",
             "tls.conf:2: Invalid tls_version value \"tlsv1.0\" (expected tlsv1.3, tlsv1.2 or tlsv1.1)."),
            ("listener 8883\nrequire_certificate yes\n",
             "tls.conf:2: Invalid value for require_certificate: \"yes\" (expected true or false)."),
            ("listener 8883\ncertfile a\n\ncertfile b\n", "tls.conf:4: Duplicate certfile value in configuration."),
            ("listener 8883\ncafile\n", "tls.conf:2: Missing value for cafile."),
            // Engine and PSK options are still not supported.
            ("listener 8883\ntls_engine pkcs11\n", "tls.conf:2: directive 'tls_engine' is not supported yet"),
            ("listener 8883\npsk_hint x\n", "tls.conf:2: directive 'psk_hint' is not supported yet"),
        ]
        for row in rows {
            XCTAssertEqual(error(row.text), row.error, row.text.debugDescription)
        }
    }
}
