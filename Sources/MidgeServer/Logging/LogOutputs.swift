import Foundation
import MidgeBroker

/// The `log_dest` outputs of the broker process (stdout, stderr, files): a `LogSink` that hands
/// each line to one `LogDestinationWriter` per destination. Event loops only append to bounded
/// queues; each destination is written by a thread of its own, so a stalled reader (a full pipe
/// nobody reads, a hung terminal, a slow disk) loses lines, counted, and never stalls delivery.
public final class LogOutputs: LogSink, @unchecked Sendable {
    /// Bytes of lines one destination may hold unwritten before it drops new ones.
    public static let defaultQueueBytes = 1 << 20

    private let writers: [LogDestinationWriter]

    /// Opens the destinations (`file` ones in append mode). `syslog`, `topic` and `dlt` are not
    /// written yet; `none` writes nothing.
    public init(destinations: [LogDestination], queueBytes: Int = LogOutputs.defaultQueueBytes) throws {
        var writers: [LogDestinationWriter] = []
        for destination in destinations {
            switch destination {
            case .stdout:
                writers.append(LogDestinationWriter(name: "stdout", fd: STDOUT_FILENO, ownsDescriptor: false, queueBytes: queueBytes))
            case .stderr:
                writers.append(LogDestinationWriter(name: "stderr", fd: STDERR_FILENO, ownsDescriptor: false, queueBytes: queueBytes))
            case .file(let path):
                let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
                guard fd >= 0 else {
                    throw LogOutputError(message: "unable to open log file \(path) for writing: \(String(cString: strerror(errno)))")
                }
                writers.append(LogDestinationWriter(name: path, fd: fd, ownsDescriptor: true, queueBytes: queueBytes))
            case .none, .syslog, .topic, .dlt:
                break
            }
        }
        self.writers = writers
    }

    /// True when at least one destination is written (a log with none can skip formatting).
    public var isEmpty: Bool { writers.isEmpty }

    public func emit(_ line: String) {
        for writer in writers { writer.enqueue(line) }
    }

    /// Waits up to `timeout` for every queued line to be written (at shutdown; a stalled
    /// destination does not hold the process).
    public func drain(timeout: TimeInterval) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        for writer in writers { writer.drain(until: deadline) }
    }
}

public struct LogOutputError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
