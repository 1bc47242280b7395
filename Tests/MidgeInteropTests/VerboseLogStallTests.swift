import Foundation
import XCTest

/// `midge -v` with its log going to a pipe nobody reads (a stalled service manager, a `| grep`
/// that stopped): the log drops lines once its queue is full, and messages keep flowing. Lines
/// are cut to 999 bytes as Mosquitto cuts them, so a PUBLISH to a 65 535-byte topic logs one
/// bounded line. Before, every event loop blocked in `fputs` once the pipe was full.
final class VerboseLogStallTests: InteropTestCase {
    func testMessagesKeepFlowingWhileNobodyReadsTheLog() throws {
        let port = try BrokerProcess.freeLoopbackPort()
        let pipe = Pipe()
        let broker = Process()
        broker.executableURL = URL(fileURLWithPath: try midge())
        broker.arguments = ["-v", "-p", String(port)]
        broker.standardOutput = pipe
        broker.standardError = pipe
        try broker.run()
        defer {
            if broker.isRunning { broker.terminate() }
            broker.waitUntilExit()
        }
        let listening = Date().addingTimeInterval(10)
        while !BrokerProcess.canConnect(port: port) {
            XCTAssertTrue(broker.isRunning, "midge -v exited at start")
            XCTAssertLessThan(Date(), listening, "midge -v did not listen within 10 s")
            usleep(20_000)
        }

        let count = 20_000
        let subscriber = try ClientProcess.start(
            try Executables.require("stdbuf", hint: "coreutils"),
            ["-oL", try Executables.require("mosquitto_sub", hint: "apt-get install mosquitto-clients"),
             "-h", "127.0.0.1", "-p", String(port), "-d", "-q", "1", "-t", "flow", "-C", String(count)],
            directory: workDir, name: "mosquitto_sub")
        XCTAssertTrue(subscriber.waitForOutput(containing: "Subscribed (mid:", timeout: 10), "no SUBACK")

        let pub = try Executables.require("mosquitto_pub", hint: "apt-get install mosquitto-clients")
        // One PUBLISH whose log line would be 65 KiB (it alone filled the pipe before).
        try ClientProcess.run(pub, ["-h", "127.0.0.1", "-p", String(port), "-t", String(repeating: "/", count: 65_535), "-m", "x"],
                              timeout: 20, directory: workDir, name: "mosquitto_pub-long")
        // ~300 bytes of log per message: several MiB against a 64 KiB pipe and a 1 MiB queue.
        let lines = (1...count).map { "message \($0)" }.joined(separator: "\n") + "\n"
        let published = try ClientProcess.run(pub, ["-h", "127.0.0.1", "-p", String(port), "-q", "1", "-t", "flow", "-l"],
                                              stdin: lines, timeout: 60, directory: workDir, name: "mosquitto_pub")
        XCTAssertEqual(published.exitCode, 0, "\(published)")
        XCTAssertTrue(subscriber.waitForExit(timeout: 60), "the subscriber did not get \(count) messages: the broker stalled")
        let received = subscriber.result().stdoutLines.filter { $0.hasPrefix("message ") }
        XCTAssertEqual(received.count, count)
        XCTAssertEqual(received.last, "message \(count)")

        // Now read the log: what was queued arrives, then the count of what was dropped.
        let fd = pipe.fileHandleForReading.fileDescriptor
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var log: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let notice = Array("log lines dropped (log destination ".utf8)
        let deadline = Date().addingTimeInterval(20)
        var sawNotice = false
        while Date() < deadline && !sawNotice {
            let got = read(fd, &chunk, chunk.count)
            if got > 0 {
                log.append(contentsOf: chunk[0..<got])
                // The notice is written before the batch that follows the gap.
                sawNotice = String(decoding: log, as: UTF8.self).contains(String(decoding: notice, as: UTF8.self))
            } else {
                usleep(10_000)
            }
        }
        let text = String(decoding: log, as: UTF8.self)
        XCTAssertTrue(sawNotice, "no dropped-lines notice in the \(log.count) bytes of log read; its start: \(String(decoding: log.prefix(300), as: UTF8.self))")
        let longest = text.split(separator: "\n").map { $0.utf8.count }.max() ?? 0
        XCTAssertLessThanOrEqual(longest, 999, "a log line longer than Mosquitto's 999 bytes")
        XCTAssertTrue(broker.isRunning)
    }
}
