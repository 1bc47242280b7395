@testable import MidgeBroker
import NIOCore
import XCTest

final class ConnectionGuardTests: XCTestCase {
    func testConnectionGuardBansAfterFailuresAndDoublesTheBan() {
        let guardian = ConnectionGuard(failureLimit: 3, windowSeconds: 60, banSeconds: 10, rateLimit: 2)
        let start = NIODeadline.now()
        XCTAssertNil(guardian.admit("1.2.3.4", now: start))
        XCTAssertNil(guardian.recordFailure("1.2.3.4", now: start))
        XCTAssertNil(guardian.recordFailure("1.2.3.4", now: start))
        XCTAssertEqual(guardian.recordFailure("1.2.3.4", now: start), 10)
        XCTAssertEqual(guardian.admit("1.2.3.4", now: start + .seconds(5)), .banned(remaining: 5))
        XCTAssertNil(guardian.admit("5.6.7.8", now: start + .seconds(5)))
        // After the ban, three more failures ban for twice as long.
        for _ in 0..<2 { XCTAssertNil(guardian.recordFailure("1.2.3.4", now: start + .seconds(20))) }
        XCTAssertEqual(guardian.recordFailure("1.2.3.4", now: start + .seconds(20)), 20)
        // Connection rate: the third connection within a second is refused.
        XCTAssertNil(guardian.admit("9.9.9.9", now: start))
        XCTAssertNil(guardian.admit("9.9.9.9", now: start))
        XCTAssertEqual(guardian.admit("9.9.9.9", now: start), .rateExceeded)
        XCTAssertNil(guardian.admit("9.9.9.9", now: start + .seconds(2)))
    }
}
