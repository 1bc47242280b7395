import MQTTCodec

/// One event loop's memo of subscription matches by topic name: a PUBLISH to a topic seen
/// before costs one dictionary lookup instead of splitting the topic and walking the trie under
/// its read lock. Any subscribe or unsubscribe anywhere bumps the tree's generation, which
/// empties the memo at its next use, so a message is never routed by a stale result (a
/// subscription the broker has made, and acknowledged, before a PUBLISH arrives matches it).
/// Confined to its loop; bounded (emptied when full).
final class RouteCache {
    static let capacity = 4096

    @exclusivity(unchecked) private var generation = -1
    @exclusivity(unchecked) private var entries: [ExactText: SubscriptionTree.Matches] = [:]

    /// With `memo` (one publisher's last lookup), a repeat of the publisher's last topic costs a
    /// byte comparison, not a hash.
    func matches(topic: String, in tree: SubscriptionTree, memo: RouteMemo? = nil) -> SubscriptionTree.Matches {
        // Read the generation before computing: a change racing with the computation bumps it
        // again, so the entry stored below is dropped at the next lookup.
        let current = tree.generation
        // Byte for byte (String's == would equate canonically equivalent topics) [MQTT-4.7.3-4].
        if let memo, memo.generation == current, ExactText(memo.topic) == ExactText(topic) { return memo.matches }
        let found = lookup(topic: topic, in: tree, generation: current)
        if let memo {
            memo.topic = topic
            memo.generation = current
            memo.matches = found
        }
        return found
    }

    private func lookup(topic: String, in tree: SubscriptionTree, generation current: Int) -> SubscriptionTree.Matches {
        if current != generation {
            if !entries.isEmpty { entries.removeAll(keepingCapacity: true) }
            generation = current
        }
        let key = ExactText(topic)
        if let hit = entries[key] { return hit }
        let fresh = tree.matches(topic: topic)
        if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
        entries[key] = fresh
        return fresh
    }
}

/// The last topic one publisher routed and what it matched, at which tree generation (see
/// `RouteCache`). Owned by a connection, used on its loop.
final class RouteMemo {
    @exclusivity(unchecked) var topic = ""
    @exclusivity(unchecked) var generation = -1
    @exclusivity(unchecked) var matches = SubscriptionTree.Matches()
}
