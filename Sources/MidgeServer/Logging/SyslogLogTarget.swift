import Foundation
import MidgeBroker

/// `log_dest syslog`: each line one datagram to the system logger's socket (/dev/log), in the
/// form glibc's syslog(3) sends for Mosquitto's `openlog("mosquitto", LOG_PID, facility)`:
/// `<PRI>Mmm dd hh:mm:ss midge[PID]: LINE` (RFC 3164; the time local, in the C locale; the
/// line keeps Mosquitto's own time stamp, as Mosquitto passes its formatted line). The identity
/// is "midge" (journalctl -t midge). Written on the destination's own thread: a logger that
/// stops reading blocks only it.
final class SyslogLogTarget: LogTarget {
    /// `log_facility` 0...7: local0...local7; nil: daemon.
    static func facilityCode(_ logFacility: Int?) -> Int {
        guard let logFacility, (0...7).contains(logFacility) else { return 3 << 3 }   // LOG_DAEMON
        return (16 + logFacility) << 3                                                // LOG_LOCAL0 + n
    }

    /// Mosquitto's priority per log type (src/logging.c).
    static func severity(_ type: LogType) -> Int {
        switch type {
        case .error: return 3                                   // LOG_ERR
        case .warning: return 4                                 // LOG_WARNING
        case .notice, .subscribe, .unsubscribe: return 5        // LOG_NOTICE
        case .information: return 6                             // LOG_INFO
        case .debug, .websockets: return 7                      // LOG_DEBUG
        case .none, .all: return 3
        }
    }

    private let socket: UnixDatagramSocket
    private let facility: Int
    private let ident: String

    init(path: String, facility: Int?, ident: String = "midge") {
        self.socket = UnixDatagramSocket(path: path)
        self.facility = Self.facilityCode(facility)
        self.ident = ident
    }

    func write(_ entries: [LogEntry]) {
        let header = "\(Self.timestamp()) \(ident)[\(getpid())]: "
        for entry in entries {
            socket.send(Array("<\(facility | Self.severity(entry.type))>\(header)\(entry.line)".utf8))
        }
    }

    /// `Dec  3 14:05:09`: strftime's `%b %e %H:%M:%S` in local time (the process keeps the C locale).
    static func timestamp(_ now: time_t = time(nil)) -> String {
        var seconds = now
        var parts = tm()
        localtime_r(&seconds, &parts)
        var bytes = [CChar](repeating: 0, count: 32)
        let count = strftime(&bytes, bytes.count, "%b %e %H:%M:%S", &parts)
        return String(decoding: bytes.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
