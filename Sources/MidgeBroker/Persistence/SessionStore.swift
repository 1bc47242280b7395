/// Where the broker keeps its state so that it survives a restart (or a crash). The engine
/// reports every change of persistent state as a `StoreChange`; the changes one event loop
/// makes in one tick are handed over together (group commit), and everything the loop writes
/// to its clients after making them (PUBACK, PUBREC, PUBCOMP, SUBACK, the PUBLISH of a stored
/// delivery) is held back until the store says they are durable.
///
/// Implementations: `SQLiteSessionStore` (MidgeStore); none when persistence is off.
public protocol SessionStore: AnyObject, Sendable {
    /// Everything stored; called once, before any listener opens.
    func load() throws -> PersistedState

    /// Stores `changes` (in order, all or none) and then calls `completion` once, on any thread.
    /// Calls complete in the order they were made. A store that cannot write (disk full, an
    /// unwritable location) keeps the changes, logs, retries, and completes when they are
    /// written: a slow or failing disk delays acknowledgements, never loses them. Never blocks.
    func commit(_ changes: [StoreChange], completion: @escaping @Sendable () -> Void)

    /// False while writes fail: the engine then refuses new QoS 1/2 messages that would have to
    /// be stored (v5 PUBACK/PUBREC 0x97 Quota exceeded; 3.1.1 closes the connection), instead
    /// of piling up unacknowledged work.
    var isWritable: Bool { get }

    /// Writes what is pending (one more attempt when writes fail; what still cannot be written is
    /// logged) and closes. No call may follow.
    func close()
}
