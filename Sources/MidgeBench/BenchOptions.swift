import Foundation
import MQTTCodec
import NIOCore

/// The load shapes `midge bench` knows, after EMQ's open MQTT benchmark suite.
public enum BenchScenario: String, CaseIterable, Sendable, Codable {
    /// P publishers → one topic → S subscribers (every subscriber gets every message).
    case fanout
    /// N publishers, each to its own topic with its own subscriber.
    case p2p
    /// N publishers (each on its own topic) → one `$share` group of S subscribers.
    case fanin
    /// C connections opened at a given rate and held open, no traffic.
    case conn

    /// The topic pattern used when none is given; `%i` is the publisher's index.
    public var defaultTopic: String {
        switch self {
        case .fanout: return "bench/fanout"
        case .p2p: return "bench/p2p/%i"
        case .fanin: return "bench/fanin/%i"
        case .conn: return "bench/conn"
        }
    }
}

/// Everything one bench run needs; defaults match `midge bench SCENARIO` without options.
public struct BenchOptions: Sendable {
    public var scenario: BenchScenario
    public var host = "127.0.0.1"
    public var port = 1883
    public var version: ProtocolVersion = .v5
    /// Publishers (fanout, fanin) or pairs (p2p). nil: the scenario's default.
    public var publishers: Int?
    /// Subscribers (fanout, fanin; p2p always has one per publisher). nil: the scenario's default.
    public var subscribers: Int?
    /// Connections for `conn`.
    public var connections = 1000
    /// Messages per publisher; 0 = until `duration` ends.
    public var count = 0
    /// Seconds of publishing (or of holding the connections for `conn`); nil: 10 s unless a
    /// `count` is given (then publishing ends with the count).
    public var duration: Double?
    /// Messages per second per publisher; 0 = as fast as the window and the socket allow.
    public var rate: Double = 0
    public var qos: QoS = .atMostOnce
    /// Bytes of payload (at least 16: timestamp, publisher id, sequence number).
    public var payloadSize = 16
    /// Topic pattern; `%i` is replaced by the publisher's index.
    public var topic: String?
    /// The `$share` group name for fanin.
    public var shareGroup = "bench"
    /// Outgoing QoS 1/2 window per publisher (further capped by the broker's Receive Maximum in v5).
    public var inflight = 100
    /// Event loop threads for the simulated clients.
    public var threads = System.coreCount
    /// New connections per second while connecting; 0 = as fast as possible.
    public var connectRate: Double = 0
    /// At most this many connection handshakes in progress at once.
    public var maxPendingConnects = 256
    public var keepAlive: UInt16 = 60
    /// Seconds to wait after publishing ends for the last deliveries.
    public var drainTimeout: Double = 10
    /// Client id prefix (a random run id is appended so parallel runs don't take each other over).
    public var clientIDPrefix = "midge-bench"
    /// Persistent sessions for every client (publishers and subscribers): 3.1.1 clean session 0,
    /// v5 Clean Start 0 with `sessionExpiry`. A broker with persistence then stores every QoS 1/2
    /// message routed to a subscriber. The sessions are removed at the end of the run (each
    /// client id reconnects with a clean session), so runs against one broker don't pile up
    /// offline sessions that would queue the next run's messages.
    public var persistent = false
    /// Session Expiry Interval (seconds) sent with `persistent` on MQTT 5.
    public var sessionExpiry: UInt32 = 3600

    public init(scenario: BenchScenario) { self.scenario = scenario }

    public var publisherCount: Int {
        switch scenario {
        case .fanout: return publishers ?? 1
        case .p2p: return publishers ?? subscribers ?? 100
        case .fanin: return publishers ?? 100
        case .conn: return 0
        }
    }

    public var subscriberCount: Int {
        switch scenario {
        case .fanout: return subscribers ?? 100
        case .p2p: return publisherCount
        case .fanin: return subscribers ?? 5
        case .conn: return 0
        }
    }

    public var topicPattern: String { topic ?? scenario.defaultTopic }

    /// Seconds of publishing (holding for `conn`), nil when only the count ends it.
    public var effectiveDuration: Double? {
        if let duration { return duration }
        return count > 0 && scenario != .conn ? nil : 10
    }

    /// Checks the combination; the message is meant for the user.
    public func validate() throws {
        func fail(_ message: String) -> BenchError { BenchError.invalidOptions(message) }
        guard payloadSize >= BenchPayload.headerSize else {
            throw fail("--payload-size must be at least \(BenchPayload.headerSize) (timestamp, publisher id, sequence number)")
        }
        guard payloadSize <= 268_435_000 else { throw fail("--payload-size is too large") }
        guard threads >= 1 else { throw fail("--threads must be at least 1") }
        guard (duration ?? 1) > 0, count >= 0 else { throw fail("--duration and --count must be positive") }
        guard rate >= 0, connectRate >= 0 else { throw fail("rates cannot be negative") }
        guard (1...65535).contains(inflight) else { throw fail("--inflight must be between 1 and 65535") }
        guard (1...65535).contains(port) else { throw fail("--port must be between 1 and 65535") }
        switch scenario {
        case .conn:
            guard connections >= 1 else { throw fail("--connections must be at least 1") }
        case .fanout, .fanin, .p2p:
            guard publisherCount >= 1, subscriberCount >= 1 else { throw fail("need at least one publisher and one subscriber") }
            let pattern = topicPattern
            if scenario == .p2p && !pattern.contains("%i") {
                throw fail("p2p needs %i in --topic so every publisher has its own topic")
            }
            if pattern.contains("%i") {
                let levels = pattern.split(separator: "/", omittingEmptySubsequences: false)
                if levels.contains(where: { $0.contains("%i") && $0 != "%i" }) {
                    throw fail("%i must be a whole topic level in --topic")
                }
            }
            if pattern.contains("+") || pattern.contains("#") { throw fail("--topic cannot contain wildcards") }
        }
    }

    /// The topic publisher `index` publishes to.
    func publishTopic(_ index: Int) -> String {
        topicPattern.replacingOccurrences(of: "%i", with: String(index))
    }

    /// The filter subscriber `index` subscribes to.
    func subscriptionFilter(_ index: Int) -> String {
        switch scenario {
        case .p2p: return publishTopic(index)
        case .fanout: return topicPattern.replacingOccurrences(of: "%i", with: "+")
        case .fanin: return "$share/\(shareGroup)/" + topicPattern.replacingOccurrences(of: "%i", with: "+")
        case .conn: return topicPattern
        }
    }
}

public enum BenchError: Error, CustomStringConvertible {
    case invalidOptions(String)
    case connectFailed(String)
    case refused(String)

    public var description: String {
        switch self {
        case .invalidOptions(let message): return message
        case .connectFailed(let message): return "connection failed: \(message)"
        case .refused(let message): return message
        }
    }
}
