import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// A persistent QoS 1 subscriber whose connection drops and is re-established (each time a
/// takeover of the half-dead connection, often onto the other event loop) while a publisher
/// streams: no message is lost, and on each connection the resent messages (DUP 1) come first,
/// then the rest, all in publication order (v5 [MQTT-4.4.0-1] [MQTT-4.6.0-5], 3.1.1 [3.1.1:MQTT-4.4.0-1]
/// [3.1.1:MQTT-4.6.0-6]; the order the client rule MQTT-4.6.0-1 states for clients).
final class ReconnectDuringStreamTests: MessagingTestCase {
    func testNoLossAndOrderAcrossReconnectsWhilePublishing() async throws {
        // No queue limit: a 3.1.1 subscriber (window 20) falls behind the publisher, and
        // max_queued_messages would rightly drop messages.
        try restartBroker { $0.maxQueuedMessages = 0 }
        for version in messagingVersions {
            let total = 1500, reconnectEvery = 150, maxReconnects = 6
            let id = "stream-sub-\(version)"
            var (subscriber, _) = try await connectPersistent(id, version, resume: false)
            try await subscriber.subscribe("stream/\(version)", qos: .atLeastOnce)
            let publisher = try await connect("stream-pub-\(version)", version)
            let publishing = Task {
                for index in 0..<total {
                    try await publisher.send(.publish(PublishPacket(topic: "stream/\(version)", payload: ByteBuffer(string: "\(index)"),
                                                                    qos: .atLeastOnce, packetID: UInt16(index + 1))))
                    if index % 50 == 0 { try await Task.sleep(nanoseconds: 1_000_000) }
                }
                try await publisher.send(.publish(PublishPacket(topic: "stream/\(version)", payload: ByteBuffer(string: "end"),
                                                                qos: .atLeastOnce, packetID: 65000)))
            }
            // Per connection: (number, dup) in arrival order.
            var segments: [[(number: Int, dup: Bool)]] = [[]]
            var count = 0
            while true {
                let publish: PublishPacket
                do {
                    publish = try await subscriber.expectPublish(timeout: .seconds(5))
                } catch {
                    let session = broker.broker.session(clientID: id)
                    return XCTFail("\(version): \(error) after \(count) messages on connection \(segments.count - 1) "
                                   + "(last: \(segments.last?.last.map { "\($0)" } ?? "none"); session present: \(session != nil), online: \(session?.isOnline ?? false))")
                }
                try await subscriber.send(.puback(PubAckPacket(packetID: publish.packetID)))
                if publish.text == "end" { break }
                guard let number = Int(publish.text) else { return XCTFail("unexpected payload \(publish.text)") }
                segments[segments.count - 1].append((number, publish.dup))
                count += 1
                if count % reconnectEvery == 0 && segments.count <= maxReconnects {
                    await subscriber.close()   // no DISCONNECT: the broker may still think it is connected
                    (subscriber, _) = try await connectPersistent(id, version, resume: true)
                    segments.append([])
                }
            }
            try await publishing.value

            let all = segments.flatMap { $0.map(\.number) }
            XCTAssertEqual(Set(all), Set(0..<total), "\(version): messages lost")
            for (index, segment) in segments.enumerated() {
                let numbers = segment.map(\.number)
                if let wrong = numbers.indices.dropFirst().first(where: { numbers[$0] < numbers[$0 - 1] }) {
                    let window = segment[max(0, wrong - 6)..<min(segment.count, wrong + 4)].map { "\($0.number)\($0.dup ? "d" : "")" }
                    XCTFail("\(version): connection \(index) out of order at \(wrong): \(window)")
                }
                XCTAssertEqual(Set(numbers).count, numbers.count, "\(version): connection \(index) got a message twice")
                if let firstNew = segment.firstIndex(where: { !$0.dup }) {
                    XCTAssertFalse(segment[firstNew...].contains { $0.dup }, "\(version): connection \(index): a resend after new messages")
                }
            }
            XCTAssertEqual(segments.count, maxReconnects + 1, "\(version): not enough reconnects exercised")
            await subscriber.close(); await publisher.close()
        }
    }
}
