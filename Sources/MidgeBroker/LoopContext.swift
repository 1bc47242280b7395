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
