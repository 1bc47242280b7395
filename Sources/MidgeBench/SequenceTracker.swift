/// The sequence numbers one receiver got from one publisher: a growable bit set, so losses and
/// duplicates are exact whatever the order of arrival.
final class SequenceTracker {
    private(set) var words: [UInt64] = []
    /// Distinct sequence numbers seen.
    private(set) var unique = 0
    /// Arrivals of a sequence number already seen.
    private(set) var duplicates = 0

    init() {}

    @inline(__always)
    func record(_ sequence: UInt32) {
        let word = Int(sequence >> 6), bit = UInt64(1) << UInt64(sequence & 63)
        if word >= words.count {
            words.append(contentsOf: repeatElement(0, count: max(word + 1 - words.count, words.count)))
        }
        if words[word] & bit != 0 {
            duplicates += 1
        } else {
            words[word] |= bit
            unique += 1
        }
    }

    /// Merges `other` (another member of the same `$share` group): a number both saw is a duplicate.
    func merge(_ other: SequenceTracker) {
        if other.words.count > words.count {
            words.append(contentsOf: repeatElement(0, count: other.words.count - words.count))
        }
        var overlap = 0
        for i in 0..<other.words.count {
            overlap += (words[i] & other.words[i]).nonzeroBitCount
            words[i] |= other.words[i]
        }
        unique += other.unique - overlap
        duplicates += other.duplicates + overlap
    }

    /// Sequence numbers below `limit` never seen.
    func missing(below limit: Int) -> Int {
        max(0, limit - countBelow(limit))
    }

    /// Distinct numbers seen below `limit`.
    func countBelow(_ limit: Int) -> Int {
        var total = 0
        let fullWords = min(limit >> 6, words.count)
        for i in 0..<fullWords { total += words[i].nonzeroBitCount }
        if fullWords < words.count && limit & 63 != 0 {
            total += (words[fullWords] & ((UInt64(1) << UInt64(limit & 63)) - 1)).nonzeroBitCount
        }
        return total
    }
}
