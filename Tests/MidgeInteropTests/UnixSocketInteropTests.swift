import Foundation
import XCTest

/// `listener 0 /path/to/socket` (Mosquitto 2.0's Unix-domain socket listener) in the `midge`
/// binary: the `-v` log line, `mosquitto_sub --unix` / `midge sub --unix` / `midge pub --unix`
/// exchanging messages with TCP clients, and the socket file removed when the broker stops.
final class UnixSocketInteropTests: InteropTestCase {
    /// The socket lives in a folder of the user a broker started as root becomes (`user`'s
    /// default, mosquitto), as /run/mosquitto is in Debian: that user removes it at exit.
    private func startUnixBroker() throws -> (BrokerProcess, String) {
        let run = workDir.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        if geteuid() == 0, let user = getpwnam("mosquitto") ?? getpwnam("nobody") {
            chown(run.path, user.pointee.pw_uid, user.pointee.pw_gid)
        }
        let path = run.path + "/midge.sock"
        let broker = try startBroker(arguments: ["-v"], config: """
            listener 0 \(path)
            allow_anonymous true
            listener {PORT} 127.0.0.1
            allow_anonymous true
            """)
        XCTAssertTrue(broker.output.contains("Opening unix listen socket on path \(path)."), brokerLog(broker))
        return (broker, path)
    }

    private func isSocket(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }

    func testMosquittoSubOverUnixSocket() throws {
        let (broker, path) = try startUnixBroker()
        XCTAssertTrue(isSocket(path))
        let sub = try startMosquittoSub(broker, ["--unix", path, "-V", "mqttv5", "-q", "2", "-t", "unix/#", "-F", "%q %t %p", "-C", "3"])
        for qos in 0...2 {
            try mosquittoPub(broker, ["-V", "mqttv311", "-q", String(qos), "-t", "unix/q\(qos)", "-m", "over tcp \(qos)"])
        }
        let result = waitForExit(sub.process, broker: broker)
        XCTAssertEqual(result.exitCode, 0, "\(result)")
        XCTAssertEqual(sub.messages, (0...2).map { "\($0) unix/q\($0) over tcp \($0)" })
        XCTAssertTrue(broker.output.contains("New client connected from \(path)"), brokerLog(broker))
    }

    func testMidgeToolsOverUnixSocket() throws {
        let (broker, path) = try startUnixBroker()
        let midge = try BrokerProcess.locateMidge()
        let sub = try ClientProcess.start(midge, ["sub", "-d", "--unix", path, "-q", "1", "-t", "u/#", "-F", "%q %t %p", "-C", "2"],
                                          directory: workDir, name: "midge-sub-unix")
        try waitForMarker(sub, "Subscribed (mid:", broker: broker)
        try mosquittoPub(broker, ["-q", "1", "-t", "u/tcp", "-m", "from tcp"])
        let pub = try ClientProcess.run(midge, ["pub", "--unix", path, "-q", "1", "-t", "u/unix", "-m", "from unix"],
                                        timeout: peerTimeout, directory: workDir, name: "midge-pub-unix")
        XCTAssertEqual(pub.exitCode, 0, "\(pub)\n\(brokerLog(broker))")
        let result = waitForExit(sub, broker: broker)
        XCTAssertEqual(result.exitCode, 0, "\(result)")
        XCTAssertEqual(MosquittoSub.messageLines(result.stdout), ["1 u/tcp from tcp", "1 u/unix from unix"])
    }

    func testSocketFileIsRemovedWhenTheBrokerStops() throws {
        let (broker, path) = try startUnixBroker()
        XCTAssertTrue(isSocket(path))
        if geteuid() == 0, let user = getpwnam("mosquitto") ?? getpwnam("nobody") {
            // Handed over after the listeners opened, before "... running" is logged.
            XCTAssertTrue(broker.process.waitForOutput(containing: " running", timeout: 10), brokerLog(broker))
            var info = stat()
            XCTAssertEqual(lstat(path, &info), 0)
            XCTAssertEqual(info.st_uid, user.pointee.pw_uid, "made by root, handed to the user it became")
            XCTAssertEqual(info.st_mode & 0o777, 0o770)
        }
        broker.stop()
        XCTAssertEqual(broker.process.result().exitCode, 0, brokerLog(broker))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "socket file left behind")
    }
}
