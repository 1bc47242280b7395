import MQTTCodec
@testable import MidgeTools
import XCTest

/// `-L ws://…` / `wss://…`: Midge's extension of Mosquitto's `-L` for MQTT over WebSocket.
final class WebSocketURLOptionTests: XCTestCase {
    private func parse(_ args: [String], _ tool: ToolKind = .sub, file: StaticString = #filePath, line: UInt = #line) -> ClientOptions? {
        switch OptionParser.parse(args, tool: tool) {
        case .success(let options): return options
        case .failure(let message, _): XCTFail("unexpected failure: \(message)", file: file, line: line)
        default: XCTFail("unexpected outcome", file: file, line: line)
        }
        return nil
    }

    private func failure(_ args: [String], _ tool: ToolKind = .sub) -> String? {
        if case .failure(let message, _) = OptionParser.parse(args, tool: tool) { return message }
        XCTFail("\(args) parsed")
        return nil
    }

    func testWebSocketURLSetsEndpointAndPath() throws {
        let options = try XCTUnwrap(parse(["-L", "ws://alice:s3cret@broker.example:9001/mqtt", "-t", "a/#"]))
        XCTAssertEqual(options.host, "broker.example")
        XCTAssertEqual(options.port, 9001)
        XCTAssertEqual(options.webSocketPath, "/mqtt")
        XCTAssertEqual(options.username, "alice")
        XCTAssertEqual(options.password, "s3cret")
        XCTAssertEqual(options.topics, ["a/#"], "the path is not a topic: topics come from -t")
        XCTAssertFalse(options.usesTLS)
    }

    func testDefaultsPortsAndPath() throws {
        let ws = try XCTUnwrap(parse(["-L", "ws://localhost", "-t", "x"]))
        XCTAssertEqual(ws.port, 80)
        XCTAssertEqual(ws.webSocketPath, "/")
        let wss = try XCTUnwrap(parse(["-L", "WSS://[::1]/ws", "-t", "x"]))
        XCTAssertEqual(wss.host, "::1")
        XCTAssertEqual(wss.port, 443)
        XCTAssertEqual(wss.webSocketPath, "/ws")
        XCTAssertTrue(wss.usesTLS, "wss is WebSocket over TLS, with the system's CAs like mqtts://")
    }

    func testTopicStillRequired() {
        XCTAssertEqual(failure(["-L", "ws://localhost:8080/mqtt"]), "Error: You must specify a topic to subscribe to.\n")
    }

    func testBadPortAndMissingHost() {
        XCTAssertEqual(failure(["-L", "ws://localhost:http/mqtt", "-t", "x"]),
                       "Error: Invalid URL for -L argument specified - invalid port \"http\".\n")
        XCTAssertEqual(failure(["-L", "ws:///mqtt", "-t", "x"]), "Error: Invalid URL for -L argument specified - host missing.\n")
    }

    func testPlainMQTTURLUnchanged() throws {
        let options = try XCTUnwrap(parse(["-L", "mqtt://h:1999/t/x"], .pub))
        XCTAssertNil(options.webSocketPath)
        XCTAssertEqual(options.topic, "t/x")
    }
}
