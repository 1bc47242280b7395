import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Flow control (spec 4.9, MQTT 5.0): the broker's send quota towards a client starts at the
/// client's Receive Maximum, each QoS 1/2 PUBLISH uses one, PUBACK / PUBCOMP / a refusing PUBREC
/// gives one back, and with no quota left every other packet still flows.
final class FlowControlConformanceTests: XCTestCase {
    // [MQTT-4.9.0-1] [MQTT-4.9.0-2]
    func testSendQuotaStartsAtTheReceiveMaximumAndIsReturnedByAcknowledgements() async throws {
        let broker = try startBroker()
        let (subscriber, _) = try await connectAccepted(broker, "quota-sub", properties: .with(receiveMaximum: 3))
        try await subscribe(subscriber, "quota/#", qos: .exactlyOnce)
        let (publisher, _) = try await connectAccepted(broker, "quota-pub")
        for index in 0..<8 {
            try await publish(publisher, "quota/\(index % 2 == 0 ? "one" : "two")", "\(index)", qos: index % 2 == 0 ? .atLeastOnce : .exactlyOnce,
                              packetID: UInt16(index + 1))
        }
        // A non-zero initial quota equal to the Receive Maximum: exactly three arrive.
        var inflight: [PublishPacket] = []
        for _ in 0..<3 { if let message = await expectPublish(subscriber) { inflight.append(message) } }
        XCTAssertEqual(inflight.map(\.text), ["0", "1", "2"])
        await expectNothing(subscriber, for: 0.3, "quota used up")
        // PUBREC with success does not return quota (the QoS 2 flow is not complete)...
        let q2 = inflight[1]
        try await subscriber.send(.pubrec(PubAckPacket(packetID: q2.packetID)))
        guard let rel = await expectPacket(subscriber, "PUBREL"), case .pubrel = rel else { return XCTFail("no PUBREL") }
        await expectNothing(subscriber, for: 0.3, "a PUBREC < 0x80 keeps the quota used")
        // ...PUBCOMP does; so does PUBACK.
        try await subscriber.send(.pubcomp(PubAckPacket(packetID: q2.packetID)))
        let fourth = await expectPublish(subscriber)
        XCTAssertEqual(fourth?.text, "3")
        try await subscriber.send(.puback(PubAckPacket(packetID: inflight[0].packetID)))
        let fifth = await expectPublish(subscriber)
        XCTAssertEqual(fifth?.text, "4")
        await expectNothing(subscriber, for: 0.2, "one back, one out")
        // A PUBREC of 0x80 or more ends the QoS 2 flow and returns the quota too.
        guard let fourthMessage = fourth else { return }
        XCTAssertEqual(fourthMessage.qos, .exactlyOnce)
        try await subscriber.send(.pubrec(PubAckPacket(packetID: fourthMessage.packetID, reasonCode: .unspecifiedError)))
        let sixth = await expectPublish(subscriber)
        XCTAssertEqual(sixth?.text, "5")
    }

    // [MQTT-4.9.0-3]
    func testOtherPacketsFlowWhileTheQuotaIsZero() async throws {
        let broker = try startBroker()
        let (subscriber, _) = try await connectAccepted(broker, "zero-sub", properties: .with(receiveMaximum: 1))
        try await subscribe(subscriber, "zero/held", qos: .atLeastOnce)
        let (publisher, _) = try await connectAccepted(broker, "zero-pub")
        try await publish(publisher, "zero/held", "first", qos: .atLeastOnce, packetID: 1)
        try await publish(publisher, "zero/held", "second", qos: .atLeastOnce, packetID: 2)
        guard let first = await expectPublish(subscriber) else { return }
        XCTAssertEqual(first.text, "first")
        // Quota 0 now. PINGREQ, SUBSCRIBE, UNSUBSCRIBE, the client's own PUBLISH and QoS 0 traffic still flow.
        try await subscriber.send(.pingreq)
        let pong = await expectPacket(subscriber, "PINGRESP")
        XCTAssertEqual(pong, .pingresp)
        try await subscribe(subscriber, "zero/free", qos: .atMostOnce, packetID: 5)
        try await subscriber.send(.unsubscribe(UnsubscribePacket(packetID: 6, filters: ["zero/none"])))
        _ = await sectionCExpectUnsubAck(subscriber, packetID: 6)
        try await publish(subscriber, "elsewhere", "q1", qos: .atLeastOnce, packetID: 7)
        try await publish(subscriber, "elsewhere", "q2", qos: .exactlyOnce, packetID: 8)
        try await publish(publisher, "zero/free", "qos0")
        let free = await expectPublish(subscriber)
        XCTAssertEqual(free?.text, "qos0", "QoS 0 is not held back by the quota")
        // Returning the quota releases the held QoS 1 message.
        try await subscriber.send(.puback(PubAckPacket(packetID: first.packetID)))
        let second = await expectPublish(subscriber)
        XCTAssertEqual(second?.text, "second")
    }
}
