import MidgeBroker
import MQTTCodec
import NIOConcurrencyHelpers

/// A `SessionStore` in memory, for engine tests: it applies changes as a store must (the
/// reference for what each `StoreChange` means) and lets a test decide when commits complete,
/// fail, or are lost in a "crash".
///
/// With `autoCommit` (default) a commit is applied and completed at once; without it, commits
/// wait in `pending` until `completePending()`. `crashed()` gives the state a restarted broker
/// would load: what was applied, nothing pending.
public final class InMemorySessionStore: SessionStore, @unchecked Sendable {
    private let lock = NIOLock()
    private var sessions: [String: StoredSession] = [:]
    private var sessionOrder: [String] = []
    private var subscriptions: [String: [String: StoredSubscription]] = [:]
    private var messages: [UInt64: StoredMessage] = [:]
    private var deliveries: [UInt64: StoredDelivery] = [:]
    private var inbound: Set<String> = []
    private var retained: [String: StoredMessage] = [:]
    private var waiting: [(changes: [StoreChange], completion: @Sendable () -> Void)] = []
    private var writable = true

    public var autoCommit: Bool
    /// Every batch handed over, in order (applied or not).
    public private(set) var batches: [[StoreChange]] = []

    public init(autoCommit: Bool = true, state: PersistedState = PersistedState()) {
        self.autoCommit = autoCommit
        for session in state.sessions { sessions[session.clientID] = session; sessionOrder.append(session.clientID) }
        for subscription in state.subscriptions { subscriptions[subscription.clientID, default: [:]][subscription.filter] = subscription }
        for message in state.messages { messages[message.id] = message }
        for delivery in state.deliveries { deliveries[delivery.key] = delivery }
        for held in state.inboundQoS2 { inbound.insert("\(held.clientID)\u{0}\(held.packetID)") }
        for message in state.retained { retained[message.topic] = message }
    }

    public func load() throws -> PersistedState { lock.withLock { snapshot() } }

    /// The committed state, as a restarted broker would load it.
    public func crashed() -> InMemorySessionStore {
        InMemorySessionStore(state: lock.withLock { snapshot() })
    }

    public var pendingCount: Int { lock.withLock { waiting.count } }

    public var isWritable: Bool {
        get { lock.withLock { writable } }
        set { lock.withLock { writable = newValue } }
    }

    public func commit(_ changes: [StoreChange], completion: @escaping @Sendable () -> Void) {
        let now: Bool = lock.withLock {
            batches.append(changes)
            if autoCommit && waiting.isEmpty {
                for change in changes { apply(change) }
                return true
            }
            waiting.append((changes, completion))
            return false
        }
        if now { completion() }
    }

    /// Applies and completes every waiting commit, in order.
    public func completePending() {
        let done: [@Sendable () -> Void] = lock.withLock {
            let batch = waiting
            waiting = []
            for entry in batch { for change in entry.changes { apply(change) } }
            return batch.map(\.completion)
        }
        for completion in done { completion() }
    }

    public func close() {}

    private func apply(_ change: StoreChange) {
        switch change {
        case .sessionSaved(let session):
            if sessions[session.clientID] == nil { sessionOrder.append(session.clientID) }
            sessions[session.clientID] = session
        case .sessionDeleted(let clientID):
            sessions[clientID] = nil
            sessionOrder.removeAll { $0 == clientID }
            subscriptions[clientID] = nil
            for (key, delivery) in deliveries where delivery.clientID == clientID { removeDelivery(key) }
            inbound = inbound.filter { !$0.hasPrefix(clientID + "\u{0}") }
        case .subscriptionSaved(let subscription):
            subscriptions[subscription.clientID, default: [:]][subscription.filter] = subscription
        case .subscriptionDeleted(let clientID, let filter):
            subscriptions[clientID]?[filter] = nil
        case .retainedSet(let message):
            retained[message.topic] = message
        case .retainedCleared(let topic):
            retained[topic] = nil
        case .messageRouted(let message, let routed):
            if messages[message.id] == nil { messages[message.id] = message }
            for delivery in routed { deliveries[delivery.key] = delivery }
        case .deliveryUpdated(let key, let stage, let packetID):
            deliveries[key]?.stage = stage
            deliveries[key]?.packetID = packetID
        case .deliveryDeleted(let key):
            removeDelivery(key)
        case .inboundHeld(let clientID, let packetID):
            inbound.insert("\(clientID)\u{0}\(packetID)")
        case .inboundReleased(let clientID, let packetID):
            inbound.remove("\(clientID)\u{0}\(packetID)")
        }
    }

    private func removeDelivery(_ key: UInt64) {
        guard let removed = deliveries.removeValue(forKey: key) else { return }
        if !deliveries.values.contains(where: { $0.messageID == removed.messageID }) { messages[removed.messageID] = nil }
    }

    private func snapshot() -> PersistedState {
        var state = PersistedState()
        state.sessions = sessionOrder.compactMap { sessions[$0] }
        state.subscriptions = sessionOrder.flatMap { client in (subscriptions[client] ?? [:]).values.sorted { $0.filter < $1.filter } }
        state.deliveries = deliveries.values.filter { sessions[$0.clientID] != nil }.sorted { $0.key < $1.key }
        let referenced = Set(state.deliveries.map(\.messageID))
        state.messages = messages.values.filter { referenced.contains($0.id) }.sorted { $0.id < $1.id }
        state.inboundQoS2 = inbound.sorted().compactMap { entry in
            let parts = entry.split(separator: "\u{0}", omittingEmptySubsequences: false)
            guard parts.count == 2, let id = UInt16(parts[1]) else { return nil }
            return (String(parts[0]), id)
        }.filter { sessions[$0.clientID] != nil }
        state.retained = retained.values.sorted { $0.topic < $1.topic }
        return state
    }
}
