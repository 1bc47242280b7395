import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// The QoS 1 and QoS 2 delivery protocols (spec 4.3) with the broker as sender and as receiver.
final class QoSDeliveryProtocolConformanceTests: XCTestCase {
    // [MQTT-4.3.2-1] [MQTT-4.3.2-2] [MQTT-4.3.2-3] [3.1.1:MQTT-4.3.2-1]
    /// Broker as QoS 1 sender: each new message gets a non-zero packet id not in use by another
    /// unacknowledged message, goes out with DUP 0, and stays unacknowledged (never resent on the
    /// same connection, its id never reused) until its PUBACK.
    func testBrokerAsQoS1Sender() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let subscriber = try await connectClean(broker, "q1s-sub-\(version)", version)
            try await subscribe(subscriber, "q1s/t", qos: .atLeastOnce)
            let publisher = try await connectClean(broker, "q1s-pub-\(version)", version)
            try await publisher.publish("q1s/t", "held", qos: .atLeastOnce, packetID: 1)
            let held = try await subscriber.expectPublish()
            XCTAssertEqual(held.qos, .atLeastOnce)
            XCTAssertFalse(held.dup, "\(version): DUP 0 on the first send")
            XCTAssertNotEqual(held.packetID, 0)
            var ids: Set<UInt16> = [held.packetID]
            for round in 0..<3 {
                for index in 0..<10 {
                    try await publisher.publish("q1s/t", "m\(round)-\(index)", qos: .atLeastOnce, packetID: UInt16(2 + index))
                }
                let batch = try await subscriber.receivePublishes(10, acknowledge: false)
                for publish in batch {
                    XCTAssertFalse(publish.dup, "\(version)")
                    XCTAssertNotEqual(publish.packetID, 0, "\(version)")
                    XCTAssertNotEqual(publish.packetID, held.packetID, "\(version): the unacknowledged message's id is not reused")
                }
                XCTAssertEqual(Set(batch.map(\.packetID)).count, 10, "\(version): ids of unacknowledged messages are distinct")
                ids.formUnion(batch.map(\.packetID))
                for publish in batch { try await subscriber.acknowledge(publish) }
            }
            await expectNothing(subscriber, for: 0.3, "\(version): the unacknowledged message is not resent on this connection")
            try await subscriber.send(.puback(PubAckPacket(packetID: held.packetID)))
            await subscriber.close()
            await publisher.close()
        }
    }

    // [MQTT-4.3.3-1] [MQTT-4.3.3-2] [MQTT-4.3.3-3] [MQTT-4.3.3-4] [MQTT-4.3.3-5] [MQTT-4.3.3-6] [3.1.1:MQTT-4.3.3-1]
    /// Broker as QoS 2 sender: PUBLISH with a fresh non-zero id and DUP 0; nothing more until the
    /// PUBREC; then a PUBREL with the same id and never the PUBLISH again; the id stays in use
    /// until the PUBCOMP.
    func testBrokerAsQoS2Sender() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let subscriber = try await connectClean(broker, "q2s-sub-\(version)", version)
            try await subscribe(subscriber, "q2s/t", qos: .exactlyOnce)
            let publisher = try await connectClean(broker, "q2s-pub-\(version)", version)
            try await publisher.publish("q2s/t", "first", qos: .exactlyOnce, packetID: 1)
            let first = try await subscriber.expectPublish()
            XCTAssertEqual(first.qos, .exactlyOnce)
            XCTAssertFalse(first.dup, "\(version): DUP 0 on the first send")
            XCTAssertNotEqual(first.packetID, 0)
            await expectNothing(subscriber, for: 0.3, "\(version): unacknowledged until PUBREC, not resent")

            try await subscriber.send(.pubrec(PubAckPacket(packetID: first.packetID)))
            let rel = await bExpectAck(subscriber, "PUBREL")
            XCTAssertEqual(rel?.packetID, first.packetID, "\(version): PUBREL with the PUBLISH's id")
            await expectNothing(subscriber, for: 0.3, "\(version): neither the PUBLISH nor the PUBREL again")

            // While the PUBREL is unacknowledged its id stays in use.
            for index in 0..<5 { try await publisher.publish("q2s/t", "n\(index)", qos: .exactlyOnce, packetID: UInt16(10 + index)) }
            let next = try await subscriber.receivePublishes(5, acknowledge: false)
            XCTAssertFalse(next.contains { $0.packetID == first.packetID }, "\(version): id of the unreleased flow not reused")
            XCTAssertEqual(Set(next.map(\.packetID)).count, 5)
            try await subscriber.send(.pubcomp(PubAckPacket(packetID: first.packetID)))
            for publish in next {
                try await subscriber.send(.pubrec(PubAckPacket(packetID: publish.packetID)))
                let value6 = await bExpectAck(subscriber, "PUBREL")?.packetID
                XCTAssertEqual(value6, publish.packetID)
                try await subscriber.send(.pubcomp(PubAckPacket(packetID: publish.packetID)))
            }
            await expectNothing(subscriber, for: 0.2, "\(version): all flows complete")
            await subscriber.close()
            await publisher.close()
        }
    }

    // [MQTT-4.3.2-4] [MQTT-4.3.2-5] [3.1.1:MQTT-4.3.2-2]
    /// Broker as QoS 1 receiver: PUBACK with the PUBLISH's id once it owns the message; after that
    /// PUBACK a PUBLISH reusing the id, DUP 1 or not, is a new message and is delivered again.
    func testBrokerAsQoS1Receiver() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let subscriber = try await connectClean(broker, "q1r-sub-\(version)", version)
            try await subscribe(subscriber, "q1r/t", qos: .atLeastOnce)
            let publisher = try await connectClean(broker, "q1r-pub-\(version)", version)
            for (text, dup) in [("first", false), ("second", true), ("third", false)] {
                try await publisher.send(.publish(PublishPacket(topic: "q1r/t", payload: ByteBuffer(text: text), qos: .atLeastOnce, dup: dup, packetID: 5)))
                let value7 = await bExpectAck(publisher, "PUBACK")?.packetID
                XCTAssertEqual(value7, 5)
            }
            let got = try await subscriber.receivePublishes(3)
            XCTAssertEqual(got.map(\.text), ["first", "second", "third"], "\(version): each reuse of id 5 is a new message")
        }
    }

    // [MQTT-4.3.3-8] [MQTT-4.3.3-10] [MQTT-4.3.3-11] [MQTT-4.3.3-12] [3.1.1:MQTT-4.3.3-2]
    /// Broker as QoS 2 receiver: PUBREC with the id; until the PUBREL a repeated PUBLISH with that
    /// id gets PUBREC again and is not delivered a second time; PUBREL gets PUBCOMP with the id;
    /// after it the id starts a new message.
    func testBrokerAsQoS2Receiver() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let subscriber = try await connectClean(broker, "q2r-sub-\(version)", version)
            try await subscribe(subscriber, "q2r/t", qos: .exactlyOnce)
            let publisher = try await connectClean(broker, "q2r-pub-\(version)", version)
            try await publisher.send(.publish(PublishPacket(topic: "q2r/t", payload: ByteBuffer(text: "once"), qos: .exactlyOnce, packetID: 7)))
            let value8 = await bExpectAck(publisher, "PUBREC")?.packetID
            XCTAssertEqual(value8, 7)
            for dup in [true, false] {
                try await publisher.send(.publish(PublishPacket(topic: "q2r/t", payload: ByteBuffer(text: "once"), qos: .exactlyOnce, dup: dup, packetID: 7)))
                let value9 = await bExpectAck(publisher, "PUBREC")?.packetID
                XCTAssertEqual(value9, 7, "\(version): repeated PUBLISH acknowledged again")
            }
            try await publisher.send(.pubrel(PubAckPacket(packetID: 7)))
            let comp = await bExpectAck(publisher, "PUBCOMP")
            XCTAssertEqual(comp?.packetID, 7)
            XCTAssertEqual(comp?.reasonCode, .success)
            try await publisher.publish("q2r/t", "new", qos: .exactlyOnce, packetID: 7)
            let got = try await subscriber.receivePublishes(2)
            XCTAssertEqual(got.map(\.text), ["once", "new"], "\(version): delivered once before the PUBREL, then a new message")
            await expectNothing(subscriber, for: 0.3, "\(version): no duplicate")
        }
    }

    // [MQTT-4.3.3-9]
    /// After the broker sent a PUBREC with a failure code (0x87 for `$SYS`) the id is free: a PUBREL
    /// for it gets PUBCOMP (success, as Mosquitto answers an unknown id), and a new PUBLISH with that
    /// id is a new message.
    func testFailedPubRecFreesTheIdentifier() async throws {
        let broker = try startBroker()
        let subscriber = try await connectClean(broker, "q2f-sub", .v5)
        try await subscribe(subscriber, "q2f/t", qos: .exactlyOnce)
        let publisher = try await connectClean(broker, "q2f-pub", .v5)
        try await publisher.send(.publish(PublishPacket(topic: "$SYS/q2f", payload: ByteBuffer(text: "no"), qos: .exactlyOnce, packetID: 3)))
        let rec = await bExpectAck(publisher, "PUBREC")
        XCTAssertEqual(rec?.reasonCode, .notAuthorized)
        try await publisher.send(.pubrel(PubAckPacket(packetID: 3)))
        let value10 = await bExpectAck(publisher, "PUBCOMP")?.reasonCode
        XCTAssertEqual(value10, .success, "nothing held for id 3: PUBCOMP all the same")
        let value11 = try await publisher.publish("q2f/t", "yes", qos: .exactlyOnce, packetID: 3)
        XCTAssertEqual(value11, .success)
        let got = try await subscriber.receivePublishes(1)
        XCTAssertEqual(got.map(\.text), ["yes"])
    }
}
