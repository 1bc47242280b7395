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

    func testEditorParsesMosquittoPasswdArguments() throws {
        XCTAssertEqual(try PasswordFileEditor.parse(["-c", "f", "u"]).action, .set(file: "f", username: "u", password: nil, create: true))
        XCTAssertEqual(try PasswordFileEditor.parse(["-b", "f", "u", "p"]).action, .set(file: "f", username: "u", password: "p", create: false))
        XCTAssertEqual(try PasswordFileEditor.parse(["-D", "f", "u"]).action, .delete(file: "f", username: "u"))
        XCTAssertEqual(try PasswordFileEditor.parse(["-U", "f"]).action, .upgrade(file: "f"))
        let hashed = try PasswordFileEditor.parse(["-H", "sha512", "-I", "5", "-b", "f", "u", "p"])
        XCTAssertEqual(hashed.hashType, .sha512)
        XCTAssertEqual(hashed.iterations, 5)
        XCTAssertThrowsError(try PasswordFileEditor.parse(["-c", "-D", "f", "u"]))
        XCTAssertThrowsError(try PasswordFileEditor.parse(["-H", "md5", "f", "u"]))
        XCTAssertThrowsError(try PasswordFileEditor.parse(["-b", "f", "u:x", "p"]))
        XCTAssertThrowsError(try PasswordFileEditor.parse(["-x", "f", "u"]))
    }

    func testEditorWritesMode0600AndUpgradesPlainText() throws {
        let directory = NSTemporaryDirectory() + "midge-pw-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/pw"
        try PasswordFileEditor.apply(try PasswordFileEditor.parse(["-c", "-b", path, "ciel", "ciel"]), password: { XCTFail(); return "" })
        try PasswordFileEditor.apply(try PasswordFileEditor.parse([path, "robot"]), password: { "robot" })
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        var file = try PasswordFile.load(path: path)
        XCTAssertEqual(file.verify(username: "robot", password: Array("robot".utf8)), true)
        try PasswordFileEditor.apply(try PasswordFileEditor.parse(["-D", path, "ciel"]), password: { "" })
        file = try PasswordFile.load(path: path)
        XCTAssertEqual(file.entries.map(\.username), ["robot"])
        // A deletion that fails leaves the file as it was.
        XCTAssertThrowsError(try PasswordFileEditor.apply(try PasswordFileEditor.parse(["-D", path, "nobody"]), password: { "" }))
        XCTAssertEqual(try PasswordFile.load(path: path), file)

        let plain = directory + "/plain"
        try "a:alpha\nb:beta\n".write(toFile: plain, atomically: true, encoding: .utf8)
        try PasswordFileEditor.apply(try PasswordFileEditor.parse(["-U", plain]), password: { "" })
        let upgraded = try PasswordFile.load(path: plain)
        XCTAssertEqual(upgraded.verify(username: "a", password: Array("alpha".utf8)), true)
        XCTAssertEqual(upgraded.verify(username: "b", password: Array("beta".utf8)), true)
    }
}
