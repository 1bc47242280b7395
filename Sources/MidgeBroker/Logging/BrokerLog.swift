import Foundation
import NIOConcurrencyHelpers

/// Mosquitto-style log output: `1700000000: New client connected from ...`, filtered by `log_type`
/// and written to every `log_dest`. Callers check `isEnabled(_:)` (or use the autoclosure form)
/// so that a disabled type costs one bit test and no string formatting.
public final class BrokerLog: @unchecked Sendable {
    private let enabled: UInt32
    private let timestamp: Bool
    private let timestampFormat: String?
    private let lock = NIOLock()
    private var sinks: [UnsafeMutablePointer<FILE>]
    private var ownedFiles: [UnsafeMutablePointer<FILE>] = []

    private static func bit(_ type: LogType) -> UInt32 { 1 << UInt32(LogType.allCases.firstIndex(of: type)!) }

    /// Builds the log from configuration. A `log_dest file` that cannot be opened is reported as an error string.
    public init(types: Set<LogType>, destinations: [LogDestination], timestamp: Bool = true, timestampFormat: String? = nil) throws {
        var mask: UInt32 = 0
        let expanded: Set<LogType> = types.contains(.all) ? Set(LogType.allCases) : types
        for type in expanded where type != .none && type != .all { mask |= Self.bit(type) }
        if types.contains(.none) && !types.contains(.all) { mask = 0 }
        self.enabled = mask
        self.timestamp = timestamp
        self.timestampFormat = timestampFormat
        self.sinks = []
        for destination in destinations {
            switch destination {
            case .stdout: sinks.append(stdout)
            case .stderr: sinks.append(stderr)
            case .file(let path):
                guard let file = fopen(path, "a") else {
                    throw BrokerLogError(message: "unable to open log file \(path) for writing: \(String(cString: strerror(errno)))")
                }
                sinks.append(file)
                ownedFiles.append(file)
            case .none, .syslog, .topic, .dlt: break
            }
        }
    }

    /// A log that writes nothing (tests).
    public static func silent() -> BrokerLog { try! BrokerLog(types: [], destinations: []) }

    deinit { for file in ownedFiles { fclose(file) } }

    @inline(__always)
    public func isEnabled(_ type: LogType) -> Bool { enabled & Self.bit(type) != 0 }

    @inline(__always)
    public func log(_ type: LogType, _ message: @autoclosure () -> String) {
        guard isEnabled(type) else { return }
        write(message())
    }

    public func notice(_ message: @autoclosure () -> String) { log(.notice, message()) }
    public func info(_ message: @autoclosure () -> String) { log(.information, message()) }
    public func debug(_ message: @autoclosure () -> String) { log(.debug, message()) }
    public func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    public func error(_ message: @autoclosure () -> String) { log(.error, message()) }

    private func write(_ message: String) {
        var line = ""
        if timestamp {
            var now = time(nil)
            if let format = timestampFormat {
                var tmValue = tm()
                localtime_r(&now, &tmValue)
                var bytes = [Int8](repeating: 0, count: 128)
                let count = strftime(&bytes, bytes.count, format, &tmValue)
                line = String(decoding: bytes.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self) + ": "
            } else {
                line = "\(now): "
            }
        }
        line += message
        line += "\n"
        lock.withLock {
            for sink in sinks {
                fputs(line, sink)
                fflush(sink)
            }
        }
    }
}

public struct BrokerLogError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
