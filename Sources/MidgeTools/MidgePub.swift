import DequeModule
import Foundation
import MidgeClient
import MQTTCodec
import NIOCore

/// Error output as Mosquitto's clients do it: `err_printf` lines are silenced by `--quiet`.
struct Reporter {
    let io: ToolIO
    let quiet: Bool
    /// err_printf
    func error(_ text: String) { if !quiet { io.stderr.write(text) } }
    /// fprintf(stderr, ...)
    func always(_ text: String) { io.stderr.write(text) }
}

/// Parses the command line for `tool`; on help, version or an error, prints what Mosquitto
/// prints and returns the exit code.
func parseOrExit(_ arguments: [String], tool: ToolKind, io: ToolIO) -> Result<ClientOptions, ExitStatus> {
    switch OptionParser.parse(arguments, tool: tool, environment: io.environment) {
    case .success(let options):
        return .success(options)
    case .help:
        io.stdout.write(Usage.text(tool, version: io.version))
        return .failure(ExitStatus(code: 1))
    case .version:
        io.stdout.write(Usage.versionLine(tool, io.version))
        return .failure(ExitStatus(code: 1))
    case .failure(let message, let quietable):
        let quiet = quietable && arguments.contains("--quiet")
        if !quiet { io.stderr.write(message) }
        io.stderr.write("\nUse '\(tool.displayName) --help' to see usage.\n")
        return .failure(ExitStatus(code: 1))
    }
}

struct ExitStatus: Error { let code: Int32 }

/// `midge pub`: mosquitto_pub's options, output and exit codes.
///
/// Exit codes: 0 once every message is published (QoS 1 and 2: acknowledged) and DISCONNECT is
/// sent; 1 for a usage error or when the broker cannot be reached; the CONNACK return code (v3)
/// or reason code (v5) when the broker refuses the connection; 7 when the connection is lost.
public struct MidgePub: Sendable {
    public let io: ToolIO

    public init(io: ToolIO) { self.io = io }

    public func run(arguments: [String]) async -> Int32 {
        let options: ClientOptions
        switch parseOrExit(arguments, tool: .pub, io: io) {
        case .success(let parsed): options = parsed
        case .failure(let status): return status.code
        }
        let report = Reporter(io: io, quiet: options.quiet)

        var payload = options.message ?? []
        if options.publishMode == .stdinFile {
            var all: [UInt8] = []
            while let chunk = await io.stdin.read() { all += chunk }
            if all.count > 268_435_455 {
                report.error("Error: Message length must be less than 268435455 bytes.\n\n")
                report.error("Error loading input from stdin.\n")
                return 1
            }
            if all.isEmpty {
                report.error("Error: Zero length input.\n")
                report.error("Error loading input from stdin.\n")
                return 1
            }
            payload = all
        } else if options.publishMode == .file, let file = options.file {
            guard let data = FileManager.default.contents(atPath: file) else {
                report.error("Error: Unable to open file \"\(file)\".\n")
                report.error("Error loading input file \"\(file)\".\n")
                return 1
            }
            if data.count > 268_435_455 {
                report.error("Error: File must be less than 268435455 bytes.\n\n")
                report.error("Error loading input file \"\(file)\".\n")
                return 1
            }
            payload = Array(data)
        }
        guard let topic = options.topic, options.publishMode != .none else {
            report.always("Error: Both topic and message must be supplied.\n")
            io.stdout.write(Usage.text(.pub, version: io.version))
            return 1
        }
        if options.password != nil && options.username == nil && options.protocolVersion != .v5 {
            report.error("Error: Problem setting username and/or password.\n")
            return 1
        }

        let plan = ConnectionPlan(options: options, io: io)
        let (client, _, failure) = plan.makeClient(receiveMaximum: 20)
        switch await connect(client, failure: failure, version: options.protocolVersion) {
        case .connected:
            break
        case .refused(let code):
            report.error(connectionErrorLine(code: code, version: options.protocolVersion))
            let second: MosquittoError = options.protocolVersion == .v5 ? .protocolError : .connectionRefused
            report.error("Error: \(second.text)\n")
            return Int32(code)
        case .unreachable(let text):
            report.error(text)
            return 1
        case .failed(let text):
            report.error(text)
            return 1
        }

        // In-process callers (tests) can stop a publisher that waits for acknowledgements.
        io.onInterrupt { Task { await client.disconnect() } }
        let publisher = Publisher(client: client, options: options, report: report, topic: topic)
        let status: Int32
        if options.publishMode == .stdinLine {
            status = await publisher.publishLines(from: io.stdin)
        } else {
            status = await publisher.publishRepeatedly(payload)
        }
        if status != MosquittoError.connectionLost.rawValue {
            await client.disconnect(properties: options.typedProperties(.disconnect))
        } else {
            await client.disconnect()
        }
        return status
    }
}

/// Publishing for `pub`: one message (repeated), or one per line of standard input with up to
/// `-M` messages in flight, in order.
private struct Publisher {
    let client: MQTTClient
    let options: ClientOptions
    let report: Reporter
    let topic: String

    private var properties: Properties { options.typedProperties(.publish) }

    func publishRepeatedly(_ payload: [UInt8]) async -> Int32 {
        let buffer = ByteBuffer(bytes: payload)
        for count in 1...options.repeatCount {
            if count > 1 && options.repeatDelay > 0 {
                try? await Task.sleep(nanoseconds: UInt64(options.repeatDelay * 1_000_000_000))
            }
            do {
                let result = try await client.publish(topic, payload: buffer, qos: options.qos, retain: options.retain, properties: properties)
                warnIfFailed(result, mid: count)
            } catch {
                return failed(error)
            }
        }
        return 0
    }

    /// `-l`. Lines go to the client's event loop in batches (one hop per chunk read, not per line);
    /// at most `-M` messages wait for their acknowledgement (QoS 0: a larger bound on what is queued).
    func publishLines(from input: ToolInput) async -> Int32 {
        var inFlight = Deque<(mid: Int, result: EventLoopFuture<PublishResult>)>()
        var mid = 0
        var partial: [UInt8] = []
        let window = options.qos == .atMostOnce ? 4096 : max(options.maxInflight, 1)
        // QoS 0 completes at once: settle half the window in one go; QoS 1/2 one by one, as acks come.
        let settleCount = options.qos == .atMostOnce ? window / 2 : 1
        var endOfInput = false
        while !endOfInput {
            var lines: [[UInt8]] = []
            if let chunk = await input.read() {
                var start = chunk.startIndex
                while let newline = chunk[start...].firstIndex(of: 0x0A) {
                    if partial.isEmpty {
                        lines.append(Array(chunk[start..<newline]))
                    } else {
                        lines.append(partial + chunk[start..<newline])
                        partial = []
                    }
                    start = newline + 1
                }
                partial += chunk[start...]
            } else {
                endOfInput = true
                if !partial.isEmpty { lines.append(partial) }
            }
            var next = 0
            while next < lines.count {
                if inFlight.count >= window, let status = await settle(&inFlight, count: settleCount) { return status }
                let batch = lines[next..<min(lines.count, next + window - inFlight.count)]
                guard let futures = await submit(batch) else { return failed(MQTTClientError.notConnected) }
                for future in futures {
                    mid += 1
                    inFlight.append((mid, future))
                }
                next += batch.count
            }
        }
        while !inFlight.isEmpty {
            if let status = await settle(&inFlight, count: inFlight.count) { return status }
        }
        return 0
    }

    /// Starts publishing `lines`, in order, from one task on the client's event loop.
    private func submit(_ lines: ArraySlice<[UInt8]>) async -> [EventLoopFuture<PublishResult>]? {
        let client = self.client, topic = self.topic, qos = options.qos, retain = options.retain, properties = self.properties
        return try? await client.eventLoop.submit {
            lines.map { client.enqueuePublish(topic, payload: ByteBuffer(bytes: $0), qos: qos, retain: retain, properties: properties) }
        }.get()
    }

    /// Waits for the oldest `count` publishes; the exit status when one failed.
    private func settle(_ inFlight: inout Deque<(mid: Int, result: EventLoopFuture<PublishResult>)>, count: Int) async -> Int32? {
        let entries = (0..<min(count, inFlight.count)).map { _ in inFlight.removeFirst() }
        guard let first = entries.first else { return nil }
        let results = (try? await EventLoopFuture.whenAllComplete(entries.map(\.result), on: first.result.eventLoop).get()) ?? []
        for (entry, result) in zip(entries, results) {
            switch result {
            case .success(let published): warnIfFailed(published, mid: entry.mid)
            case .failure(let error): return failed(error)
            }
        }
        return nil
    }

    private func warnIfFailed(_ result: PublishResult, mid: Int) {
        guard result.reasonCode.rawValue > 127 else { return }
        report.error("Warning: Publish \(mid % 65536) failed: \(reasonString(result.reasonCode.rawValue)).\n")
        if let text = result.properties.reasonString { report.error("\(text)\n") }
    }

    private func failed(_ error: Error) -> Int32 {
        if case MQTTClientError.invalidArgument = error {
            report.error("Error: Invalid input. Does your topic contain '+' or '#'?\n")
            return 0
        }
        report.error("Error: \(MosquittoError.connectionLost.text)\n")
        return MosquittoError.connectionLost.rawValue
    }
}
