import NIOCore

/// Keep alive for the connections of one event loop: one repeating sweep per loop checks the
/// last activity of every connection that has a Keep Alive, instead of a timer per connection
/// (a scheduled task with its promise, future and closure cost ~300 bytes per connection and a
/// heap operation on every reschedule). A silent connection is closed within `interval` after
/// 1.5 × its Keep Alive [MQTT-3.1.2-24]. Loop-confined.
final class KeepAliveMonitor {
    /// How often the sweep runs while the loop has watched connections (the closing delay bound).
    static let interval = TimeAmount.milliseconds(250)

    private let eventLoop: EventLoop
    private var watched: [ClientConnection] = []
    private var sweepTask: RepeatedTask?

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    var watchedCount: Int { watched.count }

    /// Starts watching `connection` (its `keepAliveTimeout` is set). O(1).
    func watch(_ connection: ClientConnection) {
        guard connection.keepAliveSlot < 0 else { return }
        connection.keepAliveSlot = Int32(watched.count)
        watched.append(connection)
        if sweepTask == nil {
            let interval = Self.interval
            sweepTask = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
                self?.sweep()
            }
        }
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
        }
    }

    /// Closes every watched connection whose Keep Alive ran out.
    private func sweep() {
        let now = eventLoop.now
        var expired: [ClientConnection] = []
        for connection in watched where connection.keepAliveExpired(at: now) {
            expired.append(connection)
        }
        // Closing unwatches (changes `watched`), hence the two passes.
        for connection in expired { connection.keepAliveTimedOut() }
    }
}
