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

    // MARK: Argon2id

    /// Made by Python's argon2-cffi (`argon2.low_level.hash_secret(b"ciel", b"somesaltsomesalt",
    /// time_cost=2, memory_cost=1024, parallelism=2|1, hash_len=32, type=Type.ID[, version=16])`):
    /// small parameters keep the test fast; Mosquitto 2.1's own are checked below and in
    /// PasswordFileInteropTests.
    let argon2Made = """
        ciel:$argon2id$v=19$m=1024,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$bnzQwT5ZUtnxaOs2l2I7Ml8qaFSj5Zvo8H+CXCEL3TU
        old:$argon2id$v=16$m=1024,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$qa6+LRCd9fYjDlW1LzVmcsnLlSdy6I2zSXa+WzEvJfM

        """

    func testVerifiesArgon2idLinesOfTheReferenceEncoding() throws {
        let file = try PasswordFile.parse(argon2Made, fileName: "pw")
        XCTAssertEqual(file.verify(username: "ciel", password: Array("ciel".utf8)), true)
        XCTAssertEqual(file.verify(username: "ciel", password: Array("Ciel".utf8)), false)
        XCTAssertEqual(file.verify(username: "old", password: Array("ciel".utf8)), true, "version 16")
        XCTAssertEqual(file.verify(username: "old", password: Array("cie".utf8)), false)
        let hash = try XCTUnwrap(file.hash(for: "ciel"))
        XCTAssertEqual(hash.type, .argon2id)
        XCTAssertEqual([hash.iterations, hash.memoryKiB, hash.parallelism, hash.version], [2, 1024, 2, 19])
        XCTAssertEqual(hash.salt, Array("somesaltsomesalt".utf8))
        XCTAssertEqual(file.text, argon2Made.trimmingCharacters(in: .newlines) + "\n", "written back unchanged")
    }

    func testNewArgon2idHashesUseMosquitto21sParameters() throws {
        let hash = PasswordFile.Hash.make(password: "s3cret", type: .argon2id, iterations: 5000)
        XCTAssertEqual([hash.iterations, hash.memoryKiB, hash.parallelism, hash.version], [1, 47104, 1, 19], "-I does not apply")
        XCTAssertEqual(hash.salt.count, 64)
        XCTAssertEqual(hash.digest.count, 64)
        XCTAssertNotNil(hash.encoded.range(of: #"^\$argon2id\$v=19\$m=47104,t=1,p=1\$[A-Za-z0-9+/]{86}\$[A-Za-z0-9+/]{86}$"#,
                                           options: .regularExpression), hash.encoded)
        let reread = try XCTUnwrap(PasswordFile.Hash(encoded: hash.encoded))
        XCTAssertEqual(reread, hash)
        XCTAssertTrue(reread.verify(Array("s3cret".utf8)))
        XCTAssertFalse(reread.verify(Array("s3cre".utf8)))
    }

    func testMalformedArgon2idLinesAreRefused() {
        let salt = "c29tZXNhbHRzb21lc2FsdA", digest = "bnzQwT5ZUtnxaOs2l2I7Ml8qaFSj5Zvo8H+CXCEL3TU"
        for bad in ["$argon2id$v=19$m=1024,t=2$\(salt)$\(digest)",          // no p
                    "$argon2id$v=19$t=2,m=1024,p=2$\(salt)$\(digest)",      // wrong order
                    "$argon2id$v=18$m=1024,t=2,p=2$\(salt)$\(digest)",      // unknown version
                    "$argon2id$v=19$m=8,t=2,p=2$\(salt)$\(digest)",         // memory below 8 * p
                    "$argon2id$v=19$m=1024,t=0,p=2$\(salt)$\(digest)",      // no pass
                    "$argon2id$v=19$m=1024,t=2,p=2$c2FsdA$\(digest)",        // salt under 8 bytes
                    "$argon2id$v=19$m=1024,t=2,p=2$\(salt)$\(digest)==",    // padding
                    "$argon2id$v=19$m=1024,t=2,p=2$\(salt)",                 // no hash
                    "$argon2i$v=19$m=1024,t=2,p=2$\(salt)$\(digest)"] {     // not id
            XCTAssertNil(PasswordFile.Hash(encoded: bad), bad)
            XCTAssertThrowsError(try PasswordFile.parse("u:\(bad)\n", fileName: "pw"), bad)
        }
    }
}
