import MQTTCodec
import MidgeClient
import NIOCore
import XCTest

/// MidgeClient's keep alive (PINGREQ when idle, a broker that stops answering is detected) and
/// its use of topic aliases for repeated topics when the broker allows them (v5).
final class KeepAliveAndAliasTests: XCTestCase {
    func testSilentBrokerIsDetectedAsDead() async throws {
        // Answers CONNECT, never PINGREQ.
        let broker = try ScriptedBroker()
        defer { broker.shutdown() }
        let client = MQTTClient(configuration: .init(host: "127.0.0.1", port: broker.port, version: .v5, clientID: "ka", keepAlive: 1))
        try await client.connect()
        let started = Date()
        do {
            for try await _ in client.messages {}
            XCTFail("the message stream ended without an error")
        } catch MQTTClientError.timeout(let what) {
            XCTAssertTrue(what.contains("PINGRESP"), what)
        }
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertLessThan(elapsed, 3.5, "detected within about two keep-alive periods")
        XCTAssertTrue(broker.packets.contains { if case .pingreq = $0.packet { return true }; return false }, "PINGREQ sent when idle")
    }

    func testAnsweredPingsKeepTheConnection() async throws {
        let broker = try ScriptedBroker()
        let base = broker.respond
        broker.respond = { index, packet in
            if case .pingreq = packet { return [.pingresp] }
            return base(index, packet)
        }
        defer { broker.shutdown() }
        let client = MQTTClient(configuration: .init(host: "127.0.0.1", port: broker.port, version: .v5, clientID: "ka2", keepAlive: 1))
        try await client.connect()
        try await Task.sleep(nanoseconds: 2_600_000_000)
        let pings = broker.packets.filter { if case .pingreq = $0.packet { return true }; return false }.count
        XCTAssertGreaterThanOrEqual(pings, 2)
        XCTAssertEqual(broker.connectionCount, 1)
        try await client.publish("still/here", payload: "yes")
        await client.disconnect()
    }

    func testRepeatedTopicsUseTheBrokersTopicAliases() async throws {
        var properties = Properties()
        properties.topicAliasMaximum = 1
        let broker = try ScriptedBroker(connackProperties: properties)
        defer { broker.shutdown() }
        let client = MQTTClient(configuration: .init(host: "127.0.0.1", port: broker.port, version: .v5, clientID: "alias"))
        try await client.connect()
        for topic in ["a/long/topic", "a/long/topic", "other", "a/long/topic"] {
            try await client.publish(topic, payload: "x")
        }
        let deadline = Date().addingTimeInterval(5)
        while broker.publishes().count < 4 && Date() < deadline { try await Task.sleep(nanoseconds: 20_000_000) }
        let sent = broker.publishes()
        // First use: topic and alias 1; repeats: empty topic and the alias (spec 3.3.2.3.4; the client
        // rule MQTT-3.3.2-9 keeps aliases within the broker's maximum);
        // a second topic does not fit the broker's maximum of 1 and goes out in full.
        XCTAssertEqual(sent.map(\.topic), ["a/long/topic", "", "other", ""])
        XCTAssertEqual(sent.map(\.properties.topicAlias), [1, 1, nil, 1])
        await client.disconnect()
    }
}
