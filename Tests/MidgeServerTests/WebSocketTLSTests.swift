import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestSupport
import NIOCore
import XCTest

/// wss: a `protocol websockets` listener with `certfile`/`keyfile` (TLS under the HTTP upgrade),
/// certificates made by `openssl` at test time. MidgeClient's `.webSocket(tls:)` exchanges
/// messages with a plain TCP client through it.
final class WebSocketTLSTests: XCTestCase {
    var certs: TLSTestCertificates { .shared }
    var broker: TestBroker!
    var wssPort = 0

    override func setUpWithError() throws {
        var tls = TLSSettings()
        tls.certFile = certs.serverCert
        tls.keyFile = certs.serverKey
        for name in ["certfile", "keyfile"] { tls.sources[name] = ConfigSource(file: "test.conf", line: 3) }
        broker = try TestBroker({ config in
            var security = config.security
            security.allowAnonymous = true
            var secure = ListenerConfiguration(port: 0, bindAddress: "127.0.0.1", protocolName: "websockets", security: security)
            secure.tls = tls
            config.listeners = [ListenerConfiguration(port: 0, bindAddress: "127.0.0.1", security: security), secure]
            config.perListenerSettings = true
        })
        wssPort = try XCTUnwrap(broker.server.boundAddresses.last?.port)
    }

    override func tearDown() { broker.shutdown() }

    private func wssClient(_ id: String, version: ProtocolVersion, caFile: String? = nil) -> MQTTClient {
        MQTTClient(configuration: .init(host: "localhost", port: wssPort, version: version, clientID: id, timeout: .seconds(5),
                                        transport: .webSocket(path: "/mqtt", tls: TLSClientOptions(caFile: caFile ?? certs.caFile))))
    }

    func testWSSClientExchangesWithTCPClient() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let secure = wssClient("wss-\(version.rawValue)", version: version)
            let plain = MQTTClient(configuration: .init(host: "127.0.0.1", port: broker.port, version: version, clientID: "tcp-\(version.rawValue)"))
            try await secure.connect()
            try await plain.connect()
            _ = try await secure.subscribe([TopicSubscription(filter: "wss/in/#", options: .init(qos: .exactlyOnce))])
            _ = try await plain.subscribe([TopicSubscription(filter: "wss/out/#", options: .init(qos: .exactlyOnce))])
            var secureMessages = secure.messages.makeAsyncIterator()
            var plainMessages = plain.messages.makeAsyncIterator()
            for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
                _ = try await plain.publish("wss/in/\(qos.rawValue)", payload: "to wss \(qos.rawValue)", qos: qos)
                let inbound = try await secureMessages.next()
                XCTAssertEqual(inbound?.payloadString, "to wss \(qos.rawValue)")
                XCTAssertEqual(inbound?.qos, qos)
                _ = try await secure.publish("wss/out/\(qos.rawValue)", payload: "from wss \(qos.rawValue)", qos: qos)
                let outbound = try await plainMessages.next()
                XCTAssertEqual(outbound?.payloadString, "from wss \(qos.rawValue)")
                XCTAssertEqual(outbound?.qos, qos)
            }
            await secure.disconnect()
            await plain.disconnect()
        }
    }

    func testWSSClientRefusesAnUntrustedBroker() async throws {
        let client = wssClient("wss-untrusting", version: .v5, caFile: certs.otherCAFile)
        do {
            try await client.connect()
            XCTFail("connected to a broker whose certificate is not from the trusted CA")
        } catch {
            XCTAssertTrue("\(error)".contains("TLS handshake failed"), "\(error)")
        }
    }

    func testPlainWebSocketOnTheWSSPortIsNotServed() async throws {
        let client = MQTTClient(configuration: .init(host: "127.0.0.1", port: wssPort, version: .v5, clientID: "ws-on-wss",
                                                     timeout: .seconds(5), transport: .webSocket()))
        do {
            try await client.connect()
            XCTFail("a plain WebSocket client was served by the TLS listener")
        } catch {}
    }
}
