import NIOCore

/// Keep alive for the connections of one event loop: one sweep per loop checks the last activity
/// of every connection that has a Keep Alive (or awaits its CONNECT), instead of a timer per
/// connection (a scheduled task with its promise, future and closure cost ~300 bytes per
/// connection and a heap operation on every reschedule).
///
/// The sweep runs when the earliest deadline of the watched connections falls due, and at most
/// once per `interval`: a silent connection is closed within `interval` after 1.5 × its Keep
/// Alive [MQTT-3.1.2-22], and a loop whose clients are all active or far from their deadline
/// does not wake up four times a second. Activity only moves deadlines later, so it needs no
/// rescheduling; a newly watched connection with an earlier deadline brings the sweep forward.
/// Loop-confined.
final class KeepAliveMonitor {
    /// The shortest time between two sweeps (the closing delay bound).
    static let interval = TimeAmount.milliseconds(250)

    private let eventLoop: EventLoop
    private var watched: [ClientConnection] = []
    private var sweepTask: Scheduled<Void>?
    /// When the scheduled sweep runs (`distantFuture`: none is).
    private var nextSweep = NIODeadline.distantFuture

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    var watchedCount: Int { watched.count }

    /// Starts watching `connection` (its `keepAliveTimeout` is set), or takes its new deadline
    /// into account when it is watched already (its connect timer became its keep alive). O(1).
    func watch(_ connection: ClientConnection) {
        if connection.keepAliveSlot < 0 {
            connection.keepAliveSlot = Int32(watched.count)
            watched.append(connection)
        }
        if let deadline = connection.keepAliveDeadline { sweep(notAfter: deadline) }
    }

    /// Stops watching `connection` (closed). O(1): the last watched connection takes its slot.
    func unwatch(_ connection: ClientConnection) {
        let slot = Int(connection.keepAliveSlot)
        guard slot >= 0, slot < watched.count, watched[slot] === connection else { return }
        let last = watched.removeLast()
        if last !== connection {
            watched[slot] = last
            last.keepAliveSlot = Int32(slot)
        }
        connection.keepAliveSlot = -1
        if watched.isEmpty {
            sweepTask?.cancel()
            sweepTask = nil
            nextSweep = .distantFuture
        }
    }

    /// Makes sure a sweep runs by `deadline`, or one `interval` from now if that is later.
    private func sweep(notAfter deadline: NIODeadline) {
        let at = max(deadline, eventLoop.now + Self.interval)
        guard at < nextSweep else { return }
        sweepTask?.cancel()
        nextSweep = at
        sweepTask = eventLoop.scheduleTask(deadline: at) { [weak self] in self?.sweep() }
    }

    /// Closes every watched connection whose Keep Alive ran out, then schedules the next sweep
    /// for the earliest deadline left.
    private func sweep() {
        sweepTask = nil
        nextSweep = .distantFuture
        let now = eventLoop.now
        var expired: [ClientConnection] = []
        for connection in watched where connection.keepAliveExpired(at: now) {
            expired.append(connection)
        }
        // Closing unwatches (changes `watched`), hence the separate passes.
        for connection in expired { connection.keepAliveTimedOut() }
        var earliest = NIODeadline.distantFuture
        for connection in watched {
            if let deadline = connection.keepAliveDeadline, deadline < earliest { earliest = deadline }
        }
        if earliest != .distantFuture { sweep(notAfter: earliest) }
    }
}
