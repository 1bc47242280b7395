import Foundation
import GRDB
import MidgeBroker

/// The broker's `SessionStore` in one SQLite file (midge.db), through GRDB.
///
/// - The file is opened in WAL mode with an exclusive lock (a second broker on the same store
///   is refused at open: "database is locked"). `fsync: false` is `synchronous = NORMAL`: a
///   committed transaction survives a crash of the process (kill -9), not a power loss; `true` is
///   `FULL`: each transaction is fsync'd before its commits complete.
/// - At open, the header is checked (`StoreSchema.checkHeader`), then `PRAGMA quick_check` reads
///   the whole file (0.6 s for 305 MB in the page cache); a file that is not a Midge store, of a
///   newer version, damaged, cut short or in use throws `StoreError` naming the path and the
///   problem. `moveAside(path:)` renames such a file so that the broker can start afresh.
/// - `commit` never blocks: the group commit (`GroupCommitQueue`) writes everything queued in
///   one transaction on its own thread, then completes the commits in order. Failed writes are
///   kept and retried every second (`isWritable` false meanwhile).
/// - `close()` writes what is queued, checkpoints the WAL into the main file (TRUNCATE) and
///   closes the file (so does deinit, if nobody called it).
public final class SQLiteSessionStore: SessionStore, @unchecked Sendable {
    public let path: String
    private let database: DatabaseQueue
    private let log: @Sendable (String) -> Void
    private let queue: GroupCommitQueue
    private let closeLock = NSLock()
    private var closed = false

    public init(path: String, fsync: Bool, log: @escaping @Sendable (String) -> Void) throws {
        self.path = path
        self.log = log
        var configuration = Configuration()
        configuration.label = "midge-store"
        configuration.foreignKeysEnabled = false
        configuration.busyMode = .immediateError
        configuration.prepareDatabase { db in
            // Before any access: then WAL mode needs no shared-memory index, and no other process
            // (another broker) may use the file while it is open.
            try db.execute(sql: "PRAGMA locking_mode = EXCLUSIVE")
            try db.execute(sql: "PRAGMA synchronous = \(fsync ? "FULL" : "NORMAL")")
        }
        if let problem = StoreSchema.checkHeader(path: path) { throw StoreError(path: path, message: problem) }
        do {
            database = try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw StoreError(path: path, message: Self.explainOpenError(error))
        }
        do {
            // Nothing is written before the file is known to be a Midge store (or empty).
            let problem: String? = try database.writeWithoutTransaction { db in
                let check = try String.fetchAll(db, sql: "PRAGMA quick_check(10)")
                if check != ["ok"] { return "damaged: " + check.joined(separator: "; ") }
                let kind = try StoreSchema.kind(of: db)
                if case .refused(let problem) = kind { return problem }
                let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
                guard mode == "wal" else { return "cannot use write-ahead logging (journal mode \(mode ?? "unknown"))" }
                if kind == .empty { try StoreSchema.create(in: db) }
                if case .outdated(let from) = kind { try StoreSchema.migrate(in: db, from: from) }
                return nil
            }
            if let problem { throw StoreError(path: path, message: problem) }
        } catch {
            try? database.close()
            if let error = error as? StoreError { throw error }
            throw StoreError(path: path, message: Self.explainOpenError(error))
        }
        let database = self.database
        queue = GroupCommitQueue(name: "midge-store", path: path, log: log, explain: Self.explain) { batches in
            try database.writeWithoutTransaction { db in
                do {
                    try db.beginTransaction(.immediate)
                    for batch in batches {
                        for change in batch.changes { try StoreChangeWriter.apply(change, in: db) }
                    }
                    try db.commit()
                } catch {
                    if db.isInsideTransaction { try? db.rollback() }
                    throw error
                }
            }
        }
    }

    deinit {
        close()
    }

    public func load() throws -> PersistedState {
        do {
            return try database.writeWithoutTransaction { db in
                try StoreLoader(path: path, log: log).load(db)
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(path: path, message: "cannot read: \(Self.explain(error))")
        }
    }

    public func commit(_ changes: [StoreChange], completion: @escaping @Sendable () -> Void) {
        queue.submit(changes, completion: completion)
    }

    public var isWritable: Bool { queue.isWritable }

    /// Transactions committed and the changes they held, since the store was opened (and failed
    /// attempts): the group commit's effect is `changes / transactions`.
    public var statistics: (transactions: Int, changes: Int, failures: Int) { queue.statistics }

    public func close() {
        closeLock.lock()
        defer { closeLock.unlock() }
        if closed { return }
        closed = true
        queue.close()
        do {
            try database.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            }
        } catch {
            log("Store \(path): cannot checkpoint at close (\(Self.explain(error))); the write-ahead log keeps the changes.")
        }
        do {
            try database.close()
        } catch {
            log("Store \(path): cannot close (\(Self.explain(error))).")
        }
    }

    /// Runs `body` on the store's connection (tests: pragmas such as max_page_count).
    func withConnection<T>(_ body: (Database) throws -> T) throws -> T {
        try database.writeWithoutTransaction(body)
    }

    /// SQLite's message for a failed operation (its result code in words, and the text).
    static func explain(_ error: Error) -> String {
        if let error = error as? DatabaseError {
            return error.message ?? "SQLite error \(error.extendedResultCode.rawValue)"
        }
        return "\(error)"
    }

    private static func explainOpenError(_ error: Error) -> String {
        guard let error = error as? DatabaseError else { return "cannot open: \(error)" }
        let message = explain(error)
        switch error.resultCode {
        case .SQLITE_NOTADB: return "not a Midge store (\(message))"
        case .SQLITE_CORRUPT: return "damaged (\(message))"
        case .SQLITE_BUSY, .SQLITE_LOCKED: return "in use by another process (\(message))"
        case .SQLITE_CANTOPEN: return "cannot open (\(message))"
        default: return "cannot open (\(message))"
        }
    }
}
