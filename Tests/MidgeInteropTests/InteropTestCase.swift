import Foundation
import XCTest

/// Base class for the interop tests: every test starts its own fresh broker(s) with
/// `startBroker()`, and tearDown checks the broker did not die during the test,
/// stops it (SIGTERM, SIGKILL after 5 s) and kills any peer process left running.
class InteropTestCase: XCTestCase {
    private(set) var brokers: [BrokerProcess] = []
    /// Debian mosquitto brokers started by `startMosquitto` (checked and stopped like `brokers`).
    private var mosquittoBrokers: [BrokerProcess] = []
    /// Scratch folder for this test's peer output files.
    private(set) var workDir: URL!

    /// Seconds a peer gets to finish a short job (publish, subscribe and receive).
    let peerTimeout: TimeInterval = 20

    override func setUpWithError() throws {
        try super.setUpWithError()
        // (ignored by swift-corelibs-xctest on Linux: helpers throw after fatal failures instead)
        continueAfterFailure = false
        workDir = try Scratch.makeDirectory(prefix: "midge-interop")
    }

    override func tearDown() {
        for broker in mosquittoBrokers where !broker.stoppedOnPurpose && !broker.isRunning {
            XCTFail("mosquitto exited during the test; its output:\n\(broker.output)")
        }
        for broker in mosquittoBrokers { broker.stop() }
        mosquittoBrokers = []
        for broker in brokers where !broker.stoppedOnPurpose && !broker.isRunning {
            XCTFail("the broker exited during the test (exit \(broker.process.result().exitCode)); its output:\n\(broker.output)")
        }
        for broker in brokers { broker.stop() }
        ProcessTracker.shared.killAll()
        // (testRun.hasSucceeded is only meaningful once the run stopped, so count failures)
        if let run = testRun, run.totalFailureCount == 0 {
            for broker in brokers { try? FileManager.default.removeItem(at: broker.directory) }
            if let workDir { try? FileManager.default.removeItem(at: workDir) }
        } else {
            if let workDir { print("interop: peer output kept in \(workDir.path)") }
            for broker in brokers { print("interop: broker log kept in \(broker.logURL.path)") }
        }
        brokers = []
        super.tearDown()
    }

    /// Starts a fresh broker (see BrokerProcess.init for the parameters).
    @discardableResult
    func startBroker(arguments: [String] = [], config: String? = nil,
                     extraFiles: [String: String] = [:], environment: [String: String]? = nil) throws -> BrokerProcess {
        let broker = try BrokerProcess(arguments: arguments, config: config, extraFiles: extraFiles, environment: environment)
        brokers.append(broker)
        return broker
    }

    /// The `midge` executable under test (for `midge pub`/`sub`/`rr` as client processes).
    func midge() throws -> String { try BrokerProcess.locateMidge() }

    /// Debian's mosquitto on a free port with `config` (`{PORT}` is its port); by default a
    /// loopback listener that allows anonymous clients.
    func startMosquitto(_ config: String = "listener {PORT} 127.0.0.1\nallow_anonymous true\n") throws -> BrokerProcess {
        let binary = try Executables.require("mosquitto", hint: "apt-get install mosquitto")
        let broker = try BrokerProcess(binary: binary, config: config)
        mosquittoBrokers.append(broker)
        return broker
    }

    /// Fails the test with the broker log attached.
    func brokerLog(_ broker: BrokerProcess) -> String {
        "--- broker output (\(broker.binary)) ---\n\(broker.output)"
    }

    // MARK: - mosquitto_pub

    /// Runs `mosquitto_pub -h 127.0.0.1 -p PORT <args>` and asserts it exits 0.
    @discardableResult
    func mosquittoPub(_ broker: BrokerProcess, _ args: [String], stdin: String? = nil,
                      timeout: TimeInterval? = nil,
                      file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let pub = try Executables.require("mosquitto_pub", hint: "apt-get install mosquitto-clients")
        let result = try ClientProcess.run(pub, ["-h", broker.host, "-p", String(broker.port)] + args, stdin: stdin,
                             timeout: timeout ?? peerTimeout, directory: workDir, name: "mosquitto_pub",
                             file: file, line: line)
        if result.exitCode != 0 {
            XCTFail("mosquitto_pub failed:\n\(result)\n\(brokerLog(broker))", file: file, line: line)
            throw InteropError.startFailed("mosquitto_pub exited with \(result.exitCode)")
        }
        return result
    }

    // MARK: - mosquitto_sub

    /// Starts `mosquitto_sub -h 127.0.0.1 -p PORT -d <args>` in the background and, unless
    /// `waitForSubscription` is false, waits until it printed "Subscribed (mid: N): ..." —
    /// i.e. the broker's SUBACK arrived — so a publish made afterwards must reach it.
    /// stdout is made line-buffered with `stdbuf -oL` (mosquitto_sub only flushes on
    /// messages, and its -d debug lines would otherwise sit in the stdio buffer).
    func startMosquittoSub(_ broker: BrokerProcess, _ args: [String], name: String = "mosquitto_sub",
                           waitForSubscription: Bool = true,
                           file: StaticString = #filePath, line: UInt = #line) throws -> MosquittoSub {
        let sub = try Executables.require("mosquitto_sub", hint: "apt-get install mosquitto-clients")
        let stdbuf = try Executables.require("stdbuf", hint: "coreutils")
        let p = try ManagedProcess(executable: stdbuf,
                                   arguments: ["-oL", "-eL", sub, "-h", broker.host, "-p", String(broker.port), "-d"] + args,
                                   directory: workDir, name: name)
        let s = MosquittoSub(process: p, broker: broker)
        if waitForSubscription {
            let ok = p.waitForOutput(timeout: 10) { $0.contains("Subscribed (mid:") }
            if !ok {
                let r = p.result()
                XCTFail("\(name) did not get a SUBACK within 10 s:\n\(r)\n\(brokerLog(broker))", file: file, line: line)
                throw InteropError.timeout("\(name) subscription")
            }
        }
        return s
    }

    // MARK: - Python (paho-mqtt)

    /// Starts `python3 -u -c SCRIPT ARGS...` in the background.
    func startPython(_ script: String, _ args: [String], name: String = "python") throws -> ManagedProcess {
        let python = try PythonPeer.interpreter()
        return try ManagedProcess(executable: python, arguments: ["-u", "-c", script] + args,
                                  directory: workDir, name: name)
    }

    /// Runs `python3 -u -c SCRIPT ARGS...` to completion (killed and failed after `timeout`).
    @discardableResult
    func runPython(_ script: String, _ args: [String], timeout: TimeInterval? = nil, name: String = "python",
                   file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let python = try PythonPeer.interpreter()
        return try ClientProcess.run(python, ["-u", "-c", script] + args, timeout: timeout ?? peerTimeout,
                       directory: workDir, name: name, file: file, line: line)
    }

    /// Waits for a background process to exit; fails (and kills it) on timeout.
    @discardableResult
    func waitForExit(_ p: ManagedProcess, timeout: TimeInterval? = nil, broker: BrokerProcess? = nil,
                     file: StaticString = #filePath, line: UInt = #line) -> ProcessResult {
        let t = timeout ?? peerTimeout
        if !p.waitForExit(timeout: t) {
            p.kill(signal: SIGKILL)
            _ = p.waitForExit(timeout: 5)
            let r = p.result(timedOut: true)
            XCTFail("\(p.name) did not finish within \(t) s and was killed:\n\(r)\n\(broker.map(brokerLog) ?? "")",
                    file: file, line: line)
            return r
        }
        return p.result()
    }

    /// Waits until the process printed `marker`; fails on timeout or early exit.
    func waitForMarker(_ p: ManagedProcess, _ marker: String, timeout: TimeInterval = 10,
                       broker: BrokerProcess? = nil,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        if !p.waitForOutput(containing: marker, timeout: timeout) {
            XCTFail("\(p.name) did not print \"\(marker)\" within \(timeout) s:\n\(p.result())\n\(broker.map(brokerLog) ?? "")",
                    file: file, line: line)
            throw InteropError.timeout("\(p.name) marker \(marker)")
        }
    }
}

/// A background `mosquitto_sub -d` process.
struct MosquittoSub {
    let process: ManagedProcess
    let broker: BrokerProcess

    /// The QoS values granted in the SUBACK, from the "Subscribed (mid: 1): 1 2" line.
    var grantedQoS: [Int] {
        for line in splitLines(process.stdout) where line.hasPrefix("Subscribed (mid:") {
            guard let colon = line.range(of: "): ") else { return [] }
            // v3.1.1 prints "1 2", v5 prints "1, 2"
            return line[colon.upperBound...].split(whereSeparator: { $0 == " " || $0 == "," }).compactMap { Int($0) }
        }
        return []
    }

    /// Message output lines (the -d debug lines and the SUBACK line filtered out).
    var messages: [String] { MosquittoSub.messageLines(process.stdout) }

    /// Lines of the -d debug output, e.g. "Client (null) received PUBLISH (d0, q1, r1, m1, 't', ... (5 bytes))".
    var debugLines: [String] { splitLines(process.stdout).filter(MosquittoSub.isDebugLine) }

    static func isDebugLine(_ line: String) -> Bool {
        if line.hasPrefix("Subscribed (mid:") { return true }
        guard line.hasPrefix("Client ") else { return false }
        let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        return parts.count >= 3 && (parts[2] == "sending" || parts[2] == "received")
    }

    static func messageLines(_ stdout: String) -> [String] {
        splitLines(stdout).filter { !isDebugLine($0) }
    }
}

/// Locates the Python interpreter used for the paho-mqtt peers.
enum PythonPeer {
    private static var cached: String?

    /// `$MIDGE_PYTHON`, else the real interpreter behind `python3` on PATH (resolved once via
    /// sys.executable, so a pyenv shim is not in the way when the test kills the process).
    static func interpreter() throws -> String {
        if let cached { return cached }
        let env = ProcessInfo.processInfo.environment
        let name = env["MIDGE_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"
        guard let python = Executables.find(name) else {
            throw InteropError.executableNotFound("\(name) (Python 3 with paho-mqtt: pip install paho-mqtt)")
        }
        let dir = try Scratch.makeDirectory(prefix: "midge-python")
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = try ManagedProcess(executable: python,
                                   arguments: ["-c", "import sys, paho.mqtt; print(sys.executable); print(paho.mqtt.__version__)"],
                                   directory: dir, name: "python-probe")
        guard p.waitForExit(timeout: 30) else {
            p.kill(signal: SIGKILL)
            throw InteropError.timeout("\(python) did not answer")
        }
        let r = p.result()
        let lines = r.stdoutLines
        guard r.exitCode == 0, lines.count >= 2 else {
            throw InteropError.executableNotFound(
                "paho-mqtt is not importable by \(python) (run scripts/test.sh or `\(name) -m pip install paho-mqtt`):\n\(r)")
        }
        guard let major = lines[1].split(separator: ".").first.flatMap({ Int($0) }), major >= 2 else {
            throw InteropError.executableNotFound("paho-mqtt \(lines[1]) is too old, 2.x is needed (pip install -U paho-mqtt)")
        }
        let exe = lines[0].isEmpty ? python : lines[0]
        cached = exe
        return exe
    }
}
