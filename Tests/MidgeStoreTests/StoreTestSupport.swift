import Foundation
import MQTTCodec
import MidgeBroker
@testable import MidgeStore
import NIOConcurrencyHelpers
import NIOCore
import XCTest

/// Collects a store's log lines (the `log` closure is called from the writer thread).
final class LogLines: @unchecked Sendable {
    private let lock = NIOLock()
    private var lines: [String] = []

    var all: [String] { lock.withLock { lines } }

    func append(_ line: String) { lock.withLock { lines.append(line) } }

    var sink: @Sendable (String) -> Void { { [self] line in self.append(line) } }

    /// The lines that contain `text`.
    func containing(_ text: String) -> [String] { all.filter { $0.contains(text) } }
}

/// A test case with a temporary directory (removed afterwards) and helpers to open stores in it.
class StoreTestCase: XCTestCase {
    var directory = ""
    let log = LogLines()
    private var opened: [SQLiteSessionStore] = []

    override func setUpWithError() throws {
        directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("midge-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        for store in opened { store.close() }
        opened = []
        try? FileManager.default.removeItem(atPath: directory)
    }

    var storePath: String { (directory as NSString).appendingPathComponent("midge.db") }

    /// Opens (or creates) a store; it is closed in tearDown if the test does not close it.
    func open(_ path: String? = nil, fsync: Bool = false) throws -> SQLiteSessionStore {
        let store = try SQLiteSessionStore(path: path ?? storePath, fsync: fsync, log: log.sink)
        opened.append(store)
        return store
    }

    /// Commits and waits for the completion (fails the test after `timeout`).
    func commitAndWait(_ store: SQLiteSessionStore, _ changes: [StoreChange], timeout: TimeInterval = 10,
                       file: StaticString = #filePath, line: UInt = #line) {
        let done = expectation(description: "commit completed")
        store.commit(changes) { done.fulfill() }
        wait(for: [done], timeout: timeout)
    }

    /// Closes the store, opens the file again and loads it.
    func reopenAndLoad(_ store: SQLiteSessionStore) throws -> PersistedState {
        store.close()
        return try open().load()
    }
}

// MARK: - Sample values

func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

func sampleProperties() -> Properties {
    var properties = Properties()
    properties.payloadFormatIndicator = 1
    properties.messageExpiryInterval = 3600
    properties.contentType = "text/plain"
    properties.responseTopic = "replies/1"
    properties.correlationData = buffer("corr-\u{0}-1")
    properties.userProperties = [UserProperty("a", "1"), UserProperty("b", "2"), UserProperty("a", "3")]
    return properties
}

func sampleMessage(id: UInt64, topic: String = "sensors/1", payload: String = "21.5", qos: QoS = .atLeastOnce,
                   properties: Properties = .none) -> StoredMessage {
    StoredMessage(id: id, topic: topic, payload: buffer(payload), qos: qos, retain: false, properties: properties,
                  expiresAt: nil, publisherClientID: "publisher")
}

func sampleSession(_ clientID: String, will: StoredWill? = nil) -> StoredSession {
    StoredSession(clientID: clientID, expiryInterval: 3600, protocolLevel: 5, username: "user-\(clientID)",
                  disconnectedAt: nil, will: will)
}

func delivery(_ key: UInt64, to clientID: String, message: UInt64, qos: QoS = .atLeastOnce) -> StoredDelivery {
    StoredDelivery(key: key, clientID: clientID, messageID: message, qos: qos, retain: false)
}
