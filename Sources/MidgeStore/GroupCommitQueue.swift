import Foundation
import MidgeBroker
import Synchronization

/// The group commit of a store. `submit` only appends to a queue under a lock (it never waits for
/// the disk); one writer thread takes everything queued, hands it to `write` (one transaction),
/// and then calls the completions in submission order. While the writer is busy, new commits
/// pile up and go together in its next transaction: the busier the broker, the more changes per
/// transaction.
///
/// When `write` fails (disk full, I/O error, read-only file...), the batches stay at the head of
/// the queue and are retried every `retryInterval`, with everything queued since, until a write
/// succeeds; their completions are not called before. `isWritable` is false meanwhile. One log
/// line reports the failure, one the recovery.
final class GroupCommitQueue: @unchecked Sendable {
    struct Batch {
        var changes: [StoreChange]
        var completion: @Sendable () -> Void
    }

    /// Writes the batches in one transaction (called on the writer thread only).
    typealias Write = ([Batch]) throws -> Void

    private let condition = NSCondition()
    // Guarded by `condition`:
    private var queued: [Batch] = []
    private var closing = false
    private var finished = false
    private var writerWaits = false
    private var transactions = 0
    private var changes = 0
    private var failures = 0

    private let writable = Atomic<Bool>(true)
    private let write: Write
    private let path: String
    private let explain: (Error) -> String
    private let log: @Sendable (String) -> Void
    private let retryInterval: TimeInterval

    /// `path` names the store in log lines; `explain` turns a failed write into what went wrong
    /// (SQLite's message).
    init(name: String, path: String, retryInterval: TimeInterval = 1, log: @escaping @Sendable (String) -> Void,
         explain: @escaping (Error) -> String, write: @escaping Write) {
        self.write = write
        self.path = path
        self.explain = explain
        self.log = log
        self.retryInterval = retryInterval
        let thread = Thread { [self] in self.run() }
        thread.name = name
        thread.start()
    }

    var isWritable: Bool { writable.load(ordering: .relaxed) }

    /// Committed transactions, the changes they held, and failed attempts.
    var statistics: (transactions: Int, changes: Int, failures: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (transactions, changes, failures)
    }

    func submit(_ changes: [StoreChange], completion: @escaping @Sendable () -> Void) {
        condition.lock()
        precondition(!closing, "SessionStore.commit after close")
        queued.append(Batch(changes: changes, completion: completion))
        if writerWaits { condition.signal() }
        condition.unlock()
    }

    /// Lets the writer write what is queued (one more attempt if writes are failing), then stops
    /// it and waits for it. Idempotent.
    func close() {
        condition.lock()
        closing = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    private func run() {
        var held: [Batch] = []            // taken from the queue, not yet written
        var retryAt: Date?                // set while writes fail
        while true {
            condition.lock()
            while !closing {
                if let deadline = retryAt {
                    if Date() >= deadline { break }
                    writerWaits = true
                    _ = condition.wait(until: deadline)
                    writerWaits = false
                } else if queued.isEmpty {
                    writerWaits = true
                    condition.wait()
                    writerWaits = false
                } else {
                    break
                }
            }
            let isClosing = closing
            if held.isEmpty { swap(&held, &queued) } else { held.append(contentsOf: queued); queued.removeAll() }
            condition.unlock()

            if held.isEmpty {
                if isClosing { break }
                continue
            }
            do {
                try write(held)
            } catch {
                let count = held.reduce(0) { $0 + $1.changes.count }
                condition.lock()
                failures += 1
                condition.unlock()
                if isClosing {
                    log("Store \(path): cannot write (\(explain(error))); \(count) changes of \(held.count) commits "
                        + "are lost at shutdown.")
                    break
                }
                if retryAt == nil {
                    writable.store(false, ordering: .relaxed)
                    log("Store \(path): cannot write (\(explain(error))); holding \(count) changes and retrying "
                        + "every \(Int(retryInterval)) s (new QoS 1 and 2 messages are refused meanwhile).")
                }
                retryAt = Date(timeIntervalSinceNow: retryInterval)
                continue
            }
            let count = held.reduce(0) { $0 + $1.changes.count }
            condition.lock()
            transactions += 1
            changes += count
            condition.unlock()
            if retryAt != nil {
                retryAt = nil
                writable.store(true, ordering: .relaxed)
                log("Store \(path): writing again (\(count) held changes written).")
            }
            for batch in held { batch.completion() }
            held.removeAll(keepingCapacity: true)
        }
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }
}
