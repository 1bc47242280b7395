import Foundation
import MQTTCodec
import GRDB
import MidgeBroker
@testable import MidgeStore
import NIOConcurrencyHelpers
import NIOCore
import XCTest

/// Throughput figures for docs and reviews, not a timed test: runs only with MIDGE_STORE_BENCH=1
/// (and is only meaningful in a release build):
///
///     MIDGE_STORE_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter StoreThroughputBenchmark
///
/// The QoS 1 hot path: every message is routed to one persistent session (`messageRouted`),
/// sent (`deliveryUpdated`) and acknowledged (`deliveryDeleted`), with 1000 messages in flight,
/// in commits of 50 changes. It prints changes per second and changes per transaction. The
/// assertions check the work was done (every commit completed, nothing left in the store).
final class StoreThroughputBenchmark: StoreTestCase {
    private var enabled: Bool { ProcessInfo.processInfo.environment["MIDGE_STORE_BENCH"] == "1" }

    func testQoS1HotPathThroughput() throws {
        guard enabled else { throw XCTSkip("set MIDGE_STORE_BENCH=1 to run the store benchmark") }
        let messages = Int(ProcessInfo.processInfo.environment["MIDGE_STORE_BENCH_MESSAGES"] ?? "") ?? 100_000
        for fsync in [false, true] {
            for outstanding in [Int.max, 4] {
                try runHotPath(messages: messages, fsync: fsync, outstandingCommits: outstanding)
            }
        }
    }

    /// `outstandingCommits`: Int.max submits everything at once (the writer's ceiling); 4 is four
    /// event loops that each wait for their previous commit before the next (latency-bound).
    private func runHotPath(messages: Int, fsync: Bool, outstandingCommits: Int) throws {
        let path = (directory as NSString).appendingPathComponent("bench-\(fsync)-\(outstandingCommits).db")
        let store = try open(path, fsync: fsync)
        commitAndWait(store, [.sessionSaved(sampleSession("subscriber"))])
        let payload = String(repeating: "p", count: 100)
        let window = 1000, batchSize = 50
        var changes: [StoreChange] = []
        changes.reserveCapacity(messages * 3 + window * 2)
        for i in 0..<(messages + window) {
            if i < messages {
                let key = UInt64(i + 1)
                changes.append(.messageRouted(sampleMessage(id: key, topic: "bench/\(i % 100)", payload: payload),
                                              [delivery(key, to: "subscriber", message: key)]))
            }
            let sent = i - window / 2
            if sent >= 0 && sent < messages { changes.append(.deliveryUpdated(key: UInt64(sent + 1), stage: .published, packetID: UInt16(sent % 65535 + 1))) }
            let acknowledged = i - window
            if acknowledged >= 0 { changes.append(.deliveryDeleted(key: UInt64(acknowledged + 1))) }
        }
        let batches = stride(from: 0, to: changes.count, by: batchSize).map { Array(changes[$0..<min($0 + batchSize, changes.count)]) }
        let before = store.statistics
        let slots = DispatchSemaphore(value: min(outstandingCommits, batches.count))
        let done = DispatchSemaphore(value: 0)
        let completed = NIOLockedValueBox(0)
        let cpuBefore = Self.processCPUSeconds()
        let start = DispatchTime.now()
        for batch in batches {
            slots.wait()
            store.commit(batch) {
                slots.signal()
                if completed.withLockedValue({ $0 += 1; return $0 }) == batches.count { done.signal() }
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 600), .success)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        let cpu = Self.processCPUSeconds() - cpuBefore
        let statistics = store.statistics
        let transactions = statistics.transactions - before.transactions
        let written = statistics.changes - before.changes
        XCTAssertEqual(written, changes.count)
        let mode = outstandingCommits == Int.max ? "all commits queued at once" : "\(outstandingCommits) commits in flight"
        print(String(format: "store bench: fsync %@, %@: %d changes (%d messages) in %.2f s = %.0f changes/s, "
                     + "%d transactions (%.0f changes each), %.2f µs of CPU per change (all threads)",
                     fsync ? "on" : "off", mode, written, messages, seconds, Double(written) / seconds, transactions,
                     Double(written) / Double(max(1, transactions)), cpu * 1e6 / Double(written)))
        let state = try store.load()
        XCTAssertEqual(state.deliveries.count, 0)
        XCTAssertEqual(state.messages.count, 0)
        store.close()
    }

    /// User and system CPU time of the whole process so far: the figure the machine's other load
    /// does not change much (wall-clock rates on a shared machine do).
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// What `PRAGMA quick_check` at open costs on a large store.
    func testOpenCostOfALargeStore() throws {
        guard enabled else { throw XCTSkip("set MIDGE_STORE_BENCH=1 to run the store benchmark") }
        let messages = Int(ProcessInfo.processInfo.environment["MIDGE_STORE_BENCH_LARGE"] ?? "") ?? 1_000_000
        let store = try open()
        commitAndWait(store, [.sessionSaved(sampleSession("subscriber"))])
        let payload = String(repeating: "q", count: 200)
        var batch: [StoreChange] = []
        for i in 1...messages {
            let key = UInt64(i)
            batch.append(.messageRouted(sampleMessage(id: key, topic: "large/\(i % 1000)", payload: payload),
                                        [delivery(key, to: "subscriber", message: key)]))
            if batch.count == 10_000 || i == messages {
                store.commit(batch) {}
                batch = []
            }
        }
        store.close()
        let size = (try FileManager.default.attributesOfItem(atPath: storePath)[.size] as? Int) ?? 0
        var start = DispatchTime.now()
        let reopened = try open()
        let openSeconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        start = DispatchTime.now()
        let check = try reopened.withConnection { try String.fetchAll($0, sql: "PRAGMA quick_check") }
        let checkSeconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        XCTAssertEqual(check, ["ok"])
        start = DispatchTime.now()
        let state = try reopened.load()
        let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        XCTAssertEqual(state.deliveries.count, messages)
        print(String(format: "store bench: %d messages, %.1f MB (in the page cache): open %.2f s, of which "
                     + "quick_check about %.2f s; load %.2f s",
                     messages, Double(size) / 1e6, openSeconds, checkSeconds, loadSeconds))
        reopened.close()
    }
}
