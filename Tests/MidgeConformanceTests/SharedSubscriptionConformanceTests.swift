import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Shared subscriptions (spec 4.8.2, MQTT 5.0): the `$share/NAME/FILTER` syntax, the member's
/// granted QoS, and what happens to a message sent to a member that goes away or refuses it.
final class SharedSubscriptionConformanceTests: XCTestCase {
    // [MQTT-4.8.2-1] [MQTT-4.8.2-2]
    func testShareNameSyntax() async throws {
        let broker = try startBroker()
        // An invalid shared filter makes the SUBSCRIBE malformed (DISCONNECT 0x81), as Mosquitto
        // treats an invalid filter.
        try await sectionCExpectFiltersRefused(broker, .v5, ["$share//a", "$share/g", "$share/g/", "$share/g+/a", "$share/g#/a", "$share/+/a",
                                                             "$share/#/a", "$share/g/a/#/b", "$share/g/a+"], "invalid shared filter")
        let (connection, _) = try await connectAccepted(broker, "share-syntax")
        let valid = ["$share/g/a", "$share/g/#", "$share/g/+/b", "$share/long-name_1/x/y"]
        let granted = try await sectionCSubscribe(connection, valid.map { ($0, SubscriptionOptions(qos: .atLeastOnce)) }, packetID: 2)
        XCTAssertEqual(granted, Array(repeating: .grantedQoS1, count: valid.count))
        // And they are shared: two members of one group get each message once between them.
        let (one, _) = try await connectAccepted(broker, "share-syntax-1")
        try await subscribe(one, "$share/pair/p/q", qos: .atLeastOnce)
        let (other, _) = try await connectAccepted(broker, "share-syntax-2")
        try await subscribe(other, "$share/pair/p/q", qos: .atLeastOnce)
        let (publisher, _) = try await connectAccepted(broker, "share-syntax-pub")
        for index in 0..<4 { try await publish(publisher, "p/q", "\(index)", qos: .atLeastOnce, packetID: UInt16(index + 1)) }
        var total = 0
        for member in [one, other] {
            while let packet = try? await member.receive(timeout: .milliseconds(300)) {
                guard case .publish(let message) = packet else { continue }
                try await member.send(.puback(PubAckPacket(packetID: message.packetID)))
                total += 1
            }
        }
        XCTAssertEqual(total, 4, "each message to one member of the group")
    }

    // [MQTT-4.8.2-3]
    func testEachMemberGetsItsGrantedQoS() async throws {
        let broker = try startBroker()
        let (low, _) = try await connectAccepted(broker, "share-qos0")
        try await subscribe(low, "$share/q/qos/t", qos: .atMostOnce)
        let (high, _) = try await connectAccepted(broker, "share-qos1")
        try await subscribe(high, "$share/q/qos/t", qos: .atLeastOnce)
        let (publisher, _) = try await connectAccepted(broker, "share-qos-pub")
        for index in 0..<6 { try await publish(publisher, "qos/t", "\(index)", qos: .exactlyOnce, packetID: UInt16(index + 1)) }
        var counts = [0, 0]
        for (index, member) in [low, high].enumerated() {
            while let packet = try? await member.receive(timeout: .milliseconds(300)) {
                guard case .publish(let message) = packet else { return XCTFail("unexpected \(packet)") }
                XCTAssertEqual(message.qos, index == 0 ? .atMostOnce : .atLeastOnce, "member \(index) at its granted QoS")
                if message.qos == .atLeastOnce { try await member.send(.puback(PubAckPacket(packetID: message.packetID))) }
                counts[index] += 1
            }
        }
        XCTAssertEqual(counts[0] + counts[1], 6)
        XCTAssertGreaterThan(counts[0], 0)
        XCTAssertGreaterThan(counts[1], 0)
    }

    /// Two members of `$share/grp/TOPIC`; `first` has a session that outlives its connection.
    /// Publishes two QoS 1 messages (one per member, round robin) and returns the one `first` got
    /// and left unacknowledged; `second` acknowledges its own.
    private func sharedPair(_ broker: TestBroker, _ name: String) async throws -> (first: PacketConnection, second: PacketConnection, owed: String)? {
        let (first, _) = try await connectAccepted(broker, "\(name)-a", sessionExpiry: 300)
        try await subscribe(first, "$share/grp/\(name)", qos: .atLeastOnce)
        let (second, _) = try await connectAccepted(broker, "\(name)-b")
        try await subscribe(second, "$share/grp/\(name)", qos: .atLeastOnce)
        let (publisher, _) = try await connectAccepted(broker, "\(name)-pub")
        try await publish(publisher, name, "m1", qos: .atLeastOnce, packetID: 1)
        try await publish(publisher, name, "m2", qos: .atLeastOnce, packetID: 2)
        guard let owed = await expectPublish(first) else { return nil }
        guard let own = await expectPublish(second) else { return nil }
        XCTAssertNotEqual(owed.text, own.text)
        try await second.send(.puback(PubAckPacket(packetID: own.packetID)))
        return (first, second, owed.text)
    }

    // [MQTT-4.8.2-4]
    func testUnacknowledgedMessageIsCompletedWhenTheMemberReconnects() async throws {
        let broker = try startBroker()
        guard let (first, second, owed) = try await sharedPair(broker, "share-back") else { return }
        await first.close()
        await expectNothing(second, for: 0.3, "the other member does not get the owed message")
        let (resumed, connack) = try await connectAccepted(broker, "share-back-a", cleanStart: false, sessionExpiry: 300)
        XCTAssertTrue(connack.sessionPresent)
        guard let again = await expectPublish(resumed) else { return }
        XCTAssertEqual(again.text, owed)
        XCTAssertTrue(again.dup)
        try await resumed.send(.puback(PubAckPacket(packetID: again.packetID)))
        await expectNothing(resumed, for: 0.2)
    }

    // [MQTT-4.8.2-5]
    func testMessageOfAnEndedSessionIsNotSentToAnotherMember() async throws {
        let broker = try startBroker()
        guard let (first, second, _) = try await sharedPair(broker, "share-gone") else { return }
        await first.close()
        // The member comes back with Clean Start: its session (and the owed message) ends.
        let (fresh, connack) = try await connectAccepted(broker, "share-gone-a", cleanStart: true)
        XCTAssertFalse(connack.sessionPresent)
        await expectNothing(fresh, for: 0.3, "the ended session's message is gone")
        await expectNothing(second, for: 0.1, "and not sent to the other member")
    }

    // [MQTT-4.8.2-6]
    func testRefusedMessageIsNotSentToAnotherMember() async throws {
        let broker = try startBroker()
        for qos in [QoS.atLeastOnce, .exactlyOnce] {
            let topic = "share-refuse-\(qos.rawValue)"
            let (first, _) = try await connectAccepted(broker, "\(topic)-a")
            try await subscribe(first, "$share/grp/\(topic)", qos: qos)
            let (second, _) = try await connectAccepted(broker, "\(topic)-b")
            try await subscribe(second, "$share/grp/\(topic)", qos: qos)
            let (publisher, _) = try await connectAccepted(broker, "\(topic)-pub")
            try await publish(publisher, topic, "m1", qos: qos, packetID: 1)
            try await publish(publisher, topic, "m2", qos: qos, packetID: 2)
            var seen: [String] = []
            for member in [first, second] {
                guard let message = await expectPublish(member) else { continue }
                seen.append(message.text)
                // Both members refuse what they got.
                let refusal = PubAckPacket(packetID: message.packetID, reasonCode: .unspecifiedError)
                try await member.send(qos == .atLeastOnce ? .puback(refusal) : .pubrec(refusal))
            }
            XCTAssertEqual(seen.sorted(), ["m1", "m2"], "QoS \(qos.rawValue): one each")
            await expectNothing(first, for: 0.3, "QoS \(qos.rawValue): refused messages are discarded, not re-sent")
            await expectNothing(second, for: 0.1, "QoS \(qos.rawValue): refused messages are discarded, not re-sent")
        }
    }
}
