import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestSupport
import NIOCore
import XCTest

/// A subscriber that stops reading must not make the broker buffer without bound: past the
/// channel's high water mark its QoS 0 messages wait in the session queue, which
/// `max_queued_messages` bounds (new messages beyond it are dropped, as in Mosquitto); when it
/// reads again the queue drains in order and it is served normally.
final class SlowSubscriberTests: XCTestCase {
    func testQoS0ToAStalledSubscriberIsBoundedThenDrainsInOrder() async throws {
        let broker = try TestBroker { $0.maxQueuedMessages = 100 }
        defer { broker.shutdown() }
        let (subscriber, _) = try await broker.connect("slow", version: .v5)
        try await subscriber.send(.subscribe(SubscribePacket(packetID: 1, subscriptions: [TopicSubscription(filter: "flood")])))
        guard case .suback = try await subscriber.receive() else { return XCTFail("no SUBACK") }
        try await subscriber.channel.setOption(ChannelOptions.autoRead, value: false).get()

        let (publisher, _) = try await broker.connect("fast", version: .v5)
        let total = 20_000
        let payload = String(repeating: "x", count: 1000)
        for index in 0..<total {
            try await publisher.send(.publish(PublishPacket(topic: "flood", payload: ByteBuffer(string: "\(index) \(payload)"))))
        }
        // A PINGREQ round trip proves the publisher's packets were all processed.
        try await publisher.send(.pingreq)
        guard case .pingresp = try await publisher.receive(timeout: .seconds(20)) else { return XCTFail("no PINGRESP") }
        try await subscriber.channel.setOption(ChannelOptions.autoRead, value: true).get()
        subscriber.channel.read()
        var received: [Int] = []
        while true {
            guard case .publish(let message)? = try? await subscriber.receive(timeout: .seconds(2)) else { break }
            received.append(Int(message.payload.text.split(separator: " ").first!)!)
        }
        // 20 MB were published; kernel buffers, 1 MiB of channel buffer and 100 queued messages
        // hold far less, so most were dropped — and what arrived is in order.
        XCTAssertGreaterThan(received.count, 100)
        XCTAssertLessThan(received.count, total, "nothing was dropped: the broker buffered everything")
        XCTAssertEqual(received, received.sorted())
        // Once drained, the subscriber is served normally again.
        try await publisher.send(.publish(PublishPacket(topic: "flood", payload: ByteBuffer(string: "\(total) after"))))
        guard case .publish(let after) = try await subscriber.receive(timeout: .seconds(5)) else { return XCTFail("not served after draining") }
        XCTAssertEqual(after.payload.text, "\(total) after")
    }

    /// Large QoS 1 messages to a subscriber that stops reading: the socket's send buffer fills,
    /// the rest waits (partially sent buffers, EPOLLOUT), and when it reads again every message
    /// arrives whole and in order — nothing is dropped at QoS 1.
    func testLargeQoS1MessagesToAStalledSubscriberArriveWholeAndInOrder() async throws {
        let broker = try TestBroker()
        defer { broker.shutdown() }
        let (subscriber, _) = try await broker.connect("slow-large", version: .v5)
        try await subscriber.send(.subscribe(SubscribePacket(packetID: 1, subscriptions: [TopicSubscription(filter: "big", options: .init(qos: .atLeastOnce))])))
        guard case .suback = try await subscriber.receive() else { return XCTFail("no SUBACK") }
        try await subscriber.channel.setOption(ChannelOptions.autoRead, value: false).get()

        let (publisher, _) = try await broker.connect("big-publisher", version: .v5)
        let count = 64  // 16 MiB: more than the kernel buffers of both ends hold
        let size = 256 * 1024
        for index in 0..<count {
            var payload = ByteBuffer()
            payload.writeRepeatingByte(UInt8(index), count: size)
            try await publisher.send(.publish(PublishPacket(topic: "big", payload: payload, qos: .atLeastOnce, packetID: UInt16(index + 1))))
            guard case .puback = try await publisher.receive(timeout: .seconds(10)) else { return XCTFail("no PUBACK \(index)") }
        }
        try await subscriber.channel.setOption(ChannelOptions.autoRead, value: true).get()
        subscriber.channel.read()
        for index in 0..<count {
            guard case .publish(let message) = try await subscriber.receive(timeout: .seconds(10)) else { return XCTFail("message \(index) missing") }
            XCTAssertEqual(message.payload.readableBytes, size)
            XCTAssertEqual(message.payload.getBytes(at: message.payload.readerIndex, length: size), [UInt8](repeating: UInt8(index), count: size), "message \(index) corrupted or out of order")
            try await subscriber.send(.puback(PubAckPacket(packetID: message.packetID)))
        }
    }
}
