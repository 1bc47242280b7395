import Foundation
import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// UNSUBSCRIBE and UNSUBACK (spec 3.10 and 3.11, MQTT 5.0 and 3.1.1): malformed UNSUBSCRIBE packets
/// end the connection; every UNSUBSCRIBE gets one UNSUBACK with its packet id (v5: one reason code
/// per filter, in order); filters compare byte for byte; deliveries already started complete.
final class UnsubscribeConformanceTests: XCTestCase {
    // [MQTT-3.10.1-1] [3.1.1:MQTT-3.10.1-1]
    func testUnsubscribeFixedHeaderFlagsMustBe0010() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            for first: UInt8 in [0xA0, 0xA3, 0xAA, 0xA6] {
                let (connection, _) = try await connectAccepted(broker, "unsub-flags-\(version)-\(first)", version: version)
                try await connection.send(bytes: sectionCRawUnsubscribe(version, first: first, [Array("a/b".utf8)]))
                await expectViolationClose(connection, version, v5Reason: .malformedPacket, "UNSUBSCRIBE first byte \(hex([first])) \(version)")
            }
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.10.3-1] [3.1.1:MQTT-3.10.3-1]
    func testUnsubscribeFilterMustBeValidUTF8() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            for (index, filter) in [[0x61, 0xC3, 0x28], [0xED, 0xB0, 0x80], [0xFE]].enumerated() as EnumeratedSequence<[[UInt8]]> {
                let (connection, _) = try await connectAccepted(broker, "unsub-utf8-\(version)-\(index)", version: version)
                try await connection.send(bytes: sectionCRawUnsubscribe(version, [filter]))
                await expectViolationClose(connection, version, v5Reason: .malformedPacket, "filter \(hex(filter)) \(version)")
            }
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.10.3-2] [3.1.1:MQTT-3.10.3-2]
    func testUnsubscribeWithoutFiltersIsAProtocolError() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let (connection, _) = try await connectAccepted(broker, "unsub-empty-\(version)", version: version)
            try await connection.send(bytes: sectionCRawUnsubscribe(version, []))
            // v5 DISCONNECT 0x81, as Mosquitto answers every error in an UNSUBSCRIBE (13-malformed-unsubscribe-v5).
            await expectViolationClose(connection, version, v5Reason: .malformedPacket, "UNSUBSCRIBE without filters \(version)")
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.10.4-1] [3.1.1:MQTT-3.10.4-1]
    func testFiltersAreComparedCharacterByCharacter() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let base = "cmp/\(version)"
            let (subscriber, _) = try await connectAccepted(broker, "cmp-sub-\(version)", version: version)
            let (publisher, _) = try await connectAccepted(broker, "cmp-pub-\(version)", version: version)
            try await subscribe(subscriber, "\(base)/+", qos: .atMostOnce, packetID: 1)
            try await subscribe(subscriber, "\(base)/x/#", qos: .atMostOnce, packetID: 2)
            try await subscribe(subscriber, "\(base)-end", qos: .atMostOnce, packetID: 3)
            // None of these is character-for-character one of the filters: nothing is removed,
            // although some match the same topics or differ only in case.
            let near = ["\(base)/a", "\(base)/#", "\(base)/+/", "CMP/\(version)/+", "\(base)/x/+", "\(base)/x", "\(base)//+"]
            try await subscriber.send(.unsubscribe(UnsubscribePacket(packetID: 4, filters: near)))
            let first = await sectionCExpectUnsubAck(subscriber, packetID: 4)
            if version == .v5 {
                XCTAssertEqual(first?.reasonCodes, Array(repeating: .noSubscriptionExisted, count: near.count))
            }
            try await publish(publisher, "\(base)/a", "a")
            try await publish(publisher, "\(base)/x/y", "xy")
            try await publish(publisher, "\(base)-end", "end")
            var received = await sectionCPublishesBefore(subscriber, marker: "\(base)-end")
            XCTAssertEqual(received.map(\.text), ["a", "xy"], "\(version): both subscriptions still there")
            // The exact filter removes its subscription and only that one.
            try await subscriber.send(.unsubscribe(UnsubscribePacket(packetID: 5, filters: ["\(base)/+"])))
            let second = await sectionCExpectUnsubAck(subscriber, packetID: 5)
            if version == .v5 { XCTAssertEqual(second?.reasonCodes, [.success]) }
            try await publish(publisher, "\(base)/a", "a")
            try await publish(publisher, "\(base)/x/y", "xy")
            try await publish(publisher, "\(base)-end", "end")
            received = await sectionCPublishesBefore(subscriber, marker: "\(base)-end")
            XCTAssertEqual(received.map(\.text), ["xy"], "\(version): only \(base)/+ was removed")
        }
    }

    // [MQTT-3.10.4-2] [3.1.1:MQTT-3.10.4-2]
    func testNoNewMessagesAfterUnsubscribe() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let base = "stop/\(version)"
            let (subscriber, _) = try await connectAccepted(broker, "stop-sub-\(version)", version: version)
            let (publisher, _) = try await connectAccepted(broker, "stop-pub-\(version)", version: version)
            for (index, qos) in QoS.all.enumerated() { try await subscribe(subscriber, "\(base)/\(qos.rawValue)", qos: qos, packetID: UInt16(index + 1)) }
            try await subscribe(subscriber, "\(base)-end", qos: .atMostOnce, packetID: 9)
            try await subscriber.send(.unsubscribe(UnsubscribePacket(packetID: 10, filters: QoS.all.map { "\(base)/\($0.rawValue)" })))
            _ = await sectionCExpectUnsubAck(subscriber, packetID: 10)
            for qos in QoS.all { try await publish(publisher, "\(base)/\(qos.rawValue)", "late", qos: qos, packetID: 30) }
            try await publish(publisher, "\(base)-end", "end")
            let received = await sectionCPublishesBefore(subscriber, marker: "\(base)-end")
            XCTAssertEqual(received.map(\.topic), [], "\(version): nothing after UNSUBACK")
        }
    }

    // [MQTT-3.10.4-3] [3.1.1:MQTT-3.10.4-3]
    func testDeliveriesStartedBeforeUnsubscribeAreCompleted() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let base = "complete/\(version)", id = "complete-sub-\(version)"
            let (subscriber, _) = try await connectAccepted(broker, id, version: version, cleanStart: version == .v5,
                                                            sessionExpiry: version == .v5 ? 300 : nil)
            let (publisher, _) = try await connectAccepted(broker, "complete-pub-\(version)", version: version)
            try await subscribe(subscriber, "\(base)/#", qos: .exactlyOnce)
            try await publish(publisher, "\(base)/one", "q1", qos: .atLeastOnce, packetID: 1)
            try await publish(publisher, "\(base)/two", "q2", qos: .exactlyOnce, packetID: 2)
            // Both arrive; the subscriber acknowledges neither, then unsubscribes.
            var pending: [PublishPacket] = []
            for _ in 0..<2 { if let message = await expectPublish(subscriber) { pending.append(message) } }
            XCTAssertEqual(pending.map(\.text).sorted(), ["q1", "q2"], "\(version)")
            try await subscriber.send(.unsubscribe(UnsubscribePacket(packetID: 3, filters: ["\(base)/#"])))
            _ = await sectionCExpectUnsubAck(subscriber, packetID: 3)
            // The QoS 2 flow still completes on this connection.
            guard let q2 = pending.first(where: { $0.qos == .exactlyOnce }) else { return XCTFail("\(version): no QoS 2 message") }
            try await subscriber.send(.pubrec(PubAckPacket(packetID: q2.packetID)))
            guard let rel = await expectPacket(subscriber, "PUBREL"), case .pubrel(let release) = rel else {
                return XCTFail("\(version): the QoS 2 delivery was not continued after UNSUBSCRIBE")
            }
            XCTAssertEqual(release.packetID, q2.packetID)
            try await subscriber.send(.pubcomp(PubAckPacket(packetID: q2.packetID)))
            // The unacknowledged QoS 1 message is still owed: it is resent when the session resumes.
            await subscriber.close()
            let (resumed, connack) = try await connectAccepted(broker, id, version: version, cleanStart: false,
                                                               sessionExpiry: version == .v5 ? 300 : nil)
            XCTAssertTrue(connack.sessionPresent, "\(version)")
            guard let again = await expectPublish(resumed) else { return }
            XCTAssertEqual(again.text, "q1", "\(version)")
            XCTAssertTrue(again.dup, "\(version): a resent PUBLISH")
            try await resumed.send(.puback(PubAckPacket(packetID: again.packetID)))
            await expectNothing(resumed, for: 0.3, "\(version): the QoS 2 message was completed and the filter is gone")
            await resumed.close()
        }
    }

    // [MQTT-3.10.4-4] [MQTT-3.10.4-5] [MQTT-3.11.3-2] [3.1.1:MQTT-3.10.4-4] [3.1.1:MQTT-3.10.4-5]
    func testEveryUnsubscribeGetsAnUnsubAckWithItsPacketIdentifier() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let raw = try await RawConnection.connect(broker)
            try await raw.send(connectBytes("unsuback-\(version)", version))
            _ = await raw.readPacket()
            try await raw.send(sectionCRawSubscribe(version, packetID: 1, [(Array("u/known".utf8), 1)]))
            _ = await raw.readPacket()
            for (id, filter) in [(UInt16(0x0102), "u/known"), (0xFFFF, "u/unknown"), (0x0001, "u/known"), (0x7F00, "u/#")] {
                try await raw.send(sectionCRawUnsubscribe(version, packetID: id, [Array(filter.utf8)]))
                guard let bytes = await raw.readPacket() else {
                    XCTFail("\(version): no UNSUBACK for \(filter)")
                    continue
                }
                let idBytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF)]
                if version == .v5 {
                    // The reason code: 0x00 when the subscription existed, else 0x11.
                    let code: UInt8 = id == 0x0102 ? 0x00 : 0x11
                    XCTAssertEqual(bytes, [0xB0, 0x04] + idBytes + [0x00, code], "\(version) \(filter)")
                    XCTAssertTrue(sectionCUnsubAckCodesV5.contains(code))
                } else {
                    // 3.1.1: exactly b0 02 and the packet identifier, even when nothing was removed.
                    XCTAssertEqual(bytes, [0xB0, 0x02] + idBytes, "\(version) \(filter)")
                }
            }
            await raw.close()
        }
    }

    // [MQTT-3.10.4-6] [MQTT-3.11.3-1] [MQTT-3.11.3-2] [3.1.1:MQTT-3.10.4-6]
    func testMultipleFiltersAreHandledInOrderWithOneUnsubAck() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let base = "munsub/\(version)"
            let (subscriber, _) = try await connectAccepted(broker, "munsub-\(version)", version: version)
            let (publisher, _) = try await connectAccepted(broker, "munsub-pub-\(version)", version: version)
            let codes = try await sectionCSubscribe(subscriber, [("\(base)/a", SubscriptionOptions()), ("\(base)/b", SubscriptionOptions()),
                                                                 ("\(base)/c", SubscriptionOptions()), ("\(base)-end", SubscriptionOptions())])
            XCTAssertEqual(codes.count, 4)
            // "b" twice: the second finds nothing left, as if it were a later UNSUBSCRIBE.
            let filters = ["\(base)/b", "\(base)/zzz", "\(base)/a", "\(base)/b"]
            try await subscriber.send(.unsubscribe(UnsubscribePacket(packetID: 21, filters: filters)))
            let unsuback = await sectionCExpectUnsubAck(subscriber, packetID: 21)
            if version == .v5 {
                XCTAssertEqual(unsuback?.reasonCodes, [.success, .noSubscriptionExisted, .success, .noSubscriptionExisted])
            }
            await expectNothing(subscriber, for: 0.2, "\(version): a single UNSUBACK")
            for topic in ["a", "b", "c"] { try await publish(publisher, "\(base)/\(topic)", topic) }
            try await publish(publisher, "\(base)-end", "end")
            let received = await sectionCPublishesBefore(subscriber, marker: "\(base)-end")
            XCTAssertEqual(received.map(\.text), ["c"], "\(version)")
        }
    }

    // [MQTT-3.11.2-1] [MQTT-3.11.2-2]
    func testUnsubAckStaysWithinTheClientMaximumPacketSize() async throws {
        let broker = try startBroker()
        var properties = Properties()
        properties.maximumPacketSize = 16
        let (connection, _) = try await connectAccepted(broker, "unsuback-small", properties: properties)
        try await subscribe(connection, "small/a", qos: .atMostOnce)
        // (An invalid filter makes the UNSUBSCRIBE malformed, as in Mosquitto: no UNSUBACK for it.)
        for (index, filter) in ["small/a", "small/none"].enumerated() {
            try await connection.send(.unsubscribe(UnsubscribePacket(packetID: UInt16(index + 2), filters: [filter])))
            let unsuback = await sectionCExpectUnsubAck(connection, packetID: UInt16(index + 2), filter)
            XCTAssertEqual(unsuback?.reasonCodes.count, 1, filter)
            XCTAssertNil(unsuback?.properties.reasonString, filter)
            XCTAssertEqual(unsuback?.properties.userProperties ?? [], [], filter)
            if let unsuback { XCTAssertLessThanOrEqual(encoded(.unsuback(unsuback), .v5).count, 7, filter) }
        }
    }
}
