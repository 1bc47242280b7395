import Foundation
import XCTest

/// Password files across implementations and reload on SIGHUP, with real processes: a file
/// made by Debian's mosquitto_passwd works in `midge`, one made by `midge passwd` works in
/// Debian's mosquitto, and `kill -HUP` lets a newly added user in without a restart.
final class PasswordFileInteropTests: InteropTestCase {
    private func config(passwordFile: String) -> String {
        """
        listener {PORT} 127.0.0.1
        allow_anonymous false
        password_file \(passwordFile)
        """
    }

    /// mosquitto_pub with credentials; returns its result without asserting success.
    private func publish(_ broker: BrokerProcess, user: String?, password: String?, version: String = "mqttv311") throws -> ProcessResult {
        let pub = try Executables.require("mosquitto_pub", hint: "apt-get install mosquitto-clients")
        var args = ["-h", broker.host, "-p", String(broker.port), "-V", version, "-q", "1", "-t", "lab/ciel", "-m", "51"]
        if let user { args += ["-u", user] }
        if let password { args += ["-P", password] }
        return try ClientProcess.run(pub, args, timeout: 15, directory: workDir, name: "mosquitto_pub")
    }

    private func assertLab(_ broker: BrokerProcess, file: StaticString = #filePath, line: UInt = #line) throws {
        for version in ["mqttv311", "mqttv5"] {
            XCTAssertEqual(try publish(broker, user: "ciel", password: "ciel", version: version).exitCode, 0, brokerLog(broker), file: file, line: line)
            XCTAssertEqual(try publish(broker, user: "robot", password: "robot", version: version).exitCode, 0, brokerLog(broker), file: file, line: line)
            let wrong = try publish(broker, user: "ciel", password: "GreatJ0b", version: version)
            XCTAssertNotEqual(wrong.exitCode, 0, "\(wrong)", file: file, line: line)
            let anonymous = try publish(broker, user: nil, password: nil, version: version)
            XCTAssertNotEqual(anonymous.exitCode, 0, "\(anonymous)", file: file, line: line)
            XCTAssertTrue(anonymous.stderr.contains("not authorised") || anonymous.stdout.contains("not authorised")
                          || anonymous.stderr.contains("Not authorized"), "\(anonymous)", file: file, line: line)
        }
    }

    func testFileMadeByMosquittoPasswdIsAcceptedByMidge() throws {
        let tool = try Executables.require("mosquitto_passwd", hint: "apt-get install mosquitto")
        let path = workDir.appendingPathComponent("passwd").path
        try ClientProcess.run(tool, ["-c", "-b", path, "ciel", "ciel"], directory: workDir)
        try ClientProcess.run(tool, ["-H", "sha512", "-b", path, "robot", "robot"], directory: workDir)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        let broker = try startBroker(config: config(passwordFile: path))
        try assertLab(broker)
    }

    func testFileMadeByMidgePasswdIsAcceptedByMosquitto() throws {
        let midge = try BrokerProcess.locateMidge()
        let path = workDir.appendingPathComponent("passwd").path
        XCTAssertEqual(try ClientProcess.run(midge, ["passwd", "-c", "-b", path, "ciel", "ciel"], directory: workDir).exitCode, 0)
        XCTAssertEqual(try ClientProcess.run(midge, ["passwd", "-b", path, "robot", "robot"], directory: workDir).exitCode, 0)
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
        XCTAssertEqual(mode, 0o600, "midge passwd creates the file with mode 0600")
        // Debian's mosquitto drops to user mosquitto before reading it: make it readable.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        let mosquitto = try Executables.require("mosquitto", hint: "apt-get install mosquitto")
        let broker = try BrokerProcess(binary: mosquitto, config: config(passwordFile: path))
        defer { broker.stop() }
        try assertLab(broker)
    }

    func testSighupReloadsThePasswordFileWithoutRestart() throws {
        let midge = try BrokerProcess.locateMidge()
        let path = workDir.appendingPathComponent("passwd").path
        try ClientProcess.run(midge, ["passwd", "-c", "-b", path, "ciel", "ciel"], directory: workDir)
        let broker = try startBroker(config: config(passwordFile: path))
        let pid = broker.process.pid
        XCTAssertNotEqual(try publish(broker, user: "robot", password: "robot").exitCode, 0, "robot is not in the file yet")
        try ClientProcess.run(midge, ["passwd", "-b", path, "robot", "robot"], directory: workDir)
        // Started as root, the broker runs as user mosquitto by now (`user`'s default, as in
        // Mosquitto): the file it re-reads must be readable by that user (midge passwd writes 0600).
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        XCTAssertEqual(kill(pid, SIGHUP), 0)
        var accepted = false
        let deadline = Date().addingTimeInterval(10)
        while !accepted && Date() < deadline {
            accepted = try publish(broker, user: "robot", password: "robot").exitCode == 0
            if !accepted { Thread.sleep(forTimeInterval: 0.2) }
        }
        XCTAssertTrue(accepted, "robot still refused after SIGHUP\n\(brokerLog(broker))")
        XCTAssertEqual(broker.process.pid, pid)
        XCTAssertEqual(kill(pid, 0), 0, "the broker was not restarted")
        XCTAssertTrue(broker.output.contains("Reloaded"), brokerLog(broker))
        XCTAssertEqual(try publish(broker, user: "ciel", password: "ciel").exitCode, 0)
    }

    // MARK: Argon2id (Mosquitto 2.1's hashes)

    /// `$argon2id$v=19$m=47104,t=1,p=1$SALT$HASH`: mosquitto_passwd 2.1's line
    /// (libcommon/password_common.c: t=1, m=47104 KiB, p=1, 64-byte salt and hash).
    private static let argon2Line = #"^[a-z]+:\$argon2id\$v=19\$m=47104,t=1,p=1\$[A-Za-z0-9+/]{86}\$[A-Za-z0-9+/]{86}$"#

    /// Lines made by the reference `argon2` command (Debian's package argon2) with Mosquitto
    /// 2.1's parameters are accepted by `midge`; a wrong password is refused.
    func testArgon2idLinesMadeByTheArgon2CommandAreAcceptedByMidge() throws {
        let argon2 = try Executables.require("argon2", hint: "apt-get install argon2")
        var lines = ""
        for (user, salt) in [("ciel", "saltysaltysalt01"), ("robot", "another-salt-0002")] {
            let result = try ClientProcess.run(argon2, [salt, "-id", "-t", "1", "-k", "47104", "-p", "1", "-l", "64", "-e"],
                                               stdin: user, directory: workDir, name: "argon2")
            XCTAssertEqual(result.exitCode, 0, "\(result)")
            let encoded = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertTrue(encoded.hasPrefix("$argon2id$v=19$m=47104,t=1,p=1$"), encoded)
            lines += "\(user):\(encoded)\n"
        }
        let path = try Scratch.writeFile(lines, named: "passwd", in: workDir).path
        let broker = try startBroker(config: config(passwordFile: path))
        try assertLab(broker)
    }

    /// `midge passwd -H argon2id` writes Mosquitto 2.1's line, which Python's argon2-cffi
    /// (`PasswordHasher().verify`) accepts for the right password only; `midge` reads it back.
    func testArgon2idLineMadeByMidgePasswdVerifiesInArgon2Cffi() throws {
        let midge = try BrokerProcess.locateMidge()
        let path = workDir.appendingPathComponent("passwd").path
        XCTAssertEqual(try ClientProcess.run(midge, ["passwd", "-H", "argon2id", "-c", "-b", path, "ciel", "ciel"], directory: workDir).exitCode, 0)
        XCTAssertEqual(try ClientProcess.run(midge, ["passwd", "-H", "argon2id", "-b", path, "robot", "robot"], directory: workDir).exitCode, 0)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2)
        for line in lines {
            XCTAssertNotNil(line.range(of: Self.argon2Line, options: .regularExpression), line)
        }
        let verify = """
            import sys
            from argon2 import PasswordHasher
            from argon2.exceptions import VerifyMismatchError
            encoded, password = sys.argv[1], sys.argv[2]
            try:
                PasswordHasher().verify(encoded, password)
                print("verified")
            except VerifyMismatchError:
                print("mismatch")
            """
        for (line, user) in zip(lines, ["ciel", "robot"]) {
            let encoded = String(line.dropFirst(user.count + 1))
            let right = try runPython(verify, [encoded, user], name: "argon2-cffi")
            XCTAssertEqual(right.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "verified",
                           "\(right) (pip install argon2-cffi: scripts/test.sh does)")
            let wrong = try runPython(verify, [encoded, user + "x"], name: "argon2-cffi")
            XCTAssertEqual(wrong.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "mismatch", "\(wrong)")
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        let broker = try startBroker(config: config(passwordFile: path))
        try assertLab(broker)
    }
}
