import Foundation
import XCTest

/// A broker under test, started as a child process on a free loopback port.
///
/// The binary is `$MIDGE_BROKER` when set (e.g. `MIDGE_BROKER=/usr/sbin/mosquitto`
/// to validate the tests against Mosquitto), else the `midge` executable that
/// SwiftPM built beside the test bundle. It is started with Mosquitto's flags:
/// `-p PORT [extra args]`, or `-c FILE [extra args]` when a config is given.
final class BrokerProcess {
    let binary: String
    let port: Int
    let host = "127.0.0.1"
    let directory: URL
    let process: ManagedProcess
    /// Path of the config file, when started with one.
    let configPath: String?

    /// File that receives the broker's stdout and stderr.
    var logURL: URL { process.stdoutURL }
    /// Everything the broker printed so far.
    var output: String { process.stdout }
    var isRunning: Bool { process.isRunning }

    /// Starts a broker and waits (10 s max) until it accepts TCP connections on 127.0.0.1:port.
    ///
    /// - Parameters:
    ///   - arguments: extra arguments appended after `-p PORT` / `-c FILE` (e.g. `["-v"]`).
    ///   - config: optional config file text; every `{PORT}` in it is replaced by the chosen
    ///     port and the broker is started with `-c FILE` instead of `-p PORT`. The file
    ///     (and its folder) is world-readable, because Mosquitto started as root drops
    ///     privileges to user `mosquitto` before reading some files.
    ///   - extraFiles: more files (name → contents, e.g. an ACL file) written next to the
    ///     config; `{DIR}` in the config is replaced by their folder.
    ///   - binary: the broker executable, instead of `$MIDGE_BROKER` / `midge` (e.g. "/usr/sbin/mosquitto").
    ///   - environment: variables added to the broker's environment (e.g. `NOTIFY_SOCKET`).
    init(binary: String? = nil, arguments: [String] = [], config: String? = nil, extraFiles: [String: String] = [:],
         startupTimeout: TimeInterval = 10, environment: [String: String]? = nil) throws {
        self.binary = try binary ?? BrokerProcess.locateBinary()
        var lastError: Error?
        // A free port is found by binding port 0 and closing the socket again; another
        // process could grab it in between, so retry a few times on "address in use".
        for _ in 0..<4 {
            let port = try BrokerProcess.freeLoopbackPort()
            let dir = try Scratch.makeDirectory(prefix: "midge-broker")
            var args: [String]
            var configPath: String?
            if let config {
                for (fileName, contents) in extraFiles {
                    _ = try Scratch.writeFile(contents, named: fileName, in: dir)
                }
                let text = config.replacingOccurrences(of: "{PORT}", with: String(port))
                    .replacingOccurrences(of: "{DIR}", with: dir.path)
                let url = try Scratch.writeFile(text, named: "broker.conf", in: dir)
                configPath = url.path
                args = ["-c", url.path]
            } else {
                args = ["-p", String(port)]
            }
            args += arguments
            let p = try ManagedProcess(executable: self.binary, arguments: args, directory: dir,
                                       name: "broker", mergeOutput: true, environment: environment)
            switch BrokerProcess.waitUntilListening(p, port: port, timeout: startupTimeout) {
            case .ready:
                self.port = port
                self.directory = dir
                self.process = p
                self.configPath = configPath
                return
            case .exited:
                let out = p.stdout
                lastError = InteropError.startFailed(
                    "broker exited during startup (exit \(p.result().exitCode)): \(p.commandLine)\n--- broker output ---\n\(out)")
                if out.lowercased().contains("address already in use") { continue }
                throw lastError!
            case .timedOut:
                p.terminate(grace: 2)
                throw InteropError.timeout(
                    "broker did not accept connections on \(port) within \(startupTimeout) s: \(p.commandLine)\n--- broker output ---\n\(p.stdout)")
            }
        }
        throw lastError ?? InteropError.startFailed("broker could not be started")
    }

    /// True once the test stopped or killed the broker on purpose.
    private(set) var stoppedOnPurpose = false

    /// Sends SIGTERM and waits; SIGKILL after 5 s. Safe to call more than once.
    func stop() {
        stoppedOnPurpose = true
        process.terminate(grace: 5)
    }

    /// Abruptly kills the broker (SIGKILL).
    func kill() {
        stoppedOnPurpose = true
        process.kill(signal: SIGKILL)
        _ = process.waitForExit(timeout: 5)
    }

    // MARK: - Locating the binary

    /// `$MIDGE_BROKER`, else `midge` beside the running test binary (searching upwards).
    static func locateBinary() throws -> String {
        let env = ProcessInfo.processInfo.environment
        if let override = env["MIDGE_BROKER"], !override.isEmpty {
            if let path = Executables.find(override) { return path }
            throw InteropError.executableNotFound("MIDGE_BROKER=\(override) is not an executable file")
        }
        return try locateMidge()
    }

    /// The `midge` executable SwiftPM built beside the running test binary (searching upwards).
    static func locateMidge() throws -> String {
        var starts: [URL] = []
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        if let arg0 = CommandLine.arguments.first, !arg0.isEmpty {
            starts.append(URL(fileURLWithPath: arg0, relativeTo: cwd).standardizedFileURL.deletingLastPathComponent())
        }
        if let exe = Bundle.main.executableURL {
            starts.append(exe.standardizedFileURL.deletingLastPathComponent())
        }
        starts.append(Bundle.main.bundleURL.standardizedFileURL)
        starts.append(Bundle.main.bundleURL.standardizedFileURL.deletingLastPathComponent())
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            starts.append(bundle.bundleURL.standardizedFileURL.deletingLastPathComponent())
        }
        var tried: [String] = []
        for start in starts {
            var dir = start
            // Walk up a few levels: .build/<triple>/debug/X.xctest/Contents/MacOS -> .build/<triple>/debug
            for _ in 0..<6 {
                for candidate in [dir.appendingPathComponent("midge"),
                                  dir.appendingPathComponent(".build/debug/midge")] {
                    tried.append(candidate.path)
                    var isDir: ObjCBool = false
                    if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDir),
                       !isDir.boolValue, FileManager.default.isExecutableFile(atPath: candidate.path) {
                        return candidate.path
                    }
                }
                let parent = dir.deletingLastPathComponent()
                if parent.path == dir.path { break }
                dir = parent
            }
        }
        throw InteropError.executableNotFound(
            "the `midge` broker binary was not found beside the test binary (run `swift build` first, or set MIDGE_BROKER=/path/to/broker). Tried:\n" +
                tried.joined(separator: "\n"))
    }

    // MARK: - Ports

    /// Binds a TCP socket to 127.0.0.1:0, reads back the port the kernel chose, closes it.
    static func freeLoopbackPort() throws -> Int {
        #if os(Linux)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw InteropError.startFailed("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var addr = loopbackAddress(port: 0)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw InteropError.startFailed("bind(127.0.0.1:0) failed: errno \(errno)") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getsockname(fd, $0, &len)
            }
        }
        guard named == 0 else { throw InteropError.startFailed("getsockname failed: errno \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// True when a TCP connection to 127.0.0.1:port can be established.
    static func canConnect(port: Int) -> Bool {
        #if os(Linux)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = loopbackAddress(port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return rc == 0
    }

    private static func loopbackAddress(port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        #if !os(Linux)
        addr.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
        #endif
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return addr
    }

    private enum StartState { case ready, exited, timedOut }

    private static func waitUntilListening(_ p: ManagedProcess, port: Int, timeout: TimeInterval) -> StartState {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !p.isRunning {
                _ = p.waitForExit(timeout: 1)
                return .exited
            }
            if canConnect(port: port) {
                // The process could have exited between the checks while something
                // else owns the port: make sure it is still ours that is running.
                return p.isRunning ? .ready : .exited
            }
            usleep(20_000)
        }
        return .timedOut
    }
}
