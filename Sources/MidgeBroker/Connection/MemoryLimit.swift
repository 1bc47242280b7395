import Foundation
import NIOConcurrencyHelpers

/// `memory_limit`: Mosquitto counts every byte its allocator hands out and refuses an allocation
/// that would pass the limit (an incoming PUBLISH is then dropped and its client disconnected).
/// Swift gives no such count, so Midge's approximation is the growth of the process's resident
/// memory since the broker started (`/proc/self/statm`, sampled at most every 50 ms) plus the
/// payload about to be taken in: a broker whose memory grew by more than the limit refuses
/// PUBLISHes until it shrinks again. Without `/proc` (not Linux) nothing is refused.
public final class MemoryLimit: @unchecked Sendable {
    public let limit: Int
    private let baseline: Int
    private let lock = NIOLock()
    private var sampledAt: UInt64 = 0
    private var used = 0

    public init(limit: Int) {
        self.limit = limit
        self.baseline = limit > 0 ? Self.residentBytes() ?? 0 : 0
    }

    /// Whether taking `bytes` more would pass the limit (always false without a limit).
    public func exceeded(by bytes: Int) -> Bool {
        guard limit > 0 else { return false }
        let now = DispatchTime.now().uptimeNanoseconds
        let grown: Int = lock.withLock {
            if now &- sampledAt > 50_000_000 {
                sampledAt = now
                used = max(0, (Self.residentBytes() ?? baseline) - baseline)
            }
            return used
        }
        return grown + bytes > limit
    }

    /// Bytes resident now (second field of /proc/self/statm, in pages).
    static func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
