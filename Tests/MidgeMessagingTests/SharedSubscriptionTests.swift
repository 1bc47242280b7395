import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Shared subscriptions `$share/GROUP/FILTER` (spec 4.8.2), for 5.0 and 3.1.1 clients: each
/// message goes to exactly one member of each group (round-robin here, so every member gets
/// some); different groups each get every message; when a member leaves, the others get all.
final class SharedSubscriptionTests: MessagingTestCase {
    private let count = 20

    /// Members subscribe to the shared filter and to a plain `end` marker topic; returns what each
    /// member received before the marker.
    private func distribute(members: [PacketConnection], publisher: PacketConnection, topic: String, marker: String,
                            range: Range<Int>) async throws -> [[String]] {
        for index in range { try await publisher.publish(topic, "\(index)", qos: .atLeastOnce, packetID: UInt16(index % 60000 + 1)) }
        try await publisher.publish(marker, "end")
        var result: [[String]] = []
        for member in members { result.append(try await member.publishesBefore(marker: marker).map(\.text)) }
        return result
    }

    private func member(_ id: String, _ version: ProtocolVersion, filter: String, marker: String) async throws -> PacketConnection {
        let connection = try await connect(id, version)
        let suback = try await connection.subscribe([TopicSubscription(filter: filter, options: SubscriptionOptions(qos: .atLeastOnce)),
                                                     TopicSubscription(filter: marker)])
        XCTAssertEqual(suback.reasonCodes, [.grantedQoS1, .grantedQoS0])
        return connection
    }

    func testEachMessageGoesToExactlyOneMemberRoundRobin() async throws {
        // v5 only, 3.1.1 only, and a group mixing both.
        let layouts: [[ProtocolVersion]] = [[.v5, .v5], [.v3_1_1, .v3_1_1], [.v3_1_1, .v5, .v5]]
        for (layoutIndex, layout) in layouts.enumerated() {
            let topic = "sh\(layoutIndex)/t", marker = "sh\(layoutIndex)/end"
            var members: [PacketConnection] = []
            for (index, version) in layout.enumerated() {
                members.append(try await member("sh\(layoutIndex)-m\(index)", version, filter: "$share/group/sh\(layoutIndex)/+", marker: marker))
            }
            let publisher = try await connect("sh\(layoutIndex)-pub", .v5)
            let received = try await distribute(members: members, publisher: publisher, topic: topic, marker: marker, range: 0..<count)
            let all = received.flatMap { $0 }
            XCTAssertEqual(all.count, count, "layout \(layout): each message exactly once in the group, got \(received)")
            XCTAssertEqual(Set(all), Set((0..<count).map { "\($0)" }), "layout \(layout)")
            for (index, share) in received.enumerated() {
                XCTAssertFalse(share.isEmpty, "layout \(layout): member \(index) got nothing")
                // Per member, in publication order.
                XCTAssertEqual(share, share.sorted { Int($0)! < Int($1)! }, "layout \(layout): member \(index) out of order")
            }
            for member in members { await member.close() }
            await publisher.close()
        }
    }

    /// Two groups on the same filter each receive every message; a plain subscriber too.
    func testEveryGroupGetsEveryMessage() async throws {
        for version in messagingVersions {
            let marker = "grp/\(version)/end"
            let a1 = try await member("grp-a1-\(version)", version, filter: "$share/a/grp/\(version)/t", marker: marker)
            let a2 = try await member("grp-a2-\(version)", version, filter: "$share/a/grp/\(version)/t", marker: marker)
            let b1 = try await member("grp-b1-\(version)", version, filter: "$share/b/grp/\(version)/t", marker: marker)
            let b2 = try await member("grp-b2-\(version)", version, filter: "$share/b/grp/\(version)/#", marker: marker)
            let plain = try await member("grp-plain-\(version)", version, filter: "grp/\(version)/t", marker: marker)
            let publisher = try await connect("grp-pub-\(version)", version)
            let received = try await distribute(members: [a1, a2, b1, b2, plain], publisher: publisher, topic: "grp/\(version)/t",
                                                marker: marker, range: 0..<count)
            let expected = (0..<count).map { "\($0)" }
            XCTAssertEqual((received[0] + received[1]).sorted(), expected.sorted(), "\(version): group a")
            // Group b: b1 and b2 use different filters, so they are different shared subscriptions
            // (a group is ShareName + filter): each gets everything.
            XCTAssertEqual(received[2], expected, "\(version): $share/b/…/t")
            XCTAssertEqual(received[3], expected, "\(version): $share/b/…/#")
            XCTAssertEqual(received[4], expected, "\(version): plain subscriber")
            for connection in [a1, a2, b1, b2, plain, publisher] { await connection.close() }
        }
    }

    /// When a member unsubscribes or disconnects (clean session), the remaining members get
    /// every message.
    func testRemainingMemberGetsEverythingAfterOthersLeave() async throws {
        for version in messagingVersions {
            let marker = "leave/\(version)/end", filter = "$share/g/leave/\(version)"
            let m1 = try await member("leave-1-\(version)", version, filter: filter, marker: marker)
            let m2 = try await member("leave-2-\(version)", version, filter: filter, marker: marker)
            let m3 = try await member("leave-3-\(version)", version, filter: filter, marker: marker)
            let publisher = try await connect("leave-pub-\(version)", version)
            let before = try await distribute(members: [m1, m2, m3], publisher: publisher, topic: "leave/\(version)", marker: marker,
                                              range: 0..<count)
            XCTAssertEqual(before.flatMap { $0 }.count, count, "\(version)")

            let unsuback = try await m2.unsubscribe([filter])
            if version == .v5 { XCTAssertEqual(unsuback.reasonCodes, [.success]) }
            try await m3.disconnect()
            let after = try await distribute(members: [m1, m2], publisher: publisher, topic: "leave/\(version)", marker: marker,
                                             range: count..<(2 * count))
            XCTAssertEqual(after[0], (count..<(2 * count)).map { "\($0)" }, "\(version): remaining member")
            XCTAssertEqual(after[1], [], "\(version): unsubscribed member")
            for connection in [m1, m2, publisher] { await connection.close() }
        }
    }

    /// A member whose persistent session is offline keeps its subscription but, while another
    /// member is connected, the group's messages go to the connected one (Midge's choice, see
    /// SubscriptionTree.SharedGroup.pick; the spec leaves the choice to the server, 4.8.2), so
    /// nothing piles up for the offline member.
    func testConnectedMemberIsPreferredOverAnOfflineOne() async throws {
        for version in messagingVersions {
            let filter = "$share/g/pref/\(version)", marker = "pref/\(version)/end"
            let (offline, _) = try await connectPersistent("pref-off-\(version)", version, resume: false)
            try await offline.subscribe([TopicSubscription(filter: filter, options: SubscriptionOptions(qos: .atLeastOnce)),
                                         TopicSubscription(filter: marker)])
            try await offline.disconnect()
            let online = try await member("pref-on-\(version)", version, filter: filter, marker: marker)
            let publisher = try await connect("pref-pub-\(version)", version)
            let received = try await distribute(members: [online], publisher: publisher, topic: "pref/\(version)", marker: marker,
                                                range: 0..<10)
            XCTAssertEqual(received[0], (0..<10).map { "\($0)" }, "\(version)")
            let (back, present) = try await connectPersistent("pref-off-\(version)", version, resume: true)
            XCTAssertTrue(present)
            try await publisher.publish(marker, "end")
            let queued = try await back.publishesBefore(marker: marker)
            XCTAssertEqual(queued.map(\.text), [], "\(version): group messages were queued for the offline member")
            _ = try await online.publishesBefore(marker: marker)
            await back.close(); await online.close(); await publisher.close()
        }
    }

    /// A shared subscription is granted the QoS asked for and messages are downgraded to it.
    func testSharedSubscriptionDowngradesToGrantedQoS() async throws {
        for version in messagingVersions {
            let client = try await connect("shq-\(version)", version)
            try await client.subscribe("$share/q/shq/\(version)", qos: .atMostOnce)
            let publisher = try await connect("shq-pub-\(version)", version)
            try await publisher.publish("shq/\(version)", "x", qos: .exactlyOnce)
            let delivered = try await client.expectPublish()
            XCTAssertEqual(delivered.qos, .atMostOnce, "\(version)")
            XCTAssertEqual(delivered.topic, "shq/\(version)", "\(version): the topic, not the share filter")
            await client.close(); await publisher.close()
        }
    }
}
