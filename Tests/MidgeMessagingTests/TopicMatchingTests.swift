import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Which topics each filter receives, over real sockets (spec 4.7): `+` one whole level
/// [MQTT-4.7.1-2] [3.1.1:MQTT-4.7.1-3], `#` any number of levels including the parent
/// [MQTT-4.7.1-1] [3.1.1:MQTT-4.7.1-2],
/// case-sensitive exact levels, empty levels, and `$` topics that leading wildcards do not
/// match [MQTT-4.7.2-1] [3.1.1:MQTT-4.7.2-1] but explicit `$...` filters do.
final class TopicMatchingTests: MessagingTestCase {
    /// Expected topics per filter, written out by hand (not computed by the broker's matcher).
    private let topics = [
        "sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/golf/player1",
        "sports", "Sport/tennis", "sport//player1", "/sport", "$app/sport", "$app/sport/tennis", "$app", "sport/", "/",
    ]
    private let expectations: [(filter: String, topics: [String])] = [
        ("sport/#", ["sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/golf/player1", "sport//player1",
                     "sport/"]),
        ("sport/tennis/#", ["sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking"]),
        ("sport/+", ["sport/tennis", "sport/"]),      // an empty level is a level
        ("sport/+/player1", ["sport/tennis/player1", "sport/golf/player1", "sport//player1"]),
        ("+", ["sport", "sports"]),
        ("+/+", ["sport/tennis", "Sport/tennis", "/sport", "sport/", "/"]),
        ("/+", ["/sport", "/"]),
        ("#", ["sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/golf/player1",
               "sports", "Sport/tennis", "sport//player1", "/sport", "sport/", "/"]),
        ("+/#", ["sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/golf/player1",
                 "sports", "Sport/tennis", "sport//player1", "/sport", "sport/", "/"]),
        ("+/tennis/#", ["sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking", "Sport/tennis"]),
        ("sport/tennis/player1", ["sport/tennis/player1"]),
        ("$app/#", ["$app/sport", "$app/sport/tennis", "$app"]),
        ("$app/+", ["$app/sport"]),
        ("+/sport", ["/sport"]),   // not "$app/sport": a leading + does not match a $ level [MQTT-4.7.2-1]
        ("+/+/tennis", []),        // not "$app/sport/tennis" [MQTT-4.7.2-1]
        ("$app", ["$app"]),
    ]

    func testEachFilterReceivesExactlyTheMatchingTopics() async throws {
        for version in messagingVersions {
            var subscribers: [(filter: String, connection: PacketConnection, expected: [String])] = []
            for (index, entry) in expectations.enumerated() {
                let connection = try await connect("match-\(version)-\(index)", version)
                try await connection.subscribe([TopicSubscription(filter: entry.filter, options: SubscriptionOptions(qos: .atLeastOnce)),
                                                TopicSubscription(filter: "zz-end")])
                subscribers.append((entry.filter, connection, entry.topics))
            }
            let publisher = try await connect("match-pub-\(version)", version)
            for topic in topics { try await publisher.publish(topic, topic, qos: .atLeastOnce) }
            try await publisher.publish("zz-end", "end", qos: .atMostOnce)
            for subscriber in subscribers {
                let received = try await subscriber.connection.publishesBefore(marker: "zz-end").map(\.topic)
                XCTAssertEqual(received, subscriber.expected, "\(version): filter \(subscriber.filter)")
                await subscriber.connection.close()
            }
            await publisher.close()
        }
    }

    /// `$SYS/#` is a valid filter, and a client cannot publish into the broker's `$SYS` tree
    /// (Mosquitto denies it; v5 answers 0x87 Not authorized): the subscriber gets nothing.
    func testClientsCannotPublishIntoSYS() async throws {
        for version in messagingVersions {
            let subscriber = try await connect("sys-sub-\(version)", version)
            try await subscriber.subscribe([TopicSubscription(filter: "$SYS/#", options: SubscriptionOptions(qos: .atLeastOnce)),
                                            TopicSubscription(filter: "sys-end")])
            let publisher = try await connect("sys-pub-\(version)", version)
            let reason = try await publisher.publish("$SYS/broker/fake", "x", qos: .atLeastOnce)
            if version == .v5 { XCTAssertEqual(reason, .notAuthorized) }
            try await publisher.publish("sys-end", "end")
            let received = try await subscriber.publishesBefore(marker: "sys-end")
            XCTAssertEqual(received.map(\.topic), [], "\(version)")
            await subscriber.close(); await publisher.close()
        }
    }
}
