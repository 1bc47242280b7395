@testable import MidgeBroker
import XCTest

final class PasswordFileTests: XCTestCase {
    /// Written by Debian's mosquitto_passwd 2.0.11 (`-b`, then `-H sha512 -b`).
    let mosquittoMade = """
        ciel:$7$101$7aD3ruz4je0zVSSC$xjOZMhFataZEPfkWS3OQLQeEHkHSbii1vmHeXi/dG8/1zHHqvknCpY3STXMr6SdcSGJITtdjfEhTnMcVKOomWQ==
        robot:$6$MbetzhqSclOVrckl$afwJBkYnDXJ8y7O3i6B8Q/NdG+/A14LLkIWvZtMgbu9/4vb0PhavfJ7wn2bpd7If6R3epUe7THNR60Q0aTz7Eg==

        """

    func testVerifiesMosquittoPBKDF2AndSHA512Hashes() throws {
        let file = try PasswordFile.parse(mosquittoMade, fileName: "pw")
        XCTAssertEqual(file.verify(username: "ciel", password: Array("ciel".utf8)), true)
        XCTAssertEqual(file.verify(username: "ciel", password: Array("Ciel".utf8)), false)
        XCTAssertEqual(file.verify(username: "robot", password: Array("robot".utf8)), true)
        XCTAssertEqual(file.verify(username: "robot", password: []), false)
        XCTAssertNil(file.verify(username: "mystere", password: Array("GreatJ0b".utf8)))
        XCTAssertEqual(file.hash(for: "ciel")?.type, .sha512PBKDF2)
        XCTAssertEqual(file.hash(for: "ciel")?.iterations, 101)
        XCTAssertEqual(file.hash(for: "robot")?.type, .sha512)
    }

    func testTextRoundTripsAndNewHashesVerify() throws {
        var file = try PasswordFile.parse(mosquittoMade, fileName: "pw")
        XCTAssertEqual(file.text, mosquittoMade.trimmingCharacters(in: .newlines) + "\n")
        file.set("new", .make(password: "s3cret", iterations: 1000))
        let reread = try PasswordFile.parse(file.text, fileName: "pw")
        XCTAssertEqual(reread.verify(username: "new", password: Array("s3cret".utf8)), true)
        XCTAssertEqual(reread.hash(for: "new")?.iterations, 1000)
        XCTAssertEqual(reread.entries.map(\.username), ["ciel", "robot", "new"])
    }

    func testBadLinesNameFileAndLine() {
        XCTAssertThrowsError(try PasswordFile.parse("ok:$6$MbetzhqSclOVrckl$afwJBkYnDXJ8y7O3i6B8Q/NdG+/A14LLkIWvZtMgbu9/4vb0PhavfJ7wn2bpd7If6R3epUe7THNR60Q0aTz7Eg==\nplain:password\n", fileName: "pw")) { error in
            XCTAssertEqual((error as? ConfigError)?.line, 2)
            XCTAssertEqual((error as? ConfigError)?.file, "pw")
        }
        XCTAssertThrowsError(try PasswordFile.parse("no colon here\n", fileName: "pw")) { error in
            XCTAssertEqual("\(error)", "pw:1: invalid line in password file (expected user:hash)")
        }
        XCTAssertThrowsError(try PasswordFile.load(path: "/nonexistent/pw"))
    }
}
