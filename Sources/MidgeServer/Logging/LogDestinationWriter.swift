import Foundation

/// One log destination: a bounded queue of lines filled by any thread and a thread of its own
/// that writes them with `write(2)`. When the queue is full, new lines are dropped and counted;
/// once the writer catches up it writes `N log lines dropped.` before the next line, so a reader
/// sees where the gap is. The thread starts at the first line (after a `-d` fork).
final class LogDestinationWriter: @unchecked Sendable {
    let name: String
    private let fd: Int32
    private let ownsDescriptor: Bool
    private let queueBytes: Int

    private let condition = NSCondition()
    // Under `condition`.
    private var pending: [UInt8] = []
    private var dropped = 0
    private var started = false
    /// The writer holds a batch it has not finished writing.
    private var writing = false

    init(name: String, fd: Int32, ownsDescriptor: Bool, queueBytes: Int) {
        self.name = name
        self.fd = fd
        self.ownsDescriptor = ownsDescriptor
        self.queueBytes = queueBytes
    }

    deinit { if ownsDescriptor { close(fd) } }

    /// Never blocks beyond the queue's lock.
    func enqueue(_ line: String) {
        condition.lock()
        defer { condition.unlock() }
        if pending.count + line.utf8.count + 1 > queueBytes {
            dropped += 1
            return
        }
        pending.append(contentsOf: line.utf8)
        pending.append(0x0A)
        if !started {
            started = true
            let thread = Thread { [self] in self.run() }
            thread.name = "midge-log-\(name)"
            thread.start()
        }
        condition.signal()
    }

    /// Waits until everything queued is written, or `deadline`.
    func drain(until deadline: Date) {
        condition.lock()
        defer { condition.unlock() }
        while !pending.isEmpty || writing {
            if !condition.wait(until: deadline) { return }
        }
    }

    private func run() {
        var batch: [UInt8] = []
        while true {
            condition.lock()
            while pending.isEmpty && dropped == 0 { condition.wait() }
            swap(&batch, &pending)
            let gap = dropped
            dropped = 0
            writing = true
            condition.unlock()

            if gap > 0 {
                // Mosquitto's timestamp form: this line is the writer's own, not a broker event.
                let notice = "\(time(nil)): \(gap) log line\(gap == 1 ? "" : "s") dropped (log destination \(name) too slow).\n"
                writeAll(Array(notice.utf8))
            }
            writeAll(batch)
            batch.removeAll(keepingCapacity: batch.capacity <= queueBytes)

            condition.lock()
            writing = false
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Writes all of `bytes` (blocking this thread only); gives up on a destination error.
    private func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written > 0 { offset += written; continue }
                if written < 0 && errno == EINTR { continue }
                return
            }
        }
    }
}
