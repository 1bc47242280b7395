import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// v5 Topic Aliases (spec 3.3.2.3.4) in both directions.
final class TopicAliasTests: MessagingTestCase {
    /// Client → broker: a PUBLISH with topic and alias sets the mapping, a later one with an
    /// empty topic and the alias uses it, a new topic for the same alias re-maps it; subscribers
    /// get the full topic name. The broker accepts aliases up to the Topic Alias Maximum it
    /// announced (10 by default, Mosquitto's max_topic_alias) [MQTT-3.3.2-12].
    func testClientAliasIsSetThenUsed() async throws {
        let subscriber = try await connect("ta-sub", .v5)
        try await subscriber.subscribe("ta/#", qos: .atLeastOnce)
        let (publisher, connack) = try await broker.connect("ta-pub", version: .v5)
        XCTAssertEqual(connack.properties.topicAliasMaximum, 10)

        try await publisher.publish("ta/first", "1", qos: .atLeastOnce, properties: .with(topicAlias: 1))
        try await publisher.publish("", "2", qos: .atLeastOnce, packetID: 2, properties: .with(topicAlias: 1))
        try await publisher.publish("ta/second", "3", qos: .atLeastOnce, packetID: 3, properties: .with(topicAlias: 10))
        try await publisher.publish("ta/remapped", "4", qos: .atLeastOnce, packetID: 4, properties: .with(topicAlias: 1))
        try await publisher.publish("", "5", qos: .atMostOnce, properties: .with(topicAlias: 1))
        try await publisher.publish("", "6", qos: .atMostOnce, properties: .with(topicAlias: 10))
        let received = try await subscriber.receivePublishes(6)
        XCTAssertEqual(received.map(\.topic), ["ta/first", "ta/first", "ta/second", "ta/remapped", "ta/remapped", "ta/second"])
        XCTAssertEqual(received.map(\.text), ["1", "2", "3", "4", "5", "6"])
        XCTAssertTrue(received.allSatisfy { $0.properties.topicAlias == nil }, "the publisher's alias must not be forwarded")
        await subscriber.close(); await publisher.close()
    }

    /// An alias above the broker's Topic Alias Maximum: DISCONNECT 0x94 Topic Alias invalid
    /// (the receiving side of the client rule MQTT-3.3.2-9; spec 3.3.2.3.4).
    func testAliasAboveMaximumIsDisconnectedWith0x94() async throws {
        let publisher = try await connect("ta-big", .v5)
        try await publisher.send(.publish(PublishPacket(topic: "ta/x", payload: ByteBuffer(string: "x"), properties: .with(topicAlias: 11))))
        let packets = try await publisher.waitForClose()
        XCTAssertEqual(packets.count, 1, "\(packets)")
        guard case .disconnect(let disconnect) = packets.first else { return XCTFail("no DISCONNECT: \(packets)") }
        XCTAssertEqual(disconnect.reasonCode, .topicAliasInvalid)
    }

    /// An empty topic with an alias that was never set: DISCONNECT 0x82 Protocol Error, as Mosquitto
    /// (02-subpub-qos0-topic-alias-unknown; the code is the server's choice).
    func testUnknownAliasWithEmptyTopicIsDisconnectedWith0x82() async throws {
        let publisher = try await connect("ta-unknown", .v5)
        try await publisher.send(.publish(PublishPacket(topic: "", payload: ByteBuffer(string: "x"), properties: .with(topicAlias: 3))))
        let packets = try await publisher.waitForClose()
        guard case .disconnect(let disconnect) = packets.last else { return XCTFail("no DISCONNECT: \(packets)") }
        XCTAssertEqual(disconnect.reasonCode, .protocolError)
    }

    /// Alias mappings do not carry over to a new network connection [MQTT-3.3.2-7], even when
    /// the session does.
    func testAliasesDoNotSurviveReconnect() async throws {
        var (publisher, _) = try await connectPersistent("ta-reconnect", .v5, resume: false)
        try await publisher.publish("ta/r", "x", properties: .with(topicAlias: 2))
        try await publisher.disconnect()
        (publisher, _) = try await connectPersistent("ta-reconnect", .v5, resume: true)
        try await publisher.send(.publish(PublishPacket(topic: "", payload: ByteBuffer(string: "y"), properties: .with(topicAlias: 2))))
        let packets = try await publisher.waitForClose()
        guard case .disconnect(let disconnect) = packets.last else { return XCTFail("alias survived the reconnect: \(packets)") }
        XCTAssertEqual(disconnect.reasonCode, .protocolError, "an unknown alias")
    }

    /// Broker → client: with the client's Topic Alias Maximum 2, the first PUBLISH on a topic
    /// carries the topic and a new alias, later ones only the alias; once both aliases are used a
    /// third topic goes out in full without an alias; never an alias above 2 [MQTT-3.3.2-11].
    func testBrokerUsesAliasesTowardsClientWithinItsMaximum() async throws {
        var properties = Properties()
        properties.topicAliasMaximum = 2
        let subscriber = try await connect("tb-sub", .v5, properties: properties)
        try await subscriber.subscribe("tb/#", qos: .atLeastOnce)
        let publisher = try await connect("tb-pub", .v5)
        let sequence = ["tb/1", "tb/1", "tb/2", "tb/1", "tb/2", "tb/3", "tb/3"]
        for (index, topic) in sequence.enumerated() {
            try await publisher.publish(topic, "\(index)", qos: index % 2 == 0 ? .atLeastOnce : .atMostOnce, packetID: UInt16(index + 1))
        }
        let received = try await subscriber.receivePublishes(sequence.count)
        XCTAssertEqual(received.map(\.text), (0..<sequence.count).map { "\($0)" })

        var mapping: [UInt16: String] = [:]
        var resolved: [String] = []
        for publish in received {
            if let alias = publish.properties.topicAlias {
                XCTAssertTrue((1...2).contains(alias), "alias \(alias) above the client's maximum")
                if !publish.topic.isEmpty { mapping[alias] = publish.topic }
                guard let topic = mapping[alias] else { XCTFail("alias \(alias) used before it was set"); continue }
                resolved.append(topic)
            } else {
                XCTAssertFalse(publish.topic.isEmpty)
                resolved.append(publish.topic)
            }
        }
        XCTAssertEqual(resolved, sequence, "topics as the client resolves them")
        XCTAssertEqual(received.map(\.topic), ["tb/1", "", "tb/2", "", "", "tb/3", "tb/3"], "topic sent only on first use")
        XCTAssertEqual(received.map(\.properties.topicAlias), [1, 1, 2, 1, 2, nil, nil])
        await subscriber.close(); await publisher.close()
    }

    /// A client that sends no Topic Alias Maximum (0) never gets an alias [MQTT-3.3.2-11].
    func testNoAliasesWithoutClientMaximum() async throws {
        let subscriber = try await connect("tb-none", .v5)
        try await subscriber.subscribe("tbn", qos: .atMostOnce)
        let publisher = try await connect("tb-none-pub", .v5)
        for _ in 0..<3 { try await publisher.publish("tbn", "x") }
        let received = try await subscriber.receivePublishes(3)
        XCTAssertEqual(received.map(\.topic), ["tbn", "tbn", "tbn"])
        XCTAssertTrue(received.allSatisfy { $0.properties.topicAlias == nil })
        await subscriber.close(); await publisher.close()
    }

    /// Outbound aliases are per connection too: after a reconnect the broker sends the topic
    /// again before using an alias [MQTT-3.3.2-7].
    func testBrokerAliasesRestartOnNewConnection() async throws {
        var properties = Properties()
        properties.topicAliasMaximum = 5
        var (subscriber, _) = try await connectPersistent("tb-re", .v5, resume: false, properties: properties)
        try await subscriber.subscribe("tbr", qos: .atLeastOnce)
        let publisher = try await connect("tb-re-pub", .v5)
        try await publisher.publish("tbr", "a", qos: .atLeastOnce)
        let firstTopic = try await subscriber.receivePublishes(1).first?.topic
        XCTAssertEqual(firstTopic, "tbr")
        try await subscriber.disconnect()
        (subscriber, _) = try await connectPersistent("tb-re", .v5, resume: true, properties: properties)
        try await publisher.publish("tbr", "b", qos: .atLeastOnce, packetID: 2)
        let again = try await subscriber.expectPublish()
        XCTAssertEqual(again.topic, "tbr", "first PUBLISH on a new connection must carry the topic")
        await subscriber.close(); await publisher.close()
    }

    /// A PUBLISH the broker drops because it exceeds the client's Maximum Packet Size does not
    /// use up an alias: the next message on that topic still carries the topic name with its
    /// alias, so the client can resolve it [MQTT-3.1.2-25] [MQTT-3.3.2-11].
    func testDroppedOversizePublishDoesNotConsumeAnAlias() async throws {
        var properties = Properties()
        properties.topicAliasMaximum = 1
        properties.maximumPacketSize = 64
        let subscriber = try await connect("tb-size", .v5, properties: properties)
        try await subscriber.subscribe("tbs", qos: .atMostOnce)
        let publisher = try await connect("tb-size-pub", .v5)
        try await publisher.publish("tbs", String(repeating: "x", count: 100))
        try await publisher.publish("tbs", "small")
        try await publisher.publish("tbs", "again")
        let received = try await subscriber.receivePublishes(2)
        XCTAssertEqual(received.map(\.text), ["small", "again"])
        XCTAssertEqual(received.map(\.topic), ["tbs", ""], "the first PUBLISH actually sent must carry the topic")
        XCTAssertEqual(received.map(\.properties.topicAlias), [1, 1])
        await subscriber.close(); await publisher.close()
    }
}
