import NIOConcurrencyHelpers
import NIOCore

/// Per-event-loop state of the broker: the inbox other loops hand deliveries to (one `execute`
/// per batch, not per message), and the connections written to during this loop tick, flushed
/// once at its end.
///
/// The mutable state is confined to the loop (or guarded by `inboxLock`), so its stored
/// properties opt out of Swift's dynamic exclusivity checks (`@exclusivity(unchecked)`): those
/// cost a runtime call and a thread-local lookup per access on the per-message path.
final class LoopContext: @unchecked Sendable {
    let index: Int
    let eventLoop: EventLoop
    unowned let broker: Broker

    // Cross-thread inbox.
    private let inboxLock = NIOLock()
    @exclusivity(unchecked) private var inbox: [Delivery] = []
    @exclusivity(unchecked) private var drainScheduled = false
    // Loop-confined.
    @exclusivity(unchecked) private var spare: [Delivery] = []
    @exclusivity(unchecked) private var dirty: [ClientConnection] = []
    @exclusivity(unchecked) private var spareDirty: [ClientConnection] = []
    @exclusivity(unchecked) private var flushScheduled = false
    /// Inside a batch (a network read or an inbox drain) that flushes at its end: writes made
    /// now need no flush task of their own.
    @exclusivity(unchecked) private var inBatch = false
    /// Scratch space the router reuses on this loop: deliveries bound for each loop.
    @exclusivity(unchecked) var outgoing: [[Delivery]]
    @exclusivity(unchecked) private var matchScratch: [Delivery] = []
    /// Subscription matches by topic, for this loop's publishers.
    let routeCache = RouteCache()
    /// Keep alive of this loop's connections (one sweep, not a timer per connection).
    let keepAlive: KeepAliveMonitor

    init(index: Int, eventLoop: EventLoop, broker: Broker, loopCount: Int) {
        self.index = index
        self.eventLoop = eventLoop
        self.broker = broker
        self.outgoing = Array(repeating: [], count: loopCount)
        self.keepAlive = KeepAliveMonitor(eventLoop: eventLoop)
    }

    /// From any thread: queue deliveries for this loop. A delivery whose session has moved to
    /// another loop since the router looked (the move happens under this lock, see `move`) goes
    /// on to that loop instead, so that it cannot overtake or be overtaken by the deliveries
    /// routed after the move [MQTT-4.6.0-5].
    func enqueue(_ deliveries: [Delivery]) {
        var moved: [Delivery] = []
        let schedule: Bool = inboxLock.withLock {
            for delivery in deliveries {
                if delivery.session.loopIndex == index { inbox.append(delivery) } else { moved.append(delivery) }
            }
            if inbox.isEmpty || drainScheduled { return false }
            drainScheduled = true
            return true
        }
        if schedule { eventLoop.execute { self.drain() } }
        for delivery in moved { broker.context(index: delivery.session.loopIndex).enqueue([delivery]) }
    }

    /// On this loop, which owns `session` (offline or just taken over): moves it to loop
    /// `target`. Deliveries for it still waiting in this loop's inbox are handed to it first
    /// (queued in the session), atomically with the move, so that none of them arrives after a
    /// delivery routed to the new loop [MQTT-4.6.0-5].
    func move(_ session: Session, to target: Int) {
        inboxLock.withLock {
            if !inbox.isEmpty {
                var remaining: [Delivery] = []
                for delivery in inbox {
                    if delivery.session === session {
                        session.deliver(delivery, broker: broker, context: self)
                    } else {
                        remaining.append(delivery)
                    }
                }
                inbox = remaining
            }
            session.move(toLoop: target)
        }
    }

    private func drain() {
        var batch = spare
        inboxLock.withLock {
            swap(&batch, &inbox)
            drainScheduled = false
        }
        let outer = inBatch
        inBatch = true
        for delivery in batch { broker.deliverOnLoop(delivery, context: self) }
        inBatch = outer
        batch.removeAll(keepingCapacity: true)
        spare = batch
        if !outer { flushDirty() }
    }

    /// A network read begins on this loop: its writes are flushed by `endBatch`, which the
    /// transport calls when the read is complete (NIO's `channelReadComplete`), instead of by a
    /// task queued per loop tick.
    func beginBatch() { inBatch = true }

    /// The read is complete (or failed): flush what it wrote.
    func endBatch() {
        guard inBatch else { return }
        inBatch = false
        flushDirty()
    }

    /// The router's reusable list of matches on this loop (a nested use gets a fresh array).
    func takeMatchScratch() -> [Delivery] {
        var taken: [Delivery] = []
        swap(&taken, &matchScratch)
        return taken
    }

    func returnMatchScratch(_ matches: inout [Delivery]) {
        matches.removeAll(keepingCapacity: true)
        if matches.capacity <= 1024 { swap(&matches, &matchScratch) }
    }

    /// On this loop: remember that `connection` has unflushed writes; they are flushed at the end
    /// of the current batch, or else by a task at the end of the tick.
    func markDirty(_ connection: ClientConnection) {
        guard !connection.needsFlush else { return }
        connection.needsFlush = true
        dirty.append(connection)
        if !flushScheduled && !inBatch {
            flushScheduled = true
            eventLoop.execute { self.flushDirty() }
        }
    }

    func flushDirty() {
        flushScheduled = false
        guard !dirty.isEmpty else { return }
        // Swap with the spare list (no copy or allocation); a flush can mark connections dirty again.
        var connections = spareDirty
        swap(&connections, &dirty)
        for connection in connections {
            connection.needsFlush = false
            connection.transport.flush()
        }
        connections.removeAll(keepingCapacity: true)
        spareDirty = connections
    }
}
