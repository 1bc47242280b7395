import Atomics
import MidgeBroker

/// `max_connections` of one listener: counts its open client sockets, whichever transport
/// serves them, and refuses the ones beyond the limit with Mosquitto's log line. One per
/// listener (its `::` and `0.0.0.0` sockets share it).
final class ConnectionLimit: Sendable {
    /// -1: no limit (Mosquitto's default).
    let limit: Int
    private let count = ManagedAtomic(0)

    init(limit: Int) { self.limit = limit }

    var current: Int { count.load(ordering: .relaxed) }

    /// A socket was accepted: true when it may stay (it is then counted until `release`); false
    /// when it exceeds the limit, logged, and the caller closes it.
    func admit(peer: @autoclosure () -> String, log: BrokerLog) -> Bool {
        let now = count.wrappingIncrementThenLoad(ordering: .relaxed)
        if limit >= 0 && now > limit {
            count.wrappingDecrement(ordering: .relaxed)
            log.notice("Client connection from \(peer()) denied: max_connections exceeded.")
            return false
        }
        return true
    }

    /// An admitted socket closed.
    func release() {
        count.wrappingDecrement(ordering: .relaxed)
    }
}
