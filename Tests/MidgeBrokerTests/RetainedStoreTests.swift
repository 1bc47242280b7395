import Foundation
@testable import MidgeBroker
import MQTTCodec
import NIOCore
import XCTest

final class RetainedStoreTests: XCTestCase {
    private func message(_ topic: String, _ payload: String, expiry: UInt32? = nil, now: NIODeadline = .now()) -> Message {
        var properties = Properties()
        properties.messageExpiryInterval = expiry
        return Message(topic: topic, payload: ByteBuffer(string: payload), qos: .atLeastOnce, retain: true,
                       properties: properties, receivedAt: now)
    }

    func testStoreReplaceAndClearWithEmptyPayload() {
        let store = RetainedStore()
        store.store(message("a/b", "1"))
        store.store(message("a/b", "2"))  // replaces [MQTT-3.3.1-5]
        store.store(message("a/c", "3"))
        XCTAssertEqual(store.matching("a/b").map { $0.payload.getString(at: 0, length: 1) }, ["2"])
        XCTAssertEqual(store.matching("a/+").map(\.topic), ["a/b", "a/c"])
        store.store(message("a/b", ""))   // an empty payload clears it [MQTT-3.3.1-6]
        XCTAssertEqual(store.matching("#").map(\.topic), ["a/c"])
        XCTAssertEqual(store.count, 1)
    }

    /// check_retain_source: an entry keeps its publisher, which answers against the policy's
    /// current ACL; a replacement without a publisher forgets it.
    func testEntriesKeepTheirPublisherForCheckRetainSource() throws {
        let directory = NSTemporaryDirectory() + "midge-retain-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "user ciel\ntopic readwrite home/#\n".write(toFile: directory + "/acl", atomically: true, encoding: .utf8)
        let policy = try SecurityPolicy(settings: SecuritySettings(aclFile: directory + "/acl"), allowAnonymous: true)
        let store = RetainedStore()
        store.store(message("home/a", "1"), source: RetainSource(clientID: "c", username: "ciel", policy: policy))
        let entry = try XCTUnwrap(store.matchingEntries("home/#").first)
        XCTAssertEqual(entry.source?.clientID, "c")
        XCTAssertEqual(entry.source?.mayStillWrite("home/a"), true)
        try "user ciel\ntopic read home/#\n".write(toFile: directory + "/acl", atomically: true, encoding: .utf8)
        XCTAssertNil(policy.reload())
        XCTAssertEqual(entry.source?.mayStillWrite("home/a"), false)
        store.store(message("home/a", "2"))
        XCTAssertNil(store.matchingEntries("home/a").first?.source)
    }

    func testDollarTopicsNeedAnExplicitFirstLevel() {
        let store = RetainedStore()
        store.store(message("$SYS/x", "1"))
        XCTAssertEqual(store.matching("#").count, 0)  // [MQTT-4.7.2-1]
        XCTAssertEqual(store.matching("$SYS/#").count, 1)
    }

    func testExpiredMessagesAreDroppedAndForgotten() {
        let store = RetainedStore()
        let start = NIODeadline.now()
        store.store(message("e/1", "x", expiry: 1, now: start))
        store.store(message("e/2", "y"))
        XCTAssertEqual(store.matching("e/#", now: start).count, 2)
        XCTAssertEqual(store.matching("e/#", now: start + .seconds(2)).map(\.topic), ["e/2"])
        XCTAssertEqual(store.count, 1)
    }

    func testRemainingExpiryIsRoundedUpAndHeaderDropsExpired() {
        let start = NIODeadline.now()
        let m = message("t", "p", expiry: 10, now: start)
        XCTAssertEqual(m.remainingExpiry(at: start + .milliseconds(2500)), 8)
        var size = 0, included = false
        XCTAssertNil(m.header(version: .v5, qos: .atMostOnce, retain: false, dup: false, packetID: 0, subscriptionIDs: [],
                              now: start + .seconds(11), allocator: .init(), packetSize: &size, payloadIncluded: &included))
    }
}
