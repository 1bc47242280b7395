import Foundation
import XCTest

/// Debian's stock /etc/mosquitto/mosquitto.conf (its paths moved into a scratch folder, and a
/// listener on a free port added at its end) run by the `midge` binary: the pid file is
/// written and removed, and retained messages and the queued QoS 1 messages of a persistent
/// session survive a restart, graceful (SIGTERM) or not (kill -9). Peers: Mosquitto's own
/// mosquitto_pub and mosquitto_sub.
final class PersistenceInteropTests: InteropTestCase {
    /// Debian's file, line for line (ConfigFileParserTests.debianMosquittoConf), paths moved to `dir`.
    private func debianConfiguration(in dir: URL) throws -> String {
        let confd = dir.appendingPathComponent("conf.d")
        try FileManager.default.createDirectory(at: confd, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("lib"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("log"), withIntermediateDirectories: true)
        _ = try Scratch.writeFile("Place your local configuration in /etc/mosquitto/conf.d/\n", named: "README", in: confd)
        return """
            # Place your local configuration in /etc/mosquitto/conf.d/
            #
            # A full description of the configuration file is at
            # /usr/share/doc/mosquitto/examples/mosquitto.conf.example

            pid_file \(dir.path)/mosquitto.pid

            persistence true
            persistence_location \(dir.path)/lib/

            log_dest file \(dir.path)/log/mosquitto.log

            include_dir \(confd.path)

            """
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
        let pidFile = dir.appendingPathComponent("mosquitto.pid").path
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
