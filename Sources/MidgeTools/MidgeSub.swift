import Dispatch
import Foundation
import MidgeClient
import MQTTCodec
import NIOConcurrencyHelpers
import NIOCore

/// `midge sub`: mosquitto_sub's options, output and exit codes. Each message is written (and so
/// reaches a pipe) as soon as it arrives.
///
/// Exit codes: 0 after `-C` messages, `-E`, `--retained-only`'s first fresh message, SIGINT or
/// SIGTERM; 27 when `-W` seconds passed ("Timed out"); 1 for a usage error or an unreachable
/// broker; the CONNACK code when the broker refuses. A lost connection is re-established every
/// second and the topics subscribed again, as mosquitto_sub does.
public struct MidgeSub: Sendable {
    public let io: ToolIO

    public init(io: ToolIO) { self.io = io }

    public func run(arguments: [String]) async -> Int32 {
        let options: ClientOptions
        switch parseOrExit(arguments, tool: .sub, io: io) {
        case .success(let parsed): options = parsed
        case .failure(let status): return status.code
        }
        if options.noRetain && options.retainedOnly {
            io.stderr.write("\nError: Combining '-R' and '--retained-only' makes no sense.\n")
            return 1
        }
        if options.password != nil && options.username == nil && options.protocolVersion != .v5 {
            Reporter(io: io, quiet: options.quiet).error("Error: Problem setting username and/or password.\n")
            return 1
        }
        return await Subscriber(io: io, options: options).run()
    }
}

/// What the subscriber reacts to, in one queue.
enum SubscriberEvent: Sendable {
    case message(MQTTMessage)
    /// The messages of one connection ended (nil: after our own DISCONNECT).
    case connectionEnded(generation: Int, Error?)
    case timeout
    case interrupt
    /// A second after a lost connection: try again.
    case reconnectDue
}

/// The subscribe loop, shared by `sub` (and its reconnects).
final class Subscriber: @unchecked Sendable {
    let io: ToolIO
    let options: ClientOptions
    let report: Reporter
    let formatter: MessageFormatter
    let plan: ConnectionPlan
    let events: AsyncStream<SubscriberEvent>
    private let sink: AsyncStream<SubscriberEvent>.Continuation

    private var client: MQTTClient?
    private var generation = 0
    /// When -W runs out.
    private var deadline: Date?
    private var received = 0
    private var removals: [EventLoopFuture<PublishResult>] = []

    init(io: ToolIO, options: ClientOptions) {
        self.io = io
        self.options = options
        report = Reporter(io: io, quiet: options.quiet)
        formatter = MessageFormatter(options: options)
        plan = ConnectionPlan(options: options, io: io)
        (events, sink) = AsyncStream.makeStream(of: SubscriberEvent.self)
    }

    func run() async -> Int32 {
        let timer = startTimers()
        defer { timer?.cancel() }

        // The first connection: failures are final.
        switch await open() {
        case .ready: break
        case .finished(let code): return code
        case .unreachable(let text):
            report.error(text)
            return 1
        }
        io.signalReady()

        for await event in events {
            switch event {
            case .message(let message):
                if let code = await handle(message) { return code }
            case .connectionEnded(let ended, _):
                guard ended == generation, client != nil else { continue }
                // Like mosquitto_sub's loop_forever: reconnect every second, subscribe again.
                client = nil
                scheduleReconnect()
            case .reconnectDue:
                switch await open() {
                case .ready: break
                case .finished(let code): return code
                case .unreachable: scheduleReconnect()
                }
            case .timeout:
                await stop(reason: .disconnectWithWillMessage)
                report.error("Timed out\n")
                return MosquittoError.timeout.rawValue
            case .interrupt:
                await stop(reason: .disconnectWithWillMessage)
                return 0
            }
        }
        return 0
    }

    /// -W and SIGINT / SIGTERM.
    private func startTimers() -> Task<Void, Never>? {
        let sink = self.sink
        io.onInterrupt { sink.yield(.interrupt) }
        if io.handlesSignals { SignalTrap.shared.install { sink.yield(.interrupt) } }
        guard options.timeout > 0 else { return nil }
        let seconds = options.timeout
        deadline = Date().addingTimeInterval(TimeInterval(seconds))
        return Task {
            try? await Task.sleep(nanoseconds: UInt64(seconds) * 1_000_000_000)
            if !Task.isCancelled { sink.yield(.timeout) }
        }
    }

    enum OpenResult {
        case ready
        case finished(Int32)
        case unreachable(String)
    }

    /// Connects, subscribes, unsubscribes -U topics; `.finished` when the tool is done (-E,
    /// refused, all subscriptions denied).
    private func open() async -> OpenResult {
        generation += 1
        let receiveMaximum = options.messageCount > 0 && options.messageCount < 20 ? options.messageCount : 20
        let (client, tracer, failure) = plan.makeClient(receiveMaximum: receiveMaximum)
        guard let outcome = await connectRacingTimeout(client, failure: failure) else {
            // -W fired before CONNACK: mosquitto_sub's signal handler calls exit(-1).
            return .finished(255)
        }
        switch outcome {
        case .connected: break
        case .refused(let code):
            report.error(connectionErrorLine(code: code, version: options.protocolVersion))
            return .finished(Int32(code))
        case .unreachable(let text), .failed(let text):
            return .unreachable(text)
        }
        // Forward this connection's messages into the event queue.
        let sink = self.sink, generation = self.generation
        Task {
            do {
                for try await message in client.messages { sink.yield(.message(message)) }
                sink.yield(.connectionEnded(generation: generation, nil))
            } catch {
                sink.yield(.connectionEnded(generation: generation, error))
            }
        }
        let v5 = options.protocolVersion == .v5
        let subscriptionOptions = SubscriptionOptions(
            qos: options.qos, noLocal: false, retainAsPublished: v5 && options.retainAsPublished,
            retainHandling: v5 && options.noRetain ? .doNotSend : .sendOnSubscribe)
        let codes: [ReasonCode]
        do {
            codes = try await client.subscribe(options.topics.map { TopicSubscription(filter: $0, options: subscriptionOptions) },
                                               properties: options.typedProperties(.subscribe))
        } catch {
            await client.disconnect()
            return .unreachable("Error: \(MosquittoError.connectionLost.text)\n")
        }
        if options.debug && !options.quiet {
            tracer.print("Subscribed (mid: \(tracer.subscribeMid)): " + codes.map { String($0.rawValue) }.joined(separator: ", "))
        }
        if !codes.contains(where: { $0.rawValue < 128 }) {
            await client.disconnect(properties: options.typedProperties(.disconnect))
            report.error("All subscription requests were denied.\n")
            return .finished(0)
        }
        for topic in options.unsubscribeTopics {
            _ = try? await client.unsubscribe([topic], properties: options.typedProperties(.unsubscribe))
        }
        if options.exitAfterSubscribe {
            await client.disconnect(properties: options.typedProperties(.disconnect))
            return .finished(0)
        }
        self.client = client
        return .ready
    }

    /// -W also bounds the wait for CONNACK: mosquitto_sub then exits at once with 255.
    private func connectRacingTimeout(_ client: MQTTClient, failure: ConnectFailure) async -> ConnectOutcome? {
        let version = options.protocolVersion
        // Only before the first CONNACK: later, -W is an ordinary event of the loop (exit 27).
        guard let deadline, generation == 1 else { return await connect(client, failure: failure, version: version) }
        return await withCheckedContinuation { (continuation: CheckedContinuation<ConnectOutcome?, Never>) in
            let resumed = NIOLockedValueBox(false)
            let finish: @Sendable (ConnectOutcome?) -> Void = { outcome in
                let first = resumed.withLockedValue { done -> Bool in defer { done = true }; return !done }
                if first { continuation.resume(returning: outcome) }
            }
            Task { finish(await connect(client, failure: failure, version: version)) }
            Task {
                let remaining = deadline.timeIntervalSinceNow
                if remaining > 0 { try? await Task.sleep(nanoseconds: UInt64(remaining * 1_000_000_000)) }
                finish(nil)
            }
        }
    }

    private func scheduleReconnect() {
        let sink = self.sink
        Task {
            try? await Task.sleep(nanoseconds: 1_000_000_000)
            sink.yield(.reconnectDue)
        }
    }

    /// One message: filters, --remove-retained, printing, -C.
    private func handle(_ message: MQTTMessage) async -> Int32? {
        if options.retainedOnly && !message.retain {
            await stop(reason: .normalDisconnection)
            return 0
        }
        if message.retain && options.noRetain { return nil }
        for filter in options.filterOuts where Topic.matches(name: message.topic, filter: filter) { return nil }
        if options.removeRetained && message.retain, let client {
            removals.append(client.enqueuePublish(message.topic, payload: ByteBuffer(), qos: .atLeastOnce, retain: true))
        }
        let (output, errors) = formatter.render(message)
        for error in errors { report.error(error) }
        io.stdout.write(output)
        if io.stdout.failed {
            await stop(reason: .normalDisconnection)
            return 0
        }
        if options.messageCount > 0 {
            received += 1
            if received == options.messageCount {
                await stop(reason: .normalDisconnection)
                return 0
            }
        }
        return nil
    }

    private func stop(reason: ReasonCode) async {
        guard let client else { return }
        self.client = nil
        for removal in removals { _ = try? await removal.get() }
        removals = []
        await client.disconnect(reason: options.protocolVersion == .v5 ? reason : .normalDisconnection,
                                properties: options.typedProperties(.disconnect))
    }
}

/// SIGINT and SIGTERM for a real `midge sub` process: stop cleanly instead of dying.
final class SignalTrap: @unchecked Sendable {
    static let shared = SignalTrap()
    private let lock = NIOLock()
    private var sources: [DispatchSourceSignal] = []
    private var handlers: [@Sendable () -> Void] = []

    func install(_ handler: @escaping @Sendable () -> Void) {
        lock.withLock {
            handlers.append(handler)
            guard sources.isEmpty else { return }
            for number in [SIGINT, SIGTERM] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { [weak self] in
                    guard let self else { return }
                    let all = self.lock.withLock { self.handlers }
                    for handler in all { handler() }
                }
                source.resume()
                sources.append(source)
            }
        }
    }
}
