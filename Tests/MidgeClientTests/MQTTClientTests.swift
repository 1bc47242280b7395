import MQTTCodec
import MidgeClient
import MidgeTestSupport
import NIOCore
import XCTest

/// MidgeClient against a real Midge broker over loopback.
final class MQTTClientTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try TestBroker() }
    override func tearDown() { broker.shutdown() }

    private func client(_ id: String, version: ProtocolVersion, _ adjust: (inout MQTTClient.Configuration) -> Void = { _ in }) -> MQTTClient {
        var configuration = MQTTClient.Configuration(host: "127.0.0.1", port: broker.port, version: version, clientID: id)
        adjust(&configuration)
        return MQTTClient(configuration: configuration)
    }

    func testPublishSubscribeRoundTripEveryQoSBothVersions() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let subscriber = client("sub-\(version.rawValue)", version: version)
            let publisher = client("pub-\(version.rawValue)", version: version)
            try await subscriber.connect()
            try await publisher.connect()
            let granted = try await subscriber.subscribe([TopicSubscription(filter: "rt/#", options: SubscriptionOptions(qos: .exactlyOnce))])
            XCTAssertEqual(granted, [.grantedQoS2])
            for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
                let result = try await publisher.publish("rt/\(qos.rawValue)", payload: "m\(qos.rawValue)", qos: qos)
                XCTAssertTrue(result.reasonCode.isSuccess)
            }
            var iterator = subscriber.messages.makeAsyncIterator()
            for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
                let message = try await iterator.next()
                XCTAssertEqual(message?.topic, "rt/\(qos.rawValue)")
                XCTAssertEqual(message?.payloadString, "m\(qos.rawValue)")
                XCTAssertEqual(message?.qos, qos)
            }
            await publisher.disconnect()
            await subscriber.disconnect()
            let after = try await iterator.next()
            XCTAssertNil(after, "messages ends after disconnect")
        }
    }

    func testRefusedConnectionReportsReason() async throws {
        let refused = try TestBroker(allowAnonymous: false)
        defer { refused.shutdown() }
        let c = MQTTClient(configuration: .init(host: "127.0.0.1", port: refused.port, version: .v5, clientID: "x"))
        do {
            try await c.connect()
            XCTFail("connected anonymously")
        } catch let error as MQTTClientError {
            // The broker sends no Reason String (as Mosquitto); the client names the reason code.
            XCTAssertEqual(error, .connectionRefused(.notAuthorized, reasonString: nil))
            XCTAssertEqual("\(error)", "Connection Refused: not authorised.")
        }
    }

    func testUnreachableBrokerIsATypedError() async throws {
        let c = MQTTClient(configuration: .init(host: "127.0.0.1", port: 1, version: .v5, clientID: "x"))
        do {
            try await c.connect()
            XCTFail("connected to port 1")
        } catch MQTTClientError.unreachable(let text) {
            XCTAssertTrue(text.contains("Connection refused") || text.contains("connection refused"), text)
        }
    }

    func testInvalidTopicIsRejectedBeforeSending() async throws {
        let c = client("t", version: .v5)
        try await c.connect()
        do {
            try await c.publish("a/+", payload: "x")
            XCTFail("published to a wildcard topic")
        } catch MQTTClientError.invalidArgument {}
        await c.disconnect()
    }
}
