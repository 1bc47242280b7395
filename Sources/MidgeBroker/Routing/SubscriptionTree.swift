import Atomics
import MQTTCodec

/// One client's subscription to one filter.
public struct Subscription: Sendable {
    public let session: Session
    /// The filter as the client sent it (`$share/g/a/+` included).
    public let filter: String
    public var options: SubscriptionOptions
    /// v5 Subscription Identifier, if the SUBSCRIBE carried one.
    public var identifier: Int?
}

/// The topic trie behind routing: exact levels, `+`, `#` and `$share` groups.
///
/// Read on every PUBLISH, from every event loop, under a read lock; written under the write lock
/// only by SUBSCRIBE, UNSUBSCRIBE and session end.
public final class SubscriptionTree: @unchecked Sendable {
    /// Read under the tree's read lock, written under its write lock: no dynamic exclusivity
    /// checks needed (`@exclusivity(unchecked)`).
    final class Node {
        /// Keyed by the level's bytes: no normalisation [MQTT-4.7.3-4].
        @exclusivity(unchecked) var children: [ExactText: Node] = [:]
        @exclusivity(unchecked) var plus: Node?
        @exclusivity(unchecked) var hash: Node?
        @exclusivity(unchecked) var subscribers: [Subscription] = []
        /// Position of each session's subscription in `subscribers`.
        @exclusivity(unchecked) var index: [ObjectIdentifier: Int] = [:]
        @exclusivity(unchecked) var shared: [ExactText: SharedGroup] = [:]

        var isEmpty: Bool { subscribers.isEmpty && shared.isEmpty && children.isEmpty && plus == nil && hash == nil }

        func child(_ level: Substring, create: Bool) -> Node? {
            if level == "+" {
                if plus == nil && create { plus = Node() }
                return plus
            }
            if level == "#" {
                if hash == nil && create { hash = Node() }
                return hash
            }
            if let node = children[ExactText(level)] { return node }
            guard create else { return nil }
            let node = Node()
            children[ExactText(level)] = node
            return node
        }

        func removeChild(_ level: Substring) {
            if level == "+" { plus = nil } else if level == "#" { hash = nil } else { children[ExactText(level)] = nil }
        }

        /// Adds or replaces; returns true when the session already had this subscription.
        func upsert(_ subscription: Subscription) -> Bool {
            let key = subscription.session.id
            if let position = index[key] {
                subscribers[position] = subscription
                return true
            }
            index[key] = subscribers.count
            subscribers.append(subscription)
            return false
        }

        func remove(_ key: ObjectIdentifier) -> Bool {
            guard let position = index.removeValue(forKey: key) else { return false }
            let last = subscribers.count - 1
            if position != last {
                subscribers[position] = subscribers[last]
                index[subscribers[position].session.id] = position
            }
            subscribers.removeLast()
            return true
        }
    }

    /// The members of one `$share/GROUP/filter`; each message goes to one member, round-robin.
    public final class SharedGroup: @unchecked Sendable {
        let node = Node()
        private let next = ManagedAtomic<Int>(0)

        /// Picks the next member, preferring one that is connected (spec 4.8.2: the choice is the server's).
        func pick() -> Subscription? {
            let members = node.subscribers
            guard !members.isEmpty else { return nil }
            let start = next.loadThenWrappingIncrement(ordering: .relaxed)
            for offset in 0..<members.count {
                let candidate = members[(start &+ offset) % members.count]
                if candidate.session.isOnline { return candidate }
            }
            return members[start % members.count]
        }
    }

    private let lock = ReadWriteLock()
    private let root = Node()
    /// Bumped (under the write lock, after the change) by every subscribe and unsubscribe: a
    /// match result computed at an older generation may be stale (see `RouteCache`).
    private let generationCounter = ManagedAtomic<Int>(0)

    /// The current generation; read it before computing matches that are to be cached.
    public var generation: Int { generationCounter.load(ordering: .acquiring) }

    /// Everything one topic matches: plain subscriptions, shared groups (a member is picked per
    /// message), and the number of sources as `forEachMatch` counts them.
    public struct Matches {
        public var subscriptions: [Subscription] = []
        public var groups: [SharedGroup] = []
        public var sources = 0
    }

    /// What `topic` matches now, collected (for caching).
    public func matches(topic: String) -> Matches {
        var result = Matches()
        result.sources = forEachMatch(topic: topic, { result.subscriptions.append($0) }, shared: { result.groups.append($0) })
        return result
    }

    public init() {}

    /// Adds (or replaces) `subscription`. Returns true when the session already had a subscription
    /// to exactly this filter (which is then replaced) [MQTT-3.8.4-3].
    @discardableResult
    public func subscribe(_ subscription: Subscription) -> Bool {
        let shared = Topic.parseShared(subscription.filter)
        let filter = shared?.filter ?? subscription.filter
        return lock.withWriteLock {
            defer { generationCounter.wrappingIncrement(ordering: .releasing) }
            var node = root
            for level in Topic.levels(filter) {
                node = node.child(level, create: true)!
            }
            if let shared {
                let group: SharedGroup
                if let existing = node.shared[ExactText(shared.group)] { group = existing } else {
                    group = SharedGroup()
                    node.shared[ExactText(shared.group)] = group
                }
                return group.node.upsert(subscription)
            }
            return node.upsert(subscription)
        }
    }

    /// Removes a session's subscription to `filter`; returns whether it existed.
    @discardableResult
    public func unsubscribe(session: Session, filter: String) -> Bool {
        let shared = Topic.parseShared(filter)
        let plain = shared?.filter ?? filter
        let levels = Topic.levels(plain)
        return lock.withWriteLock {
            defer { generationCounter.wrappingIncrement(ordering: .releasing) }
            var path: [(Node, Substring)] = []
            var node = root
            for level in levels {
                guard let next = node.child(level, create: false) else { return false }
                path.append((node, level))
                node = next
            }
            let removed: Bool
            if let shared {
                guard let group = node.shared[ExactText(shared.group)] else { return false }
                removed = group.node.remove(session.id)
                if group.node.subscribers.isEmpty { node.shared[ExactText(shared.group)] = nil }
            } else {
                removed = node.remove(session.id)
            }
            // Prune empty nodes so that the tree does not grow with dead topics.
            var child = node
            for (parent, level) in path.reversed() {
                guard child.isEmpty else { break }
                parent.removeChild(level)
                child = parent
            }
            return removed
        }
    }

    /// Calls `visit` for each plain subscription and `visitShared` for each shared group matching
    /// `topic`. Topics starting with `$` are not matched by a leading wildcard [MQTT-4.7.2-1].
    /// Returns how many sources (nodes with plain subscribers, plus shared groups) matched: when
    /// it is 1, no session can have been visited twice.
    @discardableResult
    public func forEachMatch(topic: String, _ visit: (Subscription) -> Void, shared visitShared: (SharedGroup) -> Void) -> Int {
        let levels = Topic.levels(topic)
        let dollar = topic.utf8.first == UInt8(ascii: "$")
        var sources = 0
        lock.withReadLock {
            Self.collect(root, levels, 0, dollar, &sources, visit, visitShared)
        }
        return sources
    }

    private static func collect(_ node: Node, _ levels: [Substring], _ depth: Int, _ dollar: Bool, _ sources: inout Int,
                                _ visit: (Subscription) -> Void, _ visitShared: (SharedGroup) -> Void) {
        let wildcardsAllowed = !(depth == 0 && dollar)
        if depth == levels.count {
            emit(node, &sources, visit, visitShared)
            // `a/#` matches `a` itself (the parent level, spec 4.7.1.2).
            if let hash = node.hash, wildcardsAllowed { emit(hash, &sources, visit, visitShared) }
            return
        }
        if wildcardsAllowed {
            if let hash = node.hash { emit(hash, &sources, visit, visitShared) }
            if let plus = node.plus { collect(plus, levels, depth + 1, dollar, &sources, visit, visitShared) }
        }
        if let child = node.children[ExactText(levels[depth])] { collect(child, levels, depth + 1, dollar, &sources, visit, visitShared) }
    }

    @inline(__always)
    private static func emit(_ node: Node, _ sources: inout Int, _ visit: (Subscription) -> Void, _ visitShared: (SharedGroup) -> Void) {
        if !node.subscribers.isEmpty { sources += 1 }
        sources += node.shared.count
        for subscription in node.subscribers { visit(subscription) }
        for group in node.shared.values { visitShared(group) }
    }

    /// Number of plain and shared subscriptions (for tests and $SYS).
    public var count: Int {
        lock.withReadLock {
            var total = 0
            func walk(_ node: Node) {
                total += node.subscribers.count
                for group in node.shared.values { total += group.node.subscribers.count }
                for child in node.children.values { walk(child) }
                if let plus = node.plus { walk(plus) }
                if let hash = node.hash { walk(hash) }
            }
            walk(root)
            return total
        }
    }
}
