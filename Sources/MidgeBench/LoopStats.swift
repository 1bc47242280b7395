import Histogram

/// A latency histogram in microseconds, up to an hour, three significant digits.
typealias LatencyHistogram = Histogram<UInt64>

func makeLatencyHistogram() -> LatencyHistogram {
    LatencyHistogram(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
}

/// The counters of the clients on one event loop. Touched only on that loop while the run is
/// going; read from elsewhere through `snapshot()` submitted to the loop, or after all channels closed.
final class LoopStats {
    var latency = makeLatencyHistogram()
    var connectLatency = makeLatencyHistogram()
    /// PUBLISH packets written by publishers.
    var sent = 0
    /// QoS 1/2 publishes completed (PUBACK / PUBCOMP).
    var acked = 0
    /// PUBLISH packets received by subscribers.
    var received = 0
    /// Acknowledgements with a failure reason code, or for a packet id not in flight.
    var publishErrors = 0
    var unexpectedAcks = 0
    /// Payloads that were too short or named an unknown publisher.
    var foreign = 0
    /// Connections that completed CONNECT (and SUBSCRIBE).
    var connected = 0
    var connectFailures = 0
    /// Connections that closed before the bench closed them.
    var unexpectedCloses = 0
    var publishersFinished = 0
    var lastReceive: UInt64 = 0
    var lastSend: UInt64 = 0
    var firstError: String?

    init() {}

    func note(error: String) {
        if firstError == nil { firstError = error }
    }

    func snapshot() -> StatsSnapshot {
        StatsSnapshot(sent: sent, acked: acked, received: received, connected: connected, connectFailures: connectFailures,
                      unexpectedCloses: unexpectedCloses, publishersFinished: publishersFinished,
                      lastReceive: lastReceive, lastSend: lastSend)
    }
}

/// Counters of one or all loops at one instant.
public struct StatsSnapshot: Sendable {
    public var sent = 0
    public var acked = 0
    public var received = 0
    public var connected = 0
    public var connectFailures = 0
    public var unexpectedCloses = 0
    public var publishersFinished = 0
    public var lastReceive: UInt64 = 0
    public var lastSend: UInt64 = 0

    static func + (a: StatsSnapshot, b: StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot(sent: a.sent + b.sent, acked: a.acked + b.acked, received: a.received + b.received,
                      connected: a.connected + b.connected, connectFailures: a.connectFailures + b.connectFailures,
                      unexpectedCloses: a.unexpectedCloses + b.unexpectedCloses,
                      publishersFinished: a.publishersFinished + b.publishersFinished,
                      lastReceive: max(a.lastReceive, b.lastReceive), lastSend: max(a.lastSend, b.lastSend))
    }
}
