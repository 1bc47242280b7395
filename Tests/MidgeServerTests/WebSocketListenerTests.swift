import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestSupport
import NIOCore
import XCTest

/// A `protocol websockets` listener driven byte by byte with a raw WebSocket client
/// (MQTT 5.0 chapter 6 and RFC 6455), next to a plain MQTT listener on the same broker.
final class WebSocketListenerTests: XCTestCase {
    var broker: TestBroker!
    /// The WebSocket listener's port (`broker.port` is the plain TCP one).
    var wsPort = 0

    override func setUpWithError() throws {
        try startBroker()
    }

    override func tearDown() { broker?.shutdown() }

    private func startBroker(maxPacketSize: Int = 0, wsMaxConnections: Int = -1) throws {
        broker?.shutdown()
        broker = try TestBroker({ config in
            var security = config.security
            security.allowAnonymous = true
            config.listeners = [
                ListenerConfiguration(port: 0, bindAddress: "127.0.0.1", security: security),
                ListenerConfiguration(port: 0, bindAddress: "127.0.0.1", maxConnections: wsMaxConnections, protocolName: "websockets",
                                      security: security),
            ]
            config.perListenerSettings = true
            config.maxPacketSize = maxPacketSize
        })
        wsPort = try XCTUnwrap(broker.server.boundAddresses.last?.port)
        XCTAssertNotEqual(wsPort, broker.port)
    }

    private func upgrade(_ subprotocols: String? = "mqtt") async throws -> (WebSocketRawClient, WebSocketRawClient.HTTPAnswer) {
        try await WebSocketRawClient.upgrade(port: wsPort, group: broker.clientGroup, subprotocols: subprotocols)
    }

    private func connectPacket(_ id: String, version: ProtocolVersion = .v5) -> [UInt8] {
        WebSocketRawClient.encode(.connect(ConnectPacket(protocolVersion: version, clientID: id)), version: version)
    }

    // MARK: Subprotocol

    func testServerSelectsMQTTSubprotocol() async throws {
        // [MQTT-6.0.0-4] [3.1.1:MQTT-6.0.0-4] the subprotocol the server selects is "mqtt", wherever
        // the client lists it (the handshake comes before any MQTT packet, so it is the same for every version).
        for offered in ["mqtt", "chat, mqtt", "mqttv3.1, mqtt"] {
            let (client, answer) = try await upgrade(offered)
            XCTAssertEqual(answer.status, 101, offered)
            XCTAssertEqual(answer.headers["sec-websocket-protocol"], "mqtt", offered)
            XCTAssertEqual(answer.headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") // RFC 6455 1.3's example
            client.close()
        }
    }

    func testMQTT31SubprotocolNameIsAccepted() async throws {
        // MQTT 3.1 clients offer "mqttv3.1" (Mosquitto accepts it and answers with it).
        let (client, answer) = try await upgrade("mqttv3.1")
        XCTAssertEqual(answer.status, 101)
        XCTAssertEqual(answer.headers["sec-websocket-protocol"], "mqttv3.1")
        try await client.sendFrame(opcode: WebSocketRawClient.binary, payload: connectPacket("v31", version: .v3_1))
        guard case .connack(let connack) = try await client.readPacket(version: .v3_1) else { return XCTFail("no CONNACK") }
        XCTAssertEqual(connack.returnCode, .accepted)
        client.close()
    }

    func testUnsupportedSubprotocolIsRefusedWithHTTP400() async throws {
        // The client rule MQTT-6.0.0-3: the client must offer "mqtt": an offer without it gets a clean HTTP error.
        let (client, answer) = try await upgrade("chat, superchat")
        XCTAssertEqual(answer.status, 400)
        XCTAssertNil(answer.headers["sec-websocket-protocol"])
        XCTAssertTrue(answer.body.contains("mqtt"), answer.body)
        _ = try await client.waitForClose()
    }

    func testAbsentSubprotocolIsAcceptedWithoutOne() async throws {
        // The client rule MQTT-6.0.0-3 binds the client; like Mosquitto, a client offering no subprotocol is
        // served, and the answer names none (a WebSocket client fails a handshake naming one it did not offer).
        let (client, answer) = try await upgrade(nil)
        XCTAssertEqual(answer.status, 101)
        XCTAssertNil(answer.headers["sec-websocket-protocol"])
        try await client.sendFrame(opcode: WebSocketRawClient.binary, payload: connectPacket("no-subprotocol"))
        guard case .connack(let connack) = try await client.readPacket() else { return XCTFail("no CONNACK") }
        XCTAssertEqual(connack.reasonCode, .success)
        client.close()
    }

    // MARK: Frames

    func testTextFrameClosesTheConnection() async throws {
        // [MQTT-6.0.0-1] [3.1.1:MQTT-6.0.0-1] MQTT packets travel in binary frames; any other data
        // frame closes the connection.
        for version in [ProtocolVersion.v5, .v3_1_1] {
            let (client, _) = try await upgrade()
            try await client.sendFrame(opcode: WebSocketRawClient.binary, payload: connectPacket("texter", version: version))
            guard case .connack = try await client.readPacket(version: version) else { return XCTFail("no CONNACK (\(version))") }
            let pingreq = WebSocketRawClient.encode(.pingreq, version: version)
            try await client.sendFrame(opcode: WebSocketRawClient.text, payload: pingreq)
            let frame = try await client.readFrame()
            XCTAssertEqual(frame.opcode, WebSocketRawClient.close, "\(version)")
            XCTAssertEqual(Array(frame.payload.prefix(2)), [0x03, 0xEB], "\(version)") // 1003: unsupported data
            let rest = try await client.waitForClose()
            XCTAssertTrue(rest.isEmpty, "no PINGRESP after the text frame (\(version)): \(rest)")
        }
    }

    func testPacketSplitAcrossFrames() async throws {
        // [MQTT-6.0.0-2] [3.1.1:MQTT-6.0.0-2] a packet may be split across frames: CONNECT in three
        // frames (one of them a fragmented message: binary + continuation), then a PUBLISH byte by byte.
        for version in [ProtocolVersion.v5, .v3_1_1] {
            let (client, _) = try await upgrade()
            let connect = connectPacket("splitter", version: version)
            try await client.sendFrame(opcode: WebSocketRawClient.binary, payload: Array(connect[0..<3]))
            try await client.sendFrame(opcode: WebSocketRawClient.binary, payload: Array(connect[3..<8]), fin: false)
            try await client.sendFrame(opcode: WebSocketRawClient.continuation, payload: Array(connect[8...]))
            guard case .connack(let connack) = try await client.readPacket(version: version) else { return XCTFail("no CONNACK (\(version))") }
            XCTAssertTrue(connack.reasonCode == .success || connack.returnCode == .accepted, "\(version)")

            let subscribe = WebSocketRawClient.encode(.subscribe(SubscribePacket(packetID: 1, subscriptions: [TopicSubscription(filter: "ws/split")])), version: version)
            try await client.sendFrame(opcode: WebSocketRawClient.binary, payload: subscribe)
            guard case .suback = try await client.readPacket(version: version) else { return XCTFail("no SUBACK (\(version))") }
            let publish = WebSocketRawClient.encode(.publish(PublishPacket(topic: "ws/split", payload: ByteBuffer(text: "in pieces"), qos: .atLeastOnce, packetID: 3)), version: version)
            for byte in publish {
                try await client.sendFrame(opcode: WebSocketRawClient.binary, payload: [byte])
            }
            var got: [MQTTPacket] = []
            for _ in 0..<2 { got.append(try await client.readPacket(version: version)) }
            XCTAssertTrue(got.contains { if case .puback(let ack) = $0 { return ack.packetID == 3 } else { return false } }, "\(version): \(got)")
            XCTAssertTrue(got.contains { if case .publish(let p) = $0 { return p.payload.text == "in pieces" } else { return false } }, "\(version): \(got)")
            client.close()
        }
    }

    func testSeveralPacketsInOneFrame() async throws {
        // [MQTT-6.0.0-2] [3.1.1:MQTT-6.0.0-2] one frame may carry several packets: CONNECT +
        // SUBSCRIBE + PINGREQ together.
        for version in [ProtocolVersion.v5, .v3_1_1] {
            let (client, _) = try await upgrade()
            let bytes = connectPacket("packer", version: version)
                + WebSocketRawClient.encode(.subscribe(SubscribePacket(packetID: 9, subscriptions: [TopicSubscription(filter: "ws/packed")])), version: version)
                + WebSocketRawClient.encode(.pingreq, version: version)
            try await client.sendFrame(opcode: WebSocketRawClient.binary, payload: bytes)
            guard case .connack = try await client.readPacket(version: version) else { return XCTFail("no CONNACK (\(version))") }
            guard case .suback(let suback) = try await client.readPacket(version: version) else { return XCTFail("no SUBACK (\(version))") }
            XCTAssertEqual(suback.packetID, 9)
            guard case .pingresp = try await client.readPacket(version: version) else { return XCTFail("no PINGRESP (\(version))") }
            client.close()
        }
    }

    func testMessagesFlowBetweenWebSocketAndTCPClients() async throws {
        let (wsClient, _) = try await upgrade()
        try await wsClient.sendFrame(opcode: WebSocketRawClient.binary, payload: connectPacket("ws-sub"))
        guard case .connack = try await wsClient.readPacket() else { return XCTFail("no CONNACK") }
        try await wsClient.sendFrame(opcode: WebSocketRawClient.binary, payload: WebSocketRawClient.encode(
            .subscribe(SubscribePacket(packetID: 1, subscriptions: [TopicSubscription(filter: "mixed/#", options: .init(qos: .exactlyOnce))]))))
        guard case .suback = try await wsClient.readPacket() else { return XCTFail("no SUBACK") }

        let (tcpClient, _) = try await broker.connect("tcp-pub")
        try await tcpClient.send(.subscribe(SubscribePacket(packetID: 1, subscriptions: [TopicSubscription(filter: "back")])))
        guard case .suback = try await tcpClient.receive() else { return XCTFail("no SUBACK over TCP") }
        try await tcpClient.send(.publish(PublishPacket(topic: "mixed/a", payload: ByteBuffer(text: "from tcp"), qos: .atLeastOnce, packetID: 5)))
        guard case .publish(let delivered) = try await wsClient.readPacket() else { return XCTFail("no PUBLISH over ws") }
        XCTAssertEqual(delivered.payload.text, "from tcp")
        XCTAssertEqual(delivered.qos, .atLeastOnce)
        try await wsClient.sendFrame(opcode: WebSocketRawClient.binary, payload: WebSocketRawClient.encode(.puback(PubAckPacket(packetID: delivered.packetID))))

        try await wsClient.sendFrame(opcode: WebSocketRawClient.binary, payload: WebSocketRawClient.encode(
            .publish(PublishPacket(topic: "back", payload: ByteBuffer(text: "from ws")))))
        var received = try await tcpClient.receive()
        if case .puback = received { received = try await tcpClient.receive() }
        guard case .publish(let back) = received else { return XCTFail("no PUBLISH over TCP: \(received)") }
        XCTAssertEqual(back.payload.text, "from ws")
        wsClient.close()
    }

    // MARK: Control frames

    func testPingIsAnsweredWithPong() async throws {
        let (client, _) = try await upgrade()
        try await client.sendFrame(opcode: WebSocketRawClient.ping, payload: Array("are you there".utf8))
        let frame = try await client.readFrame()
        XCTAssertEqual(frame.opcode, WebSocketRawClient.pong)
        XCTAssertEqual(frame.payload, Array("are you there".utf8))
        client.close()
    }

    func testCloseFrameIsEchoedAndTheConnectionEnds() async throws {
        let (client, _) = try await upgrade()
        try await client.sendFrame(opcode: WebSocketRawClient.binary, payload: connectPacket("closer"))
        guard case .connack = try await client.readPacket() else { return XCTFail("no CONNACK") }
        try await client.sendFrame(opcode: WebSocketRawClient.close, payload: [0x03, 0xE8]) // 1000
        let frame = try await client.readFrame()
        XCTAssertEqual(frame.opcode, WebSocketRawClient.close)
        XCTAssertEqual(frame.payload, [0x03, 0xE8])
        _ = try await client.waitForClose()
    }

    func testBrokerDisconnectSendsCloseFrame() async throws {
        // A PUBLISH with a Subscription Identifier is a protocol error: DISCONNECT in a binary frame,
        // then a WebSocket close frame (normal closure) before the TCP connection ends.
        let (client, _) = try await upgrade()
        try await client.sendFrame(opcode: WebSocketRawClient.binary, payload: connectPacket("twice"))
        guard case .connack = try await client.readPacket() else { return XCTFail("no CONNACK") }
        try await client.sendFrame(opcode: WebSocketRawClient.binary, payload: [0x30, 0x07, 0x00, 0x01, 0x61, 0x02, 0x0B, 0x01, 0x78])
        guard case .disconnect(let disconnect) = try await client.readPacket() else { return XCTFail("no DISCONNECT") }
        XCTAssertEqual(disconnect.reasonCode, .protocolError)
        let frame = try await client.readFrame()
        XCTAssertEqual(frame.opcode, WebSocketRawClient.close)
        XCTAssertEqual(Array(frame.payload.prefix(2)), [0x03, 0xE8])
        client.close()
    }

    func testUnmaskedClientFrameIsAProtocolError() async throws {
        let (client, _) = try await upgrade()
        try await client.sendFrame(opcode: WebSocketRawClient.binary, payload: connectPacket("unmasked"), masked: false)
        let frame = try await client.readFrame()
        XCTAssertEqual(frame.opcode, WebSocketRawClient.close)
        XCTAssertEqual(Array(frame.payload.prefix(2)), [0x03, 0xEA]) // 1002
        _ = try await client.waitForClose()
    }

    func testFrameLargerThanTheLimitIsRefused() async throws {
        // With max_packet_size 1000 the frame limit is 64 KiB (the floor): a bigger frame is
        // answered with close code 1009 (message too big) and the connection closed.
        try startBroker(maxPacketSize: 1000)
        let (client, _) = try await upgrade()
        try await client.sendFrame(opcode: WebSocketRawClient.binary, payload: [UInt8](repeating: 0, count: 70_000))
        let frame = try await client.readFrame()
        XCTAssertEqual(frame.opcode, WebSocketRawClient.close)
        XCTAssertEqual(Array(frame.payload.prefix(2)), [0x03, 0xF1]) // 1009
        _ = try await client.waitForClose()
    }

    // MARK: Plain HTTP

    func testPlainHTTPGetGetsAnHTTPError() async throws {
        let client = try await WebSocketRawClient.connect(port: wsPort, group: broker.clientGroup)
        try await client.send(Array("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
        let answer = try await client.readHTTPAnswer()
        XCTAssertEqual(answer.status, 426)
        XCTAssertEqual(answer.headers["upgrade"], "websocket")
        XCTAssertEqual(answer.headers["connection"], "close")
        _ = try await client.waitForClose()
    }

    func testMQTTBytesOnTheWebSocketPortGetAnHTTPError() async throws {
        let client = try await WebSocketRawClient.connect(port: wsPort, group: broker.clientGroup)
        try await client.send(connectPacket("confused"))
        let answer = try await client.readHTTPAnswer()
        XCTAssertEqual(answer.status, 400)
        _ = try await client.waitForClose()
    }

    // MARK: max_connections

    func testMaxConnectionsCountsWebSocketSocketsUntilTheyClose() async throws {
        // A socket counts from accept to close, upgraded or not (a refused HTTP request too).
        try startBroker(wsMaxConnections: 1)
        let first = try await WebSocketRawClient.connect(port: wsPort, group: broker.clientGroup)
        try await first.send(Array("GET / HTTP/1.1\r\nHost: x\r\n".utf8)) // request not finished: stays open
        try await Task.sleep(nanoseconds: 100_000_000)
        let second = try await WebSocketRawClient.connect(port: wsPort, group: broker.clientGroup)
        _ = try await second.waitForClose()
        first.close()
        _ = try await first.waitForClose()
        try await Task.sleep(nanoseconds: 100_000_000)
        let (third, answer) = try await upgrade()
        XCTAssertEqual(answer.status, 101, "the closed socket was not uncounted")
        third.close()
    }
}
