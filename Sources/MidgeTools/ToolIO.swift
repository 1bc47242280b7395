import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a tool writes: a file descriptor (written at once with write(2), nothing buffered, so
/// every message reaches a pipe as soon as it is printed) or memory (tests).
public final class ToolOutput: @unchecked Sendable {
    private let lock = NIOLock()
    private let fileDescriptor: Int32?
    private var captured: [UInt8] = []
    private var writeFailed = false

    private init(fileDescriptor: Int32?) { self.fileDescriptor = fileDescriptor }

    /// Writes to `fd` (1 for standard output, 2 for standard error).
    public static func fileDescriptor(_ fd: Int32) -> ToolOutput { ToolOutput(fileDescriptor: fd) }

    /// Keeps everything written, for `text` / `bytes`.
    public static func capture() -> ToolOutput { ToolOutput(fileDescriptor: nil) }

    public func write(_ text: String) { write(Array(text.utf8)) }

    public func write(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        lock.withLock {
            guard let fd = fileDescriptor else {
                captured.append(contentsOf: bytes)
                return
            }
            bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = systemWrite(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        writeFailed = true
                        return
                    }
                    offset += n
                }
            }
        }
    }

    /// True once a write failed (a closed pipe): like `ferror(stdout)`.
    public var failed: Bool { lock.withLock { writeFailed } }

    /// What was written (capture outputs only).
    public var bytes: [UInt8] { lock.withLock { captured } }
    public var text: String { String(decoding: bytes, as: UTF8.self) }
}

private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buffer, count)
    #else
    return Darwin.write(fd, buffer, count)
    #endif
}

/// Where a tool reads its standard input from, in chunks (nil at the end). Reading is done when the
/// tool asks, so a slow broker slows the reading down instead of filling memory.
public struct ToolInput: Sendable {
    public let read: @Sendable () async -> [UInt8]?

    public init(read: @escaping @Sendable () async -> [UInt8]?) { self.read = read }

    /// The process's standard input (read(2) on file descriptor 0, off the cooperative pool).
    public static let standardInput = ToolInput {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = buffer.withUnsafeMutableBytes { systemRead(0, $0.baseAddress!, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    continuation.resume(returning: n > 0 ? Array(buffer[0..<n]) : nil)
                    return
                }
            }
        }
    }

    /// Fixed contents.
    public static func bytes(_ data: [UInt8]) -> ToolInput {
        let remaining = NIOLockedValueBox<[UInt8]?>(data.isEmpty ? nil : data)
        return ToolInput { remaining.withLockedValue { value in defer { value = nil }; return value } }
    }

    public static func text(_ string: String) -> ToolInput { bytes(Array(string.utf8)) }

    /// Chunks as a test produces them (the input ends when the stream does).
    public static func stream(_ chunks: AsyncStream<[UInt8]>) -> ToolInput {
        let box = NIOLockedValueBox<AsyncStream<[UInt8]>.AsyncIterator?>(chunks.makeAsyncIterator())
        return ToolInput {
            // One reader at a time (the tools read sequentially).
            guard var iterator = box.withLockedValue({ value in defer { value = nil }; return value }) else { return nil }
            let next = await iterator.next()
            box.withLockedValue { $0 = iterator }
            return next
        }
    }

    /// Nothing (end of input at once).
    public static let empty = ToolInput { nil }
}

private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.read(fd, buffer, count)
    #else
    return Darwin.read(fd, buffer, count)
    #endif
}

/// Everything a tool touches outside itself, so it can run in-process in tests.
public final class ToolIO: @unchecked Sendable {
    public let stdout: ToolOutput
    public let stderr: ToolOutput
    public let stdin: ToolInput
    /// For the defaults file (`$XDG_CONFIG_HOME/mosquitto_pub` or `~/.config/mosquitto_pub`).
    public let environment: [String: String]
    /// Used by `-I prefix` (prefix + process id), as Mosquitto does.
    public let processID: Int32
    /// Printed by `--version` and `--help`.
    public let version: String
    /// Stop on SIGINT / SIGTERM like mosquitto_sub (real processes only).
    public let handlesSignals: Bool

    private let lock = NIOLock()
    private var interruptHandlers: [@Sendable () -> Void] = []
    private var interrupted = false
    private var readyHandler: (@Sendable () -> Void)?

    public init(stdout: ToolOutput, stderr: ToolOutput, stdin: ToolInput = .empty, environment: [String: String] = [:],
                processID: Int32 = 4242, version: String = "0.1.0", handlesSignals: Bool = false) {
        self.stdout = stdout; self.stderr = stderr; self.stdin = stdin; self.environment = environment
        self.processID = processID; self.version = version; self.handlesSignals = handlesSignals
    }

    /// The real process: file descriptors 1, 2 and 0, the environment, signals.
    public static func process(version: String) -> ToolIO {
        ToolIO(stdout: .fileDescriptor(1), stderr: .fileDescriptor(2), stdin: .standardInput,
               environment: ProcessInfo.processInfo.environment, processID: getpid(), version: version, handlesSignals: true)
    }

    /// Captured output, for tests.
    public static func capture(stdin: ToolInput = .empty) -> ToolIO {
        ToolIO(stdout: .capture(), stderr: .capture(), stdin: stdin)
    }

    /// Asks a running `sub` / `rr` to stop as SIGINT would.
    public func interrupt() {
        let handlers: [@Sendable () -> Void] = lock.withLock {
            interrupted = true
            return interruptHandlers
        }
        for handler in handlers { handler() }
    }

    func onInterrupt(_ handler: @escaping @Sendable () -> Void) {
        let already: Bool = lock.withLock {
            interruptHandlers.append(handler)
            return interrupted
        }
        if already { handler() }
    }

    /// Called once `sub` has its SUBACK (and -U's UNSUBACKs): publishing from then on reaches it.
    public func whenReady(_ handler: @escaping @Sendable () -> Void) {
        lock.withLock { readyHandler = handler }
    }

    func signalReady() {
        let handler = lock.withLock { readyHandler }
        handler?()
    }
}
