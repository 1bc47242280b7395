import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// v5 Topic Alias (spec 3.3.2.3.4) in both directions.
final class PublishTopicAliasConformanceTests: XCTestCase {
    // [MQTT-3.3.2-12]
    /// Every alias from 1 to the announced Topic Alias Maximum is accepted: set with a topic, then
    /// used with an empty topic; subscribers get the full topic name and no alias of the publisher.
    func testEveryAliasUpToTheAnnouncedMaximumIsAccepted() async throws {
        let broker = try startBroker()
        let subscriber = try await connectClean(broker, "alias-sub", .v5)
        try await subscribe(subscriber, "alias/#", qos: .atLeastOnce)
        let (publisher, connack) = try await connectAccepted(broker, "alias-pub")
        let maximum = connack.properties.topicAliasMaximum ?? 0
        XCTAssertGreaterThan(maximum, 0, "Midge announces a Topic Alias Maximum")
        var expected: [String] = []
        for value in 1...maximum {
            try await publisher.publish("alias/\(value)", "set", qos: .atLeastOnce, packetID: value, properties: .with(topicAlias: value))
            expected.append("alias/\(value)")
        }
        for value in (1...maximum).reversed() {
            try await publisher.publish("", "use", qos: .atLeastOnce, packetID: 100 + value, properties: .with(topicAlias: value))
            expected.append("alias/\(value)")
        }
        let received = try await subscriber.receivePublishes(expected.count)
        XCTAssertEqual(received.map(\.topic), expected)
        XCTAssertTrue(received.allSatisfy { $0.properties.topicAlias == nil }, "the publisher's alias is not forwarded")
    }

    // [MQTT-3.3.2-8]
    /// Topic Alias 0 is not allowed: a PUBLISH carrying it gets DISCONNECT 0x94 Topic Alias invalid.
    /// Aliases above the maximum get 0x94 too (the receiver's side of MQTT-3.3.2-9, a client
    /// rule); an empty topic with an alias never set gets 0x82 Protocol Error, Mosquitto's code
    /// (02-subpub-qos0-topic-alias-unknown; the code is the server's choice).
    func testInvalidAliasesAreRefusedWith0x94() async throws {
        let broker = try startBroker()
        let (probe, connack) = try await connectAccepted(broker, "alias-probe")
        await probe.close()
        let above = (connack.properties.topicAliasMaximum ?? 0) + 1
        let cases: [(String, [UInt8])] = [
            ("alias 0 with a topic", rawPublish(flags: 0, topic: Array("a/t".utf8), properties: [0x23, 0x00, 0x00])),
            ("alias 0 with an empty topic", rawPublish(flags: 0, topic: [], properties: [0x23, 0x00, 0x00])),
            ("alias above the maximum", rawPublish(flags: 0x02, topic: Array("a/t".utf8), packetID: 1, properties: [0x23, UInt8(above >> 8), UInt8(above & 0xFF)])),
        ]
        for (name, bytes) in cases {
            try await expectRejectedAfterConnect(broker, .v5, bytes, v5Reason: .topicAliasInvalid, name)
        }
        try await expectRejectedAfterConnect(broker, .v5, rawPublish(flags: 0, topic: [], properties: [0x23, 0x00, 0x02]),
                                             v5Reason: .protocolError, "unknown alias with an empty topic")
        try await assertBrokerServes(broker, "after invalid topic aliases")
    }

    // [MQTT-3.3.2-8] [MQTT-3.3.2-11]
    /// Aliases the broker sends are never 0 and never above the client's Topic Alias Maximum; with
    /// no maximum from the client it sends none at all.
    func testBrokerAliasesStayWithinTheClientMaximum() async throws {
        let broker = try startBroker()
        var limited = Properties()
        limited.topicAliasMaximum = 2
        let withAliases = try await connectClean(broker, "alias-out-2", .v5, properties: limited)
        try await subscribe(withAliases, "out/#", qos: .atMostOnce)
        let withoutAliases = try await connectClean(broker, "alias-out-0", .v5)
        try await subscribe(withoutAliases, "out/#", qos: .atMostOnce)
        let publisher = try await connectClean(broker, "alias-out-pub", .v5)
        let topics = ["out/a", "out/b", "out/c", "out/a", "out/b", "out/c", "out/d"]
        for topic in topics { try await publisher.publish(topic, topic) }

        var known: [UInt16: String] = [:]
        for (index, publish) in try await withAliases.receivePublishes(topics.count).enumerated() {
            var topic = publish.topic
            if let value = publish.properties.topicAlias {
                XCTAssertTrue((1...2).contains(value), "alias \(value) outside 1...2")
                if topic.isEmpty { topic = known[value] ?? "<unknown alias \(value)>" } else { known[value] = topic }
            }
            XCTAssertEqual(topic, topics[index], "resolved topic of message \(index)")
            XCTAssertEqual(publish.text, topics[index])
        }
        let plain = try await withoutAliases.receivePublishes(topics.count)
        XCTAssertEqual(plain.map(\.topic), topics)
        XCTAssertTrue(plain.allSatisfy { $0.properties.topicAlias == nil }, "no alias without a client Topic Alias Maximum")
    }

    // [MQTT-3.3.2-7]
    /// Alias mappings belong to one network connection, in both directions: after a reconnect (the
    /// session resumed) the client's old alias is unknown (0x94) and the broker sends the topic
    /// name again before using an alias.
    func testAliasMappingsEndWithTheConnection() async throws {
        let broker = try startBroker()
        var properties = Properties()
        properties.topicAliasMaximum = 5
        let (first, _) = try await connectPersistent(broker, "alias-conn", .v5, resume: false, properties: properties)
        try await subscribe(first, "conn/t", qos: .atMostOnce)
        try await first.publish("conn/t", "set", properties: .with(topicAlias: 1))
        let echoed = try await first.expectPublish()
        XCTAssertEqual(echoed.topic, "conn/t", "first use carries the topic")
        XCTAssertNotNil(echoed.properties.topicAlias)
        try await first.disconnect()

        let (second, present) = try await connectPersistent(broker, "alias-conn", .v5, resume: true, properties: properties)
        XCTAssertTrue(present)
        let other = try await connectClean(broker, "alias-conn-pub", .v5)
        try await other.publish("conn/t", "again")
        let again = try await second.expectPublish()
        XCTAssertEqual(again.topic, "conn/t", "the broker's alias does not survive the connection: topic sent again")
        try await second.send(bytes: rawPublish(flags: 0, topic: [], properties: [0x23, 0x00, 0x01]))
        await expectDisconnect(second, reason: .protocolError, "the client's alias 1 from the previous connection (unknown: 0x82)")
    }
}
