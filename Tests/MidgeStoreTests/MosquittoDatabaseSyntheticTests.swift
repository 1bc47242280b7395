import MQTTCodec
import MidgeBroker
@testable import MidgeStore
import NIOCore
import XCTest

/// Files laid out byte by byte (MosquittoDatabaseFileBuilder): what a running Mosquitto cannot
/// be made to write on demand.
final class MosquittoDatabaseSyntheticTests: XCTestCase {
    private func read(_ file: MosquittoDatabaseFileBuilder) throws -> MosquittoDatabase.Import {
        try MosquittoDatabase.readImport(bytes: file.bytes, path: "test.db")
    }

    /// The StoreError reading `file` throws (a failure if it reads).
    private func storeError(_ file: MosquittoDatabaseFileBuilder, line: UInt = #line) -> StoreError? {
        do {
            let result = try read(file)
            XCTFail("read without error: \(result.state)", line: line)
        } catch let error as StoreError {
            XCTAssertEqual(error.path, "test.db", line: line)
            return error
        } catch {
            XCTFail("not a StoreError: \(error)", line: line)
        }
        return nil
    }

    func testEveryOutgoingStateMapsToAStage() throws {
        let cases: [(state: UInt8, qos: UInt8, stage: OutboundStage)] = [
            (11, 1, .queued), (11, 2, .queued),
            (2, 1, .published), (3, 1, .published), (4, 2, .published), (5, 2, .published),
            (6, 2, .released), (9, 2, .released),
            // Incoming-only states on an outgoing message: sent again, as Mosquitto does on reconnect.
            (7, 2, .published), (10, 2, .published), (9, 1, .published),
        ]
        var file = MosquittoDatabaseFileBuilder()
        file.message(storeID: 5, topic: "t")
        file.client("c", interval: 60)
        for (index, item) in cases.enumerated() {
            file.clientMessage("c", storeID: 5, mid: 100 + index, qos: item.qos, state: item.state)
        }
        file.clientMessage("c", storeID: 5, mid: 0, qos: 1, state: 3)  // in flight without a packet id: queued
        file.clientMessage("c", storeID: 5, mid: 9, qos: 0, state: 11)  // QoS 0: not kept
        let result = try read(file)
        let deliveries = result.state.deliveries
        XCTAssertEqual(deliveries.count, cases.count + 1)
        for (index, item) in cases.enumerated() where index < deliveries.count {
            let delivery = deliveries[index]
            XCTAssertEqual(delivery.stage, item.stage, "state \(item.state) QoS \(item.qos)")
            XCTAssertEqual(delivery.qos.rawValue, item.qos)
            XCTAssertEqual(delivery.packetID, UInt16(100 + index), "the mid, queued or not (Mosquitto numbers at queueing)")
            XCTAssertEqual(delivery.key, UInt64(index + 1))
        }
        XCTAssertEqual(deliveries.last?.stage, .queued)
        XCTAssertEqual(deliveries.last?.packetID, 0)
        XCTAssertEqual(result.dropped, ["1 QoS 0 message(s) queued for sessions (Midge queues QoS 1 and 2 only)"])
        XCTAssertEqual(result.state.messages.map(\.id), [5])
    }

    func testIncomingMessages() throws {
        var file = MosquittoDatabaseFileBuilder()
        file.message(storeID: 1, topic: "in", qos: 2)
        file.client("c")
        file.clientMessage("c", storeID: 1, mid: 12, qos: 2, state: 7, direction: 0)
        file.clientMessage("c", storeID: 1, mid: 12, qos: 2, state: 7, direction: 0)  // twice: held once
        file.clientMessage("c", storeID: 1, mid: 13, qos: 2, state: 8, direction: 0)
        let result = try read(file)
        XCTAssertEqual(result.state.inboundQoS2.map(\.packetID), [12])
        XCTAssertEqual(result.state.inboundQoS2.map(\.clientID), ["c"])
        XCTAssertEqual(result.state.messages, [], "an incoming message is not a delivery")
        XCTAssertEqual(result.dropped.count, 2, "\(result.dropped)")
    }

    func testRetainedMessagesKeepTheirTopicsAndNeverSYS() throws {
        var file = MosquittoDatabaseFileBuilder()
        var properties = Properties()
        properties.contentType = "application/json"
        file.message(storeID: 1, topic: "a/b", payload: [1, 2], qos: 0, retain: true, expiryTime: 1_800_000_000,
                     source: "src", properties: properties)
        file.message(storeID: 2, topic: "$SYS/broker/version", qos: 0, retain: true)
        file.message(storeID: 3, topic: "a/b", payload: [3], qos: 2, retain: true)
        file.retain(storeID: 1)
        file.retain(storeID: 2)
        file.retain(storeID: 99)
        file.retain(storeID: 3)  // the same topic again: the later one stays
        let result = try read(file)
        XCTAssertEqual(result.state.retained.count, 1)
        let retained = try XCTUnwrap(result.state.retained.first)
        XCTAssertEqual(retained.topic, "a/b")
        XCTAssertEqual(Array(retained.payload.readableBytesView), [3])
        XCTAssertEqual(retained.qos, .exactlyOnce)
        XCTAssertEqual(result.dropped.sorted(), [
            "1 $SYS retained message(s)",
            "1 retained entr(y/ies) referring to a message not in the file (expired)",
        ])
        XCTAssertEqual(result.state.messages, [], "retained messages are not deliveries' messages")

        var single = MosquittoDatabaseFileBuilder()
        single.message(storeID: 1, topic: "a/b", payload: [1, 2], qos: 0, retain: true, expiryTime: 1_800_000_000,
                       source: "src", properties: properties)
        single.retain(storeID: 1)
        let message = try XCTUnwrap(try read(single).state.retained.first)
        XCTAssertEqual(message, StoredMessage(id: 0, topic: "a/b", payload: ByteBuffer(bytes: [1, 2]), qos: .atMostOnce,
                                              retain: true, properties: properties, expiresAt: 1_800_000_000_000,
                                              publisherClientID: "src"))
    }

    func testSessionsFromClientChunksAndFromReferences() throws {
        var file = MosquittoDatabaseFileBuilder()
        file.client("v3", interval: .max, expiryTime: 0, username: Array("u".utf8))
        file.client("v5", interval: 3600, expiryTime: 1_700_003_600)
        file.client("", interval: 10)  // skipped, as Mosquitto does
        file.subscription("orphan", filter: "x/#", qos: 2, options: 0x04 | 0x08 | 0x20, identifier: 9)
        file.subscription("v3", filter: "y", qos: 1)
        let result = try read(file)
        XCTAssertEqual(result.state.sessions, [
            StoredSession(clientID: "v3", expiryInterval: .max, protocolLevel: 4, username: "u"),
            StoredSession(clientID: "v5", expiryInterval: 3600, protocolLevel: 5, disconnectedAt: 1_700_000_000_000),
            // Made for a subscription without a CLIENT chunk; its options show MQTT v5.
            StoredSession(clientID: "orphan", expiryInterval: .max, protocolLevel: 5),
        ])
        XCTAssertEqual(result.state.subscriptions, [
            StoredSubscription(clientID: "orphan", filter: "x/#",
                               options: SubscriptionOptions(qos: .exactlyOnce, noLocal: true, retainAsPublished: true,
                                                            retainHandling: .doNotSend),
                               identifier: 9),
            StoredSubscription(clientID: "v3", filter: "y", options: SubscriptionOptions(qos: .atLeastOnce)),
        ])
        XCTAssertEqual(result.dropped, ["1 CLIENT chunk(s) with an empty client id"])
    }

    /// Mosquitto 2.0.11 (before 2.0.16) gives a client without a username the bytes behind the
    /// previous client's: that username with its NUL and what follows. A NUL means none.
    func testStaleUsernameWithNULIsNone() throws {
        var file = MosquittoDatabaseFileBuilder()
        file.client("a", username: Array("alice".utf8))
        file.client("b", username: Array("alice".utf8) + [0] + [UInt8](repeating: 0x41, count: 300))
        let sessions = try read(file).state.sessions
        XCTAssertEqual(sessions.map(\.username), ["alice", nil])
    }

    func testFormat5() throws {
        var file = MosquittoDatabaseFileBuilder(version: 5)
        file.config(lastStoreID: 1)
        file.message(storeID: 1, topic: "t")
        file.client("old", interval: .max)
        file.clientMessage("old", storeID: 1)
        let result = try read(file)
        XCTAssertEqual(result.formatVersion, 5)
        XCTAssertEqual(result.state.sessions, [StoredSession(clientID: "old", expiryInterval: .max, protocolLevel: 4)])
        XCTAssertEqual(result.state.deliveries.count, 1)
    }

    func testOlderAndUnknownVersionsAreRefused() {
        for version: UInt32 in [2, 3, 4] {
            let error = storeError(MosquittoDatabaseFileBuilder(version: version))
            XCTAssertEqual(error?.offset, 19)
            XCTAssertTrue(error?.message.contains("Mosquitto 1.5 or older") == true, "\(String(describing: error))")
        }
        let error = storeError(MosquittoDatabaseFileBuilder(version: 7))
        XCTAssertEqual(error?.offset, 19)
        XCTAssertTrue(error?.message.contains("unknown database format version 7") == true, "\(String(describing: error))")
    }

    func testImpossibleLengthsAreErrorsAtTheirOffset() {
        // A chunk claiming 4 GiB.
        var huge = MosquittoDatabaseFileBuilder()
        huge.chunk(2, [1, 2, 3], length: .max)
        XCTAssertEqual(storeError(huge)?.offset, 23)

        // A payload length past the chunk's end: the error points at the payload.
        var payload = MosquittoDatabaseFileBuilder()
        payload.message(storeID: 1, topic: "t", payload: [1], payloadLength: .max)
        let payloadError = storeError(payload)
        XCTAssertEqual(payloadError?.offset, 23 + 8 + 32 + "publisher".utf8.count + 1)
        XCTAssertTrue(payloadError?.message.contains("the payload needs 4294967295 bytes") == true, "\(String(describing: payloadError))")

        // A topic filter length past the chunk's end.
        var filter = MosquittoDatabaseFileBuilder()
        filter.subscription("c", filter: "abc")
        filter = MosquittoDatabaseFileBuilder(replacingByteAt: 23 + 8 + 7, with: 200, in: filter)
        XCTAssertEqual(storeError(filter)?.offset, 23 + 8 + 12 + 1)

        // Bytes left over after the last field.
        var trailing = MosquittoDatabaseFileBuilder()
        trailing.chunk(4, MosquittoDatabaseFileBuilder.le64(UInt64(1)) + [0])
        XCTAssertTrue(storeError(trailing)?.message.contains("after its last field") == true)

        // A truncated chunk header.
        var header = MosquittoDatabaseFileBuilder()
        header.retain(storeID: 1)
        header = MosquittoDatabaseFileBuilder(bytes: header.bytes + [0, 0, 0])
        XCTAssertEqual(storeError(header)?.offset, 23 + 16)
    }

    func testInvalidFieldsAreErrors() {
        var qos = MosquittoDatabaseFileBuilder()
        qos.message(storeID: 1, topic: "t", qos: 3)
        XCTAssertEqual(storeError(qos)?.offset, 23 + 8 + 30)

        var duplicate = MosquittoDatabaseFileBuilder()
        duplicate.message(storeID: 4, topic: "t")
        let second = duplicate.bytes.count
        duplicate.message(storeID: 4, topic: "u")
        let duplicateError = storeError(duplicate)
        XCTAssertEqual(duplicateError?.offset, second)
        XCTAssertTrue(duplicateError?.message.contains("store id 4") == true)

        var properties = MosquittoDatabaseFileBuilder()
        properties.message(storeID: 1, topic: "t")
        properties = MosquittoDatabaseFileBuilder(bytes: properties.bytes + [2, 0x7F, 0], growingLastChunkBy: 3)
        XCTAssertTrue(storeError(properties)?.message.contains("properties") == true)

        var state = MosquittoDatabaseFileBuilder()
        state.clientMessage("c", storeID: 1, state: 12)
        XCTAssertEqual(storeError(state)?.offset, 23 + 8 + 13)

        var size = MosquittoDatabaseFileBuilder()
        size.config(lastStoreID: 1, storeIDSize: 4)
        XCTAssertEqual(storeError(size)?.offset, 23 + 8 + 9)
    }

    /// Store ids far apart are indexed by a dictionary instead of a table: same results.
    func testSparseStoreIDs() throws {
        var file = MosquittoDatabaseFileBuilder()
        file.message(storeID: 1 << 40, topic: "far")
        file.message(storeID: 3, topic: "near")
        file.clientMessage("c", storeID: 3)
        file.clientMessage("c", storeID: 1 << 40)
        file.clientMessage("c", storeID: 5)
        let result = try read(file)
        XCTAssertEqual(result.state.deliveries.map(\.messageID), [3, 1 << 40])
        XCTAssertEqual(result.state.messages.map(\.topic), ["far", "near"])
        XCTAssertEqual(result.dropped, ["1 client message(s) referring to a message not in the file (expired)"])

        var duplicate = MosquittoDatabaseFileBuilder()
        duplicate.message(storeID: 1 << 40, topic: "a")
        duplicate.message(storeID: 2, topic: "b")
        let third = duplicate.bytes.count
        duplicate.message(storeID: 1 << 40, topic: "c")
        XCTAssertEqual(storeError(duplicate)?.offset, third)
    }

    func testUnknownChunksAreSkippedAndAnEmptyFileIsEmpty() throws {
        var file = MosquittoDatabaseFileBuilder()
        file.chunk(99, [1, 2, 3, 4])
        file.client("c")
        let result = try read(file)
        XCTAssertEqual(result.state.sessions.map(\.clientID), ["c"])
        XCTAssertEqual(result.dropped, ["1 chunk(s) of an unknown type"])

        let empty = try MosquittoDatabase.readImport(bytes: [], path: "empty.db")
        XCTAssertEqual(empty.state, PersistedState())
    }
}

extension MosquittoDatabaseFileBuilder {
    /// `file` with the byte at `offset` replaced.
    init(replacingByteAt offset: Int, with value: UInt8, in file: MosquittoDatabaseFileBuilder) {
        var bytes = file.bytes
        bytes[offset] = value
        self.init(bytes: bytes)
    }

    /// Raw bytes; with `growingLastChunkBy`, the last chunk's length is increased to cover bytes appended to it.
    init(bytes: [UInt8], growingLastChunkBy extra: Int = 0) {
        self.init()
        var copy = bytes
        if extra > 0, let last = Self.chunkBoundaries(Array(bytes.dropLast(extra))).dropLast().last {
            let length = copy[(last + 4)..<(last + 8)].reduce(0) { $0 << 8 | Int($1) } + extra
            copy.replaceSubrange((last + 4)..<(last + 8), with: Self.be32(UInt32(length)))
        }
        self.bytes = copy
    }
}
