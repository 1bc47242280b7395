import NIOConcurrencyHelpers
import NIOCore

/// Per-event-loop state of the broker: the inbox other loops hand deliveries to (one `execute`
/// per batch, not per message), and the connections written to during this loop tick, flushed
/// once at its end.
final class LoopContext: @unchecked Sendable {
    let index: Int
    let eventLoop: EventLoop
    unowned let broker: Broker

    // Cross-thread inbox.
    private let inboxLock = NIOLock()
    private var inbox: [Delivery] = []
    private var drainScheduled = false
    // Loop-confined.
    private var spare: [Delivery] = []
    private var dirty: [ClientConnection] = []
    private var flushScheduled = false
    /// Scratch space the router reuses on this loop: deliveries bound for each loop.
    var outgoing: [[Delivery]]

    init(index: Int, eventLoop: EventLoop, broker: Broker, loopCount: Int) {
        self.index = index
        self.eventLoop = eventLoop
        self.broker = broker
        self.outgoing = Array(repeating: [], count: loopCount)
    }

    /// From any thread: queue deliveries for this loop.
    func enqueue(_ deliveries: [Delivery]) {
        let schedule: Bool = inboxLock.withLock {
            inbox.append(contentsOf: deliveries)
            if drainScheduled { return false }
            drainScheduled = true
            return true
        }
        if schedule { eventLoop.execute { self.drain() } }
    }

    private func drain() {
        var batch = spare
        inboxLock.withLock {
            swap(&batch, &inbox)
            drainScheduled = false
        }
        for delivery in batch { broker.deliverOnLoop(delivery, context: self) }
        batch.removeAll(keepingCapacity: true)
        spare = batch
        flushDirty()
    }

    /// On this loop: remember that `connection` has unflushed writes; flush at the end of the tick.
    func markDirty(_ connection: ClientConnection) {
        guard !connection.needsFlush else { return }
        connection.needsFlush = true
        dirty.append(connection)
        if !flushScheduled {
            flushScheduled = true
            eventLoop.execute { self.flushDirty() }
        }
    }

    func flushDirty() {
        flushScheduled = false
        guard !dirty.isEmpty else { return }
        let connections = dirty
        dirty.removeAll(keepingCapacity: true)
        for connection in connections {
            connection.needsFlush = false
            connection.transport.flush()
        }
    }
}
