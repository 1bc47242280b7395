import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Topic names and topic filters (spec 4.7, MQTT 5.0 and 3.1.1): wildcards only in filters and only
/// as whole levels (`#` last), `$` topics not matched by a leading wildcard, no empty topics, no
/// U+0000, names up to 65,535 bytes, and matching byte for byte with no normalisation.
final class TopicConformanceTests: XCTestCase {
    /// Subscribes `filters` on a fresh connection, publishes `topics` (QoS 0) from another, and
    /// returns, per filter, the topics that connection received (each filter on its own connection).
    private func routes(_ broker: TestBroker, _ version: ProtocolVersion, filters: [String], topics: [String],
                        file: StaticString = #filePath, line: UInt = #line) async throws -> [String: [String]] {
        let marker = "route-end-\(UUID().uuidString.prefix(6))"
        var subscribers: [(String, PacketConnection)] = []
        for (index, filter) in filters.enumerated() {
            let (connection, _) = try await connectAccepted(broker, "route-\(version)-\(index)-\(marker)", version: version, file: file, line: line)
            let codes = try await sectionCSubscribe(connection, [(filter, SubscriptionOptions()), (marker, SubscriptionOptions())], file: file, line: line)
            XCTAssertEqual(codes, [.grantedQoS0, .grantedQoS0], "subscribe \(filter)", file: file, line: line)
            subscribers.append((filter, connection))
        }
        let (publisher, _) = try await connectAccepted(broker, "route-pub-\(version)-\(marker)", version: version, file: file, line: line)
        for topic in topics { try await publish(publisher, topic, topic, file: file, line: line) }
        try await publish(publisher, marker, "end", file: file, line: line)
        var result: [String: [String]] = [:]
        for (filter, connection) in subscribers {
            result[filter] = await sectionCPublishesBefore(connection, marker: marker, file: file, line: line).map(\.topic)
            await connection.close()
        }
        await publisher.close()
        return result
    }

    // [MQTT-4.7.0-1] [3.1.1:MQTT-4.7.1-1] [3.1.1:MQTT-3.8.3-2]
    func testWildcardsAreForFiltersNotTopicNames() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            for topic in ["a/+", "+", "#", "a/#", "a/+/b", "sport+"] {
                let (connection, _) = try await connectAccepted(broker, "wild-name-\(version)-\(topic)", version: version)
                try await connection.send(bytes: rawPublish(version, topic: Array(topic.utf8)))
                await expectViolationClose(connection, version, v5Reason: .protocolError, "PUBLISH to \(topic) \(version)")
            }
            // In filters, both wildcards are supported.
            let routed = try await routes(broker, version, filters: ["wild/+/x", "wild/#"], topics: ["wild/a/x", "wild/b"])
            XCTAssertEqual(routed["wild/+/x"], ["wild/a/x"], "\(version)")
            XCTAssertEqual(routed["wild/#"], ["wild/a/x", "wild/b"], "\(version)")
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-4.7.1-1] [3.1.1:MQTT-4.7.1-2]
    func testMultiLevelWildcardRules() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            // A misplaced # makes the SUBSCRIBE malformed (closed; v5 DISCONNECT 0x81), as Mosquitto.
            try await sectionCExpectFiltersRefused(broker, version, ["sport/tennis#", "sport/tennis/#/ranking", "#/", "##", "a/#/", "#a"],
                                                   "misplaced #")
            let routed = try await routes(broker, version, filters: ["sport/tennis/player1/#", "sport/#", "#", "/#"], topics: [
                "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player1/score/wimbledon", "sport", "sports", "/x",
            ])
            XCTAssertEqual(routed["sport/tennis/player1/#"], ["sport/tennis/player1", "sport/tennis/player1/ranking",
                                                            "sport/tennis/player1/score/wimbledon"], "\(version)")
            XCTAssertEqual(routed["sport/#"], ["sport/tennis/player1", "sport/tennis/player1/ranking",
                                             "sport/tennis/player1/score/wimbledon", "sport"], "\(version): the parent level too")
            XCTAssertEqual(routed["#"]?.count, 6, "\(version): # matches every topic")
            XCTAssertEqual(routed["/#"], ["/x"], "\(version)")
        }
    }

    // [MQTT-4.7.1-2] [3.1.1:MQTT-4.7.1-3]
    func testSingleLevelWildcardRules() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            // A + that is not a whole level makes the SUBSCRIBE malformed, as Mosquitto.
            try await sectionCExpectFiltersRefused(broker, version, ["sport+", "+sport", "sport/+tennis", "sport/ten+nis/x", "++", "+#"],
                                                   "+ not a whole level")
            let routed = try await routes(broker, version, filters: ["sport/tennis/+", "sport/+", "+", "+/+", "/+", "+/tennis/#"], topics: [
                "sport/tennis/player1", "sport/tennis/player1/ranking", "sport", "sport/", "/finance", "sport/tennis",
            ])
            XCTAssertEqual(routed["sport/tennis/+"], ["sport/tennis/player1"], "\(version): one level only")
            XCTAssertEqual(routed["sport/+"], ["sport/", "sport/tennis"], "\(version): not the parent, but an empty level")
            XCTAssertEqual(routed["+"], ["sport"], "\(version)")
            XCTAssertEqual(routed["+/+"], ["sport/", "/finance", "sport/tennis"], "\(version)")
            XCTAssertEqual(routed["/+"], ["/finance"], "\(version)")
            XCTAssertEqual(routed["+/tennis/#"], ["sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis"], "\(version)")
        }
    }

    // [MQTT-4.7.2-1] [3.1.1:MQTT-4.7.2-1]
    func testDollarTopicsAreNotMatchedByLeadingWildcards() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let routed = try await routes(broker, version, filters: ["#", "+/info", "+/+", "+", "$app/#", "$app/+", "$app/info", "+/app/info"],
                                          topics: ["$app/info", "app/info", "$app", "x/$app/info"])
            XCTAssertEqual(routed["#"], ["app/info", "x/$app/info"], "\(version)")
            XCTAssertEqual(routed["+/info"], ["app/info"], "\(version)")
            XCTAssertEqual(routed["+/+"], ["app/info"], "\(version)")
            XCTAssertEqual(routed["+"], [], "\(version)")
            XCTAssertEqual(routed["$app/#"], ["$app/info", "$app"], "\(version): explicit $ filters do match")
            XCTAssertEqual(routed["$app/+"], ["$app/info"], "\(version)")
            XCTAssertEqual(routed["$app/info"], ["$app/info"], "\(version)")
            XCTAssertEqual(routed["+/app/info"], [], "\(version)")
        }
    }

    // [MQTT-4.7.3-1] [3.1.1:MQTT-4.7.3-1]
    func testTopicsAndFiltersMustNotBeEmpty() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            // An empty filter makes the SUBSCRIBE malformed, as Mosquitto (13-malformed-subscribe-v5).
            try await sectionCExpectFiltersRefused(broker, version, [""], "empty filter")
            // An empty topic name (v5: without a Topic Alias) ends the connection.
            let (publisher, _) = try await connectAccepted(broker, "empty-name-\(version)", version: version)
            try await publisher.send(bytes: rawPublish(version, topic: []))
            await expectViolationClose(publisher, version, v5Reason: .protocolError, "empty topic name \(version)")
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-4.7.3-2] [3.1.1:MQTT-4.7.3-2]
    func testNullCharacterIsRefusedInTopicsAndFilters() async throws {
        let broker = try startBroker()
        let withNull: [UInt8] = [0x61, 0x2F, 0x00, 0x62]   // "a/\0b"
        for version in messagingVersions {
            let packets: [(String, [UInt8])] = [
                ("SUBSCRIBE", sectionCRawSubscribe(version, [(withNull, 0)])),
                ("UNSUBSCRIBE", sectionCRawUnsubscribe(version, [withNull])),
                ("PUBLISH", rawPublish(version, topic: withNull)),
                ("PUBLISH only NUL", rawPublish(version, topic: [0x00])),
            ]
            for (name, bytes) in packets {
                let (connection, _) = try await connectAccepted(broker, "nul-\(version)-\(name)", version: version)
                try await connection.send(bytes: bytes)
                await expectViolationClose(connection, version, v5Reason: .malformedPacket, "\(name) with U+0000 \(version)")
            }
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-4.7.3-3] [3.1.1:MQTT-4.7.3-3]
    func testTopicOf65535BytesIsRouted() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            // 65,535 bytes, the most a UTF-8 Encoded String can hold: levels of "a…a/" ending in "é" (2 bytes),
            // 200 separators (Mosquitto's limit, below).
            let levels = String(repeating: String(repeating: "a", count: 325) + "/", count: 200)  // 65,200 bytes
            let topic = levels + String(repeating: "b", count: 333) + "\u{E9}"                  // + 335 = 65,535
            XCTAssertEqual(topic.utf8.count, 65_535)
            let filter = levels + "+"
            let (subscriber, _) = try await connectAccepted(broker, "long-sub-\(version)", version: version)
            let codes = try await sectionCSubscribe(subscriber, [(topic, SubscriptionOptions(qos: .atLeastOnce)),
                                                                 (filter, SubscriptionOptions(qos: .atLeastOnce))])
            XCTAssertEqual(codes, [.grantedQoS1, .grantedQoS1], "\(version)")
            let (publisher, _) = try await connectAccepted(broker, "long-pub-\(version)", version: version)
            try await publish(publisher, topic, "long", qos: .atLeastOnce, packetID: 3)
            guard let message = await expectPublish(subscriber) else { continue }
            XCTAssertEqual(message.topic, topic, "\(version): delivered once under the full name")
            try await acknowledge(message, on: subscriber)
            await expectNothing(subscriber, for: 0.2, "\(version): one copy for both matching filters")
        }
    }

    /// Mosquitto's limit, which Midge shares: at most 200 "/" separators in a topic name or filter.
    /// A PUBLISH beyond it is a Protocol Error (v5 DISCONNECT 0x82), a SUBSCRIBE a Malformed Packet
    /// (0x81); 3.1.1 connections are closed (02-subpub-qos0-long-topic, 03-publish-long-topic).
    func testTopicsWithMoreThan200SeparatorsAreRefused() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let routed = try await routes(broker, version, filters: [String(repeating: "/", count: 200)], topics: [String(repeating: "/", count: 200)])
            XCTAssertEqual(routed.values.first?.count, 1, "\(version): 200 separators are fine")
            for topic in [String(repeating: "/", count: 201), String(repeating: "abc/", count: 201) + "d"] {
                let (publisher, _) = try await connectAccepted(broker, "levels-pub-\(version)-\(topic.count)", version: version)
                try await publisher.send(bytes: rawPublish(version, topic: Array(topic.utf8)))
                await expectViolationClose(publisher, version, v5Reason: .protocolError, "PUBLISH, \(topic.count) bytes, \(version)")
            }
            try await sectionCExpectFiltersRefused(broker, version, [String(repeating: "/", count: 201), String(repeating: "a/", count: 201) + "#"],
                                                   "201 separators")
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-4.7.3-4] [3.1.1:MQTT-4.7.3-4]
    func testMatchingDoesNotNormaliseTopics() async throws {
        let broker = try startBroker()
        let nfc = "caf\u{E9}", nfd = "cafe\u{301}"                  // the same text, different bytes
        let ligature = "\u{FB01}le", plain = "file"                  // compatibility-equivalent
        let bom = "\u{FEFF}bom"
        for version in messagingVersions {
            let filters = ["Case/Topic", nfc, ligature, "a/b", "sp ace", bom]
            let topics = ["case/topic", "CASE/TOPIC", "Case/Topic", nfd, nfc, plain, ligature, "a//b", "a/b/", "/a/b", "a/b",
                          " sp ace", "sp  ace", "sp ace ", "sp ace", "bom", bom]
            let routed = try await routes(broker, version, filters: filters, topics: topics)
            XCTAssertEqual(routed["Case/Topic"], ["Case/Topic"], "\(version): case matters")
            XCTAssertEqual(routed[nfc]?.map { Array($0.utf8) }, [Array(nfc.utf8)], "\(version): NFC and NFD are different topics")
            XCTAssertEqual(routed[ligature]?.map { Array($0.utf8) }, [Array(ligature.utf8)], "\(version): no compatibility folding")
            XCTAssertEqual(routed["a/b"], ["a/b"], "\(version): separators are significant")
            XCTAssertEqual(routed["sp ace"], ["sp ace"], "\(version): spaces are significant")
            XCTAssertEqual(routed[bom]?.map { Array($0.utf8) }, [Array(bom.utf8)], "\(version): U+FEFF is kept")
            // A "/" followed by a combining mark is one Swift Character but still separates levels.
            let combining = "lvl/\u{301}x"
            let split = try await routes(broker, version, filters: ["lvl/+", "lvl/#", "+/+"], topics: [combining])
            for filter in ["lvl/+", "lvl/#", "+/+"] {
                XCTAssertEqual(split[filter]?.map { Array($0.utf8) }, [Array(combining.utf8)], "\(version): \(filter)")
            }
        }
    }

    // Retained messages are stored per exact topic bytes. [MQTT-4.7.3-4] [3.1.1:MQTT-4.7.3-4]
    func testRetainedMessagesAreKeptPerExactTopic() async throws {
        let broker = try startBroker()
        let nfc = "ret/caf\u{E9}", nfd = "ret/cafe\u{301}"
        for version in messagingVersions {
            let (publisher, _) = try await connectAccepted(broker, "ret-norm-pub-\(version)", version: version)
            try await publish(publisher, nfc, "nfc", qos: .atLeastOnce, retain: true, packetID: 1)
            try await publish(publisher, nfd, "nfd", qos: .atLeastOnce, retain: true, packetID: 2)
            let (subscriber, _) = try await connectAccepted(broker, "ret-norm-sub-\(version)", version: version)
            try await subscribe(subscriber, nfc, qos: .atMostOnce)
            let exact = await expectPublish(subscriber)
            XCTAssertEqual(exact?.text, "nfc", "\(version): the NFD message did not replace the NFC one")
            XCTAssertEqual(exact.map { Array($0.topic.utf8) }, Array(nfc.utf8))
            await expectNothing(subscriber, for: 0.2)
            try await subscribe(subscriber, "ret/+", qos: .atMostOnce, packetID: 2)
            var both: [String] = []
            for _ in 0..<2 { if let message = await expectPublish(subscriber) { both.append(message.text) } }
            XCTAssertEqual(both.sorted(), ["nfc", "nfd"], "\(version): two retained messages")
            // Clear both for the next version.
            try await publish(publisher, nfc, "", qos: .atLeastOnce, retain: true, packetID: 3)
            try await publish(publisher, nfd, "", qos: .atLeastOnce, retain: true, packetID: 4)
            await subscriber.close()
        }
    }
}
