import Foundation
import MidgeTestSupport
@testable import MidgeTools
import NIOConcurrencyHelpers
import XCTest

/// A finished in-process run of a tool.
struct ToolRun: CustomStringConvertible {
    let code: Int32
    let stdout: String
    let stderr: String
    var description: String { "exit \(code)\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)" }
}

/// `midge sub` running in a task of the test process.
final class RunningSub: @unchecked Sendable {
    let io: ToolIO
    let task: Task<Int32, Never>
    private let ready = NIOLockedValueBox(false)

    init(_ arguments: [String]) {
        io = ToolIO.capture()
        let io = self.io
        let ready = self.ready
        io.whenReady { ready.withLockedValue { $0 = true } }
        task = Task { await MidgeSub(io: io).run(arguments: arguments) }
    }

    var isReady: Bool { ready.withLockedValue { $0 } }
    var stdout: String { io.stdout.text }

    /// Waits for the SUBACK (true), or returns false when the tool ended or the time ran out.
    func waitReady(timeout: TimeInterval = 10) async -> Bool {
        await poll(timeout: timeout) { self.isReady }
    }

    /// Waits until the output satisfies `predicate`.
    func waitForOutput(timeout: TimeInterval = 10, _ predicate: @escaping (String) -> Bool) async -> Bool {
        await poll(timeout: timeout) { predicate(self.stdout) }
    }

    /// Waits for the tool to exit; interrupts it (and fails the test) after `timeout`.
    func finish(timeout: TimeInterval = 10, file: StaticString = #filePath, line: UInt = #line) async -> ToolRun {
        let code = await valueWithTimeout(task, timeout: timeout, onTimeout: {
            XCTFail("midge sub did not finish within \(timeout) s; interrupting it.\n\(self.io.stdout.text)", file: file, line: line)
            self.io.interrupt()
        })
        return ToolRun(code: code, stdout: io.stdout.text, stderr: io.stderr.text)
    }

    /// SIGINT, then the result.
    func interrupt() async -> ToolRun {
        io.interrupt()
        return await finish()
    }
}

/// Polls `condition` every 10 ms until true (true) or the timeout (false).
func poll(timeout: TimeInterval, _ condition: @escaping () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(nanoseconds: 10_000_000)
    }
    return condition()
}

/// The task's value; `onTimeout` runs once when it takes longer than `timeout` (the value is
/// still awaited afterwards, so `onTimeout` must make the task end).
func valueWithTimeout(_ task: Task<Int32, Never>, timeout: TimeInterval, onTimeout: @escaping @Sendable () -> Void) async -> Int32 {
    let watchdog = Task {
        try? await Task.sleep(nanoseconds: UInt64(timeout * 1_000_000_000))
        if !Task.isCancelled { onTimeout() }
    }
    let value = await task.value
    watchdog.cancel()
    return value
}

extension XCTestCase {
    /// Starts `midge sub ARGS` against the broker and waits for its SUBACK.
    func startSub(_ broker: TestBroker, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line) async throws -> RunningSub {
        let sub = RunningSub(["-h", "127.0.0.1", "-p", String(broker.port)] + arguments)
        if !(await sub.waitReady()) {
            let result = await sub.finish(timeout: 2)
            XCTFail("midge sub did not subscribe:\n\(result)", file: file, line: line)
            throw XCTSkip("subscriber not ready")
        }
        return sub
    }

    /// Runs `midge pub ARGS` against the broker to completion (10 s at most).
    @discardableResult
    func pub(_ broker: TestBroker, _ arguments: [String], stdin: ToolInput = .empty, expect code: Int32? = 0,
             file: StaticString = #filePath, line: UInt = #line) async -> ToolRun {
        let io = ToolIO.capture(stdin: stdin)
        let args = ["-h", "127.0.0.1", "-p", String(broker.port)] + arguments
        let task = Task { await MidgePub(io: io).run(arguments: args) }
        let exit = await valueWithTimeout(task, timeout: 10, onTimeout: {
            XCTFail("midge pub did not finish within 10 s", file: file, line: line)
        })
        let result = ToolRun(code: exit, stdout: io.stdout.text, stderr: io.stderr.text)
        if let code, result.code != code { XCTFail("midge pub \(arguments): expected exit \(code)\n\(result)", file: file, line: line) }
        return result
    }

    /// Runs a tool with no broker arguments added (for usage errors and unreachable brokers).
    func run(_ tool: ToolKind, _ arguments: [String], stdin: ToolInput = .empty) async -> ToolRun {
        let io = ToolIO.capture(stdin: stdin)
        let task = Task { () -> Int32 in
            switch tool {
            case .pub: return await MidgePub(io: io).run(arguments: arguments)
            case .sub: return await MidgeSub(io: io).run(arguments: arguments)
            case .rr: return await MidgeRR(io: io).run(arguments: arguments)
            }
        }
        let exit = await valueWithTimeout(task, timeout: 15, onTimeout: {
            XCTFail("\(tool) did not finish within 15 s")
            io.interrupt()
        })
        return ToolRun(code: exit, stdout: io.stdout.text, stderr: io.stderr.text)
    }
}
