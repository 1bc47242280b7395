import Foundation
import XCTest

/// Midge as a system service in Mosquitto's place, with the `midge` binary: `user` (started as
/// root it becomes an ordinary user once listeners and files are open, checked in
/// /proc/PID/status, and still serves, logs and persists), systemd's notification protocol
/// (`READY=1` to `$NOTIFY_SOCKET`, path or abstract), and `log_dest syslog` from the process.
final class ServiceInteropTests: InteropTestCase {
    // MARK: Helpers

    /// uid, gid and the supplementary groups of a running process (/proc/PID/status).
    private func credentials(_ pid: Int32) throws -> (uids: [UInt32], gids: [UInt32], groups: Set<UInt32>) {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func numbers(_ key: String) -> [UInt32] {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return [] }
            return line.dropFirst(key.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { UInt32($0) }
        }
        return (numbers("Uid"), numbers("Gid"), Set(numbers("Groups")))
    }

    private func account(_ name: String) -> (uid: UInt32, gid: UInt32)? {
        guard let entry = getpwnam(name) else { return nil }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    /// The groups initgroups gives `name` (its primary group and those listing it).
    private func groups(of name: String, primary: UInt32) -> Set<UInt32> {
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: Int(count))
        guard getgrouplist(name, primary, &list, &count) >= 0 else { return [primary] }
        return Set(list.prefix(Int(count)))
    }

    private func owner(_ path: String) -> UInt32? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_uid : nil
    }

    /// The port opens before the switch: "... running" is logged (and READY=1 sent) after it.
    private func waitUntilRunning(_ broker: BrokerProcess, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(broker.process.waitForOutput(containing: " running", timeout: 10), brokerLog(broker), file: file, line: line)
    }

    private func requireRoot() throws {
        if geteuid() != 0 { throw XCTSkip("`user` only acts when the broker is started as root") }
    }

    // MARK: user

    /// `user nobody`: the password file (mode 0600, root's) and the store are read and opened as
    /// root; then the process is nobody, with nobody's groups, on every thread; it still serves
    /// MQTT, writes its store (a queued QoS 1 message and a retained one survive a restart),
    /// writes its log file and reopens it on SIGHUP, and removes its pid file at exit — in
    /// folders given to nobody as Debian's unit gives /run/mosquitto and /var/log/mosquitto.
    func testUserNobodyServesLogsAndPersistsAfterDroppingRoot() throws {
        try requireRoot()
        guard let nobody = account("nobody") else { throw XCTSkip("no user nobody") }
        let dir = workDir.appendingPathComponent("service")
        for sub in ["run", "log", "lib"] {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        // As midge.service's ExecStartPre: the run and log folders belong to the user; the
        // store's folder stays root's (the store is opened before the switch).
        for sub in ["run", "log"] { chown(dir.appendingPathComponent(sub).path, nobody.uid, nobody.gid) }
        let passwords = dir.appendingPathComponent("passwd").path
        XCTAssertEqual(try ClientProcess.run(try midge(), ["passwd", "-c", "-b", passwords, "ciel", "secret"], directory: workDir).exitCode, 0)
        let pidFile = dir.appendingPathComponent("run/midge.pid").path
        let logFile = dir.appendingPathComponent("log/midge.log").path
        let store = dir.appendingPathComponent("lib/mosquitto.db").path
        let config = """
            user nobody
            pid_file \(pidFile)
            persistence true
            persistence_location \(dir.path)/lib/
            log_dest file \(logFile)
            log_dest stdout
            password_file \(passwords)
            listener {PORT} 127.0.0.1

            """
        var broker = try startBroker(config: config)
        waitUntilRunning(broker)
        let who = try credentials(broker.process.pid)
        XCTAssertEqual(who.uids, [nobody.uid, nobody.uid, nobody.uid, nobody.uid], "real, effective, saved, fs uid")
        XCTAssertEqual(who.gids, [nobody.gid, nobody.gid, nobody.gid, nobody.gid])
        XCTAssertEqual(who.groups, groups(of: "nobody", primary: nobody.gid), "initgroups: root's groups are gone")
        // Every thread (event loops started before the switch included).
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(broker.process.pid)/task")
        XCTAssertGreaterThan(tasks.count, 1)
        for task in tasks {
            let status = try String(contentsOfFile: "/proc/\(broker.process.pid)/task/\(task)/status", encoding: .utf8)
            XCTAssertTrue(status.contains("\nUid:\t\(nobody.uid)\t\(nobody.uid)\t\(nobody.uid)\t\(nobody.uid)\n"), "thread \(task)")
        }
        XCTAssertEqual(owner(pidFile), nobody.uid, "the pid file is handed to the user")
        XCTAssertEqual(owner(logFile), nobody.uid, "the log file it created too")
        XCTAssertEqual(owner(store), nobody.uid, "and the store")

        let login = ["-u", "ciel", "-P", "secret"]
        let keeper = try startMosquittoSub(broker, login + ["-c", "-i", "keeper", "-q", "1", "-t", "svc/queue", "-E"])
        _ = waitForExit(keeper.process, broker: broker)
        try mosquittoPub(broker, login + ["-q", "1", "-t", "svc/queue", "-m", "queued while away"])
        try mosquittoPub(broker, login + ["-q", "1", "-r", "-t", "svc/retained", "-m", "kept"])

        // SIGHUP reopens the log file (log rotation) as nobody.
        try FileManager.default.moveItem(atPath: logFile, toPath: logFile + ".1")
        XCTAssertEqual(sendSignal(broker.process.pid, SIGHUP), 0)
        XCTAssertTrue(broker.process.waitForOutput(containing: "Reloading config.", timeout: 5), brokerLog(broker))
        try mosquittoPub(broker, login + ["-i", "after-rotation", "-t", "svc/x", "-m", "x"])
        var rotated = ""
        let deadline = Date().addingTimeInterval(10)
        while !rotated.contains("as after-rotation") && Date() < deadline {
            rotated = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            if !rotated.contains("as after-rotation") { Thread.sleep(forTimeInterval: 0.1) }
        }
        XCTAssertTrue(rotated.contains("as after-rotation"), "a new log file, written by nobody: \(rotated)")
        XCTAssertEqual(owner(logFile), nobody.uid)

        broker.stop()
        XCTAssertEqual(broker.process.result().exitCode, 0, brokerLog(broker))
        XCTAssertFalse(FileManager.default.fileExists(atPath: pidFile), "nobody removed the pid file at exit")

        broker = try startBroker(config: config)
        let back = try startMosquittoSub(broker, login + ["-c", "-i", "keeper", "-q", "1", "-t", "svc/queue", "-C", "1", "-W", "10"],
                                         waitForSubscription: false)
        _ = waitForExit(back.process, broker: broker)
        XCTAssertEqual(back.messages, ["queued while away"], brokerLog(broker))
        let reader = try startMosquittoSub(broker, login + ["-t", "svc/retained", "-C", "1", "-W", "10"])
        _ = waitForExit(reader.process, broker: broker)
        XCTAssertEqual(reader.messages, ["kept"])
    }

    /// No `user` line: Mosquitto's default, user mosquitto (nobody where there is none).
    func testWithoutAUserLineRootBecomesMosquitto() throws {
        try requireRoot()
        guard let expected = account("mosquitto") ?? account("nobody") else { throw XCTSkip("neither mosquitto nor nobody exists") }
        let broker = try startBroker(config: "listener {PORT} 127.0.0.1\nallow_anonymous true\n")
        waitUntilRunning(broker)
        let who = try credentials(broker.process.pid)
        XCTAssertEqual(who.uids.first, expected.uid)
        XCTAssertEqual(who.gids.first, expected.gid)
        try mosquittoPub(broker, ["-t", "a", "-m", "served"])
    }

    func testAnUnknownUserStopsStartUpAsMosquittoDoes() throws {
        try requireRoot()
        XCTAssertThrowsError(try startBroker(config: "user no-such-midge-user\nlistener {PORT} 127.0.0.1\n")) { error in
            XCTAssertTrue("\(error)".contains("exit 1"), "\(error)")
            XCTAssertTrue("\(error)".contains("Error: Unable to drop privileges to 'no-such-midge-user' because this user does not exist."),
                          "\(error)")
        }
    }

    func testUserRootStaysRootWithMosquittosWarning() throws {
        try requireRoot()
        let broker = try startBroker(config: "user root\nlistener {PORT} 127.0.0.1\nallow_anonymous true\n")
        waitUntilRunning(broker)
        XCTAssertEqual(try credentials(broker.process.pid).uids.first, 0)
        XCTAssertTrue(broker.process.waitForOutput(containing: "should not be run as root", timeout: 5), brokerLog(broker))
    }

    // MARK: systemd

    /// A datagram socket bound where systemd's would be (a path, or an abstract name).
    private final class NotifySocket {
        let fd: Int32
        /// The value for NOTIFY_SOCKET.
        let name: String
        private let path: String?

        init(abstract: Bool, in dir: URL) throws {
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes: [UInt8]
            var length = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
            if abstract {
                name = "@midge-notify-\(UUID().uuidString.prefix(8))"
                path = nil
                bytes = [0] + Array(name.utf8.dropFirst())
                length += bytes.count
            } else {
                path = dir.appendingPathComponent("notify.sock").path
                name = path!
                bytes = Array(name.utf8)
                length += bytes.count + 1
            }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in bytes.enumerated() { raw[index] = byte }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(length)) }
            }
            guard bound == 0 else { throw InteropError.startFailed("bind \(name): errno \(errno)") }
            // Root's broker may have become mosquitto by the time it sends.
            if let path { chmod(path, 0o777) }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        func receive() -> String? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            return count >= 0 ? String(decoding: buffer.prefix(count), as: UTF8.self) : nil
        }
    }

    private func assertNotifications(abstract: Bool) throws {
        let notify = try NotifySocket(abstract: abstract, in: workDir)
        let broker = try startBroker(config: "listener {PORT} 127.0.0.1\nallow_anonymous true\n",
                                     environment: ["NOTIFY_SOCKET": notify.name])
        XCTAssertEqual(notify.receive(), "READY=1", brokerLog(broker))
        // Sent after the listeners opened: the port answers (BrokerProcess waited for it too).
        XCTAssertTrue(BrokerProcess.canConnect(port: broker.port))
        XCTAssertEqual(sendSignal(broker.process.pid, SIGHUP), 0)
        let reloading = notify.receive() ?? ""
        XCTAssertTrue(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="), reloading)
        XCTAssertNotNil(UInt64(reloading.dropFirst("RELOADING=1\nMONOTONIC_USEC=".count)), reloading)
        XCTAssertEqual(notify.receive(), "READY=1", "after the reload")
        broker.stop()
        XCTAssertEqual(notify.receive(), "STOPPING=1")
    }

    func testReadyIsSentToTheNotifySocketOnceListening() throws {
        try assertNotifications(abstract: false)
    }

    func testReadyIsSentToAnAbstractNotifySocket() throws {
        try assertNotifications(abstract: true)
    }

    // MARK: syslog from the process

    /// `log_dest syslog` with `log_facility 3` (local3): the process's start-up lines arrive as
    /// syslog(3) datagrams (`MIDGE_SYSLOG_SOCKET` points it at the test's socket instead of /dev/log).
    func testSyslogDestinationOfTheProcess() throws {
        let logger = try NotifySocket(abstract: false, in: workDir)
        let broker = try startBroker(config: "log_dest syslog\nlog_facility 3\nlistener {PORT} 127.0.0.1\nallow_anonymous true\n",
                                     environment: ["MIDGE_SYSLOG_SOCKET": logger.name])
        guard let first = logger.receive() else { return XCTFail("no syslog datagram\n\(brokerLog(broker))") }
        // local3 = 19; 19 * 8 + LOG_NOTICE (5).
        XCTAssertTrue(first.hasPrefix("<157>"), first)
        XCTAssertTrue(first.contains(" midge[\(broker.process.pid)]: "), first)
        XCTAssertTrue(first.hasSuffix(" starting"), first)
    }
}
