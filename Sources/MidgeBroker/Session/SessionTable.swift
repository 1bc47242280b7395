import MQTTCodec

/// Sessions by client id, compared and hashed byte for byte [MQTT-4.7.3-4]: an open-addressing
/// hash table (linear probing) of session references, whose keys are the sessions' own
/// `clientID`s. A slot is one reference (8 bytes), against ~40 for a `[ExactText: Session]`
/// entry (a 32-byte key beside its value): with ~1.3 slots per session at most, the registry
/// costs ~11 bytes per client instead of ~55 (it is the one per-client structure that grows with
/// every connection). Guarded by the broker's registry lock.
struct SessionTable {
    private var slots: [Session?] = Array(repeating: nil, count: 16)
    private(set) var count = 0

    private var mask: Int { slots.count - 1 }

    private static func hash(_ clientID: String) -> Int { ExactText(clientID).hashValue }

    /// The slot holding `clientID`, or the empty slot where it would go.
    private func find(_ clientID: String) -> (index: Int, found: Bool) {
        let key = ExactText(clientID)
        var index = Self.hash(clientID) & mask
        while let session = slots[index] {
            if ExactText(session.clientID) == key { return (index, true) }
            index = (index + 1) & mask
        }
        return (index, false)
    }

    subscript(clientID: String) -> Session? {
        let (index, found) = find(clientID)
        return found ? slots[index] : nil
    }

    /// Stores `session`, replacing any session with the same client id.
    mutating func insert(_ session: Session) {
        if (count + 1) * 4 > slots.count * 3 { grow() }
        let (index, found) = find(session.clientID)
        if !found { count += 1 }
        slots[index] = session
    }

    /// Removes `session` if it is the one stored for its client id.
    mutating func remove(_ session: Session) {
        let (start, found) = find(session.clientID)
        guard found, slots[start] === session else { return }
        slots[start] = nil
        count -= 1
        // Backward-shift deletion: move later entries of the probe run into the hole when their
        // home slot allows, so that lookups never stop early at it.
        var hole = start
        var index = (start + 1) & mask
        while let next = slots[index] {
            let home = Self.hash(next.clientID) & mask
            // `next` may fill the hole unless its home lies cyclically in (hole, index].
            let homeAfterHole = hole <= index ? (home > hole && home <= index) : (home > hole || home <= index)
            if !homeAfterHole {
                slots[hole] = next
                slots[index] = nil
                hole = index
            }
            index = (index + 1) & mask
        }
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: nil, count: old.count * 2)
        for case let session? in old {
            var index = Self.hash(session.clientID) & mask
            while slots[index] != nil { index = (index + 1) & mask }
            slots[index] = session
        }
    }
}
