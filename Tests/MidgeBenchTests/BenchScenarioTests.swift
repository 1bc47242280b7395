import MQTTCodec
@testable import MidgeBench
import MidgeTestSupport
import XCTest

/// Every scenario for about a second against the in-process broker: exact counts, no losses or
/// duplicates at QoS 1 and 2.
final class BenchScenarioTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try TestBroker() }
    override func tearDown() { broker.shutdown() }

    private func run(_ scenario: BenchScenario, qos: QoS, version: ProtocolVersion = .v5,
                     _ adjust: (inout BenchOptions) -> Void = { _ in }) throws -> BenchResult {
        var options = BenchOptions(scenario: scenario)
        options.port = broker.port
        options.qos = qos
        options.version = version
        options.duration = 1
        options.rate = 200
        options.threads = 2
        options.drainTimeout = 5
        adjust(&options)
        let result = try BenchRunner(options: options).run()
        XCTAssertFalse(result.stalled, result.table())
        XCTAssertEqual(result.unexpectedCloses, 0, result.table())
        XCTAssertEqual(result.connectFailures, 0, result.table())
        XCTAssertNil(result.firstError, result.table())
        return result
    }

    private func assertComplete(_ result: BenchResult, deliveriesPerMessage: Int, file: StaticString = #filePath, line: UInt = #line) {
        let table = result.table()
        // ~200 msg/s per publisher for one second.
        XCTAssertGreaterThan(result.sent, result.publishers * 150, table, file: file, line: line)
        XCTAssertLessThan(result.sent, result.publishers * 260, table, file: file, line: line)
        XCTAssertEqual(result.expected, result.sent * deliveriesPerMessage, table, file: file, line: line)
        XCTAssertEqual(result.received, result.expected, table, file: file, line: line)
        XCTAssertEqual(result.lost, 0, table, file: file, line: line)
        XCTAssertEqual(result.duplicates, 0, table, file: file, line: line)
        XCTAssertEqual(result.latency.count, UInt64(result.received), table, file: file, line: line)
        if result.qos > 0 { XCTAssertEqual(result.acked, result.sent, table, file: file, line: line) }
    }

    func testFanoutQoS1() throws {
        let result = try run(.fanout, qos: .atLeastOnce) { $0.publishers = 2; $0.subscribers = 10 }
        assertComplete(result, deliveriesPerMessage: 10)
    }

    func testFanoutQoS0MQTT311() throws {
        let result = try run(.fanout, qos: .atMostOnce, version: .v3_1_1) { $0.publishers = 1; $0.subscribers = 5; $0.payloadSize = 1024 }
        assertComplete(result, deliveriesPerMessage: 5)
    }

    func testP2PQoS2() throws {
        let result = try run(.p2p, qos: .exactlyOnce) { $0.publishers = 10 }
        XCTAssertEqual(result.subscribers, 10)
        assertComplete(result, deliveriesPerMessage: 1)
    }

    func testFaninSharedQoS1() throws {
        let result = try run(.fanin, qos: .atLeastOnce) { $0.publishers = 10; $0.subscribers = 3 }
        assertComplete(result, deliveriesPerMessage: 1)
    }

    func testFaninSharedQoS2MQTT311() throws {
        let result = try run(.fanin, qos: .exactlyOnce, version: .v3_1_1) { $0.publishers = 5; $0.subscribers = 2 }
        assertComplete(result, deliveriesPerMessage: 1)
    }

    func testCountEndsPublishingUnthrottled() throws {
        let result = try run(.p2p, qos: .atLeastOnce) { $0.publishers = 4; $0.count = 500; $0.duration = nil; $0.rate = 0 }
        XCTAssertEqual(result.sent, 2000, result.table())
        XCTAssertEqual(result.received, 2000, result.table())
        XCTAssertEqual(result.lost, 0)
        XCTAssertEqual(result.duplicates, 0)
    }

    func testPersistentSessionsThroughTheStoreAreRemovedAtTheEnd() throws {
        broker.shutdown()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("midge-bench-persistent-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        broker = try TestBroker { $0.persistence = true; $0.persistenceLocation = folder.path + "/" }
        for version in [ProtocolVersion.v5, .v3_1_1] {
            let result = try run(.p2p, qos: .atLeastOnce, version: version) { $0.publishers = 10; $0.persistent = true }
            XCTAssertTrue(result.persistent)
            assertComplete(result, deliveriesPerMessage: 1)
            // Each client id reconnected with a clean session: nothing is left to queue the next run's messages.
            let deadline = Date().addingTimeInterval(5)
            while broker.broker.sessionCount > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
            XCTAssertEqual(broker.broker.sessionCount, 0, "MQTT \(version)")
        }
    }

    func testPersistentConnect() {
        for version in [ProtocolVersion.v5, .v3_1_1] {
            for persistent in [false, true] {
                var settings = ClientSettings(version: version, qos: .atLeastOnce, keepAlive: 60, inflight: 10, rate: 0, count: 0,
                                              publisherCount: 1)
                settings.persistent = persistent
                settings.sessionExpiry = 3600
                let connect = settings.connectPacket(clientID: "c")
                XCTAssertEqual(connect.clientID, "c")
                XCTAssertEqual(connect.cleanStart, !persistent)
                XCTAssertEqual(connect.properties.sessionExpiryInterval, persistent && version == .v5 ? 3600 : nil)
            }
        }
        var options = BenchOptions(scenario: .p2p)
        XCTAssertFalse(options.persistent)
        options.persistent = true
        XCTAssertEqual(options.sessionExpiry, 3600)
    }

    func testConnHoldsConnections() throws {
        let result = try run(.conn, qos: .atMostOnce) { $0.connections = 200; $0.duration = 0.5; $0.connectRate = 1000 }
        XCTAssertEqual(result.connected, 200, result.table())
        XCTAssertEqual(result.connectLatency.count, 200)
        XCTAssertGreaterThanOrEqual(result.connectSeconds, 0.15, result.table())
    }

    func testSequenceTrackerCountsLossAndDuplicatesAcrossGroupMembers() {
        let a = SequenceTracker(), b = SequenceTracker()
        for n in [0, 1, 2, 5, 5, 200] as [UInt32] { a.record(n) }
        for n in [2, 3, 7] as [UInt32] { b.record(n) }
        XCTAssertEqual(a.duplicates, 1)
        a.merge(b)
        XCTAssertEqual(a.unique, 7)
        XCTAssertEqual(a.duplicates, 2)
        XCTAssertEqual(a.missing(below: 8), 2)     // 4 and 6
        XCTAssertEqual(a.missing(below: 201), 201 - 7)
    }

    func testOptionsValidation() {
        var options = BenchOptions(scenario: .p2p)
        options.topic = "same/topic"
        XCTAssertThrowsError(try options.validate())
        options = BenchOptions(scenario: .fanout)
        options.payloadSize = 8
        XCTAssertThrowsError(try options.validate())
        options = BenchOptions(scenario: .fanin)
        XCTAssertEqual(options.subscriptionFilter(0), "$share/bench/bench/fanin/+")
        XCTAssertEqual(options.publishTopic(7), "bench/fanin/7")
    }
}
