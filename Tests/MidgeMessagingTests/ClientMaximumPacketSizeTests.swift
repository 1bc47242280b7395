import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// The client's v5 Maximum Packet Size: the broker never sends it a larger packet
/// [MQTT-3.1.2-24]; a message too large for it is discarded for that client as if delivered
/// [MQTT-3.1.2-25], while other subscribers still get it.
final class ClientMaximumPacketSizeTests: MessagingTestCase {
    func testTooLargeMessageIsSkippedForThatClientOnly() async throws {
        var small = Properties()
        small.maximumPacketSize = 100
        small.receiveMaximum = 1   // a leaked inflight slot would block the next message
        let limited = try await connect("mps-small", .v5, properties: small)
        try await limited.subscribe("mps/#", qos: .atLeastOnce)
        let unlimited = try await connect("mps-big", .v5)
        try await unlimited.subscribe("mps/#", qos: .atLeastOnce)
        let v3 = try await connect("mps-v3", .v3_1_1)
        try await v3.subscribe("mps/#", qos: .atLeastOnce)

        let publisher = try await connect("mps-pub", .v5)
        let large = String(repeating: "L", count: 200)
        for qos in QoS.all {
            try await publisher.publish("mps/large", large, qos: qos, packetID: 1)
            try await publisher.publish("mps/small", "small-\(qos.rawValue)", qos: qos, packetID: 2)
        }
        // The limited client gets only the small ones, and its window is not stuck.
        let atLimited = try await limited.receivePublishes(3)
        XCTAssertEqual(atLimited.map(\.text), ["small-0", "small-1", "small-2"])
        for subscriber in [unlimited, v3] {
            let all = try await subscriber.receivePublishes(6)
            XCTAssertEqual(all.map(\.text), [large, "small-0", large, "small-1", large, "small-2"])
        }
        try await limited.expectSilence(for: .milliseconds(100))
        for connection in [limited, unlimited, v3, publisher] { await connection.close() }
    }

    /// The limit counts the whole packet, properties included: a message that fits by payload but
    /// not with the subscriber's Subscription Identifier / user properties is skipped too.
    func testLimitCountsTheWholePacket() async throws {
        var limit = Properties()
        limit.maximumPacketSize = 60
        let limited = try await connect("mps-whole", .v5, properties: limit)
        try await limited.subscribe("w", qos: .atMostOnce)
        let publisher = try await connect("mps-whole-pub", .v5)
        // Fixed header 2 + topic "w" 3 + property length 1 + payload 40 = 46 bytes: fits.
        try await publisher.publish("w", String(repeating: "p", count: 40))
        // The same payload with a 22-byte user property: 68 bytes, too large.
        var properties = Properties()
        properties.userProperties = [UserProperty("0123456789", "0123456")]
        try await publisher.publish("w", payload: ByteBuffer(string: String(repeating: "q", count: 40)), properties: properties)
        try await publisher.publish("w", "end")
        let received = try await limited.receivePublishes(2)
        XCTAssertEqual(received.map { $0.text.first }, ["p", "e"])
        await limited.close(); await publisher.close()
    }
}
