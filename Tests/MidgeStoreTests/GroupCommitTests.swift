import Foundation
import MQTTCodec
import MidgeBroker
@testable import MidgeStore
import NIOConcurrencyHelpers
import XCTest

/// The group commit: commits made while the writer is busy go together in its next transaction,
/// and complete in the order they were made.
final class GroupCommitTests: StoreTestCase {

    func testConcurrentCommitsShareTransactionsAndCompleteInOrder() throws {
        let store = try open()
        commitAndWait(store, [.sessionSaved(sampleSession("c"))])
        let before = store.statistics

        // The first commit's completion runs on the writer thread and holds it until every other
        // commit is queued, so all of them must go into one transaction.
        let release = DispatchSemaphore(value: 0)
        let entered = DispatchSemaphore(value: 0)
        let firstDone = expectation(description: "first")
        store.commit([.inboundHeld(clientID: "c", packetID: 0)]) {
            entered.signal()
            release.wait()
            firstDone.fulfill()
        }
        XCTAssertEqual(entered.wait(timeout: .now() + 10), .success)
        let threads = 8, perThread = 250
        let submitted = NIOLockedValueBox<[Int]>([])
        let completed = NIOLockedValueBox<[Int]>([])
        let allDone = expectation(description: "all")
        allDone.expectedFulfillmentCount = threads * perThread
        let group = DispatchGroup()
        for thread in 0..<threads {
            group.enter()
            Thread {
                for i in 0..<perThread {
                    let n = thread * perThread + i
                    let key = UInt64(1000 + n)
                    // Submission order is recorded under the same lock as the commit call.
                    submitted.withLockedValue { order in
                        order.append(n)
                        store.commit([.messageRouted(sampleMessage(id: key), [delivery(key, to: "c", message: key)]),
                                      .deliveryUpdated(key: key, stage: .published, packetID: UInt16(n % 65535 + 1))]) {
                            completed.withLockedValue { $0.append(n) }
                            allDone.fulfill()
                        }
                    }
                }
                group.leave()
            }.start()
        }
        group.wait()
        release.signal()
        wait(for: [firstDone, allDone], timeout: 30)

        let statistics = store.statistics
        XCTAssertEqual(statistics.transactions - before.transactions, 2, "one for the first commit, one for the 2000 others")
        XCTAssertEqual(statistics.changes - before.changes, 1 + threads * perThread * 2)
        XCTAssertEqual(completed.withLockedValue { $0 }, submitted.withLockedValue { $0 })

        let state = try reopenAndLoad(store)
        XCTAssertEqual(state.deliveries.count, threads * perThread)
        XCTAssertTrue(state.deliveries.allSatisfy { $0.stage == .published })
        XCTAssertEqual(state.messages.count, threads * perThread)
    }

    func testCommitReturnsWhileTheWriterIsBusy() throws {
        let store = try open()
        let release = DispatchSemaphore(value: 0)
        let blocked = expectation(description: "writer held")
        store.commit([]) {
            blocked.fulfill()
            release.wait()
        }
        wait(for: [blocked], timeout: 10)
        // The writer thread is held: commits must still return at once.
        let done = expectation(description: "later commits")
        done.expectedFulfillmentCount = 100
        let start = Date()
        for i in 0..<100 { store.commit([.inboundHeld(clientID: "x", packetID: UInt16(i))]) { done.fulfill() } }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1, "commit blocked")
        release.signal()
        wait(for: [done], timeout: 10)
    }

    func testCloseWritesWhatIsQueuedAndIsIdempotent() throws {
        let store = try open()
        let completed = NIOLockedValueBox(0)
        commitAndWait(store, [.sessionSaved(sampleSession("a"))])
        for i in 0..<500 {
            let key = UInt64(i + 1)
            store.commit([.messageRouted(sampleMessage(id: key), [delivery(key, to: "a", message: key)])]) {
                completed.withLockedValue { $0 += 1 }
            }
        }
        store.close()
        XCTAssertEqual(completed.withLockedValue { $0 }, 500, "close returns after every queued commit completed")
        store.close()
        // The WAL was checkpointed into the main file (and removed, or emptied).
        let wal = try? FileManager.default.attributesOfItem(atPath: storePath + "-wal")[.size] as? Int
        XCTAssertEqual(wal ?? 0, 0, "WAL not checkpointed")
        XCTAssertEqual(try open().load().deliveries.count, 500)
    }
}
