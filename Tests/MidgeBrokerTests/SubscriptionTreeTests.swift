@testable import MidgeBroker
import MQTTCodec
import XCTest

/// The topic trie, without sockets: matching agrees with the spec's rules (4.7) as written in
/// `Topic.matches`, shared groups rotate, unsubscribe prunes.
final class SubscriptionTreeTests: XCTestCase {
    private func session(_ id: String) -> Session { Session(clientID: id, loopIndex: 0) }

    private func matches(_ tree: SubscriptionTree, _ topic: String) -> [String] {
        var filters: [String] = []
        tree.forEachMatch(topic: topic, { filters.append($0.filter) }, shared: { _ in })
        return filters.sorted()
    }

    func testSpecExamples() {
        let tree = SubscriptionTree()
        let s = session("a")
        for filter in ["sport/tennis/player1/#", "sport/#", "#", "+/+", "/+", "+", "sport/+/player1", "$SYS/#", "+/monitor/Clients"] {
            tree.subscribe(Subscription(session: session(filter), filter: filter, options: .init(), identifier: nil))
        }
        _ = s
        // "sport/tennis/player1/#" matches the parent level too (spec 4.7.1.2).
        XCTAssertEqual(matches(tree, "sport/tennis/player1"), ["#", "sport/#", "sport/+/player1", "sport/tennis/player1/#"])
        XCTAssertEqual(matches(tree, "sport"), ["#", "+", "sport/#"])
        XCTAssertEqual(matches(tree, "/finance"), ["#", "+/+", "/+"])
        // $-topics are not matched by a leading wildcard [MQTT-4.7.2-1].
        XCTAssertEqual(matches(tree, "$SYS/monitor/Clients"), ["$SYS/#"])
        XCTAssertEqual(matches(tree, "$SYS"), ["$SYS/#"])
    }

    /// Levels are separated by the code point U+002F itself [MQTT-4.7.1-1], even where a
    /// combining mark follows it and Swift's Character view would see one grapheme "/\u{301}".
    func testLevelsSplitAtEverySlashByte() {
        XCTAssertEqual(Topic.levels("a//b/"), ["a", "", "b", ""])
        XCTAssertEqual(Topic.levels("/"), ["", ""])
        XCTAssertEqual(Topic.levels(""), [""])
        XCTAssertEqual(Topic.levels("caf\u{E9}/\u{301}x").map { Array($0.utf8) },
                       [Array("caf\u{E9}".utf8), Array("\u{301}x".utf8)])
        let tree = SubscriptionTree()
        tree.subscribe(Subscription(session: session("s"), filter: "a/+", options: .init(), identifier: nil))
        XCTAssertEqual(matches(tree, "a/\u{301}"), ["a/+"])
        XCTAssertEqual(matches(tree, "a/\u{301}/c"), [])
        // Retained messages and ACLs match with the same levels as live routing.
        XCTAssertTrue(Topic.matches(name: "a/\u{301}", filter: "a/+"))
    }

    /// Random filters and topics: the trie finds exactly the filters `Topic.matches` accepts.
    func testTrieAgreesWithBruteForceMatching() {
        var generator = SystemRandomNumberGenerator()
        let words = ["a", "b", "c", "", "$SYS", "$x"]
        func level(_ wildcards: Bool) -> String {
            if wildcards {
                switch Int.random(in: 0..<6, using: &generator) {
                case 0: return "+"
                default: break
                }
            }
            return words.randomElement(using: &generator)!
        }
        for _ in 0..<50 {
            let tree = SubscriptionTree()
            var filters = Set<String>()
            for _ in 0..<30 {
                var levels = (0..<Int.random(in: 1...4, using: &generator)).map { _ in level(true) }
                if Bool.random(using: &generator) { levels.append("#") }
                let filter = levels.joined(separator: "/")
                guard Topic.isValidFilter(filter), !filters.contains(filter) else { continue }
                filters.insert(filter)
                tree.subscribe(Subscription(session: session(filter), filter: filter, options: .init(), identifier: nil))
            }
            for _ in 0..<40 {
                let topic = (0..<Int.random(in: 1...5, using: &generator)).map { _ in level(false) }.joined(separator: "/")
                let expected = filters.filter { Topic.matches(name: topic, filter: $0) }.sorted()
                XCTAssertEqual(matches(tree, topic), expected, "topic \(topic)")
            }
        }
    }

    func testResubscribeReplacesAndUnsubscribePrunes() {
        let tree = SubscriptionTree()
        let s = session("c")
        XCTAssertFalse(tree.subscribe(Subscription(session: s, filter: "a/+/c", options: .init(qos: .atMostOnce), identifier: nil)))
        // Same session, same filter: replaced, not added [MQTT-3.8.4-3].
        XCTAssertTrue(tree.subscribe(Subscription(session: s, filter: "a/+/c", options: .init(qos: .exactlyOnce), identifier: 4)))
        XCTAssertEqual(tree.count, 1)
        var seen: [Subscription] = []
        tree.forEachMatch(topic: "a/b/c", { seen.append($0) }, shared: { _ in })
        XCTAssertEqual(seen.count, 1)
        XCTAssertEqual(seen.first?.options.qos, .exactlyOnce)
        XCTAssertEqual(seen.first?.identifier, 4)
        XCTAssertTrue(tree.unsubscribe(session: s, filter: "a/+/c"))
        XCTAssertFalse(tree.unsubscribe(session: s, filter: "a/+/c"))
        XCTAssertEqual(tree.count, 0)
        XCTAssertEqual(matches(tree, "a/b/c"), [])
    }

    func testSharedGroupDeliversToOneMemberRoundRobin() {
        let tree = SubscriptionTree()
        let members = (0..<3).map { session("m\($0)") }
        for member in members {
            member.setOnline(true)
            tree.subscribe(Subscription(session: member, filter: "$share/g/t/#", options: .init(), identifier: nil))
        }
        var counts: [String: Int] = [:]
        for _ in 0..<30 {
            var picked: [Subscription] = []
            let sources = tree.forEachMatch(topic: "t/x", { _ in XCTFail("shared members are not plain matches") },
                                            shared: { group in if let member = group.pick() { picked.append(member) } })
            XCTAssertEqual(sources, 1)
            XCTAssertEqual(picked.count, 1)
            counts[picked[0].session.clientID, default: 0] += 1
        }
        XCTAssertEqual(counts, ["m0": 10, "m1": 10, "m2": 10])
        // An offline member is skipped while others are online.
        members[1].setOnline(false)
        for _ in 0..<10 {
            tree.forEachMatch(topic: "t/x", { _ in }, shared: { group in XCTAssertNotEqual(group.pick()?.session.clientID, "m1") })
        }
        XCTAssertTrue(tree.unsubscribe(session: members[0], filter: "$share/g/t/#"))
        XCTAssertEqual(tree.count, 2)
    }
}
