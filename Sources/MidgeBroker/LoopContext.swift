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
    /// The broker owns its loop contexts and outlives them.
    unowned(unsafe) let broker: Broker

    // Cross-thread inbox.
    private let inboxLock = NIOLock()
    @exclusivity(unchecked) private var inbox: [Delivery] = []
    @exclusivity(unchecked) private var drainScheduled = false
    // Loop-confined.
    @exclusivity(unchecked) private var spare: [Delivery] = []
    @exclusivity(unchecked) private var dirty: [ClientConnection] = []
    @exclusivity(unchecked) private var spareDirty: [ClientConnection] = []
    @exclusivity(unchecked) private var flushScheduled = false
    /// The connection whose network read is being handled: its own writes (acknowledgements) are
    /// flushed when the read completes, without a flush task.
    @exclusivity(unchecked) private var reading: ClientConnection?
    /// Inside an inbox drain, which flushes everything at its end.
    @exclusivity(unchecked) private var draining = false
    /// Scratch space the router reuses on this loop: deliveries bound for each loop.
    @exclusivity(unchecked) var outgoing: [[Delivery]]
    @exclusivity(unchecked) private var matchScratch: [Delivery] = []
    /// Subscription matches by topic, for this loop's publishers.
    let routeCache = RouteCache()
    /// Keep alive of this loop's connections (one sweep, not a timer per connection).
    let keepAlive: KeepAliveMonitor
    /// This loop's batch of store changes and the output waiting for it (nil = persistence off).
    @exclusivity(unchecked) private(set) var groupCommit: GroupCommit?
    /// `groupCommit != nil`, as a plain flag: the per-write check costs a byte load, not an
    /// optional reference's retain and release.
    @exclusivity(unchecked) private(set) var persists = false

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

    /// Persistence on: changes of this loop go to `store` (set before the loop runs).
    func attachStore(_ store: SessionStore, loopCount: Int) {
        groupCommit = GroupCommit(context: self, store: store, loopCount: loopCount)
        persists = true
    }

    /// Records a change of persistent state made on this loop; it is handed to the store when the
    /// loop flushes (at the end of the current read, drain or tick).
    func record(_ change: StoreChange) {
        guard persists, let groupCommit else { return }
        groupCommit.record(change)
        if !flushScheduled && !draining && reading == nil {
            flushScheduled = true
            eventLoop.execute { self.flushDirty() }
        }
    }

    /// On this loop, which owns `session` (offline or just taken over): moves it to loop
    /// `target`. Deliveries for it still waiting in this loop's inbox are handed to it first
    /// (queued in the session), atomically with the move, so that none of them arrives after a
    /// delivery routed to the new loop [MQTT-4.6.0-5].
    func move(_ session: Session, to target: Int) {
        assertOnLoop()
        // Its changes made here reach the store before those its new loop will make.
        groupCommit?.submit()
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

    /// Debug builds: traps unless called on this context's loop (the confinement every
    /// loop-confined class of the engine relies on). Free in release builds.
    @inline(__always)
    func assertOnLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(eventLoop.inEventLoop, "loop-confined state touched off its event loop", file: file, line: line)
    }

    private func drain() {
        assertOnLoop()
        var batch = spare
        inboxLock.withLock {
            swap(&batch, &inbox)
            drainScheduled = false
        }
        let outer = draining
        draining = true
        for delivery in batch { broker.deliverOnLoop(delivery, context: self) }
        draining = outer
        batch.removeAll(keepingCapacity: true)
        spare = batch
        if !outer { flushDirty() }
    }

    /// A network read of `connection` begins on this loop. Its writes to `connection` itself are
    /// flushed by `endRead` (NIO's `channelReadComplete`) instead of a flush task; writes to other
    /// connections (deliveries) still wait for the flush task at the end of the loop tick, so
    /// that a subscriber fed by many publishers gets one flush per tick, not one per publisher read.
    func beginRead(_ connection: ClientConnection) {
        assertOnLoop()
        reading = connection
    }

    /// The read is complete (or failed). When nothing but the read connection was written (no
    /// flush task pending), flushes it now.
    func endRead(_ connection: ClientConnection) {
        assertOnLoop()
        guard reading === connection else { return }
        reading = nil
        if !flushScheduled { flushDirty() }
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
    /// of its own read or of the current drain, or else by a task at the end of the tick.
    func markDirty(_ connection: ClientConnection) {
        assertOnLoop()
        guard !connection.needsFlush else { return }
        connection.needsFlush = true
        dirty.append(connection)
        if !flushScheduled && !draining && reading !== connection {
            flushScheduled = true
            eventLoop.execute { self.flushDirty() }
        }
    }

    func flushDirty() {
        assertOnLoop()
        flushScheduled = false
        // Group commit: this tick's changes go to the store before anything is flushed; what
        // depends on them is held (see `GroupCommit`).
        if persists { groupCommit?.submit() }
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
