@testable import MidgeBroker
import XCTest

final class AccessControlListTests: XCTestCase {
    let text = """
        # anonymous clients
        topic read public/#
        topic deny public/secret

        user ciel
        topic readwrite home/#
        topic deny home/vault
        topic write telemetry/ciel
        user robot
        topic read home/robot/+
        pattern write devices/%c/status
        pattern readwrite users/%u/#
        """

    func testEveryRuleForm() throws {
        let acl = try AccessControlList.parse(text, fileName: "acl")
        // Anonymous: the rules before any `user` line, plus patterns.
        XCTAssertTrue(acl.allows(.read, topic: "public/news", clientID: "c", username: nil))
        XCTAssertFalse(acl.allows(.write, topic: "public/news", clientID: "c", username: nil))
        XCTAssertFalse(acl.allows(.read, topic: "public/secret", clientID: "c", username: nil))  // deny wins
        XCTAssertFalse(acl.allows(.read, topic: "home/x", clientID: "c", username: nil))
        // %u needs a user name.
        XCTAssertFalse(acl.allows(.read, topic: "users/anon/x", clientID: "c", username: nil))
        XCTAssertTrue(acl.allows(.write, topic: "devices/c/status", clientID: "c", username: nil))
        // ciel
        XCTAssertTrue(acl.allows(.write, topic: "home/kitchen", clientID: "c1", username: "ciel"))
        XCTAssertTrue(acl.allows(.read, topic: "home/kitchen", clientID: "c1", username: "ciel"))
        XCTAssertFalse(acl.allows(.read, topic: "home/vault", clientID: "c1", username: "ciel"))
        XCTAssertTrue(acl.allows(.write, topic: "telemetry/ciel", clientID: "c1", username: "ciel"))
        XCTAssertFalse(acl.allows(.read, topic: "telemetry/ciel", clientID: "c1", username: "ciel"))
        XCTAssertFalse(acl.allows(.read, topic: "public/news", clientID: "c1", username: "ciel"))  // anonymous rules are not hers
        XCTAssertTrue(acl.allows(.read, topic: "users/ciel/inbox", clientID: "c1", username: "ciel"))
        XCTAssertFalse(acl.allows(.read, topic: "users/robot/inbox", clientID: "c1", username: "ciel"))
        XCTAssertTrue(acl.allows(.write, topic: "devices/c1/status", clientID: "c1", username: "ciel"))
        XCTAssertFalse(acl.allows(.write, topic: "devices/c2/status", clientID: "c1", username: "ciel"))
        // robot
        XCTAssertTrue(acl.allows(.read, topic: "home/robot/battery", clientID: "r", username: "robot"))
        XCTAssertFalse(acl.allows(.write, topic: "home/robot/battery", clientID: "r", username: "robot"))
        // A user not in the file gets the patterns only.
        XCTAssertFalse(acl.allows(.read, topic: "home/x", clientID: "z", username: "zoe"))
        XCTAssertTrue(acl.allows(.read, topic: "users/zoe/x", clientID: "z", username: "zoe"))
    }

    func testSubscriptionMustBeWithinAGrant() throws {
        let acl = try AccessControlList.parse(text, fileName: "acl")
        XCTAssertTrue(acl.allows(.subscribe, topic: "home/#", clientID: "c", username: "ciel"))
        XCTAssertTrue(acl.allows(.subscribe, topic: "home/+/temp", clientID: "c", username: "ciel"))
        XCTAssertFalse(acl.allows(.subscribe, topic: "#", clientID: "c", username: "ciel"))
        XCTAssertFalse(acl.allows(.subscribe, topic: "home/vault", clientID: "c", username: "ciel"))
        XCTAssertTrue(acl.allows(.subscribe, topic: "home/robot/+", clientID: "r", username: "robot"))
        XCTAssertFalse(acl.allows(.subscribe, topic: "home/robot/#", clientID: "r", username: "robot"))
        XCTAssertFalse(acl.allows(.subscribe, topic: "telemetry/ciel", clientID: "c", username: "ciel"))  // write-only
        XCTAssertTrue(AccessControlList.filter("a/+/c", isWithin: "a/#"))
        XCTAssertTrue(AccessControlList.filter("a/b", isWithin: "+/+"))
        XCTAssertFalse(AccessControlList.filter("a/#", isWithin: "a/+"))
        XCTAssertFalse(AccessControlList.filter("a", isWithin: "a/b"))
    }

    func testPatternValuesThatWouldChangeTheFilterAreRefused() throws {
        let acl = try AccessControlList.parse("pattern readwrite devices/%c/#\n", fileName: "acl")
        XCTAssertTrue(acl.allows(.write, topic: "devices/d1/x", clientID: "d1", username: nil))
        XCTAssertFalse(acl.allows(.write, topic: "devices/a/b/x", clientID: "a/b", username: nil))
        XCTAssertFalse(acl.allows(.write, topic: "devices/+/x", clientID: "+", username: nil))
    }

    func testBadLinesNameFileAndLine() {
        XCTAssertThrowsError(try AccessControlList.parse("user a\ntopic read\n", fileName: "acl")) { error in
            XCTAssertEqual((error as? ConfigError)?.line, 2)
        }
        XCTAssertThrowsError(try AccessControlList.parse("topik read a\n", fileName: "acl")) { error in
            XCTAssertEqual("\(error)", "acl:1: unknown ACL keyword 'topik' (expected user, topic or pattern)")
        }
        XCTAssertThrowsError(try AccessControlList.parse("topic read a/#/b\n", fileName: "acl"))
    }
}
