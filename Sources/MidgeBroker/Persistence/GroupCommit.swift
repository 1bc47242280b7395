import NIOCore

/// One event loop's side of persistence: the changes the loop makes during a tick (one batch,
/// handed to the store when the loop is about to flush: group commit), and everything the loop
/// writes while changes of its are not yet durable, held back until they are.
///
/// Holding back output is what makes "acknowledged" mean "stored": a PUBACK, PUBREC, PUBCOMP or
/// SUBACK, and the PUBLISH of a stored delivery, is written after the changes it depends on were
/// recorded, so it carries a batch number at least theirs and leaves only when that batch has
/// committed. Per connection, held bytes keep their order and leave in order; nothing is held
/// while the loop has nothing uncommitted, so persistence off (no `GroupCommit`) and traffic
/// that stores nothing cost one branch per write.
///
/// Deliveries handed to other loops are held the same way: a subscriber on another loop must not
/// see (and acknowledge) a message before its stored delivery exists, or the store could apply
/// the acknowledgement before the insertion.
final class GroupCommit {
    unowned(unsafe) let context: LoopContext
    let store: SessionStore

    /// The open batch: changes made since the last submission, in order.
    @exclusivity(unchecked) private var changes: [StoreChange] = []
    /// Batches are numbered from 1: the last one handed to the store, and the last one it
    /// confirmed (completions come back in order).
    @exclusivity(unchecked) private var submitted: UInt64 = 0
    @exclusivity(unchecked) private var committed: UInt64 = 0
    @exclusivity(unchecked) private var heldConnections: [ClientConnection] = []
    @exclusivity(unchecked) private var heldHandoffs: [(batch: UInt64, target: Int, deliveries: [Delivery])] = []
    /// Message ids and delivery keys this loop hands out: `nextKey`, then every `keyStride`
    /// (loops interleave, so no two loops make the same key and no lock is needed).
    @exclusivity(unchecked) private var nextKey: UInt64
    private let keyStride: UInt64

    init(context: LoopContext, store: SessionStore, loopCount: Int) {
        self.context = context
        self.store = store
        self.keyStride = UInt64(loopCount)
        self.nextKey = UInt64(context.index + 1)
    }

    /// Whether output written now must wait (some change of this loop is not yet durable).
    @inline(__always)
    var isHolding: Bool { !changes.isEmpty || submitted != committed }

    /// The batch output written now waits for: the open one if it has changes, else the last submitted.
    private var holdBatch: UInt64 { changes.isEmpty ? submitted : submitted + 1 }

    /// Keys from `base` (the first free one after loading the store), before the loop runs.
    func startKeys(from base: UInt64) {
        nextKey = base + UInt64(context.index)
    }

    func makeKey() -> UInt64 {
        let key = nextKey
        nextKey += keyStride
        return key
    }

    func record(_ change: StoreChange) {
        context.assertOnLoop()
        changes.append(change)
    }

    func hold(_ buffer: ByteBuffer, for connection: ClientConnection) {
        if connection.heldOutput == nil {
            connection.heldOutput = HeldOutput()
            heldConnections.append(connection)
        }
        connection.heldOutput!.entries.append((holdBatch, buffer))
    }

    func holdHandoff(_ deliveries: [Delivery], to target: Int) {
        heldHandoffs.append((holdBatch, target, deliveries))
    }

    /// Hands the open batch to the store. Called before the loop flushes, and before a session
    /// leaves this loop (its next changes are made on another loop and must reach the store after these).
    func submit() {
        context.assertOnLoop()
        guard !changes.isEmpty else { return }
        submitted += 1
        let batch = submitted
        let handed = changes
        changes = []
        changes.reserveCapacity(min(handed.count, 1024))
        let context = self.context
        store.commit(handed) {
            context.eventLoop.execute { context.groupCommit?.didCommit(batch) }
        }
    }

    /// The store confirmed `batch` (and every earlier one): release what waited for it.
    private func didCommit(_ batch: UInt64) {
        context.assertOnLoop()
        committed = batch
        if !heldConnections.isEmpty {
            var waiting: [ClientConnection] = []
            for connection in heldConnections where !connection.releaseHeldOutput(upTo: batch) {
                waiting.append(connection)
            }
            heldConnections = waiting
        }
        if !heldHandoffs.isEmpty {
            var index = 0
            while index < heldHandoffs.count && heldHandoffs[index].batch <= batch {
                let handoff = heldHandoffs[index]
                context.broker.context(index: handoff.target).enqueue(handoff.deliveries)
                index += 1
            }
            heldHandoffs.removeFirst(index)
        }
        context.flushDirty()
    }
}

/// Output of one connection waiting for its loop's batches to commit, oldest first.
final class HeldOutput {
    @exclusivity(unchecked) var entries: [(batch: UInt64, buffer: ByteBuffer)] = []
    /// The connection ended after writing these: close the transport once they are written.
    @exclusivity(unchecked) var closeWhenWritten = false
}
