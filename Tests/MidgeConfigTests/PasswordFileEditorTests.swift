import Foundation
import MidgeBroker
@testable import MidgeConfig
import XCTest

/// `midge passwd` (mosquitto_passwd's interface): argument parsing and file editing.
final class PasswordFileEditorTests: XCTestCase {
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
