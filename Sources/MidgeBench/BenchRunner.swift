import Dispatch
import Foundation
import MQTTCodec
import NIOCore
import NIOPosix

/// Runs one scenario: connects the simulated clients over a `MultiThreadedEventLoopGroup`
/// (round robin over its loops), starts the publishers together, waits for the last
/// deliveries, closes everything and sums up. Blocking; call it off any event loop.
public final class BenchRunner {
    public let options: BenchOptions

    public init(options: BenchOptions) throws {
        try options.validate()
        self.options = options
    }

    /// Receivers that count as one for losses and duplicates: a subscriber alone, or a whole
    /// `$share` group; and the publishers whose messages each of them should get.
    private struct ReceiverGroup {
        var members: [Int]
        /// nil: every publisher.
        var publisher: Int?
    }

    public func run(progress: ((BenchProgress) -> Void)? = nil) throws -> BenchResult {
        let options = self.options
        let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
        defer { try? group.syncShutdownGracefully() }
        let loops = Array(group.makeIterator())
        let stats = loops.map { _ in LoopStats() }
        let runID = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let publisherCount = options.scenario == .conn ? 0 : options.publisherCount
        let subscriberCount = options.scenario == .conn ? 0 : options.subscriberCount
        var settings = ClientSettings(version: options.version, qos: options.qos, keepAlive: options.keepAlive,
                                      inflight: options.inflight, rate: options.rate, count: options.count,
                                      publisherCount: publisherCount)
        settings.persistent = options.persistent
        settings.sessionExpiry = options.sessionExpiry

        var nextLoop = 0
        func makeClient(_ role: BenchClient.Role, _ name: String) -> BenchClient {
            let index = nextLoop % loops.count
            nextLoop += 1
            return BenchClient(role: role, clientID: "\(options.clientIDPrefix)-\(runID)-\(name)", settings: settings,
                               stats: stats[index], ready: loops[index].makePromise())
        }

        let padding = PublishTemplate.padding(payloadSize: options.payloadSize)
        let subscribers = (0..<subscriberCount).map { makeClient(.subscriber(filter: options.subscriptionFilter($0)), "s\($0)") }
        let publishers = (0..<publisherCount).map { index in
            makeClient(.publisher(PublishTemplate(topic: options.publishTopic(index), qos: options.qos, version: options.version,
                                                  payloadSize: options.payloadSize, publisherID: index, padding: padding)), "p\(index)")
        }
        let idle = options.scenario == .conn ? (0..<options.connections).map { makeClient(.idle, "c\($0)") } : []
        let everyone = subscribers + publishers + idle

        func totals() -> StatsSnapshot {
            var sum = StatsSnapshot()
            for (index, loop) in loops.enumerated() {
                let loopStats = stats[index]
                if let snapshot = try? loop.submit({ loopStats.snapshot() }).wait() { sum = sum + snapshot }
            }
            return sum
        }

        // Connect: subscribers first (so they are subscribed before anything is published).
        let connectStart = BenchPayload.now()
        var lastProgress = connectStart
        let failures = connect(subscribers + publishers + idle, options: options) {
            let now = BenchPayload.now()
            if let progress, now - lastProgress >= 1_000_000_000 {
                lastProgress = now
                progress(BenchProgress(phase: "connecting", elapsed: Double(now - connectStart) / 1e9, totals: totals(), sendRate: 0, receiveRate: 0))
            }
        }
        let connectEnd = BenchPayload.now()
        if failures > 0 && options.scenario != .conn {
            close(everyone)
            let error = stats.compactMap { $0.firstError }.first ?? "unknown error"
            throw BenchError.connectFailed("\(failures) of \(everyone.count) clients failed to connect; first: \(error)")
        }

        let start = BenchPayload.now() + 100_000_000
        var stalled = false
        if options.scenario == .conn {
            let holdUntil = start + UInt64((options.effectiveDuration ?? 10) * 1e9)
            while BenchPayload.now() < holdUntil {
                Thread.sleep(forTimeInterval: min(1, Double(holdUntil - min(holdUntil, BenchPayload.now())) / 1e9))
                progress?(BenchProgress(phase: "holding", elapsed: Double(BenchPayload.now() - start) / 1e9, totals: totals(), sendRate: 0, receiveRate: 0))
            }
        } else {
            let stop = options.effectiveDuration.map { start + UInt64($0 * 1e9) }
            for publisher in publishers {
                publisher.channel?.eventLoop.execute { publisher.start(at: start, stop: stop) }
            }
            stalled = waitForCompletion(start: start, publisherCount: publisherCount, totals: totals, progress: progress)
        }

        close(everyone)
        if options.persistent { removeSessions(of: everyone, loops: loops, settings: settings) }

        // Every channel is closed: the stats and trackers are quiet and safe to read here.
        let connectLatency = stats.dropFirst().reduce(into: stats[0].connectLatency) { $0.add($1.connectLatency) }
        let latency = stats.dropFirst().reduce(into: stats[0].latency) { $0.add($1.latency) }
        func sum(_ key: (LoopStats) -> Int) -> Int { stats.reduce(0) { $0 + key($1) } }

        var lost = 0, duplicates = 0, expected = 0, foreign = sum { $0.foreign }
        let sentBy = publishers.map { $0.sent }
        for receiver in receiverGroups(subscriberCount: subscriberCount, publisherCount: publisherCount) {
            for publisher in 0..<publisherCount {
                let trackers = receiver.members.compactMap { subscribers[$0].trackers[publisher] }
                let merged = SequenceTracker()
                for tracker in trackers { merged.merge(tracker) }
                if receiver.publisher == nil || receiver.publisher == publisher {
                    expected += sentBy[publisher]
                    lost += merged.missing(below: sentBy[publisher])
                    duplicates += merged.duplicates
                } else {
                    foreign += merged.unique + merged.duplicates
                }
            }
        }

        let lastSend = stats.map { $0.lastSend }.max() ?? 0
        let lastReceive = stats.map { $0.lastReceive }.max() ?? 0
        let publishSeconds = lastSend > start ? Double(lastSend - start) / 1e9 : 0
        let receiveSeconds = lastReceive > start ? Double(lastReceive - start) / 1e9 : 0
        let sent = sum { $0.sent }, received = sum { $0.received }
        let connectSeconds = Double(connectEnd - connectStart) / 1e9
        return BenchResult(
            scenario: options.scenario.rawValue, host: options.host, port: options.port,
            protocolVersion: options.version.description, qos: Int(options.qos.rawValue), payloadSize: options.payloadSize,
            publishers: publisherCount, subscribers: subscriberCount, connections: everyone.count,
            ratePerPublisher: options.rate, inflight: options.inflight, threads: options.threads,
            connected: sum { $0.connected }, connectFailures: failures, connectSeconds: connectSeconds,
            connectRate: connectSeconds > 0 ? Double(sum { $0.connected }) / connectSeconds : 0,
            connectLatency: LatencySummary(connectLatency),
            publishSeconds: publishSeconds, receiveSeconds: receiveSeconds,
            sent: sent, acked: sum { $0.acked }, received: received, expected: expected, lost: lost, duplicates: duplicates,
            throughputIn: publishSeconds > 0 ? Double(sent) / publishSeconds : 0,
            throughputOut: receiveSeconds > 0 ? Double(received) / receiveSeconds : 0,
            latency: LatencySummary(latency),
            publishErrors: sum { $0.publishErrors }, unexpectedAcks: sum { $0.unexpectedAcks },
            unexpectedCloses: sum { $0.unexpectedCloses }, foreignMessages: foreign, stalled: stalled, persistent: options.persistent,
            firstError: stats.compactMap { $0.firstError }.first)
    }

    private func receiverGroups(subscriberCount: Int, publisherCount: Int) -> [ReceiverGroup] {
        switch options.scenario {
        case .fanout: return (0..<subscriberCount).map { ReceiverGroup(members: [$0], publisher: nil) }
        case .p2p: return (0..<subscriberCount).map { ReceiverGroup(members: [$0], publisher: $0) }
        case .fanin: return [ReceiverGroup(members: Array(0..<subscriberCount), publisher: nil)]
        case .conn: return []
        }
    }

    /// Opens the connections in order, at most `maxPendingConnects` handshakes at a time and at
    /// `connectRate` per second if set. Returns how many failed.
    private func connect(_ clients: [BenchClient], options: BenchOptions, tick: () -> Void) -> Int {
        let slots = DispatchSemaphore(value: max(1, options.maxPendingConnects))
        let begin = BenchPayload.now()
        var readies: [EventLoopFuture<Void>] = []
        readies.reserveCapacity(clients.count)
        for (index, client) in clients.enumerated() {
            if options.connectRate > 0 {
                let due = begin + UInt64(Double(index) / options.connectRate * 1e9)
                let now = BenchPayload.now()
                if due > now { Thread.sleep(forTimeInterval: Double(due - now) / 1e9) }
            }
            while slots.wait(timeout: .now() + .milliseconds(500)) == .timedOut { tick() }
            tick()
            let loop = client.ready.futureResult.eventLoop
            client.connectStarted = BenchPayload.now()
            client.ready.futureResult.whenComplete { _ in slots.signal() }
            ClientBootstrap(group: loop)
                .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in channel.pipeline.addHandler(client) }
                .connect(host: options.host, port: options.port)
                .whenFailure { error in client.connectionFailed(error) }
            readies.append(client.ready.futureResult)
        }
        var failures = 0
        for ready in readies {
            do { try ready.wait() } catch { failures += 1 }
            tick()
        }
        return failures
    }

    /// Waits until the publishers are done and the deliveries are in, or nothing moves for the
    /// drain timeout. Returns true when it gave up on a stall.
    private func waitForCompletion(start: UInt64, publisherCount: Int, totals: () -> StatsSnapshot,
                                   progress: ((BenchProgress) -> Void)?) -> Bool {
        let fanout = options.scenario == .fanout ? options.subscriberCount : 1
        let drain = UInt64(options.drainTimeout * 1e9)
        var previous = StatsSnapshot(), lastChange = BenchPayload.now(), lastProgress = BenchPayload.now()
        var progressBase = StatsSnapshot()
        var publishersDone: UInt64?
        while true {
            Thread.sleep(forTimeInterval: 0.05)
            let now = BenchPayload.now()
            let current = totals()
            if current.sent != previous.sent || current.received != previous.received || current.acked != previous.acked {
                lastChange = now
            }
            previous = current
            if let progress, now - lastProgress >= 1_000_000_000 {
                let seconds = Double(now - lastProgress) / 1e9
                progress(BenchProgress(phase: publishersDone == nil ? "publishing" : "draining",
                                       elapsed: now > start ? Double(now - start) / 1e9 : 0, totals: current,
                                       sendRate: Double(current.sent - progressBase.sent) / seconds,
                                       receiveRate: Double(current.received - progressBase.received) / seconds))
                progressBase = current
                lastProgress = now
            }
            if publishersDone == nil && current.publishersFinished >= publisherCount { publishersDone = now }
            if let done = publishersDone {
                if current.received >= current.sent * fanout { return false }
                if now - done > drain { return false }
            }
            if now > start && now - lastChange > drain { return true }
        }
    }

    /// Ends the persistent sessions of `clients`: each client id connects again with a clean
    /// session and disconnects (3.1.1 has no other way; one way for both versions). Uses its own
    /// stats, so the run's figures don't count these connections.
    private func removeSessions(of clients: [BenchClient], loops: [EventLoop], settings: ClientSettings) {
        var clean = settings
        clean.persistent = false
        let cleaners = clients.enumerated().map { index, client in
            let loop = loops[index % loops.count]
            return BenchClient(role: .idle, clientID: client.clientID, settings: clean, stats: LoopStats(), ready: loop.makePromise())
        }
        _ = connect(cleaners, options: options) {}
        close(cleaners)
    }

    /// Sends DISCONNECT on every connection and waits until all are closed.
    private func close(_ clients: [BenchClient]) {
        var closed: [EventLoopFuture<Void>] = []
        for client in clients {
            guard let channel = client.channel else { continue }
            channel.eventLoop.execute { client.disconnect() }
            closed.append(channel.closeFuture)
        }
        for future in closed { try? future.wait() }
    }
}
