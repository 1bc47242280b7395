import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// The will of a CONNECT: stored with the session, published when the connection ends without a
/// normal DISCONNECT (after its Will Delay Interval, or when the session ends), never twice, never
/// after a normal DISCONNECT or a reconnection within the delay, never without a Will Flag, with
/// its QoS, RETAIN and user properties as given.
final class ConnectWillConformanceTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try startBroker() }

    /// A watcher subscribed at QoS 2 to `filter`.
    private func watcher(_ name: String, _ filter: String) async throws -> PacketConnection {
        let (watcher, _) = try await connectAccepted(broker, name)
        try await subscribe(watcher, filter, qos: .exactlyOnce)
        return watcher
    }

    private func will(_ topic: String, _ text: String, qos: QoS = .atLeastOnce, retain: Bool = false, delay: UInt32? = nil) -> Will {
        var properties = Properties()
        properties.willDelayInterval = delay
        return Will(topic: topic, payload: ByteBuffer(text: text), qos: qos, retain: retain, properties: properties)
    }

    // [MQTT-3.1.2-7] [MQTT-3.1.2-8] [MQTT-3.1.2-10] [3.1.1:MQTT-3.1.2-8] [3.1.1:MQTT-3.1.2-10]
    func testWillPublishedOnceWhenTheConnectionIsLost() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let topic = "will/lost/\(version.rawValue)"
            let watch = try await watcher("w-lost-\(version.rawValue)", topic)
            // A session that outlives the connection: the will belongs to it, and once published it is gone.
            let (client, _) = try await connectAccepted(broker, "lost\(version.rawValue)", version: version, cleanStart: false,
                                                        will: will(topic, "gone"), sessionExpiry: version == .v5 ? 60 : nil)
            await client.close()   // no DISCONNECT
            let message = await expectPublish(watch)
            XCTAssertEqual(message?.payload.text, "gone", "\(version)")
            if let message { try await acknowledge(message, on: watch) }
            // Resume the session without a will and lose that connection too: nothing more.
            let (again, connack) = try await connectAccepted(broker, "lost\(version.rawValue)", version: version, cleanStart: false,
                                                             sessionExpiry: version == .v5 ? 60 : nil)
            XCTAssertTrue(connack.sessionPresent)
            await again.close()
            await expectNothing(watch, for: 0.4, "the will was removed once published (\(version))")
        }
    }

    // [MQTT-3.1.2-10] [3.1.1:MQTT-3.1.2-10]
    func testNormalDisconnectDeletesTheWill() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let topic = "will/normal/\(version.rawValue)"
            let watch = try await watcher("w-normal-\(version.rawValue)", topic)
            let (client, _) = try await connectAccepted(broker, "normal\(version.rawValue)", version: version, will: will(topic, "no"))
            try await disconnect(client)
            await expectNothing(watch, for: 0.4, "no will after DISCONNECT (\(version))")
        }
        // v5 with a Will Delay: a normal DISCONNECT while the session lives on deletes it as well.
        let watch = try await watcher("w-normal-delay", "will/normal/delay")
        let (client, _) = try await connectAccepted(broker, "normal-delay", will: will("will/normal/delay", "no", delay: 1), sessionExpiry: 2)
        try await disconnect(client)
        await expectNothing(watch, for: 2.5, "no will after DISCONNECT 0x00, even when the session ends")
    }

    // [3.1.1:MQTT-3.1.2-12]
    func testNoWillFlagMeansNoWill() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let watch = try await watcher("w-none-\(version.rawValue)", "#")
            let (client, _) = try await connectAccepted(broker, "nowill\(version.rawValue)", version: version)
            await client.close()
            await expectNothing(watch, for: 0.4, "a connection without a will publishes nothing when lost (\(version))")
            try await disconnect(watch)
        }
    }

    // [MQTT-3.1.2-14] [MQTT-3.1.2-15] [3.1.1:MQTT-3.1.2-9] [3.1.1:MQTT-3.1.2-16] [3.1.1:MQTT-3.1.2-17]
    func testWillQoSAndRetainAreHonoured() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            for (qos, retain) in [(QoS.atMostOnce, false), (.atLeastOnce, true), (.exactlyOnce, false), (.exactlyOnce, true)] {
                let topic = "will/qr/\(version.rawValue)/\(qos.rawValue)\(retain ? "r" : "n")"
                let watch = try await watcher("w-qr-\(version.rawValue)-\(qos.rawValue)\(retain)", topic)
                let (client, _) = try await connectAccepted(broker, "qr\(version.rawValue)\(qos.rawValue)\(retain)", version: version,
                                                            will: will(topic, "w", qos: qos, retain: retain))
                await client.close()
                // Live delivery: at the will's QoS (the watcher asked for 2), RETAIN 0 on a live delivery.
                if let live = await expectPublish(watch) {
                    XCTAssertEqual(live.qos, qos, "\(topic)")
                    try await acknowledge(live, on: watch)
                }
                // Retained or not: what a later subscriber gets.
                let (late, _) = try await connectAccepted(broker, "late-\(version.rawValue)-\(qos.rawValue)\(retain)")
                try await late.send(.subscribe(SubscribePacket(packetID: 1, subscriptions: [
                    TopicSubscription(filter: topic, options: SubscriptionOptions(qos: .exactlyOnce)),
                ])))
                _ = await expectPacket(late, "SUBACK")
                if retain {
                    let stored = await expectPublish(late)
                    XCTAssertEqual(stored?.retain, true, "Will Retain 1: stored as retained (\(topic))")
                    XCTAssertEqual(stored?.payload.text, "w")
                } else {
                    await expectNothing(late, for: 0.3, "Will Retain 0: not retained (\(topic))")
                }
                await late.close()
                await watch.close()
            }
        }
    }

    // [MQTT-3.1.2-8] [MQTT-3.1.3-9]
    func testWillDelayIntervalAndReconnection() async throws {
        let watch = try await watcher("w-delay", "will/delay/#")
        // Reconnected within the delay: the will is not sent.
        let (lost, _) = try await connectAccepted(broker, "delayed2", cleanStart: false, will: will("will/delay/b", "b", delay: 1), sessionExpiry: 60)
        await lost.close()
        try await Task.sleep(nanoseconds: 300_000_000)
        let (back, connack) = try await connectAccepted(broker, "delayed2", cleanStart: false, sessionExpiry: 60)
        XCTAssertTrue(connack.sessionPresent)
        await expectNothing(watch, for: 1.2, "reconnected within the Will Delay Interval: no will")
        try await disconnect(back)
        // Not reconnected: published once the delay has elapsed, not before.
        let (gone, _) = try await connectAccepted(broker, "delayed3", cleanStart: false, will: will("will/delay/c", "c", delay: 1), sessionExpiry: 60)
        let closedAt = Date()
        await gone.close()
        if let message = await expectPublish(watch, within: 3) {
            XCTAssertEqual(message.payload.text, "c")
            XCTAssertGreaterThan(Date().timeIntervalSince(closedAt), 0.8, "not before the Will Delay Interval")
            try await acknowledge(message, on: watch)
        }
        // The session ends before the delay: published when it ends.
        let (short, _) = try await connectAccepted(broker, "delayed4", will: will("will/delay/d", "d", delay: 30), sessionExpiry: 1)
        let shortClosedAt = Date()
        await short.close()
        if let message = await expectPublish(watch, within: 4) {
            XCTAssertEqual(message.payload.text, "d")
            XCTAssertLessThan(Date().timeIntervalSince(shortClosedAt), 3, "at session end, not after the 30 s delay")
        }
    }

    // [MQTT-3.1.3-10]
    func testWillUserPropertiesKeepTheirOrder() async throws {
        let watch = try await watcher("w-props", "will/props")
        var properties = Properties()
        properties.userProperties = [UserProperty("z", "1"), UserProperty("a", "2"), UserProperty("z", "3"), UserProperty("m", "")]
        let (client, _) = try await connectAccepted(broker, "props", will: Will(topic: "will/props", payload: ByteBuffer(text: "p"),
                                                                                properties: properties))
        await client.close()
        let message = await expectPublish(watch)
        XCTAssertEqual(message?.properties.userProperties, properties.userProperties)
    }
}
