import Foundation
import GRDB

// The tables of a Midge store (midge.db). A store is recognised by its SQLite header:
// `application_id` is "Midg" and `user_version` the schema version (2). Any other SQLite database
// is refused rather than written into. A store of an older version is migrated at open, in one
// transaction (`migrations`), before anything else is written.
//
// One row per thing the engine reports (PersistedState.swift): sessions (the will in the session
// row), subscriptions, messages (once per message, shared by its deliveries), deliveries (one
// message on its way to one session; the key is also the session's delivery order), inbound QoS 2
// packet ids, and retained messages (full copies by topic, never references to `messages`).
// A trigger deletes a message with its last delivery, however the delivery goes (acknowledged,
// or its session ended), so the writer never looks the message up.
enum StoreSchema {
    /// "Midg", in the header's application_id.
    static let applicationID: Int32 = 0x4D69_6467
    static let version = 2

    /// What brings a store of version N (the index + 1) to version N + 1. Only added columns,
    /// with defaults that mean what an older Midge's rows meant.
    static let migrations: [[String]] = [
        // 1 → 2: a session's last packet id (0 = none: numbering starts at 1, as before), and the
        // listener port a retained message was published through (NULL = not known).
        [
            "ALTER TABLE sessions ADD COLUMN last_packet_id INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE retained ADD COLUMN publisher_port INTEGER",
        ],
    ]

    /// A message's columns after its id and topic, in `messages` and `retained` alike.
    private static let messageColumns = """
        payload BLOB,
            qos INTEGER NOT NULL,
            retain INTEGER NOT NULL,
            properties BLOB,
            expires_at INTEGER,
            publisher TEXT NOT NULL,
            publisher_username TEXT
        """

    static let tables: [String] = [
        """
        CREATE TABLE sessions (
            client_id TEXT NOT NULL PRIMARY KEY,
            expiry_interval INTEGER NOT NULL,
            protocol_level INTEGER NOT NULL,
            username TEXT,
            disconnected_at INTEGER,
            will_id INTEGER,
            will_topic TEXT,
            will_payload BLOB,
            will_qos INTEGER,
            will_retain INTEGER,
            will_properties BLOB,
            will_expires_at INTEGER,
            will_publisher TEXT,
            will_delay INTEGER,
            last_packet_id INTEGER NOT NULL DEFAULT 0
        )
        """,
        """
        CREATE TABLE subscriptions (
            client_id TEXT NOT NULL,
            filter TEXT NOT NULL,
            qos INTEGER NOT NULL,
            no_local INTEGER NOT NULL,
            retain_as_published INTEGER NOT NULL,
            retain_handling INTEGER NOT NULL,
            identifier INTEGER,
            PRIMARY KEY (client_id, filter)
        )
        """,
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            topic TEXT NOT NULL,
            \(messageColumns)
        )
        """,
        """
        CREATE TABLE deliveries (
            key INTEGER PRIMARY KEY,
            client_id TEXT NOT NULL,
            message_id INTEGER NOT NULL,
            qos INTEGER NOT NULL,
            retain INTEGER NOT NULL,
            subscription_ids TEXT,
            stage INTEGER NOT NULL,
            packet_id INTEGER NOT NULL
        )
        """,
        "CREATE INDEX deliveries_by_client ON deliveries (client_id)",
        "CREATE INDEX deliveries_by_message ON deliveries (message_id)",
        """
        CREATE TRIGGER last_delivery_deletes_message AFTER DELETE ON deliveries
        WHEN NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id = OLD.message_id)
        BEGIN
            DELETE FROM messages WHERE id = OLD.message_id;
        END
        """,
        """
        CREATE TABLE inbound_qos2 (
            client_id TEXT NOT NULL,
            packet_id INTEGER NOT NULL,
            PRIMARY KEY (client_id, packet_id)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE retained (
            topic TEXT NOT NULL PRIMARY KEY,
            id INTEGER NOT NULL,
            \(messageColumns),
            publisher_port INTEGER
        )
        """,
    ]

    /// What the database is, read without writing anything.
    enum Kind: Equatable {
        /// No table at all: a new store is made in it.
        case empty
        case store
        /// A store of an older version (`migrate` brings it up to date).
        case outdated(Int)
        /// Not usable: what is wrong.
        case refused(String)
    }

    static func kind(of db: Database) throws -> Kind {
        let applicationID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
        let userVersion = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
        let objects = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") ?? 0
        if applicationID == 0 && userVersion == 0 && objects == 0 { return .empty }
        guard applicationID == Self.applicationID else {
            return .refused("not a Midge store (an SQLite database of another program: application_id "
                            + "\(applicationID), \(objects) tables and indexes)")
        }
        if userVersion > version {
            return .refused("written by a newer Midge (store version \(userVersion); this Midge reads version \(version))")
        }
        guard userVersion >= 1 else {
            return .refused("unknown store version \(userVersion) (this Midge reads version \(version))")
        }
        let names = try Set(String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'"))
        let missing = ["sessions", "subscriptions", "messages", "deliveries", "inbound_qos2", "retained"]
            .filter { !names.contains($0) }
        if !missing.isEmpty { return .refused("damaged: table \(missing.joined(separator: ", ")) missing") }
        return userVersion == version ? .store : .outdated(userVersion)
    }

    /// Brings a store of version `from` to the current version, in one transaction.
    static func migrate(in db: Database, from: Int) throws {
        try db.inTransaction(.exclusive) {
            for step in migrations[(from - 1)...] {
                for sql in step { try db.execute(sql: sql) }
            }
            try db.execute(sql: "PRAGMA user_version = \(version)")
            return .commit
        }
    }

    /// Makes the tables in an empty database, in one transaction.
    static func create(in db: Database) throws {
        try db.inTransaction(.exclusive) {
            for sql in tables { try db.execute(sql: sql) }
            try db.execute(sql: "PRAGMA application_id = \(Self.applicationID)")
            try db.execute(sql: "PRAGMA user_version = \(version)")
            return .commit
        }
    }

    /// Refuses a file that is not an SQLite database before SQLite opens it (SQLite would delete
    /// a `-wal` beside it at close, and takes a 1-byte file for an empty database), and a store cut
    /// short. A missing or empty file is fine (a new store).
    ///
    /// SQLite has no checksums on database pages: bytes cut off the end of the last page read
    /// back as zeros, and `quick_check` does not notice when they were record contents. So when no
    /// write-ahead log is pending (after a clean close, the main file holds everything), the file
    /// must be whole pages, at least as many as its header counts.
    static func checkHeader(path: String) -> String? {
        guard let file = FileHandle(forReadingAtPath: path) else { return nil }  // missing: SQLite says why
        defer { try? file.close() }
        let header = (try? file.read(upToCount: 100)) ?? Data()
        if header.isEmpty { return nil }
        let size = (try? file.seekToEnd()) ?? 0
        if header.count < 100 || !header.starts(with: Array("SQLite format 3\u{0}".utf8)) || size < 512 {
            return "not a Midge store (not an SQLite database: \(size) bytes, no SQLite header)"
        }
        func integer(at offset: Int, _ count: Int) -> UInt32 {
            header[offset..<offset + count].reduce(0) { $0 << 8 | UInt32($1) }
        }
        let applicationID = integer(at: 68, 4)
        if applicationID != 0 && applicationID != UInt32(bitPattern: Self.applicationID) {
            return "not a Midge store (an SQLite database of another program: application_id \(Int32(bitPattern: applicationID)))"
        }
        let walSize = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
        guard walSize == 0 else { return nil }  // pending log: SQLite recovers from it, the main file may lag
        let pageSize = integer(at: 16, 2) == 1 ? 65536 : UInt64(integer(at: 16, 2))
        guard pageSize >= 512 else { return "damaged: page size \(pageSize) in the header" }
        if size % pageSize != 0 {
            return "damaged: \(size) bytes is not a whole number of \(pageSize)-byte pages (the file was cut short)"
        }
        // The header's page count is valid when its change counter matches "version valid for".
        let pages = UInt64(integer(at: 28, 4))
        if pages > 0 && integer(at: 24, 4) == integer(at: 92, 4) && size < pages * pageSize {
            return "damaged: \(size) bytes, the header counts \(pages) pages of \(pageSize) bytes (the file was cut short)"
        }
        return nil
    }
}
