import Foundation
import XCTest

/// Debian's stock /etc/mosquitto/mosquitto.conf (its paths moved into a scratch folder, and a
/// listener on a free port added at its end) run by the `midge` binary: the pid file is
/// written and removed, the log file written, and retained messages and the queued QoS 1
/// messages of a persistent session survive a restart, graceful (SIGTERM) or not (kill -9).
/// Started as root, Midge becomes user mosquitto as Mosquitto does, in folders owned as
/// Debian's package and unit leave them. Peers: Mosquitto's own mosquitto_pub and mosquitto_sub.
final class PersistenceInteropTests: InteropTestCase {
    /// Debian's /etc/mosquitto/mosquitto.conf (scripts/test.sh installs the package that ships it;
    /// ConfigFileParserTests.debianMosquittoConf has its lines) with only its paths changed: pid_file into `dir/run`,
    /// persistence_location `dir/lib/`, the log file into `dir/log`, include_dir `dir/conf.d`
    /// (holding a copy of the original folder's files). As Debian's package and unit leave them,
    /// run, log and lib belong to the user the broker becomes (started as root).
    private func debianConfiguration(in dir: URL) throws -> String {
        let confd = dir.appendingPathComponent("conf.d")
        try FileManager.default.createDirectory(at: confd, withIntermediateDirectories: true)
        for sub in ["run", "log", "lib"] {
            let folder = dir.appendingPathComponent(sub)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            if geteuid() == 0, let user = getpwnam("mosquitto") ?? getpwnam("nobody") {
                chown(folder.path, user.pointee.pw_uid, user.pointee.pw_gid)
            }
        }
        guard let stock = try? String(contentsOfFile: "/etc/mosquitto/mosquitto.conf", encoding: .utf8) else {
            throw InteropError.executableNotFound("/etc/mosquitto/mosquitto.conf (Debian's package mosquitto: scripts/test.sh installs it)")
        }
        var lines: [String] = []
        var changed: [String] = []
        for line in stock.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            switch words.first {
            case "pid_file":
                lines.append("pid_file \(dir.path)/run/mosquitto.pid")
            case "persistence_location":
                lines.append("persistence_location \(dir.path)/lib/")
            case "log_dest" where words.count > 1 && words[1] == "file":
                lines.append("log_dest file \(dir.path)/log/mosquitto.log")
            case "include_dir":
                let original = String(line.dropFirst("include_dir".count)).trimmingCharacters(in: .whitespaces)
                for name in (try? FileManager.default.contentsOfDirectory(atPath: original)) ?? [] {
                    try? FileManager.default.copyItem(atPath: original + "/" + name, toPath: confd.appendingPathComponent(name).path)
                }
                lines.append("include_dir \(confd.path)")
            default:
                lines.append(line)
                continue
            }
            changed.append(String(words[0]))
        }
        XCTAssertEqual(changed.sorted(), ["include_dir", "log_dest", "persistence_location", "pid_file"], "the stock file's paths")
        return lines.joined(separator: "\n")
    }

    func testStockDebianConfigurationKeepsRetainedAndQueuedMessagesAcrossAGracefulRestart() throws {
        try assertSurvivesRestart(kill: false)
    }

    func testStockDebianConfigurationKeepsRetainedAndQueuedMessagesAcrossKill9() throws {
        try assertSurvivesRestart(kill: true)
    }

    private func assertSurvivesRestart(kill: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = workDir.appendingPathComponent("debian")
        // The port is chosen at each start (BrokerProcess fills in {PORT}).
        let config = try debianConfiguration(in: dir) + "listener {PORT} 127.0.0.1\nallow_anonymous true\n"

        var broker = try startBroker(config: config)
        let pidFile = dir.appendingPathComponent("run/mosquitto.pid").path
        XCTAssertEqual(try String(contentsOfFile: pidFile, encoding: .utf8), String(broker.process.pid), "pid_file", file: file, line: line)

        // A persistent 3.1.1 session (-c: clean session 0) subscribes at QoS 1 and leaves.
        let keeper = try startMosquittoSub(broker, ["-c", "-i", "keeper", "-q", "1", "-t", "debian/queue", "-E"])
        _ = waitForExit(keeper.process, broker: broker, file: file, line: line)
        for index in 1...5 {
            try mosquittoPub(broker, ["-q", "1", "-t", "debian/queue", "-m", "queued \(index)"], file: file, line: line)
        }
        try mosquittoPub(broker, ["-q", "1", "-r", "-t", "debian/retained", "-m", "kept"], file: file, line: line)
        if kill {
            broker.kill()
            XCTAssertTrue(FileManager.default.fileExists(atPath: pidFile), "kill -9 leaves the pid file", file: file, line: line)
        } else {
            broker.stop()
            XCTAssertFalse(FileManager.default.fileExists(atPath: pidFile), "removed at a clean exit", file: file, line: line)
        }
        // Where Mosquitto keeps its database (its own tests and users' scripts look there).
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("lib/mosquitto.db").path),
                      "the store is persistence_file in persistence_location", file: file, line: line)

        broker = try startBroker(config: config)
        let back = try startMosquittoSub(broker, ["-c", "-i", "keeper", "-q", "1", "-t", "debian/queue", "-C", "5", "-W", "10"],
                                         waitForSubscription: false)
        let result = waitForExit(back.process, broker: broker, file: file, line: line)
        XCTAssertEqual(result.exitCode, 0, "\(result)", file: file, line: line)
        XCTAssertEqual(back.messages, (1...5).map { "queued \($0)" }, "\(result)\n\(brokerLog(broker))", file: file, line: line)
        let reader = try startMosquittoSub(broker, ["-t", "debian/retained", "-C", "1", "-W", "10"])
        _ = waitForExit(reader.process, broker: broker, file: file, line: line)
        XCTAssertEqual(reader.messages, ["kept"], file: file, line: line)
        XCTAssertTrue(try String(contentsOfFile: dir.appendingPathComponent("log/mosquitto.log").path, encoding: .utf8)
                        .contains("Restoring from"), "log_dest file", file: file, line: line)
    }

    /// Mosquitto 2.0.11 writes its database (at SIGTERM); Midge, started on the same
    /// configuration, imports it: the persistent session with its subscription and queued
    /// messages, and the retained message. Mosquitto's file is left as it was.
    func testMidgeImportsTheDatabaseMosquittoWrote() throws {
        let dir = workDir.appendingPathComponent("import")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Mosquitto started as root writes as user mosquitto.
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: dir.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: workDir.path)
        let config = "listener {PORT} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location \(dir.path)/\n"

        let mosquitto = try startMosquitto(config)
        let keeper = try startMosquittoSub(mosquitto, ["-V", "mqttv5", "-c", "-x", "3600", "-i", "keeper", "-q", "2", "-t", "imported/#", "-E"])
        _ = waitForExit(keeper.process, broker: mosquitto)
        for index in 1...3 {
            try mosquittoPub(mosquitto, ["-q", String(index % 2 + 1), "-t", "imported/\(index)", "-m", "from mosquitto \(index)"])
        }
        try mosquittoPub(mosquitto, ["-q", "1", "-r", "-t", "imported/retained", "-m", "retained by mosquitto"])
        mosquitto.stop()
        let database = dir.appendingPathComponent("mosquitto.db")
        let original = try Data(contentsOf: database)

        let broker = try startBroker(config: config)
        XCTAssertTrue(broker.output.contains("Imported \(database.path)"), brokerLog(broker))
        let back = try startMosquittoSub(broker, ["-V", "mqttv5", "-c", "-x", "3600", "-i", "keeper", "-q", "2", "-t", "imported/#",
                                                  "-C", "5", "-W", "10"], waitForSubscription: false)
        let result = waitForExit(back.process, broker: broker)
        XCTAssertEqual(result.exitCode, 0, "\(result)")
        // The queued three, and the retained message twice: queued (it was published after the
        // subscription) and again for the SUBSCRIBE mosquitto_sub repeats. mosquitto_sub prints a
        // QoS 2 message only at PUBREL, so the printed order mixes QoS levels (Mosquitto's too).
        XCTAssertEqual(back.messages.sorted(), (1...3).map { "from mosquitto \($0)" } + ["retained by mosquitto", "retained by mosquitto"],
                       "\(result)\n\(brokerLog(broker))")
        let reader = try startMosquittoSub(broker, ["-t", "imported/retained", "-C", "1", "-W", "10"])
        _ = waitForExit(reader.process, broker: broker)
        XCTAssertEqual(reader.messages, ["retained by mosquitto"])
        XCTAssertEqual(try Data(contentsOf: database), original, "Mosquitto's file is never written")
        XCTAssertTrue(FileManager.default.fileExists(atPath: database.path + ".midge"), "imported into mosquitto.db.midge")
    }
}
