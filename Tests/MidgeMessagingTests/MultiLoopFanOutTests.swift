import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Fan-out across the broker's event loops (TestBroker runs two): many subscribers spread over
/// both loops each get every message of a burst exactly once and in order (v5 [MQTT-4.6.0-5],
/// 3.1.1 [3.1.1:MQTT-4.6.0-6]: ordered per publisher and topic), with no loss and no duplicates.
final class MultiLoopFanOutTests: MessagingTestCase {
    private let subscriberCount = 20
    private let messageCount = 200

    func testEverySubscriberGetsTheWholeBurstInOrder() async throws {
        var subscribers: [PacketConnection] = []
        for index in 0..<subscriberCount {
            let version: ProtocolVersion = index % 2 == 0 ? .v5 : .v3_1_1
            let connection = try await connect("fan-\(index)", version)
            try await connection.subscribe(index % 3 == 0 ? "fan/#" : "fan/burst", qos: .atLeastOnce)
            subscribers.append(connection)
        }
        let publisher = try await connect("fan-pub", .v5)
        // The burst: all PUBLISH packets first, then the PUBACKs.
        for index in 0..<messageCount {
            try await publisher.send(.publish(PublishPacket(topic: "fan/burst", payload: ByteBuffer(string: "\(index)"),
                                                            qos: .atLeastOnce, packetID: UInt16(index + 1))))
        }
        var acked: [UInt16] = []
        for _ in 0..<messageCount {
            guard case .puback(let ack) = try await publisher.receive() else { return XCTFail("no PUBACK") }
            XCTAssertEqual(ack.reasonCode, .success)
            acked.append(ack.packetID)
        }
        XCTAssertEqual(acked, (1...messageCount).map { UInt16($0) }, "PUBACKs in order (the broker-side mirror of the client rule MQTT-4.6.0-2)")

        let expected = (0..<messageCount).map { "\($0)" }
        let results = try await withThrowingTaskGroup(of: (Int, [String]).self) { group in
            for (index, subscriber) in subscribers.enumerated() {
                let count = messageCount
                group.addTask { (index, try await subscriber.receivePublishes(count, timeout: .seconds(10)).map(\.text)) }
            }
            var results: [Int: [String]] = [:]
            for try await (index, texts) in group { results[index] = texts }
            return results
        }
        for index in 0..<subscriberCount {
            XCTAssertEqual(results[index], expected, "subscriber \(index) (\(index % 2 == 0 ? "5.0" : "3.1.1"))")
        }
        for subscriber in subscribers { try await subscriber.expectSilence(for: .milliseconds(20), "duplicate") }
        for connection in subscribers + [publisher] { await connection.close() }
    }

    /// Two publishers on different connections (and loops) publishing concurrently: every
    /// subscriber gets all messages, each publisher's in its own order [MQTT-4.6.0-5] [3.1.1:MQTT-4.6.0-6].
    func testConcurrentPublishersKeepPerPublisherOrder() async throws {
        var subscribers: [PacketConnection] = []
        for index in 0..<6 {
            let connection = try await connect("cp-sub-\(index)", index % 2 == 0 ? .v5 : .v3_1_1)
            try await connection.subscribe("cp/+", qos: .exactlyOnce)
            subscribers.append(connection)
        }
        let publishers = [try await connect("cp-pub-a", .v5), try await connect("cp-pub-b", .v3_1_1)]
        let perPublisher = 100
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (which, publisher) in publishers.enumerated() {
                group.addTask {
                    // Each flow completed before the next (the broker's Receive Maximum is 20).
                    for index in 0..<perPublisher {
                        try await publisher.publish("cp/\(which)", "\(which)-\(index)", qos: index % 2 == 0 ? .atLeastOnce : .exactlyOnce,
                                                    packetID: UInt16(index + 1))
                    }
                }
            }
            try await group.waitForAll()
        }
        let results = try await withThrowingTaskGroup(of: (Int, [PublishPacket]).self) { group in
            for (index, subscriber) in subscribers.enumerated() {
                group.addTask { (index, try await subscriber.receivePublishes(2 * perPublisher, timeout: .seconds(10))) }
            }
            var results: [Int: [PublishPacket]] = [:]
            for try await (index, packets) in group { results[index] = packets }
            return results
        }
        for index in 0..<subscribers.count {
            let packets = results[index] ?? []
            XCTAssertEqual(packets.count, 2 * perPublisher)
            for which in 0..<2 {
                let mine = packets.filter { $0.topic == "cp/\(which)" }.map(\.text)
                XCTAssertEqual(mine, (0..<perPublisher).map { "\(which)-\($0)" }, "subscriber \(index), publisher \(which)")
            }
        }
        for connection in subscribers + publishers { await connection.close() }
    }
}
