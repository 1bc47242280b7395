@testable import MidgeBroker
import XCTest

/// The session registry's hash table, against a Dictionary as the model.
final class SessionTableTests: XCTestCase {
    func testRandomInsertsReplacementsAndRemovalsMatchADictionary() {
        var table = SessionTable()
        var model: [String: Session] = [:]
        var generator = SystemRandomNumberGenerator()
        for step in 0..<20_000 {
            let id = "client-\(Int.random(in: 0..<3_000, using: &generator))"
            switch Int.random(in: 0..<3, using: &generator) {
            case 0, 1:
                let session = Session(clientID: id, loopIndex: 0)
                table.insert(session)
                model[id] = session
            default:
                if let stored = model[id], Bool.random(using: &generator) {
                    table.remove(stored)
                    model[id] = nil
                } else {
                    // Removing a session that is not the stored one changes nothing.
                    table.remove(Session(clientID: id, loopIndex: 0))
                }
            }
            if step % 1_000 == 0 || step == 19_999 {
                XCTAssertEqual(table.count, model.count)
                for index in 0..<3_000 {
                    let id = "client-\(index)"
                    XCTAssertTrue(table[id] === model[id], "\(id) at step \(step)")
                }
            }
        }
    }

    func testClientIDsAreComparedByteForByte() {
        // Canonically equivalent, different bytes: two clients [MQTT-4.7.3-4].
        var table = SessionTable()
        let precomposed = Session(clientID: "caf\u{E9}", loopIndex: 0)
        let decomposed = Session(clientID: "cafe\u{301}", loopIndex: 0)
        table.insert(precomposed)
        table.insert(decomposed)
        XCTAssertEqual(table.count, 2)
        XCTAssertTrue(table["caf\u{E9}"] === precomposed)
        XCTAssertTrue(table["cafe\u{301}"] === decomposed)
        table.remove(precomposed)
        XCTAssertNil(table["caf\u{E9}"])
        XCTAssertTrue(table["cafe\u{301}"] === decomposed)
    }

    func testEmptyIDAndGrowthKeepEverySession() {
        var table = SessionTable()
        let sessions = (0..<10_000).map { Session(clientID: $0 == 0 ? "" : "id\($0)", loopIndex: 0) }
        for session in sessions { table.insert(session) }
        XCTAssertEqual(table.count, 10_000)
        for session in sessions { XCTAssertTrue(table[session.clientID] === session) }
        for session in sessions where session.clientID.hasSuffix("7") { table.remove(session) }
        for session in sessions {
            if session.clientID.hasSuffix("7") { XCTAssertNil(table[session.clientID]) } else { XCTAssertTrue(table[session.clientID] === session) }
        }
    }
}
