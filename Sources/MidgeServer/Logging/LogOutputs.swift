import Foundation
import MidgeBroker

/// The `log_dest` outputs of the broker process (stdout, stderr, a file, syslog, topics): a
/// `LogSink` that hands each line to one `LogDestinationWriter` per destination. Event loops
/// only append to bounded queues; each destination is written by a thread of its own, so a
/// stalled reader (a full pipe nobody reads, a hung terminal, a slow disk, a syslog daemon that
/// stopped reading) loses lines, counted, and never stalls delivery. `log_dest topic` lines go
/// back into the broker once `attach(broker:)` has named it.
public final class LogOutputs: LogSink, @unchecked Sendable {
    /// Bytes of lines one destination may hold unwritten before it drops new ones.
    public static let defaultQueueBytes = 1 << 20
    /// Where syslog(3) sends its datagrams.
    public static let defaultSyslogPath = "/dev/log"

    private let writers: [LogDestinationWriter]
    /// The `topic` destination's writer and target (debug lines are not queued for it).
    private let topicWriter: LogDestinationWriter?
    private let topicTarget: TopicLogTarget?
    /// Files this process created when it opened its destinations (`log_dest file`).
    public let createdFiles: [String]

    /// Opens the destinations (`file` ones in append mode). `facility` is `log_facility` for
    /// `syslog` (nil: daemon); `syslogPath` the logger's socket. `dlt` (an automotive logger
    /// Mosquitto supports only when built for it) and `none` write nothing.
    public init(destinations: [LogDestination], facility: Int? = nil, syslogPath: String = LogOutputs.defaultSyslogPath,
                queueBytes: Int = LogOutputs.defaultQueueBytes) throws {
        var writers: [LogDestinationWriter] = []
        var created: [String] = []
        var topic: (LogDestinationWriter, TopicLogTarget)?
        for destination in destinations {
            switch destination {
            case .stdout:
                writers.append(LogDestinationWriter(name: "stdout", target: FileDescriptorLogTarget(fd: STDOUT_FILENO, ownsDescriptor: false),
                                                    queueBytes: queueBytes))
            case .stderr:
                writers.append(LogDestinationWriter(name: "stderr", target: FileDescriptorLogTarget(fd: STDERR_FILENO, ownsDescriptor: false),
                                                    queueBytes: queueBytes))
            case .file(let path):
                var fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
                if fd < 0 && errno == ENOENT {
                    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                    if fd >= 0 { created.append(path) }
                }
                guard fd >= 0 else {
                    throw LogOutputError(message: "Unable to open log file \(path) for writing: \(String(cString: strerror(errno))).")
                }
                writers.append(LogDestinationWriter(name: path, target: FileDescriptorLogTarget(fd: fd, ownsDescriptor: true, path: path),
                                                    queueBytes: queueBytes))
            case .syslog:
                writers.append(LogDestinationWriter(name: "syslog", target: SyslogLogTarget(path: syslogPath, facility: facility),
                                                    queueBytes: queueBytes))
            case .topic:
                let target = TopicLogTarget()
                let writer = LogDestinationWriter(name: "topic", target: target, queueBytes: queueBytes)
                topic = (writer, target)
            case .none, .dlt:
                break
            }
        }
        self.writers = writers
        self.topicWriter = topic?.0
        self.topicTarget = topic?.1
        self.createdFiles = created
    }

    /// True when no destination is written (a log with none can skip formatting).
    public var isEmpty: Bool { writers.isEmpty && topicWriter == nil }

    public func emit(_ line: String) { emit(line, type: .notice) }

    public func emit(_ line: String, type: LogType) {
        for writer in writers { writer.enqueue(line, type: type) }
        if let topicWriter, type != .debug { topicWriter.enqueue(line, type: type) }
    }

    /// `log_dest topic` publishes through `broker` from now on; nil stops it (before the
    /// broker shuts down).
    public func attach(broker: Broker?) {
        topicTarget?.attach(broker)
    }

    /// Closes and reopens `log_dest file` (SIGHUP, as Mosquitto: a rotated log starts anew).
    public func reopenFiles() {
        for writer in writers { writer.reopen() }
    }

    /// Waits up to `timeout` for every queued line to be written (at shutdown; a stalled
    /// destination does not hold the process).
    public func drain(timeout: TimeInterval) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        for writer in writers { writer.drain(until: deadline) }
        topicWriter?.drain(until: deadline)
    }
}

public struct LogOutputError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
