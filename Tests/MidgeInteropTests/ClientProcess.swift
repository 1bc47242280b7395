import Foundation
import XCTest

// Process helpers for the interop tests: run a peer (mosquitto_pub, mosquitto_sub,
// python3 ...) with a hard timeout, capture stdout/stderr/exit code, or keep one
// running in the background and wait for a line in its output.
//
// Every process started here is registered with `ProcessTracker`, so a test's
// tearDown can kill whatever is still running: no test leaves processes behind.

/// Result of a finished (or killed) process.
struct ProcessResult: CustomStringConvertible {
    let command: String
    let exitCode: Int32
    /// true when the process was killed by a signal (uncaught), not a normal exit.
    let killedBySignal: Bool
    let timedOut: Bool
    let stdout: String
    let stderr: String

    var stdoutLines: [String] { splitLines(stdout) }

    var description: String {
        var text = "command: \(command)\nexit: \(exitCode)\(killedBySignal ? " (signal)" : "")\(timedOut ? " TIMED OUT" : "")"
        text += "\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)"
        return text
    }
}

/// Free function so that `kill` resolves to the C function, not a method.
func sendSignal(_ pid: Int32, _ signal: Int32) -> Int32 {
    kill(pid, signal)
}

func splitLines(_ text: String) -> [String] {
    var lines = text.components(separatedBy: "\n")
    if lines.last == "" { lines.removeLast() }
    return lines
}

enum InteropError: Error, CustomStringConvertible {
    case executableNotFound(String)
    case startFailed(String)
    case timeout(String)

    var description: String {
        switch self {
        case .executableNotFound(let s): return "executable not found: \(s)"
        case .startFailed(let s): return "could not start process: \(s)"
        case .timeout(let s): return "timed out: \(s)"
        }
    }
}

/// Finds executables on PATH (plus the usual sbin folders, where Debian puts mosquitto).
enum Executables {
    static func find(_ name: String) -> String? {
        if name.contains("/") {
            return FileManager.default.isExecutableFile(atPath: name) ? name : nil
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        var dirs = path.split(separator: ":").map(String.init)
        dirs += ["/usr/local/bin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/sbin", "/sbin"]
        for dir in dirs where !dir.isEmpty {
            let candidate = (dir as NSString).appendingPathComponent(name)
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDir), !isDir.boolValue,
               FileManager.default.isExecutableFile(atPath: candidate) {
                return candidate
            }
        }
        return nil
    }

    static func require(_ name: String, hint: String) throws -> String {
        guard let path = find(name) else {
            throw InteropError.executableNotFound("\(name) (\(hint))")
        }
        return path
    }
}

/// Keeps track of every process started by the helpers so tearDown can kill leftovers.
final class ProcessTracker {
    static let shared = ProcessTracker()
    private let lock = NSLock()
    private var processes: [ManagedProcess] = []

    func add(_ p: ManagedProcess) {
        lock.lock(); defer { lock.unlock() }
        processes.append(p)
    }

    /// Kills (SIGKILL) every tracked process that is still running and forgets them all.
    func killAll() {
        lock.lock()
        let all = processes
        processes.removeAll()
        lock.unlock()
        for p in all where p.isRunning {
            p.kill(signal: SIGKILL)
            _ = p.waitForExit(timeout: 5)
        }
    }
}

/// Shared scratch directory for one test run (world-readable, see BrokerProcess).
enum Scratch {
    static func makeDirectory(prefix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(prefix)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        // createDirectory honours the umask; make sure a broker that dropped root
        // privileges (Mosquitto switches to user `mosquitto`) can read files here.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
        return url
    }

    static func writeFile(_ contents: String, named name: String, in dir: URL) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try contents.write(to: url, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: url.path)
        return url
    }
}

/// A child process whose stdout/stderr go to files (never pipes: no deadlock on big output).
final class ManagedProcess {
    let name: String
    let commandLine: String
    let process = Process()
    let stdoutURL: URL
    let stderrURL: URL
    private var stdoutHandle: FileHandle?
    private var stderrHandle: FileHandle?
    private var stdinHandle: FileHandle?

    /// - Parameters:
    ///   - executable: a path or a name looked up on PATH.
    ///   - stdin: data fed as standard input (from a file); nil means /dev/null.
    ///   - mergeOutput: send stderr to the stdout file too.
    init(executable: String, arguments: [String], stdin: Data? = nil,
         directory: URL, name: String, mergeOutput: Bool = false,
         environment: [String: String]? = nil) throws {
        guard let path = Executables.find(executable) else {
            throw InteropError.executableNotFound(executable)
        }
        self.name = name
        self.commandLine = ([path] + arguments).map { $0.contains(" ") || $0.isEmpty ? "'\($0)'" : $0 }
            .joined(separator: " ")
        let unique = "\(name)-\(UUID().uuidString.prefix(8))"
        stdoutURL = directory.appendingPathComponent("\(unique).out")
        stderrURL = mergeOutput ? stdoutURL : directory.appendingPathComponent("\(unique).err")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: stdoutURL)
        let err = mergeOutput ? out : try FileHandle(forWritingTo: stderrURL)
        stdoutHandle = out
        stderrHandle = err

        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardOutput = out
        process.standardError = err
        if let stdin {
            let inURL = directory.appendingPathComponent("\(unique).in")
            try stdin.write(to: inURL)
            let handle = try FileHandle(forReadingFrom: inURL)
            stdinHandle = handle
            process.standardInput = handle
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        if let environment {
            var env = ProcessInfo.processInfo.environment
            for (k, v) in environment { env[k] = v }
            process.environment = env
        }
        do {
            try process.run()
        } catch {
            throw InteropError.startFailed("\(commandLine): \(error)")
        }
        ProcessTracker.shared.add(self)
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Current contents of the stdout file (the process may still be writing).
    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? readLossy(stdoutURL) }
    var stderr: String {
        stderrURL == stdoutURL ? "" : ((try? String(contentsOf: stderrURL, encoding: .utf8)) ?? readLossy(stderrURL))
    }

    private func readLossy(_ url: URL) -> String {
        guard let data = try? Data(contentsOf: url) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    func kill(signal: Int32) {
        guard process.isRunning else { return }
        _ = sendSignal(pid, signal)
    }

    /// Polls until the process has exited; false on timeout (process left running).
    @discardableResult
    func waitForExit(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() >= deadline { return false }
            usleep(5_000)
        }
        // Foundation reaps the child on its own; wait for the status to settle.
        process.waitUntilExit()
        closeHandles()
        return true
    }

    /// SIGTERM, wait up to `grace` seconds, then SIGKILL.
    func terminate(grace: TimeInterval = 5) {
        guard process.isRunning else { closeHandles(); return }
        kill(signal: SIGTERM)
        if !waitForExit(timeout: grace) {
            kill(signal: SIGKILL)
            _ = waitForExit(timeout: 5)
        }
    }

    /// Waits until `predicate(stdout)` is true. Returns false on timeout or if the
    /// process exited without the predicate becoming true.
    func waitForOutput(timeout: TimeInterval, _ predicate: (String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if predicate(stdout) { return true }
            if !process.isRunning {
                // one last look: output written just before exit
                return predicate(stdout)
            }
            if Date() >= deadline { return false }
            usleep(5_000)
        }
    }

    func waitForOutput(containing marker: String, timeout: TimeInterval) -> Bool {
        waitForOutput(timeout: timeout) { $0.contains(marker) }
    }

    /// The result so far (call after the process exited for the final picture).
    func result(timedOut: Bool = false) -> ProcessResult {
        let running = process.isRunning
        let status: Int32 = running ? -1 : process.terminationStatus
        let bySignal = !running && process.terminationReason == .uncaughtSignal
        return ProcessResult(command: commandLine, exitCode: status, killedBySignal: bySignal,
                             timedOut: timedOut, stdout: stdout, stderr: stderr)
    }

    private func closeHandles() {
        try? stdoutHandle?.close(); stdoutHandle = nil
        if stderrURL != stdoutURL { try? stderrHandle?.close() }
        stderrHandle = nil
        try? stdinHandle?.close(); stdinHandle = nil
    }
}

/// Entry points for running peers: `ClientProcess.run` (to completion, with a timeout)
/// and `ClientProcess.start` (in the background; see ManagedProcess for waiting on it).
enum ClientProcess {
    /// Runs a command to completion with a hard timeout. On timeout the process is
    /// killed (SIGKILL), the test fails, and the partial result is returned.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], stdin: String? = nil, timeout: TimeInterval = 15,
                    directory: URL, name: String? = nil,
                    file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let p = try start(executable, arguments, stdin: stdin, directory: directory, name: name)
        if !p.waitForExit(timeout: timeout) {
            p.kill(signal: SIGKILL)
            _ = p.waitForExit(timeout: 5)
            let r = p.result(timedOut: true)
            XCTFail("process did not finish within \(timeout) s and was killed:\n\(r)", file: file, line: line)
            return r
        }
        return p.result()
    }

    /// Starts a command in the background (stdout and stderr captured to files).
    static func start(_ executable: String, _ arguments: [String], stdin: String? = nil,
                      directory: URL, name: String? = nil, mergeOutput: Bool = false) throws -> ManagedProcess {
        try ManagedProcess(executable: executable, arguments: arguments,
                           stdin: stdin.map { Data($0.utf8) }, directory: directory,
                           name: name ?? (executable as NSString).lastPathComponent, mergeOutput: mergeOutput)
    }
}
