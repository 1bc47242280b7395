import MidgeClient
@testable import MidgeTools
import XCTest

/// mosquitto_pub/sub/rr's TLS options: values, `-L mqtts://`, the 8883 default port, and the
/// errors for a certificate without key or without a CA.
final class OptionParserTLSTests: XCTestCase {
    private func outcome(_ args: [String], _ tool: ToolKind = .pub) -> (ClientOptions?, String?) {
        switch OptionParser.parse(args, tool: tool) {
        case .success(let options): return (options, nil)
        case .failure(let message, _): return (nil, message)
        default: return (nil, "help/version")
        }
    }

    func testEveryTLSOptionIsRead() throws {
        let (parsed, error) = outcome(["-t", "a", "-m", "b", "--cafile", "ca.pem", "--capath", "/etc/ssl/certs", "--cert", "c.pem",
                                       "--key", "k.pem", "--insecure", "--tls-version", "tlsv1.3", "--tls-use-os-certs",
                                       "--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256"])
        let options = try XCTUnwrap(parsed, error ?? "")
        XCTAssertEqual(options.tls, TLSClientOptions(caFile: "ca.pem", caPath: "/etc/ssl/certs", certFile: "c.pem", keyFile: "k.pem",
                                                     insecure: true, useOSCertificates: true, minimumVersion: .tlsv1_3,
                                                     ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256"))
        XCTAssertTrue(options.usesTLS)
    }

    func testPortDefaultsTo8883WithTLSAnd1883Without() throws {
        let tls = try XCTUnwrap(outcome(["-t", "a", "-m", "b", "--cafile", "ca.pem"]).0)
        XCTAssertEqual(ConnectionPlan(options: tls, io: .capture()).port, 8883)
        let plain = try XCTUnwrap(outcome(["-t", "a", "-m", "b", "--insecure"]).0)
        XCTAssertFalse(plain.usesTLS)
        XCTAssertEqual(ConnectionPlan(options: plain, io: .capture()).port, 1883)
        let explicit = try XCTUnwrap(outcome(["-t", "a", "-m", "b", "--cafile", "ca.pem", "-p", "1999"]).0)
        XCTAssertEqual(ConnectionPlan(options: explicit, io: .capture()).port, 1999)
    }

    func testMQTTSURLUsesTLSWithTheSystemCAsOnPort8883() throws {
        let options = try XCTUnwrap(outcome(["-L", "mqtts://user:pw@broker.example/some/topic", "-m", "x"]).0)
        XCTAssertEqual(options.host, "broker.example")
        XCTAssertEqual(options.port, 8883)
        XCTAssertEqual(options.topic, "some/topic")
        XCTAssertEqual(options.username, "user")
        XCTAssertTrue(options.tls.useOSCertificates)
        XCTAssertTrue(options.usesTLS)
        let withPort = try XCTUnwrap(outcome(["-L", "mqtts://h:9999/t", "--cafile", "ca.pem"], .sub).0)
        XCTAssertEqual(withPort.port, 9999)
        XCTAssertEqual(withPort.tls.caFile, "ca.pem")
    }

    func testErrors() {
        XCTAssertEqual(outcome(["-t", "a", "-m", "b", "--cafile"]).1, "Error: --cafile argument given but no file specified.\n\n")
        XCTAssertEqual(outcome(["-t", "a", "-m", "b", "--capath"]).1, "Error: --capath argument given but no directory specified.\n\n")
        XCTAssertEqual(outcome(["-t", "a", "-m", "b", "--tls-version", "sslv3"]).1,
                       "Error: Invalid --tls-version \"sslv3\" (expected tlsv1.3, tlsv1.2 or tlsv1.1).\n\n")
        XCTAssertEqual(outcome(["-t", "a", "-m", "b", "--cafile", "ca", "--cert", "c.pem"]).1,
                       "Error: Both certfile and keyfile must be provided if one of them is set.\n")
        XCTAssertEqual(outcome(["-t", "a", "-m", "b", "--cert", "c.pem", "--key", "k.pem"]).1,
                       "Error: --cert and --key need --cafile, --capath or --tls-use-os-certs (TLS is off without a CA).\n")
        XCTAssertEqual(outcome(["-t", "a", "-m", "b", "--psk", "abc"]).1, "Error: TLS support not available (--psk).\n\n")
    }
}
