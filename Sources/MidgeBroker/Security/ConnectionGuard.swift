import NIOConcurrencyHelpers
import NIOCore

/// Midge's defences against login brute force and connection floods, per remote address
/// (Mosquitto has none): `auth_failure_limit` failures within `auth_failure_window` seconds ban
/// the address for `auth_ban_time` seconds, doubled at each further ban up to an hour; and at
/// most `connection_rate_limit` new connections per second.
public final class ConnectionGuard: @unchecked Sendable {
    public enum Refusal: Equatable, Sendable {
        case banned(remaining: Int)
        case rateExceeded
    }

    private struct AddressState {
        var failures: [NIODeadline] = []
        var bannedUntil: NIODeadline?
        var bans = 0
        var rateWindowStart = NIODeadline.uptimeNanoseconds(0)
        var rateCount = 0
    }

    private let failureLimit: Int
    private let window: TimeAmount
    private let banTime: TimeAmount
    private let rateLimit: Int
    private let lock = NIOLock()
    private var addresses: [String: AddressState] = [:]
    private static let maximumBan = TimeAmount.hours(1)

    public init(failureLimit: Int, windowSeconds: Int, banSeconds: Int, rateLimit: Int) {
        self.failureLimit = failureLimit
        self.window = .seconds(Int64(windowSeconds))
        self.banTime = .seconds(Int64(banSeconds))
        self.rateLimit = rateLimit
    }

    public convenience init(configuration: BrokerConfiguration) {
        self.init(failureLimit: configuration.authFailureLimit, windowSeconds: configuration.authFailureWindow,
                  banSeconds: configuration.authBanTime, rateLimit: configuration.connectionRateLimit)
    }

    /// Called for each CONNECT: nil when the address may try to log in.
    public func admit(_ address: String, now: NIODeadline = .now()) -> Refusal? {
        guard failureLimit > 0 || rateLimit > 0 else { return nil }
        return lock.withLock {
            pruneIfLarge(now: now)
            var state = addresses[address] ?? AddressState()
            defer { addresses[address] = state }
            if let until = state.bannedUntil {
                if until > now { return .banned(remaining: Int(((until - now).nanoseconds + 999_999_999) / 1_000_000_000)) }
                state.bannedUntil = nil
            }
            if rateLimit > 0 {
                if now - state.rateWindowStart >= .seconds(1) {
                    state.rateWindowStart = now
                    state.rateCount = 0
                }
                state.rateCount += 1
                if state.rateCount > rateLimit { return .rateExceeded }
            }
            return nil
        }
    }

    /// A failed login from `address`; returns the ban length (seconds) when this failure bans it.
    @discardableResult
    public func recordFailure(_ address: String, now: NIODeadline = .now()) -> Int? {
        guard failureLimit > 0 else { return nil }
        return lock.withLock {
            var state = addresses[address] ?? AddressState()
            defer { addresses[address] = state }
            state.failures.removeAll { now - $0 > window }
            state.failures.append(now)
            guard state.failures.count >= failureLimit else { return nil }
            let length = min(banTime.nanoseconds << min(state.bans, 20), Self.maximumBan.nanoseconds)
            state.bans += 1
            state.failures.removeAll()
            state.bannedUntil = now + .nanoseconds(length)
            pruneIfLarge(now: now)
            return Int(length / 1_000_000_000)
        }
    }

    /// A successful login clears the address's failure count (its ban history stays).
    public func recordSuccess(_ address: String) {
        guard failureLimit > 0 else { return }
        lock.withLock { addresses[address]?.failures.removeAll() }
    }

    /// Forget idle addresses so that a scan from many addresses cannot grow memory without bound.
    private func pruneIfLarge(now: NIODeadline) {
        guard addresses.count > 100_000 else { return }
        addresses = addresses.filter { _, state in
            (state.bannedUntil.map { $0 > now } ?? false) || state.failures.contains { now - $0 <= window }
                || now - state.rateWindowStart < .seconds(1)
        }
    }
}
