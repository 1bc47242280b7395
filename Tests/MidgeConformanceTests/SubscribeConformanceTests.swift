import Foundation
import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// SUBSCRIBE and SUBACK (spec 3.8 and 3.9, MQTT 5.0 and 3.1.1): malformed SUBSCRIBE packets end
/// the connection, every SUBSCRIBE gets one SUBACK with its packet id and one code per filter in
/// order, a repeated filter replaces the subscription, delivery QoS is the minimum of the two.
final class SubscribeConformanceTests: XCTestCase {
    // [MQTT-3.8.1-1] [3.1.1:MQTT-3.8.1-1]
    func testSubscribeFixedHeaderFlagsMustBe0010() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            for first: UInt8 in [0x80, 0x83, 0x8A, 0x86] {
                let (connection, _) = try await connectAccepted(broker, "sub-flags-\(version)-\(first)", version: version)
                try await connection.send(bytes: sectionCRawSubscribe(version, first: first, [(Array("a/b".utf8), 0)]))
                await expectViolationClose(connection, version, v5Reason: .malformedPacket, "SUBSCRIBE first byte \(hex([first])) \(version)")
            }
        }
        try await assertBrokerServes(broker, "after SUBSCRIBE packets with bad flags")
    }

    // [MQTT-3.8.3-1] [3.1.1:MQTT-3.8.3-1]
    func testTopicFilterMustBeValidUTF8() async throws {
        let broker = try startBroker()
        let invalid: [[UInt8]] = [[0x61, 0xC3, 0x28], [0xED, 0xA0, 0x80], [0x61, 0xFF], [0xC0, 0xAF]]
        for version in messagingVersions {
            for (index, filter) in invalid.enumerated() {
                let (connection, _) = try await connectAccepted(broker, "sub-utf8-\(version)-\(index)", version: version)
                try await connection.send(bytes: sectionCRawSubscribe(version, [(filter, 0)]))
                await expectViolationClose(connection, version, v5Reason: .malformedPacket, "filter \(hex(filter)) \(version)")
            }
            // A filter with valid multi-byte UTF-8 is accepted.
            let (connection, _) = try await connectAccepted(broker, "sub-utf8-ok-\(version)", version: version)
            try await connection.send(bytes: sectionCRawSubscribe(version, [(Array("température/é".utf8), 1)]))
            let suback = await sectionCExpectSubAck(connection, packetID: 1)
            XCTAssertEqual(suback?.reasonCodes, [.grantedQoS1])
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.8.3-2] [3.1.1:MQTT-3.8.3-3]
    func testSubscribeWithoutFiltersIsAProtocolError() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let (connection, _) = try await connectAccepted(broker, "sub-empty-\(version)", version: version)
            try await connection.send(bytes: sectionCRawSubscribe(version, []))
            // v5 DISCONNECT 0x81, as Mosquitto answers every error in a SUBSCRIBE (13-malformed-subscribe-v5; the DISCONNECT's code is a SHOULD, spec 4.13.1).
            await expectViolationClose(connection, version, v5Reason: .malformedPacket, "SUBSCRIBE without filters \(version)")
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.8.3-3]
    func testNoLocalKeepsOwnMessagesFromTheConnection() async throws {
        let broker = try startBroker()
        let (client, _) = try await connectAccepted(broker, "nolocal-self")
        let (other, _) = try await connectAccepted(broker, "nolocal-other")
        let codes = try await sectionCSubscribe(client, [("nl/+", SubscriptionOptions(qos: .atLeastOnce, noLocal: true)),
                                                         ("nl-end", SubscriptionOptions(qos: .atMostOnce))])
        XCTAssertEqual(codes, [.grantedQoS1, .grantedQoS0])
        try await publish(client, "nl/own", "own", qos: .atLeastOnce, packetID: 5)
        try await publish(other, "nl/other", "other", qos: .atLeastOnce, packetID: 6)
        try await publish(other, "nl-end", "end")
        let received = await sectionCPublishesBefore(client, marker: "nl-end")
        XCTAssertEqual(received.map(\.topic), ["nl/other"], "No Local: only the other client's message")
    }

    // [MQTT-3.8.3-4] [MQTT-4.13.1-1]
    func testNoLocalOnASharedSubscriptionIsAProtocolError() async throws {
        let broker = try startBroker()
        let (connection, _) = try await connectAccepted(broker, "nolocal-shared")
        try await connection.send(bytes: sectionCRawSubscribe(.v5, [(Array("ok/a".utf8), 0x01), (Array("$share/g/x/#".utf8), 0x04)]))
        // DISCONNECT 0x81, as Mosquitto answers every error in a SUBSCRIBE (13-malformed-subscribe-v5; the DISCONNECT's code is a SHOULD, spec 4.13.1).
        await expectDisconnect(connection, reason: .malformedPacket, "No Local on $share")
        // The same filter without No Local is fine.
        let (good, _) = try await connectAccepted(broker, "nolocal-shared-ok")
        let codes = try await sectionCSubscribe(good, [("$share/g/x/#", SubscriptionOptions(qos: .atLeastOnce))])
        XCTAssertEqual(codes, [.grantedQoS1])
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.8.3-5] [3.1.1:MQTT-3.8.3-4]
    func testReservedSubscriptionOptionBitsAreMalformed() async throws {
        let broker = try startBroker()
        // v5: bits 6 and 7 are reserved; Maximum QoS 3 and Retain Handling 3 are Protocol Errors, for
        // which Midge sends DISCONNECT 0x81, as Mosquitto answers every error in a SUBSCRIBE (13-malformed-subscribe-v5; the DISCONNECT's code is a SHOULD, spec 4.13.1).
        let v5Cases: [(UInt8, ReasonCode)] = [(0x40, .malformedPacket), (0x80, .malformedPacket), (0xC1, .malformedPacket),
                                              (0x03, .malformedPacket), (0x30, .malformedPacket)]
        for (options, reason) in v5Cases {
            let (connection, _) = try await connectAccepted(broker, "sub-opt-v5-\(options)")
            try await connection.send(bytes: sectionCRawSubscribe(.v5, [(Array("a/b".utf8), options)]))
            await expectDisconnect(connection, reason: reason, "v5 subscription options \(hex([options]))")
        }
        // 3.1.1: the upper six bits are reserved and QoS 3 is invalid.
        for options: UInt8 in [0x03, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x05] {
            let (connection, _) = try await connectAccepted(broker, "sub-opt-v3-\(options)", version: .v3_1_1)
            try await connection.send(bytes: sectionCRawSubscribe(.v3_1_1, [(Array("a/b".utf8), options)]))
            await expectDisconnect(connection, reason: nil, "3.1.1 subscription options \(hex([options]))")
        }
        // v5 options with every defined bit set are accepted.
        let (connection, _) = try await connectAccepted(broker, "sub-opt-v5-all")
        try await connection.send(bytes: sectionCRawSubscribe(.v5, [(Array("a/b".utf8), 0x2E)]))
        let suback = await sectionCExpectSubAck(connection, packetID: 1)
        XCTAssertEqual(suback?.reasonCodes, [.grantedQoS2])
        try await assertBrokerServes(broker)
    }

    // A Subscription Identifier of 0, or two of them, is a Protocol Error (spec 3.8.2.1.2).
    // [MQTT-4.13.1-1]
    func testSubscriptionIdentifierZeroOrRepeatedIsAProtocolError() async throws {
        let broker = try startBroker()
        for (name, properties) in [("zero", [0x0B, 0x00]), ("two", [0x0B, 0x01, 0x0B, 0x02])] as [(String, [UInt8])] {
            let (connection, _) = try await connectAccepted(broker, "subid-\(name)")
            try await connection.send(bytes: sectionCRawSubscribe(.v5, properties: properties, [(Array("a/b".utf8), 0)]))
            // DISCONNECT 0x81, as Mosquitto answers every error in a SUBSCRIBE (13-malformed-subscribe-v5; the DISCONNECT's code is a SHOULD, spec 4.13.1).
            await expectDisconnect(connection, reason: .malformedPacket, "Subscription Identifier \(name)")
        }
        try await assertBrokerServes(broker)
    }

    // [MQTT-3.8.4-1] [MQTT-3.8.4-2] [3.1.1:MQTT-3.8.4-1] [3.1.1:MQTT-3.8.4-2]
    func testEverySubscribeGetsASubAckWithItsPacketIdentifier() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let (connection, _) = try await connectAccepted(broker, "suback-id-\(version)", version: version)
            // Pipelined: several SUBSCRIBEs sent back to back, each answered in turn.
            let ids: [UInt16] = [1, 0xFFFF, 0x1234, 0x0100, 7]
            var bytes: [UInt8] = []
            for (index, id) in ids.enumerated() {
                bytes += sectionCRawSubscribe(version, packetID: id, [(Array("ids/\(index)".utf8), UInt8(index % 3))])
            }
            try await connection.send(bytes: bytes)
            for (index, id) in ids.enumerated() {
                let suback = await sectionCExpectSubAck(connection, packetID: id, "\(version) #\(index)")
                XCTAssertEqual(suback?.reasonCodes, [ReasonCode(rawValue: UInt8(index % 3))], "\(version) #\(index)")
            }
            // (No SUBSCRIBE fails with a SUBACK code: an invalid filter makes the packet malformed and
            // the ACL does not refuse subscriptions, both as in Mosquitto.)
            await expectNothing(connection, for: 0.2, "after the SUBACKs")
        }
    }

    // [MQTT-3.8.4-3] [3.1.1:MQTT-3.8.4-3]
    func testIdenticalFilterReplacesTheSubscription() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let (subscriber, _) = try await connectAccepted(broker, "replace-sub-\(version)", version: version)
            let (publisher, _) = try await connectAccepted(broker, "replace-pub-\(version)", version: version)
            let filter = "replace/\(version)/+", marker = "replace/\(version)-end"
            try await subscribe(subscriber, filter, qos: .exactlyOnce, packetID: 1)
            try await subscribe(subscriber, filter, qos: .atMostOnce, packetID: 2)
            try await subscribe(subscriber, marker, qos: .atMostOnce, packetID: 3)
            try await publish(publisher, "replace/\(version)/t", "m", qos: .exactlyOnce, packetID: 9)
            try await publish(publisher, marker, "end")
            let received = await sectionCPublishesBefore(subscriber, marker: marker)
            // One copy (the subscription was replaced, not added), at the new maximum QoS.
            XCTAssertEqual(received.map(\.qos), [.atMostOnce], "\(version): one delivery at the replaced QoS")
        }
        // v5: the options are replaced too (No Local on, then off again).
        let (client, _) = try await connectAccepted(broker, "replace-options")
        let marker = "ro-end"
        _ = try await sectionCSubscribe(client, [("ro/t", SubscriptionOptions(qos: .atLeastOnce, noLocal: true)), (marker, SubscriptionOptions())])
        _ = try await sectionCSubscribe(client, [("ro/t", SubscriptionOptions(qos: .atLeastOnce, noLocal: false))], packetID: 2)
        try await publish(client, "ro/t", "own")
        try await publish(client, marker, "end")
        let own = await sectionCPublishesBefore(client, marker: marker)
        XCTAssertEqual(own.map(\.text), ["own"], "No Local was replaced by the new subscription's options")
    }

    // [MQTT-3.8.4-4] [3.1.1:MQTT-3.8.4-3]
    func testReplacingASubscriptionResendsRetainedAndLosesNoMessage() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let base = "keep/\(version)"
            let (publisher, _) = try await connectAccepted(broker, "keep-pub-\(version)", version: version)
            try await publish(publisher, "\(base)/retained", "r", qos: .atLeastOnce, retain: true, packetID: 1)
            let (subscriber, _) = try await connectAccepted(broker, "keep-sub-\(version)", version: version)
            try await subscriber.send(.subscribe(SubscribePacket(packetID: 1, subscriptions: [
                TopicSubscription(filter: "\(base)/#", options: SubscriptionOptions(qos: .atLeastOnce)),
            ])))
            // The first subscription must be in place before the stream starts (a message published
            // before it exists is rightly not delivered): wait for its SUBACK, then replace it while
            // the stream flows.
            guard case .suback = await expectPacket(subscriber, "\(version): first SUBACK") else {
                return XCTFail("\(version): no SUBACK for the first SUBSCRIBE")
            }
            var subscribesSent = 2, subacks = 1, retainedCopies = 0
            try await subscriber.send(.subscribe(SubscribePacket(packetID: 2, subscriptions: [
                TopicSubscription(filter: "\(base)/#", options: SubscriptionOptions(qos: .atLeastOnce)),
            ])))
            // A stream of QoS 1 messages while the subscriber replaces its subscription again and again.
            let count = 40
            let stream = Task {
                for index in 0..<count {
                    try await publisher.send(.publish(PublishPacket(topic: "\(base)/stream", payload: ByteBuffer(text: "\(index)"),
                                                                    qos: .atLeastOnce, packetID: UInt16(index + 10))))
                }
            }
            var stream_: Set<String> = []
            let deadline = Date().addingTimeInterval(10)
            while (stream_.count < count || subacks < 5 || retainedCopies < subacks) && Date() < deadline {
                guard let packet = await expectPacket(subscriber, "\(version): stream, SUBACK or retained message") else { break }
                switch packet {
                case .suback:
                    subacks += 1
                    if subscribesSent < 5 {
                        subscribesSent += 1
                        try await subscriber.send(.subscribe(SubscribePacket(packetID: UInt16(subscribesSent), subscriptions: [
                            TopicSubscription(filter: "\(base)/#", options: SubscriptionOptions(qos: .atLeastOnce)),
                        ])))
                    }
                case .publish(let message):
                    if message.qos == .atLeastOnce { try await subscriber.send(.puback(PubAckPacket(packetID: message.packetID))) }
                    if message.topic.hasSuffix("/retained") {
                        XCTAssertTrue(message.retain, "\(version): retained message sent for a SUBSCRIBE has RETAIN 1")
                        retainedCopies += 1
                    } else {
                        XCTAssertFalse(stream_.contains(message.text) && !message.dup, "\(version): duplicate \(message.text)")
                        stream_.insert(message.text)
                    }
                default:
                    XCTFail("\(version): unexpected \(packet)")
                }
            }
            try await stream.value
            XCTAssertEqual(stream_, Set((0..<count).map { "\($0)" }), "\(version): no message lost while replacing the subscription")
            XCTAssertEqual(subacks, 5, "\(version)")
            XCTAssertEqual(retainedCopies, 5, "\(version): the retained message is re-sent for each replacing SUBSCRIBE")
            await publisher.close()
            await subscriber.close()
        }
    }

    // [MQTT-3.8.4-5] [MQTT-3.8.4-6] [MQTT-3.8.4-7] [MQTT-3.9.3-1] [MQTT-3.9.3-2]
    // [3.1.1:MQTT-3.8.4-4] [3.1.1:MQTT-3.8.4-5] [3.1.1:MQTT-3.9.3-1] [3.1.1:MQTT-3.9.3-2]
    func testMultipleFiltersAreHandledInOrderWithOneSubAck() async throws {
        let acl = try sectionCWriteACL("topic readwrite multi/#\ntopic readwrite multi-end\n")
        let broker = try startBroker { config in config.security.aclFile = acl }
        for version in messagingVersions {
            let (subscriber, _) = try await connectAccepted(broker, "multi-\(version)", version: version)
            let (publisher, _) = try await connectAccepted(broker, "multi-pub-\(version)", version: version)
            let base = "multi/\(version)"
            let requests: [(String, QoS)] = [
                ("\(base)/a", .atMostOnce), ("\(base)/b", .atLeastOnce),
                ("denied/\(version)", .atLeastOnce),   // outside the ACL: granted all the same, as Mosquitto (nothing is delivered)
                ("\(base)/c", .exactlyOnce), ("\(base)/a", .exactlyOnce),                              // replaces the first one
                ("multi-end", .atMostOnce),
            ]
            try await subscriber.send(bytes: sectionCRawSubscribe(version, packetID: 77, requests.map { (Array($0.0.utf8), $0.1.rawValue) }))
            guard let raw = await expectPacket(subscriber, "SUBACK"), case .suback(let suback) = raw else {
                XCTFail("\(version): no SUBACK")
                continue
            }
            XCTAssertEqual(suback.packetID, 77)
            let codes = suback.reasonCodes.map(\.rawValue)
            XCTAssertEqual(codes, [0x00, 0x01, 0x01, 0x02, 0x02, 0x00], "\(version): one code per filter, in order")
            let allowed = version == .v5 ? sectionCSubAckCodesV5 : sectionCSubAckCodesV311
            XCTAssertTrue(codes.allSatisfy(allowed.contains), "\(version): only the table's codes: \(codes)")
            await expectNothing(subscriber, for: 0.2, "\(version): a single SUBACK")
            // Processed in sequence: the later "a" replaced the earlier one (QoS 2, one copy).
            for topic in ["a", "b", "c"] {
                try await publish(publisher, "\(base)/\(topic)", topic, qos: .exactlyOnce, packetID: 3)
            }
            try await publish(publisher, "multi-end", "end")
            let received = await sectionCPublishesBefore(subscriber, marker: "multi-end")
            XCTAssertEqual(received.map { "\($0.text)\($0.qos.rawValue)" }, ["a2", "b1", "c2"], "\(version)")
        }
    }

    // [MQTT-3.8.4-8] [3.1.1:MQTT-3.8.4-6]
    func testDeliveryQoSIsTheMinimumOfPublishedAndGranted() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let (publisher, _) = try await connectAccepted(broker, "minqos-pub-\(version)", version: version)
            var subscribers: [PacketConnection] = []
            for granted in QoS.all {
                let (subscriber, _) = try await connectAccepted(broker, "minqos-\(version)-\(granted.rawValue)", version: version)
                try await subscribe(subscriber, "minqos/\(version)", qos: granted)
                try await subscribe(subscriber, "minqos-end/\(version)", qos: .atMostOnce, packetID: 2)
                subscribers.append(subscriber)
            }
            for published in QoS.all {
                try await publish(publisher, "minqos/\(version)", "\(published.rawValue)", qos: published, packetID: 20)
            }
            try await publish(publisher, "minqos-end/\(version)", "end")
            for (index, subscriber) in subscribers.enumerated() {
                let granted = QoS.all[index]
                let received = await sectionCPublishesBefore(subscriber, marker: "minqos-end/\(version)")
                XCTAssertEqual(received.map(\.qos), QoS.all.map { min($0, granted) }, "\(version) granted \(granted)")
            }
        }
    }

    // [MQTT-3.9.2-1] [MQTT-3.9.2-2]
    func testSubAckStaysWithinTheClientMaximumPacketSize() async throws {
        let acl = try sectionCWriteACL("topic readwrite small/#\n")
        let broker = try startBroker { config in config.security.aclFile = acl }
        var properties = Properties()
        properties.maximumPacketSize = 16
        let (connection, _) = try await connectAccepted(broker, "suback-small", properties: properties)
        // The SUBACK never grows a Reason String or User Properties (8 bytes here), for a filter
        // outside the ACL as for one inside.
        for (index, filter) in ["denied/x", "small/ok"].enumerated() {
            try await connection.send(bytes: sectionCRawSubscribe(.v5, packetID: UInt16(index + 1), [(Array(filter.utf8), 1)]))
            let suback = await sectionCExpectSubAck(connection, packetID: UInt16(index + 1), filter)
            XCTAssertEqual(suback?.reasonCodes.count, 1, filter)
            XCTAssertNil(suback?.properties.reasonString, filter)
            XCTAssertEqual(suback?.properties.userProperties ?? [], [], filter)
            if let suback {
                XCTAssertLessThanOrEqual(encoded(.suback(suback), .v5).count, 8, filter)
            }
        }
    }
}
