import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// The Topic Name of PUBLISH (spec 3.3.2.1): well-formed UTF-8, no wildcards, and what a
/// subscriber receives matches its filter.
final class PublishTopicNameConformanceTests: XCTestCase {
    // [MQTT-3.3.2-1] [3.1.1:MQTT-3.3.2-1]
    /// The Topic Name is a UTF-8 Encoded String first in the variable header: ill-formed UTF-8, a
    /// UTF-16 surrogate, U+0000 or a length running past the packet make the PUBLISH malformed
    /// (v5 DISCONNECT 0x81, 3.1.1 closed).
    func testTopicNameMustBeAWellFormedUTF8String() async throws {
        let broker = try startBroker()
        let watcher = try await connectClean(broker, "utf8-watcher", .v5)
        try await subscribe(watcher, "#", qos: .atMostOnce)
        for version in messagingVersions {
            let props: [UInt8]? = version == .v5 ? [] : nil
            let cases: [(String, [UInt8])] = [
                ("ill-formed UTF-8", rawPublish(flags: 0, topic: [0x61, 0xC3, 0x28], properties: props)),
                ("surrogate U+D800", rawPublish(flags: 0, topic: [0xED, 0xA0, 0x80], properties: props)),
                ("U+0000", rawPublish(flags: 0, topic: [0x61, 0x00, 0x62], properties: props)),
                ("topic length past the packet", rawPacket(0x30, [0x00, 0x09, 0x61])),
            ]
            for (name, bytes) in cases {
                try await expectRejectedAfterConnect(broker, version, bytes, v5Reason: .malformedPacket, "PUBLISH topic \(name)")
            }
        }
        await expectNothing(watcher, for: 0.3, "nothing malformed is routed")
        try await assertBrokerServes(broker, "after malformed topic names")
    }

    // [MQTT-3.3.2-2] [3.1.1:MQTT-3.3.2-2]
    /// A Topic Name with a wildcard is refused: v5 DISCONNECT 0x82 Protocol Error (Mosquitto's code; 0x90 is a SHOULD), 3.1.1
    /// closed; the message is not routed.
    func testWildcardInTopicNameIsRefused() async throws {
        let broker = try startBroker()
        let watcher = try await connectClean(broker, "wild-watcher", .v5)
        try await subscribe(watcher, "#", qos: .atMostOnce)
        for version in messagingVersions {
            for (topic, flags, id) in [("a/#", UInt8(0), UInt16?.none), ("a/+/b", 0x02, 1), ("#", 0x04, 2), ("+", 0, nil)] {
                try await expectRejectedAfterConnect(broker, version, rawPublish(version, flags: flags, topic: topic, packetID: id),
                                                     v5Reason: .protocolError, "PUBLISH to '\(topic)'")
            }
        }
        await expectNothing(watcher, for: 0.3, "a wildcard topic is never routed")
        try await assertBrokerServes(broker, "after wildcard topic names")
    }

    // [MQTT-3.3.2-3] [3.1.1:MQTT-3.3.2-3] [MQTT-4.5.0-1] [3.1.1:MQTT-4.5.0-1]
    /// A subscriber gets exactly the messages whose Topic Name matches one of its filters, each
    /// carrying the Topic Name as published (not the filter).
    func testDeliveredTopicNameMatchesTheSubscription() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let prefix = "tm\(version == .v5 ? 5 : 3)"
            let subscriber = try await connectClean(broker, "tm-sub-\(version)", version)
            try await subscribe(subscriber, "\(prefix)/+/c", qos: .atLeastOnce, packetID: 1)
            try await subscribe(subscriber, "\(prefix)/x/#", qos: .atLeastOnce, packetID: 2)
            try await subscribe(subscriber, "\(prefix)/end", qos: .atLeastOnce, packetID: 3)
            let publisher = try await connectClean(broker, "tm-pub-\(version)", version)
            let topics = ["\(prefix)/b/c", "\(prefix)/b/d", "\(prefix)/x", "\(prefix)/x/y/z", "\(prefix)/b/c/d", "\(prefix)//c", "\(prefix)/B/c", "other/b/c"]
            for (index, topic) in topics.enumerated() {
                try await publish(publisher, topic, topic, qos: .atLeastOnce, packetID: UInt16(index + 1))
            }
            try await publish(publisher, "\(prefix)/end", "end", qos: .atLeastOnce, packetID: 99)
            let received = try await subscriber.publishesBefore(marker: "\(prefix)/end")
            XCTAssertEqual(received.map(\.topic), ["\(prefix)/b/c", "\(prefix)/x", "\(prefix)/x/y/z", "\(prefix)//c", "\(prefix)/B/c"],
                           "\(version): exactly the matching topics, as published")
            XCTAssertEqual(received.map(\.text), received.map(\.topic), "\(version): each message under its own topic")
            await subscriber.close()
            await publisher.close()
        }
    }
}
