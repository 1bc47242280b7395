import Foundation
import GRDB
import MQTTCodec
import MidgeBroker
@testable import MidgeStore
import XCTest

/// Opening files that are not (or no longer) good Midge stores: a StoreError naming the path and
/// the problem, never a crash, never a write into the file; and moving such a file aside.
final class StoreFileTests: StoreTestCase {

    func testRandomBytesAreNotAStore() throws {
        var generator = SystemRandomNumberGenerator()
        for size in [1, 100, 4096, 65536] {
            let path = (directory as NSString).appendingPathComponent("random-\(size).db")
            let bytes = Data((0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) })
            try bytes.write(to: URL(fileURLWithPath: path))
            assertStoreError(path, contains: "not a Midge store")
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), bytes, "the file was changed")
        }
        let text = (directory as NSString).appendingPathComponent("mosquitto.conf")
        try "listener 1883\nallow_anonymous true\n".write(toFile: text, atomically: true, encoding: .utf8)
        assertStoreError(text, contains: "not a Midge store")
    }

    func testAnotherSQLiteDatabaseIsNotAStoreAndIsLeftAsItWas() throws {
        for applicationID in [0, 42] {
            let path = (directory as NSString).appendingPathComponent("other-\(applicationID).db")
            let other = try DatabaseQueue(path: path)
            try other.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA application_id = \(applicationID)")
                try db.execute(sql: "CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('keep me')")
            }
            try other.close()
            let before = try Data(contentsOf: URL(fileURLWithPath: path))
            assertStoreError(path, contains: "not a Midge store (an SQLite database of another program: application_id \(applicationID)")
            // Not even switched to WAL mode.
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before, "application_id \(applicationID)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path + "-wal"))
        }
    }

    func testAStoreOfANewerVersionIsRefused() throws {
        try open().close()
        let raw = try DatabaseQueue(path: storePath)
        try raw.writeWithoutTransaction { try $0.execute(sql: "PRAGMA user_version = 3") }
        try raw.close()
        assertStoreError(storePath, contains: "written by a newer Midge (store version 3")
    }

    /// A store of version 1 (before sessions kept their last packet id and retained messages the
    /// publisher's listener port) opens: migrated to version 2 in place, its rows load unchanged
    /// (last id 0, port unknown), and the new columns are written from then on.
    func testAVersion1StoreIsMigrated() throws {
        let store = try open()
        var retained = sampleMessage(id: 0, topic: "r/1")
        retained.retain = true
        retained.publisherPort = 1883
        commitAndWait(store, [.sessionSaved(StoredSession(clientID: "a", expiryInterval: 60, protocolLevel: 5, lastPacketID: 7)),
                              .retainedSet(retained)])
        store.close()
        // Back to version 1's shape.
        let raw = try DatabaseQueue(path: storePath)
        try raw.writeWithoutTransaction { db in
            try db.execute(sql: "ALTER TABLE sessions DROP COLUMN last_packet_id")
            try db.execute(sql: "ALTER TABLE retained DROP COLUMN publisher_port")
            try db.execute(sql: "PRAGMA user_version = 1")
        }
        try raw.close()

        let migrated = try open()
        let state = try migrated.load()
        XCTAssertEqual(state.sessions.map(\.clientID), ["a"])
        XCTAssertEqual(state.sessions.first?.lastPacketID, 0)
        XCTAssertEqual(state.retained.map(\.topic), ["r/1"])
        XCTAssertNil(state.retained.first?.publisherPort)
        commitAndWait(migrated, [.sessionSaved(StoredSession(clientID: "a", expiryInterval: 60, protocolLevel: 5, lastPacketID: 9)),
                                 .retainedSet(retained)])
        migrated.close()
        let reopened = try open()
        let reloaded = try reopened.load()
        reopened.close()
        XCTAssertEqual(reloaded.sessions.first?.lastPacketID, 9)
        XCTAssertEqual(reloaded.retained.first?.publisherPort, 1883)
        let check = try DatabaseQueue(path: storePath)
        XCTAssertEqual(try check.read { try Int.fetchOne($0, sql: "PRAGMA user_version") }, 2)
        try check.close()
    }

    func testAStoreInUseByAnotherOpenerIsRefused() throws {
        let first = try open()
        assertStoreError(storePath, contains: "in use by another process")
        // The first one is unharmed.
        commitAndWait(first, [.sessionSaved(sampleSession("a"))])
        XCTAssertEqual(try first.load().sessions.map(\.clientID), ["a"])
    }

    func testAMissingFolderIsAStoreError() {
        assertStoreError((directory as NSString).appendingPathComponent("no/such/folder/midge.db"), contains: "cannot open")
    }

    func testAnEmptyFileBecomesANewStore() throws {
        // SQLite's rule: an empty file is an empty database (`touch midge.db` makes one).
        FileManager.default.createFile(atPath: storePath, contents: Data())
        let store = try open()
        commitAndWait(store, [.sessionSaved(sampleSession("a"))])
        XCTAssertEqual(try reopenAndLoad(store).sessions.map(\.clientID), ["a"])
    }

    func testATruncatedStoreIsAStoreError() throws {
        let store = try open()
        commitAndWait(store, [.sessionSaved(sampleSession("a"))])
        var changes: [StoreChange] = []
        for i in 1...400 {
            let key = UInt64(i)
            changes.append(.messageRouted(sampleMessage(id: key, payload: String(repeating: "p\(i)", count: 40)),
                                          [delivery(key, to: "a", message: key)]))
            changes.append(.retainedSet(sampleMessage(id: 0, topic: "r/\(i)", payload: "retained \(i)")))
        }
        commitAndWait(store, changes)
        let original = try store.load()
        store.close()
        let whole = try Data(contentsOf: URL(fileURLWithPath: storePath))
        XCTAssertGreaterThan(whole.count, 20 * 4096, "the store should span many pages")
        let sizes = [1, 16, 99, 100, 101, 511, 512, 1000, 4095, 4096, 4097, 8192, whole.count / 2, whole.count - 4096,
                     whole.count - 4097, whole.count - 100, whole.count - 1]
        for size in sizes {
            let path = (directory as NSString).appendingPathComponent("truncated-\(size).db")
            try whole.prefix(size).write(to: URL(fileURLWithPath: path))
            assertStoreError(path, message: "truncated at \(size) of \(whole.count) bytes")
        }
        // The whole file, copied, is a good store.
        let copy = (directory as NSString).appendingPathComponent("whole.db")
        try whole.write(to: URL(fileURLWithPath: copy))
        XCTAssertEqual(try open(copy).load(), original)
    }

    func testDamagedPagesAreAStoreError() throws {
        let store = try open()
        commitAndWait(store, [.sessionSaved(sampleSession("a"))] + (1...300).map { i in
            .messageRouted(sampleMessage(id: UInt64(i), payload: String(repeating: "d", count: 200)),
                           [delivery(UInt64(i), to: "a", message: UInt64(i))])
        })
        store.close()
        let whole = try Data(contentsOf: URL(fileURLWithPath: storePath))
        // Overwrite the page headers of pages 2, 5 and the last one: the b-tree no longer holds together.
        for page in [1, 4, whole.count / 4096 - 1] {
            var damaged = whole
            damaged.replaceSubrange(page * 4096..<page * 4096 + 16, with: [UInt8](repeating: 0x5A, count: 16))
            let path = (directory as NSString).appendingPathComponent("damaged-\(page).db")
            try damaged.write(to: URL(fileURLWithPath: path))
            assertStoreError(path, contains: "damaged", message: "page \(page + 1)")
        }
    }

    func testMoveAsideRenamesTheStoreAndItsLogFiles() throws {
        let bad = Data("not a database at all".utf8)
        try bad.write(to: URL(fileURLWithPath: storePath))
        try Data("wal".utf8).write(to: URL(fileURLWithPath: storePath + "-wal"))
        try Data("shm".utf8).write(to: URL(fileURLWithPath: storePath + "-shm"))
        assertStoreError(storePath, contains: "not a Midge store")

        var components = DateComponents()
        (components.year, components.month, components.day, components.hour, components.minute, components.second) = (2024, 3, 9, 7, 5, 1)
        let now = Calendar.current.date(from: components)!
        let moved = try SQLiteSessionStore.moveAside(path: storePath, now: now)
        XCTAssertEqual(moved, storePath + ".corrupt-20240309070501")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: moved)), bad)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: moved + "-wal")), Data("wal".utf8))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: moved + "-shm")), Data("shm".utf8))
        for suffix in ["", "-wal", "-shm"] { XCTAssertFalse(FileManager.default.fileExists(atPath: storePath + suffix)) }

        // A new store opens at the old name; a second bad store moved in the same second gets its own name.
        try open().close()
        try bad.write(to: URL(fileURLWithPath: storePath))
        XCTAssertEqual(try SQLiteSessionStore.moveAside(path: storePath, now: now), storePath + ".corrupt-20240309070501-2")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: moved)), bad, "the first one is kept")
        // The real clock's name has the documented shape.
        try bad.write(to: URL(fileURLWithPath: storePath))
        let stamped = try SQLiteSessionStore.moveAside(path: storePath)
        XCTAssertNotNil(stamped.range(of: #"\.corrupt-[0-9]{14}$"#, options: .regularExpression), stamped)
    }

    func testMoveAsideOfAMissingFileIsAStoreError() {
        XCTAssertThrowsError(try SQLiteSessionStore.moveAside(path: storePath)) { error in
            XCTAssertEqual((error as? StoreError)?.path, storePath)
        }
    }

    /// Opening `path` throws a StoreError with that path (and `contains` in its message).
    func assertStoreError(_ path: String, contains: String? = nil, message: String = "",
                          file: StaticString = #filePath, line: UInt = #line) {
        do {
            let store = try SQLiteSessionStore(path: path, fsync: false, log: log.sink)
            // Opened: a truncated store that still loads would be a silent loss; say what it held.
            let state = try? store.load()
            store.close()
            XCTFail("\(path) opened (\(message)); loaded \(state.map { "\($0.messages.count) messages" } ?? "nothing")",
                    file: file, line: line)
        } catch let error as StoreError {
            XCTAssertEqual(error.path, path, message, file: file, line: line)
            if let contains {
                XCTAssertTrue(error.message.contains(contains), "\(error) should contain \(contains) \(message)", file: file, line: line)
            }
            XCTAssertTrue(error.description.hasPrefix(path + ": "), "\(error)", file: file, line: line)
        } catch {
            XCTFail("not a StoreError: \(error) \(message)", file: file, line: line)
        }
    }
}
