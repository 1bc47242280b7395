import ArgumentParser
import Dispatch
import Foundation
import MidgeServer
import MidgeTools
import NIOConcurrencyHelpers

/// `midge pub|sub|rr ARGS...`: every argument goes to MidgeTools' Mosquitto-compatible parser
/// untouched (so `-h` is the host and `--help` prints mosquitto_pub's kind of usage).
struct PubCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pub",
        abstract: "Publish a message, with mosquitto_pub's options (midge pub --help).",
        helpNames: [])

    @Argument(parsing: .captureForPassthrough) var arguments: [String] = []

    func run() throws {
        let arguments = self.arguments
        runClientTool { await MidgePub(io: .process(version: MidgeServer.version)).run(arguments: arguments) }
    }
}

struct SubCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sub",
        abstract: "Subscribe and print messages, with mosquitto_sub's options (midge sub --help).",
        helpNames: [])

    @Argument(parsing: .captureForPassthrough) var arguments: [String] = []

    func run() throws {
        let arguments = self.arguments
        runClientTool { await MidgeSub(io: .process(version: MidgeServer.version)).run(arguments: arguments) }
    }
}

struct RRCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rr",
        abstract: "Send a request and print the response, with mosquitto_rr's options (midge rr --help).",
        helpNames: [])

    @Argument(parsing: .captureForPassthrough) var arguments: [String] = []

    func run() throws {
        let arguments = self.arguments
        runClientTool { await MidgeRR(io: .process(version: MidgeServer.version)).run(arguments: arguments) }
    }
}

/// Runs an async tool from ArgumentParser's synchronous `run()` and exits with its code.
private func runClientTool(_ body: @escaping @Sendable () async -> Int32) -> Never {
    signal(SIGPIPE, SIG_IGN)
    let code = NIOLockedValueBox<Int32>(1)
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        let result = await body()
        code.withLockedValue { $0 = result }
        done.signal()
    }
    done.wait()
    exit(code.withLockedValue { $0 })
}
