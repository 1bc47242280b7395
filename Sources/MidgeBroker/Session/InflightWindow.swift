import DequeModule

/// A session's outbound QoS 1/2 messages awaiting acknowledgement, by packet id, in the order
/// they were sent (resends on reconnect keep that order [MQTT-4.6.0-1]).
///
/// Every operation the per-message path uses is O(1): lookup and insertion by id, and removal
/// when an acknowledgement arrives. (An `OrderedDictionary` shifts its whole storage on every
/// removal; with a 1 000-message window that made each PUBACK cost a thousand moves and let a
/// fast publisher outrun its subscribers.) The order is a queue of (id, sequence) pairs; an
/// acknowledged entry leaves a stale pair behind, dropped when it reaches the front, or in one
/// sweep once stale pairs outnumber live ones (acknowledgements out of order).
struct InflightWindow: Sequence {
    fileprivate struct Slot {
        var message: InflightMessage
        let sequence: UInt64
    }

    private var slots: [UInt16: Slot] = [:]
    private var order: Deque<(id: UInt16, sequence: UInt64)> = []
    private var nextSequence: UInt64 = 0

    var count: Int { slots.count }
    var isEmpty: Bool { slots.isEmpty }

    /// The message in flight under `id`; assigning a new id appends it to the order, assigning
    /// an existing one updates it in place, assigning nil removes it.
    subscript(id: UInt16) -> InflightMessage? {
        get { slots[id]?.message }
        set {
            guard let newValue else {
                removeValue(forKey: id)
                return
            }
            if slots[id] != nil {
                slots[id]?.message = newValue
            } else {
                slots[id] = Slot(message: newValue, sequence: nextSequence)
                order.append((id, nextSequence))
                nextSequence &+= 1
            }
        }
    }

    @discardableResult
    mutating func removeValue(forKey id: UInt16) -> InflightMessage? {
        guard let removed = slots.removeValue(forKey: id) else { return nil }
        while let first = order.first, !isLive(first) { order.removeFirst() }
        if order.count > 2 * slots.count + 16 {
            order = Deque(order.filter { isLive($0) })
        }
        return removed.message
    }

    mutating func removeAll() {
        slots.removeAll()
        order.removeAll()
    }

    /// Applies `body` to every message, oldest first.
    mutating func updateInOrder(_ body: (inout InflightMessage) -> Void) {
        for entry in order where isLive(entry) {
            body(&slots[entry.id]!.message)
        }
    }

    private func isLive(_ entry: (id: UInt16, sequence: UInt64)) -> Bool {
        slots[entry.id]?.sequence == entry.sequence
    }

    /// (packet id, message) pairs, oldest first.
    func makeIterator() -> Iterator {
        Iterator(base: order.makeIterator(), slots: slots)
    }

    struct Iterator: IteratorProtocol {
        fileprivate var base: Deque<(id: UInt16, sequence: UInt64)>.Iterator
        fileprivate let slots: [UInt16: Slot]

        mutating func next() -> (key: UInt16, value: InflightMessage)? {
            while let entry = base.next() {
                if let slot = slots[entry.id], slot.sequence == entry.sequence { return (entry.id, slot.message) }
            }
            return nil
        }
    }
}
