import Foundation

/// Latency percentiles in milliseconds.
public struct LatencySummary: Codable, Sendable, Equatable {
    public var count: UInt64
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p999: Double
    public var max: Double
    public var mean: Double

    init(_ histogram: LatencyHistogram) {
        func ms(_ microseconds: UInt64) -> Double { Double(microseconds) / 1000 }
        count = histogram.totalCount
        p50 = ms(histogram.valueAtPercentile(50))
        p90 = ms(histogram.valueAtPercentile(90))
        p99 = ms(histogram.valueAtPercentile(99))
        p999 = ms(histogram.valueAtPercentile(99.9))
        max = ms(histogram.max)
        mean = histogram.totalCount > 0 ? histogram.mean / 1000 : 0
    }
}

/// What one run measured. Encoded as is by `--json`.
public struct BenchResult: Codable, Sendable {
    public var scenario: String
    public var host: String
    public var port: Int
    public var protocolVersion: String
    public var qos: Int
    public var payloadSize: Int
    public var publishers: Int
    public var subscribers: Int
    /// Connections opened (every client of the run).
    public var connections: Int
    public var ratePerPublisher: Double
    public var inflight: Int
    public var threads: Int

    /// Connections completed and failed, how long connecting took, and the CONNECT→CONNACK
    /// (→SUBACK for subscribers) latency.
    public var connected: Int
    public var connectFailures: Int
    public var connectSeconds: Double
    public var connectRate: Double
    public var connectLatency: LatencySummary

    /// Seconds from the start to the last message sent / received.
    public var publishSeconds: Double
    public var receiveSeconds: Double
    public var sent: Int
    /// QoS 1/2 publishes acknowledged by the broker.
    public var acked: Int
    public var received: Int
    /// Deliveries the subscribers should have got (each message × the receivers it goes to).
    public var expected: Int
    public var lost: Int
    public var duplicates: Int
    /// Messages per second into the broker and out of it.
    public var throughputIn: Double
    public var throughputOut: Double
    public var latency: LatencySummary
    public var publishErrors: Int
    public var unexpectedAcks: Int
    public var unexpectedCloses: Int
    public var foreignMessages: Int
    /// True when the run ended because nothing moved for the drain timeout.
    public var stalled: Bool
    /// The clients had persistent sessions (`--persistent`).
    public var persistent: Bool
    public var firstError: String?

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(self)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// The human summary table.
    public func table() -> String {
        func f(_ value: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", value) }
        func ms(_ l: LatencySummary) -> String {
            "p50 \(f(l.p50, 3))  p90 \(f(l.p90, 3))  p99 \(f(l.p99, 3))  p99.9 \(f(l.p999, 3))  max \(f(l.max, 3))"
        }
        var rows: [(String, String)] = []
        let shape: String
        switch scenario {
        case "conn": shape = "\(connections) connections"
        case "p2p": shape = "\(publishers) pairs"
        case "fanin": shape = "\(publishers) pub → $share group of \(subscribers)"
        default: shape = "\(publishers) pub → \(subscribers) sub"
        }
        let rate = ratePerPublisher > 0 ? "\(f(ratePerPublisher)) msg/s per publisher" : "unthrottled"
        rows.append(("scenario", "\(scenario): \(shape), MQTT \(protocolVersion)" + (scenario == "conn" ? "" : ", QoS \(qos), \(payloadSize) B, \(rate), inflight \(inflight)")
                     + (persistent ? ", persistent sessions" : "")))
        rows.append(("broker", "\(host):\(port)"))
        rows.append(("connections", "\(connected) ok, \(connectFailures) failed in \(f(connectSeconds, 2)) s (\(f(connectRate)) conn/s)"))
        rows.append(("connect ms", ms(connectLatency)))
        if scenario != "conn" {
            rows.append(("published", "\(sent) in \(f(publishSeconds, 2)) s  (\(f(throughputIn)) msg/s)" + (qos > 0 ? ", \(acked) acknowledged" : "")))
            rows.append(("received", "\(received) of \(expected) in \(f(receiveSeconds, 2)) s  (\(f(throughputOut)) msg/s)"))
            rows.append(("lost", "\(lost)"))
            rows.append(("duplicates", "\(duplicates)"))
            rows.append(("latency ms", ms(latency) + "  mean \(f(latency.mean, 3))"))
        }
        if publishErrors > 0 { rows.append(("publish errors", "\(publishErrors)")) }
        if unexpectedAcks > 0 { rows.append(("unexpected acks", "\(unexpectedAcks)")) }
        if unexpectedCloses > 0 { rows.append(("broker closed", "\(unexpectedCloses) connections")) }
        if foreignMessages > 0 { rows.append(("foreign msgs", "\(foreignMessages)")) }
        if stalled { rows.append(("STALLED", "nothing moved for the drain timeout; the run was cut short")) }
        if let firstError { rows.append(("first error", firstError)) }
        let width = rows.map { $0.0.count }.max() ?? 0
        return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }
}

/// Where a run is, once a second (for the live progress line).
public struct BenchProgress: Sendable {
    public var phase: String
    public var elapsed: Double
    public var totals: StatsSnapshot
    /// Messages per second over the last interval.
    public var sendRate: Double
    public var receiveRate: Double

    public var line: String {
        switch phase {
        case "connecting":
            return String(format: "connecting  %6.1fs  connected %d  failed %d", elapsed, totals.connected, totals.connectFailures)
        case "holding":
            return String(format: "holding     %6.1fs  connected %d  closed by broker %d", elapsed, totals.connected, totals.unexpectedCloses)
        default:
            return phase.padding(toLength: 10, withPad: " ", startingAt: 0)
                + String(format: "  %6.1fs  sent %d (%.0f/s)  received %d (%.0f/s)", elapsed, totals.sent, sendRate, totals.received, receiveRate)
        }
    }
}
