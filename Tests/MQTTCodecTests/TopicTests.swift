import XCTest
@testable import MQTTCodec

/// Topic names, topic filters, matching and shared subscriptions (spec 4.7, 4.8.2).
final class TopicTests: XCTestCase {

    // MARK: Matching (examples of spec 4.7.1 and 4.7.2)

    func testMultiLevelWildcard() {
        // 4.7.1.2: "sport/tennis/player1/#" matches the parent level too.
        let filter = "sport/tennis/player1/#"
        XCTAssertTrue(Topic.matches(name: "sport/tennis/player1", filter: filter))
        XCTAssertTrue(Topic.matches(name: "sport/tennis/player1/ranking", filter: filter))
        XCTAssertTrue(Topic.matches(name: "sport/tennis/player1/score/wimbledon", filter: filter))
        XCTAssertFalse(Topic.matches(name: "sport/tennis/player2", filter: filter))
        XCTAssertFalse(Topic.matches(name: "sport/tennis", filter: filter))
        // "sport/#" also matches the singular "sport", since # includes the parent level.
        XCTAssertTrue(Topic.matches(name: "sport", filter: "sport/#"))
        XCTAssertTrue(Topic.matches(name: "sport/", filter: "sport/#"))
        XCTAssertFalse(Topic.matches(name: "sports", filter: "sport/#"))
        // "#" alone matches everything not starting with $.
        for name in ["a", "/", "a/b/c", "/finance", "sport/tennis/player1"] {
            XCTAssertTrue(Topic.matches(name: name, filter: "#"), name)
        }
    }

    func testSingleLevelWildcard() {
        // 4.7.1.3 examples.
        XCTAssertTrue(Topic.matches(name: "sport/tennis/player1", filter: "sport/tennis/+"))
        XCTAssertTrue(Topic.matches(name: "sport/tennis/player2", filter: "sport/tennis/+"))
        XCTAssertFalse(Topic.matches(name: "sport/tennis/player1/ranking", filter: "sport/tennis/+"))
        XCTAssertFalse(Topic.matches(name: "sport", filter: "sport/+"))
        XCTAssertTrue(Topic.matches(name: "sport/", filter: "sport/+"))
        XCTAssertTrue(Topic.matches(name: "/finance", filter: "+/+"))
        XCTAssertTrue(Topic.matches(name: "/finance", filter: "/+"))
        XCTAssertFalse(Topic.matches(name: "/finance", filter: "+"))
        XCTAssertTrue(Topic.matches(name: "finance", filter: "+"))
        XCTAssertTrue(Topic.matches(name: "sport/tennis/player1/ranking", filter: "+/tennis/#"))
        XCTAssertTrue(Topic.matches(name: "sport/tennis", filter: "+/tennis/#"))
        XCTAssertTrue(Topic.matches(name: "a//c", filter: "a/+/c"))
        XCTAssertFalse(Topic.matches(name: "a/b/c/d", filter: "a/+/c"))
    }

    func testExactMatchingIsLevelByLevelAndCaseSensitive() {
        XCTAssertTrue(Topic.matches(name: "a/b", filter: "a/b"))
        XCTAssertFalse(Topic.matches(name: "a/b", filter: "a/b/c"))
        XCTAssertFalse(Topic.matches(name: "a/b/c", filter: "a/b"))
        XCTAssertFalse(Topic.matches(name: "ACCOUNTS", filter: "accounts"))
        XCTAssertFalse(Topic.matches(name: "a/b/", filter: "a/b"))
        XCTAssertFalse(Topic.matches(name: "/a", filter: "a"))
        XCTAssertTrue(Topic.matches(name: "/", filter: "/"))
        XCTAssertTrue(Topic.matches(name: " a", filter: " a"))
    }

    func testDollarTopicsAndWildcards() {
        // [MQTT-4.7.2-1]: a filter starting with a wildcard does not match a topic name starting with $.
        XCTAssertFalse(Topic.matches(name: "$SYS/x", filter: "#"))
        XCTAssertFalse(Topic.matches(name: "$SYS/monitor/Clients", filter: "+/monitor/Clients"))
        XCTAssertFalse(Topic.matches(name: "$SYS", filter: "+"))
        XCTAssertTrue(Topic.matches(name: "$SYS/x", filter: "$SYS/#"))
        XCTAssertTrue(Topic.matches(name: "$SYS/monitor/Clients", filter: "$SYS/monitor/+"))
        XCTAssertTrue(Topic.matches(name: "$SYS", filter: "$SYS/#"))
        XCTAssertTrue(Topic.matches(name: "$SYS/x", filter: "$SYS/x"))
        // $ only matters as the first character.
        XCTAssertTrue(Topic.matches(name: "a/$SYS", filter: "+/+"))
        XCTAssertTrue(Topic.matches(name: "a/$b", filter: "a/#"))
    }

    // MARK: Validity

    func testValidFilters() {
        for filter in ["+", "#", "/", "+/tennis/#", "sport/tennis/player1/#", "sport/+/player1", "+/+", "/+", "sport/#", "//", "a//#",
                       "$SYS/#", "a/b/c", "sport/tennis/+", "ü/€"] {
            XCTAssertTrue(Topic.isValidFilter(filter), filter)
        }
    }

    func testInvalidFilters() {
        // [MQTT-4.7.1-1]: # must be the whole last level; [MQTT-4.7.1-2]: + must be a whole level;
        // [MQTT-4.7.3-1]: at least one character.
        for filter in ["sport/tennis#", "sport/tennis/#/ranking", "sport+", "", "#/a", "a/#/", "+a", "a+/b", "a/b+", "##", "+#", "#+", "a/++"] {
            XCTAssertFalse(Topic.isValidFilter(filter), filter)
        }
    }

    func testTopicNames() {
        // [MQTT-4.7.3-1] at least one character; [MQTT-3.3.2-2] no wildcard characters.
        for name in ["a", "/", "a/b", "/finance", "$SYS/x", "sport/tennis/player1", " ", "a b"] {
            XCTAssertTrue(Topic.isValidName(name), name)
        }
        for name in ["", "+", "#", "a/+", "a/#", "sport+", "a#b"] {
            XCTAssertFalse(Topic.isValidName(name), name)
        }
    }

    func testHasWildcard() {
        XCTAssertTrue(Topic.hasWildcard("a/+"))
        XCTAssertTrue(Topic.hasWildcard("#"))
        XCTAssertFalse(Topic.hasWildcard("a/b"))
        XCTAssertFalse(Topic.hasWildcard("$share/g/a"))
    }

    // MARK: Shared subscriptions (spec 4.8.2)

    func testParseSharedFilter() {
        XCTAssertEqual(Topic.parseShared("$share/g/a/b"), SharedFilter(group: "g", filter: "a/b", isValid: true))
        XCTAssertEqual(Topic.parseShared("$share/consumers/sport/#"), SharedFilter(group: "consumers", filter: "sport/#", isValid: true))
        XCTAssertEqual(Topic.parseShared("$share/g/+"), SharedFilter(group: "g", filter: "+", isValid: true))
        XCTAssertEqual(Topic.parseShared("$share/g//"), SharedFilter(group: "g", filter: "/", isValid: true))
    }

    func testNotSharedFilters() {
        for filter in ["a/b", "$SYS/#", "$share", "$sharex/g/a", "share/g/a", "#"] {
            XCTAssertNil(Topic.parseShared(filter), filter)
        }
    }

    func testInvalidSharedFilters() {
        // [MQTT-4.8.2-1]: the ShareName is at least one character and is followed by "/" and a Topic Filter;
        // [MQTT-4.8.2-2]: it does not contain "/", "+" or "#".
        for filter in ["$share/g", "$share//a", "$share/g+/a", "$share/g#/a", "$share/+/a", "$share/#/a", "$share/g/", "$share/",
                       "$share/g/a#", "$share/g/a/#/b"] {
            let parsed = Topic.parseShared(filter)
            XCTAssertNotNil(parsed, filter)
            XCTAssertEqual(parsed?.isValid, false, filter)
        }
    }
}
