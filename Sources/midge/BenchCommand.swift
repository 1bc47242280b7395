import ArgumentParser
import Foundation
import MQTTCodec
import MidgeBench
import NIOCore

/// `midge bench SCENARIO [options]`: an MQTT load generator (like emqtt-bench).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Generate MQTT load against a broker and measure latency, throughput, losses and duplicates.",
        discussion: """
        Scenarios (after EMQ's open MQTT benchmark suite):
          fanout  P publishers → one topic → S subscribers (defaults 1 → 100)
          p2p     N publishers, each to its own topic and its own subscriber (default 100)
          fanin   N publishers (own topics) → a $share group of S subscribers (defaults 100 → 5)
          conn    open C connections (at --conn-rate) and hold them for --duration

        Each payload carries a send timestamp, the publisher id and a sequence number, so the
        latency is end to end and losses and duplicates are exact. A progress line is shown on
        stderr when it is a terminal; the summary goes to stdout (--json for one JSON object).
        """,
        helpNames: [.long]
    )

    @Argument(help: "fanout, p2p, fanin or conn.")
    var scenario: String

    @Option(name: [.customShort("h"), .long], help: "Broker host.")
    var host = "127.0.0.1"

    @Option(name: [.customShort("p"), .long], help: "Broker port.")
    var port = 1883

    @Option(name: [.customShort("V"), .customLong("protocol-version")], help: "mqttv5 (5), mqttv311 (311) or mqttv31 (31).")
    var protocolVersion = "5"

    @Option(name: [.customShort("P"), .long], help: "Publishers (p2p: pairs).")
    var publishers: Int?

    @Option(name: [.customShort("S"), .long], help: "Subscribers (fanout, fanin).")
    var subscribers: Int?

    @Option(name: [.customShort("C"), .long], help: "Connections (conn).")
    var connections = 1000

    @Option(name: [.customShort("n"), .long], help: "Messages per publisher (0: until --duration ends).")
    var count = 0

    @Option(name: [.customShort("d"), .long], help: "Seconds of publishing, or of holding connections (default 10; none with --count).")
    var duration: Double?

    @Option(name: [.customShort("r"), .long], help: "Messages per second per publisher (0: unthrottled).")
    var rate: Double = 0

    @Option(name: [.customShort("q"), .long], help: "QoS 0, 1 or 2.")
    var qos = 0

    @Option(name: [.customShort("s"), .customLong("payload-size")], help: "Payload bytes (at least 16).")
    var payloadSize = 16

    @Option(name: [.customShort("t"), .long], help: "Topic pattern, %i = publisher index (defaults: bench/fanout, bench/p2p/%i, bench/fanin/%i).")
    var topic: String?

    @Option(name: .customLong("share-group"), help: "$share group name for fanin.")
    var shareGroup = "bench"

    @Option(name: .long, help: "QoS 1/2 messages in flight per publisher (v5: also capped by the broker's Receive Maximum).")
    var inflight = 100

    @Option(name: .long, help: "Event loop threads for the clients (default: cores).")
    var threads = System.coreCount

    @Option(name: .customLong("conn-rate"), help: "New connections per second (0: as fast as possible).")
    var connRate: Double = 0

    @Option(name: .customLong("max-pending"), help: "Connection handshakes in progress at once.")
    var maxPending = 256

    @Option(name: [.customShort("k"), .customLong("keepalive")], help: "Keep alive seconds.")
    var keepAlive = 60

    @Option(name: .long, help: "Seconds to wait for the last deliveries after publishing ends (also the stall timeout).")
    var drain: Double = 10

    @Option(name: [.customShort("i"), .customLong("id-prefix")], help: "Client id prefix.")
    var idPrefix = "midge-bench"

    @Flag(name: .long, help: "Persistent sessions for every client (3.1.1 clean session 0; v5 Clean Start 0, Session Expiry 3600 s), so a broker with persistence stores every QoS 1/2 message; removed at the end of the run.")
    var persistent = false

    @Flag(name: .long, help: "Print the result as one JSON object.")
    var json = false

    func run() throws {
        guard let scenario = BenchScenario(rawValue: scenario) else {
            throw ValidationError("Unknown scenario '\(self.scenario)' (fanout, p2p, fanin or conn).")
        }
        var options = BenchOptions(scenario: scenario)
        options.host = host
        options.port = port
        switch protocolVersion.lowercased() {
        case "5", "mqttv5": options.version = .v5
        case "311", "mqttv311": options.version = .v3_1_1
        case "31", "mqttv31": options.version = .v3_1
        default: throw ValidationError("Unknown protocol version '\(protocolVersion)'.")
        }
        guard let qos = QoS(rawValue: UInt8(clamping: max(0, self.qos))), self.qos <= 2 else {
            throw ValidationError("QoS must be 0, 1 or 2.")
        }
        guard (0...65535).contains(keepAlive) else { throw ValidationError("Keep alive must be 0-65535.") }
        options.qos = qos
        options.publishers = publishers
        options.subscribers = subscribers
        options.connections = connections
        options.count = count
        options.duration = duration
        options.rate = rate
        options.payloadSize = payloadSize
        options.topic = topic
        options.shareGroup = shareGroup
        options.inflight = inflight
        options.threads = threads
        options.connectRate = connRate
        options.maxPendingConnects = maxPending
        options.keepAlive = UInt16(keepAlive)
        options.drainTimeout = drain
        options.clientIDPrefix = idPrefix
        options.persistent = persistent

        raiseFileLimit()
        signal(SIGPIPE, SIG_IGN)
        let runner: BenchRunner
        do {
            runner = try BenchRunner(options: options)
        } catch let error as BenchError {
            throw ValidationError(error.description)
        }
        let tty = isatty(STDERR_FILENO) != 0
        let progress: ((BenchProgress) -> Void)? = tty ? { update in
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + update.line).utf8))
        } : nil
        let result: BenchResult
        do {
            result = try runner.run(progress: progress)
        } catch {
            if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        print(json ? result.json() : result.table())
        if result.stalled { throw ExitCode(2) }
    }

    /// Many connections need many descriptors: raise the soft limit to the hard one.
    private func raiseFileLimit() {
        var limit = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(RLIMIT_NOFILE_VALUE, &limit)
    }
}

#if os(Linux)
private let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#else
private let RLIMIT_NOFILE_VALUE = RLIMIT_NOFILE
#endif
