@testable import MidgeBroker
import MQTTCodec
import NIOCore
import XCTest

/// The outbound inflight window keeps send order through acknowledgements in any order and
/// packet-id reuse, and does not let stale order entries pile up.
final class InflightWindowTests: XCTestCase {
    private func entry(_ text: String) -> InflightMessage {
        InflightMessage(message: Message(topic: "t", payload: ByteBuffer(string: text), qos: .atLeastOnce, retain: false),
                        qos: .atLeastOnce, retain: false, subscriptionIDs: [], stage: .awaitingPubAck)
    }

    private func contents(_ window: InflightWindow) -> [String] {
        window.map { "\($0.key):\(String(buffer: $0.value.message.payload))" }
    }

    func testOrderSurvivesOutOfOrderAcksAndIdReuse() {
        var window = InflightWindow()
        for id in UInt16(1)...5 { window[id] = entry("m\(id)") }
        XCTAssertEqual(window.removeValue(forKey: 3)?.message.payload, ByteBuffer(string: "m3"))
        window.removeValue(forKey: 1)
        window[3] = entry("again")          // the id comes back: it is now the newest
        window[2]?.stage = .awaitingPubComp // an update keeps its place
        XCTAssertEqual(contents(window), ["2:m2", "4:m4", "5:m5", "3:again"])
        XCTAssertEqual(window[2]?.stage, .awaitingPubComp)
        XCTAssertEqual(window.count, 4)
        XCTAssertNil(window.removeValue(forKey: 1), "an id acknowledged twice is not in flight")
    }

    func testUpdateInOrderVisitsOldestFirst() {
        var window = InflightWindow()
        for id in [UInt16(9), 4, 7] { window[id] = entry("m\(id)") }
        window.removeValue(forKey: 4)
        var seen = 0
        window.updateInOrder { message in
            message.awaitingResend = seen >= 1
            seen += 1
        }
        XCTAssertEqual(window.map(\.key), [9, 7])
        XCTAssertEqual(window.map(\.value.awaitingResend), [false, true])
    }

    func testManyAcksOutOfOrderKeepTheWindowConsistent() {
        var window = InflightWindow()
        var expected: [UInt16] = []
        for round in 0..<50 {
            for id in UInt16(1)...1000 { window[id] = entry("\(round)") }
            // Acknowledge every id but the first and the last, newest first.
            for id in (UInt16(2)...999).reversed() { window.removeValue(forKey: id) }
            expected = [1, 1000]
            XCTAssertEqual(window.map(\.key), expected)
            window.removeAll()
        }
        XCTAssertTrue(window.isEmpty)
    }
}
