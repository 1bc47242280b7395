import Foundation

/// Where finished log lines go. `emit` is called on event loops and must never block: an
/// implementation queues the line (bounded) and writes it elsewhere, dropping lines it has no
/// room for (see MidgeServer's `LogOutputs`).
public protocol LogSink: AnyObject, Sendable {
    /// One finished line (timestamp included, no newline), at most `BrokerLog.maximumLineBytes`
    /// bytes of UTF-8.
    func emit(_ line: String)
    /// The same with the line's `log_type` (syslog priority, `$SYS/broker/log/...` topic).
    func emit(_ line: String, type: LogType)
}

extension LogSink {
    public func emit(_ line: String, type: LogType) { emit(line) }
}

/// Mosquitto-style log lines: `1700000000: New client connected from ...`, filtered by
/// `log_type` and handed to a `LogSink`. Callers check `isEnabled(_:)` (or use the autoclosure
/// form) so that a disabled type costs one bit test and no string formatting.
///
/// A line is cut to `maximumLineBytes` (Mosquitto formats into a 1000-byte buffer, so a PUBLISH
/// to a 65 535-byte topic logs 999 bytes, not 65 KiB). Writing is the sink's business: the
/// engine never waits for a log destination.
public final class BrokerLog: @unchecked Sendable {
    /// Mosquitto's `log_line[1000]` less its terminating NUL.
    public static let maximumLineBytes = 999

    private let enabled: UInt32
    private let timestamp: Bool
    private let timestampFormat: String?
    private let sink: LogSink?

    private static func bit(_ type: LogType) -> UInt32 { 1 << UInt32(LogType.allCases.firstIndex(of: type)!) }

    /// - Parameters:
    ///   - types: `log_type` (`.all` / `.none` as in `BrokerConfiguration.logTypes`).
    ///   - sink: where lines go; nil logs nothing.
    public init(types: Set<LogType>, timestamp: Bool = true, timestampFormat: String? = nil, sink: LogSink?) {
        var mask: UInt32 = 0
        let expanded: Set<LogType> = types.contains(.all) ? Set(LogType.allCases) : types
        for type in expanded where type != .none && type != .all { mask |= Self.bit(type) }
        if types.contains(.none) && !types.contains(.all) { mask = 0 }
        self.enabled = sink == nil ? 0 : mask
        self.timestamp = timestamp
        self.timestampFormat = timestampFormat
        self.sink = sink
    }

    /// A log that writes nothing (tests).
    public static func silent() -> BrokerLog { BrokerLog(types: [], sink: nil) }

    @inline(__always)
    public func isEnabled(_ type: LogType) -> Bool { enabled & Self.bit(type) != 0 }

    @inline(__always)
    public func log(_ type: LogType, _ message: @autoclosure () -> String) {
        guard isEnabled(type) else { return }
        emit(message(), type: type)
    }

    public func notice(_ message: @autoclosure () -> String) { log(.notice, message()) }
    public func info(_ message: @autoclosure () -> String) { log(.information, message()) }
    public func debug(_ message: @autoclosure () -> String) { log(.debug, message()) }
    public func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    public func error(_ message: @autoclosure () -> String) { log(.error, message()) }

    private func emit(_ message: String, type: LogType) {
        guard let sink else { return }
        sink.emit(Self.bounded(prefix() + message), type: type)
    }

    /// `1700000000: ` or the `log_timestamp_format` rendering, as Mosquitto prefixes its lines.
    private func prefix() -> String {
        guard timestamp else { return "" }
        var now = time(nil)
        guard let format = timestampFormat else { return "\(now): " }
        var tmValue = tm()
        localtime_r(&now, &tmValue)
        var bytes = [CChar](repeating: 0, count: 128)
        let count = strftime(&bytes, bytes.count, format, &tmValue)
        // Mosquitto writes "Time error" when the format renders to nothing.
        if count == 0 { return "Time error: " }
        return String(decoding: bytes.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self) + ": "
    }

    /// `line` cut to at most `maximumLineBytes` of UTF-8, at a character boundary.
    static func bounded(_ line: String) -> String {
        let utf8 = line.utf8
        guard utf8.count > maximumLineBytes else { return line }
        var end = utf8.index(utf8.startIndex, offsetBy: maximumLineBytes)
        // Back off continuation bytes (10xxxxxx) so that no scalar is split.
        while end > utf8.startIndex && (utf8[end] & 0xC0) == 0x80 { end = utf8.index(before: end) }
        return String(decoding: utf8[utf8.startIndex..<end], as: UTF8.self)
    }
}
