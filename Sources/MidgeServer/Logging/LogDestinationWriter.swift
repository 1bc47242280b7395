import Foundation
import MidgeBroker

/// One finished log line and its `log_type`.
struct LogEntry {
    let line: String
    let type: LogType
}

/// Where one destination's lines end up; called on its writer's thread only, so it may block.
protocol LogTarget: AnyObject {
    /// Writes a batch, in order.
    func write(_ entries: [LogEntry])
    /// Called on the writer's thread between batches when `LogDestinationWriter.reopen()` asked
    /// for it (SIGHUP: a rotated log file is opened again).
    func reopen()
}

extension LogTarget {
    func reopen() {}
}

/// One log destination: a bounded queue of lines filled by any thread and a thread of its own
/// that hands them to the destination's `LogTarget` (write(2) to a file or terminal, datagrams
/// to syslog, messages on `$SYS/broker/log/...`). When the queue is full, new lines are dropped
/// and counted; once the writer catches up it writes `N log lines dropped.` (a warning) before
/// the next line, so a reader sees where the gap is. The thread starts at the first line (after
/// a `-d` fork).
final class LogDestinationWriter: @unchecked Sendable {
    let name: String
    private let target: LogTarget
    private let queueBytes: Int

    private let condition = NSCondition()
    // Under `condition`.
    private var pending: [LogEntry] = []
    private var pendingBytes = 0
    private var dropped = 0
    private var started = false
    private var reopenRequested = false
    /// The writer holds a batch it has not finished writing.
    private var writing = false

    init(name: String, target: LogTarget, queueBytes: Int) {
        self.name = name
        self.target = target
        self.queueBytes = queueBytes
    }

    /// Never blocks beyond the queue's lock.
    func enqueue(_ line: String, type: LogType) {
        condition.lock()
        defer { condition.unlock() }
        let size = line.utf8.count + 1
        if pendingBytes + size > queueBytes {
            dropped += 1
            return
        }
        pending.append(LogEntry(line: line, type: type))
        pendingBytes += size
        startIfNeeded()
        condition.signal()
    }

    /// Asks the writer to reopen its target before its next batch.
    func reopen() {
        condition.lock()
        defer { condition.unlock() }
        reopenRequested = true
        startIfNeeded()
        condition.signal()
    }

    /// Under `condition`.
    private func startIfNeeded() {
        guard !started else { return }
        started = true
        let thread = Thread { [self] in self.run() }
        thread.name = "midge-log-\(name)"
        thread.start()
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
        var batch: [LogEntry] = []
        while true {
            condition.lock()
            while pending.isEmpty && dropped == 0 && !reopenRequested { condition.wait() }
            swap(&batch, &pending)
            pendingBytes = 0
            let gap = dropped
            dropped = 0
            let reopening = reopenRequested
            reopenRequested = false
            writing = true
            condition.unlock()

            if reopening { target.reopen() }
            if gap > 0 {
                // Mosquitto's timestamp form: this line is the writer's own, not a broker event.
                let notice = "\(time(nil)): \(gap) log line\(gap == 1 ? "" : "s") dropped (log destination \(name) too slow)."
                batch.insert(LogEntry(line: notice, type: .warning), at: 0)
            }
            if !batch.isEmpty { target.write(batch) }
            batch.removeAll(keepingCapacity: batch.capacity <= 4096)

            condition.lock()
            writing = false
            condition.broadcast()
            condition.unlock()
        }
    }
}

/// stdout, stderr or a `log_dest file`: lines with a newline each, one write(2) per batch.
final class FileDescriptorLogTarget: LogTarget {
    private var fd: Int32
    private let ownsDescriptor: Bool
    /// A file's path (reopened on SIGHUP, as Mosquitto does for log rotation); nil for stdout/stderr.
    private let path: String?

    init(fd: Int32, ownsDescriptor: Bool, path: String? = nil) {
        self.fd = fd
        self.ownsDescriptor = ownsDescriptor
        self.path = path
    }

    deinit { if ownsDescriptor { close(fd) } }

    func write(_ entries: [LogEntry]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.reduce(0) { $0 + $1.line.utf8.count + 1 })
        for entry in entries {
            bytes.append(contentsOf: entry.line.utf8)
            bytes.append(0x0A)
        }
        writeAll(bytes)
    }

    /// A file is closed and opened again (a rotated file starts anew); if it cannot be opened,
    /// the old descriptor stays and says so.
    func reopen() {
        guard let path, ownsDescriptor else { return }
        let fresh = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fresh >= 0 else {
            writeAll(Array("\(time(nil)): Error: Unable to open log file \(path) for writing.\n".utf8))
            return
        }
        close(fd)
        fd = fresh
    }

    /// Writes all of `bytes` (blocking this thread only); gives up on a destination error.
    private func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written > 0 { offset += written; continue }
                if written < 0 && errno == EINTR { continue }
                return
            }
        }
    }
}
