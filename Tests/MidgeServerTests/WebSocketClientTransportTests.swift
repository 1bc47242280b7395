import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestSupport
import NIOCore
import XCTest

/// `MQTTTransport.webSocket` and `.unixSocket` against a Midge broker that has a plain MQTT,
/// a `protocol websockets` and a Unix-socket listener: messages cross between the transports.
final class WebSocketClientTransportTests: XCTestCase {
    var broker: TestBroker!
    var wsPort = 0
    var socketDirectory = ""
    var socketPath: String { socketDirectory + "/midge.sock" }

    override func setUpWithError() throws {
        socketDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("midge-ws-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        let path = socketPath
        broker = try TestBroker({ config in
            var security = config.security
            security.allowAnonymous = true
            config.listeners = [
                ListenerConfiguration(port: 0, bindAddress: "127.0.0.1", security: security),
                ListenerConfiguration(port: 0, bindAddress: "127.0.0.1", protocolName: "websockets", security: security),
                ListenerConfiguration(port: 0, unixSocketPath: path, security: security),
            ]
            config.perListenerSettings = true
        })
        wsPort = try XCTUnwrap(broker.server.boundAddresses[1].port)
    }

    override func tearDown() {
        broker.shutdown()
        try? FileManager.default.removeItem(atPath: socketDirectory)
    }

    private func client(_ id: String, version: ProtocolVersion, transport: MQTTTransport = .tcp, port: Int? = nil) -> MQTTClient {
        MQTTClient(configuration: .init(host: "127.0.0.1", port: port ?? broker.port, version: version, clientID: id, transport: transport))
    }

    private func roundTrip(subscriber: MQTTClient, publisher: MQTTClient, topic: String) async throws {
        try await subscriber.connect()
        try await publisher.connect()
        let granted = try await subscriber.subscribe([TopicSubscription(filter: "\(topic)/#", options: SubscriptionOptions(qos: .exactlyOnce))])
        XCTAssertEqual(granted, [.grantedQoS2])
        for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
            let result = try await publisher.publish("\(topic)/\(qos.rawValue)", payload: "m\(qos.rawValue)", qos: qos)
            XCTAssertTrue(result.reasonCode.isSuccess)
        }
        var iterator = subscriber.messages.makeAsyncIterator()
        for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
            let message = try await iterator.next()
            XCTAssertEqual(message?.topic, "\(topic)/\(qos.rawValue)")
            XCTAssertEqual(message?.payloadString, "m\(qos.rawValue)")
            XCTAssertEqual(message?.qos, qos)
        }
        await publisher.disconnect()
        await subscriber.disconnect()
    }

    func testWebSocketSubscriberReceivesFromTCPPublisher() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            try await roundTrip(subscriber: client("ws-sub-\(version.rawValue)", version: version, transport: .webSocket(path: "/mqtt"), port: wsPort),
                                publisher: client("tcp-pub-\(version.rawValue)", version: version),
                                topic: "ws-in/\(version.rawValue)")
        }
    }

    func testTCPSubscriberReceivesFromWebSocketPublisher() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            try await roundTrip(subscriber: client("tcp-sub-\(version.rawValue)", version: version),
                                publisher: client("ws-pub-\(version.rawValue)", version: version, transport: .webSocket(), port: wsPort),
                                topic: "ws-out/\(version.rawValue)")
        }
    }

    func testLargeMessageOverWebSocket() async throws {
        // 300 kB: bigger than a TCP read and than NIO's default 16 KiB frame limit.
        let subscriber = client("ws-big-sub", version: .v5, transport: .webSocket(), port: wsPort)
        let publisher = client("ws-big-pub", version: .v5, transport: .webSocket(), port: wsPort)
        try await subscriber.connect()
        try await publisher.connect()
        _ = try await subscriber.subscribe(to: "big", qos: .atLeastOnce)
        let payload = String(repeating: "0123456789", count: 30_000)
        _ = try await publisher.publish("big", payload: payload, qos: .atLeastOnce)
        var iterator = subscriber.messages.makeAsyncIterator()
        let message = try await iterator.next()
        XCTAssertEqual(message?.payloadString, payload)
        await publisher.disconnect()
        await subscriber.disconnect()
    }

    func testWebSocketToTCPPortFailsCleanly() async throws {
        // The plain MQTT listener does not speak HTTP: the upgrade fails, connect() throws.
        let c = client("ws-wrong-port", version: .v5, transport: .webSocket())
        do {
            try await c.connect()
            XCTFail("connected over WebSocket to a plain MQTT port")
        } catch let error as MQTTClientError {
            guard case .unreachable = error else { return XCTFail("\(error)") }
        }
    }

    func testUnixSocketClientExchangesWithWebSocketClient() async throws {
        try await roundTrip(subscriber: client("unix-sub", version: .v5, transport: .unixSocket(path: socketPath)),
                            publisher: client("ws-pub", version: .v3_1_1, transport: .webSocket(), port: wsPort),
                            topic: "unix-in")
    }
}
