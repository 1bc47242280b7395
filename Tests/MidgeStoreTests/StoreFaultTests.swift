import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GRDB
import MQTTCodec
import MidgeBroker
@testable import MidgeStore
import NIOConcurrencyHelpers
import XCTest

/// A store that cannot write keeps the commits, says so once, retries every second, and completes
/// them when a write succeeds again. Two ways to fill the disk: a real 2 MiB tmpfs (needs
/// mount(2): root with CAP_SYS_ADMIN), and SQLite's max_page_count (everywhere).
final class StoreFaultTests: StoreTestCase {
    private var mountPoint: String?

    override func tearDownWithError() throws {
        try super.tearDownWithError()  // closes the stores first
        if let mountPoint {
            XCTAssertEqual(run("/bin/umount", [mountPoint]), 0, "umount \(mountPoint)")
            try? FileManager.default.removeItem(atPath: mountPoint)
        }
    }

    func testFullFileSystemHoldsCommitsUntilSpaceIsFreed() throws {
        let mountPoint = (NSTemporaryDirectory() as NSString).appendingPathComponent("midge-tmpfs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mountPoint]) == 0 else {
            try? FileManager.default.removeItem(atPath: mountPoint)
            throw XCTSkip("cannot mount a tmpfs here (mount(2) needs root with CAP_SYS_ADMIN); "
                          + "testMaxPageCountHoldsCommitsUntilRaised covers the same path")
        }
        self.mountPoint = mountPoint
        let path = (mountPoint as NSString).appendingPathComponent("midge.db")
        let store = try open(path)
        commitAndWait(store, [.sessionSaved(sampleSession("a"))])

        // Fill the file system.
        let filler = (mountPoint as NSString).appendingPathComponent("filler")
        let fd = Glibc.open(filler, O_CREAT | O_WRONLY, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let chunk = [UInt8](repeating: 0xAB, count: 4096)
        while chunk.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) > 0 {}
        XCTAssertEqual(errno, ENOSPC)
        Glibc.close(fd)

        let big = String(repeating: "x", count: 256 * 1024)
        try assertHeldUntilFreed(store, path: path, message: sampleMessage(id: 1, payload: big),
                                 failure: "database or disk is full") {
            XCTAssertEqual(unlink(filler), 0)
        }
        XCTAssertEqual(try reopenAndLoad(store, path: path).messages.map { $0.payload.readableBytes }, [big.utf8.count])
    }

    func testMaxPageCountHoldsCommitsUntilRaised() throws {
        let store = try open()
        commitAndWait(store, [.sessionSaved(sampleSession("a"))])
        let pages = try store.withConnection { db -> Int in
            let count = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            try db.execute(sql: "PRAGMA max_page_count = \(count + 2)")
            return count
        }
        XCTAssertGreaterThan(pages, 0)
        let big = String(repeating: "y", count: 64 * 1024)
        try assertHeldUntilFreed(store, path: storePath, message: sampleMessage(id: 1, payload: big),
                                 failure: "database or disk is full") {
            try store.withConnection { db in try db.execute(sql: "PRAGMA max_page_count = 1000000") }
        }
        XCTAssertEqual(try reopenAndLoad(store).messages.map { $0.payload.readableBytes }, [big.utf8.count])
    }

    /// Commits `message` (and a small commit after it), which must fail with `failure`: checks
    /// that the store says so once, turns unwritable, keeps both commits uncompleted across a
    /// retry; then runs `free` and checks that both complete, in order, and the store recovers.
    private func assertHeldUntilFreed(_ store: SQLiteSessionStore, path: String, message: StoredMessage, failure: String,
                                      free: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(store.isWritable, file: file, line: line)
        let completed = NIOLockedValueBox<[String]>([])
        store.commit([.messageRouted(message, [delivery(message.id, to: "a", message: message.id)])]) {
            completed.withLockedValue { $0.append("big") }
        }
        store.commit([.inboundHeld(clientID: "a", packetID: 1)]) { completed.withLockedValue { $0.append("small") } }
        XCTAssertTrue(wait(until: { !store.isWritable }, timeout: 10), "isWritable stays true", file: file, line: line)
        // Across at least one retry (every second), nothing completes.
        Thread.sleep(forTimeInterval: 2.5)
        XCTAssertEqual(completed.withLockedValue { $0 }, [], "a commit completed although it was not written", file: file, line: line)
        XCTAssertFalse(store.isWritable, file: file, line: line)
        XCTAssertGreaterThanOrEqual(store.statistics.failures, 2, "no retry", file: file, line: line)
        let failures = log.containing("cannot write")
        XCTAssertEqual(failures.count, 1, "one line per failure, not per retry: \(log.all)", file: file, line: line)
        XCTAssertTrue(failures.first?.contains(path) ?? false, "\(failures)", file: file, line: line)
        XCTAssertTrue(failures.first?.contains(failure) ?? false, "\(failures)", file: file, line: line)

        try free()
        XCTAssertTrue(wait(until: { completed.withLockedValue { $0 }.count == 2 }, timeout: 10),
                      "not completed after space was freed", file: file, line: line)
        XCTAssertEqual(completed.withLockedValue { $0 }, ["big", "small"], file: file, line: line)
        XCTAssertTrue(store.isWritable, file: file, line: line)
        XCTAssertEqual(log.containing("writing again").count, 1, "\(log.all)", file: file, line: line)
        XCTAssertEqual(log.containing("cannot write").count, 1, file: file, line: line)
    }

    private func reopenAndLoad(_ store: SQLiteSessionStore, path: String) throws -> PersistedState {
        store.close()
        return try open(path).load()
    }

    private func wait(until condition: () -> Bool, timeout: TimeInterval) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !condition() {
            if Date() > deadline { return false }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return true
    }

    private func run(_ tool: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
