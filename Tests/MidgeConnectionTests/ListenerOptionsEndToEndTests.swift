import Foundation
import MQTTCodec
@testable import MidgeBroker
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Per-listener and broker-wide options of mosquitto.conf over real sockets: `mount_point`,
/// `max_qos`, `use_username_as_clientid`, `clientid_prefixes` and `memory_limit`.
final class ListenerOptionsEndToEndTests: XCTestCase {
    /// A broker with a plain listener first and a second one configured by `adjust`.
    private func makeBroker(_ adjust: (inout ListenerConfiguration) -> Void = { _ in },
                            configure: (inout BrokerConfiguration) -> Void = { _ in }) throws -> (TestBroker, plain: Int, special: Int) {
        let broker = try TestBroker { config in
            var plain = ListenerConfiguration(port: 0, bindAddress: "127.0.0.1")
            plain.security.allowAnonymous = true
            var special = plain
            adjust(&special)
            config.listeners = [plain, special]
            config.perListenerSettings = true
            configure(&config)
        }
        let ports = broker.server.boundAddresses.compactMap(\.port)
        return (broker, ports[0], ports[1])
    }

    private func connect(_ broker: TestBroker, port: Int, _ id: String, version: ProtocolVersion = .v5, username: String? = nil,
                         will: Will? = nil) async throws -> (PacketConnection, ConnAckPacket) {
        try await PacketConnection.connectMQTT(port: port, ConnectPacket(protocolVersion: version, clientID: id, will: will, username: username),
                                               group: broker.clientGroup)
    }

    // MARK: mount_point

    func testMountPointPrefixesTopicsBothWaysAndIsolatesTheListener() async throws {
        let (broker, plainPort, mountedPort) = try makeBroker { $0.mountPoint = "tenant/a/" }
        defer { broker.shutdown() }
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let (outside, _) = try await connect(broker, port: plainPort, "outside", version: version)
            try await outside.subscribe("#")
            let (inside, ack) = try await connect(broker, port: mountedPort, "inside", version: version)
            XCTAssertEqual(ack.reasonCode, .success)
            try await inside.subscribe("#")
            // Published inside: seen outside under the mount point, inside without it.
            try await inside.publish("sensor/1", "21")
            var received = try await outside.expectPublish()
            XCTAssertEqual(received.topic, "tenant/a/sensor/1", "\(version)")
            received = try await inside.expectPublish()
            XCTAssertEqual(received.topic, "sensor/1", "\(version)")
            // Published outside: only what lies under the mount point reaches the inside client.
            try await outside.publish("elsewhere", "x")
            try await outside.publish("tenant/a/cmd", "go")
            _ = try await outside.receivePublishes(2)
            received = try await inside.expectPublish()
            XCTAssertEqual(received.topic, "cmd", "\(version)")
            XCTAssertEqual(received.payload.text, "go")
            // Unsubscribing the filter it subscribed to ends its subscription (the mounted one) [MQTT-3.10.4-1].
            let unsuback = try await inside.unsubscribe(["#"])
            if version == .v5 { XCTAssertEqual(unsuback.reasonCodes, [.success]) }
            try await outside.publish("tenant/a/cmd", "again")
            _ = try await outside.expectPublish()
            try await inside.expectSilence()
            await inside.close()
            await outside.close()
        }
    }

    func testMountPointAppliesToRetainedMessagesAndWills() async throws {
        let (broker, plainPort, mountedPort) = try makeBroker { $0.mountPoint = "m/" }
        defer { broker.shutdown() }
        let (outside, _) = try await connect(broker, port: plainPort, "outside")
        try await outside.publish("m/status", "up", retain: true)
        try await outside.subscribe("m/will")
        let (inside, _) = try await connect(broker, port: mountedPort, "inside",
                                            will: Will(topic: "will", payload: ByteBuffer(string: "gone")))
        try await inside.subscribe("status")
        let retained = try await inside.expectPublish()
        XCTAssertEqual(retained.topic, "status")
        XCTAssertTrue(retained.retain)
        await inside.close()   // no DISCONNECT: the will goes out, mounted
        let will = try await outside.expectPublish()
        XCTAssertEqual(will.topic, "m/will")
        XCTAssertEqual(will.payload.text, "gone")
    }

    func testSharedSubscriptionOnAMountPointSharesTheMountedFilter() async throws {
        let (broker, plainPort, mountedPort) = try makeBroker { $0.mountPoint = "m/" }
        defer { broker.shutdown() }
        let (inside, _) = try await connect(broker, port: mountedPort, "inside")
        try await inside.subscribe("$share/g/jobs/#")
        let (outside, _) = try await connect(broker, port: plainPort, "outside")
        try await outside.publish("m/jobs/1", "work")
        let job = try await inside.expectPublish()
        XCTAssertEqual(job.topic, "jobs/1")
        XCTAssertEqual(job.payload.text, "work")
    }

    // MARK: max_qos

    // [MQTT-3.2.2-9] [MQTT-3.2.2-10]
    func testMaxQoSIsAnnouncedCapsSubscriptionsAndRefusesHigherPublishes() async throws {
        let (broker, plainPort, port) = try makeBroker { $0.maxQoS = 1 }
        defer { broker.shutdown() }
        let (subscriber, ack) = try await connect(broker, port: port, "sub")
        XCTAssertEqual(ack.reasonCode, .success)
        XCTAssertEqual(ack.properties.maximumQoS, 1, "v5 CONNACK Maximum QoS")
        let suback = try await subscriber.subscribe([TopicSubscription(filter: "t", options: SubscriptionOptions(qos: .exactlyOnce))])
        XCTAssertEqual(suback.reasonCodes, [.grantedQoS1], "granted at most max_qos")
        // A QoS 2 message from another listener arrives at the granted QoS 1.
        let (other, otherAck) = try await connect(broker, port: plainPort, "other")
        XCTAssertNil(otherAck.properties.maximumQoS, "the other listener keeps QoS 2")
        let otherReason = try await other.publish("t", "one", qos: .exactlyOnce)
        XCTAssertEqual(otherReason, .success)
        let delivered = try await subscriber.expectPublish()
        XCTAssertEqual(delivered.qos, .atLeastOnce)
        let (client, _) = try await connect(broker, port: port, "q")
        let atMax = try await client.publish("t", "at max", qos: .atLeastOnce)
        XCTAssertEqual(atMax, .success)
        // QoS 2 above max_qos 1: DISCONNECT 0x9B QoS not supported, as Mosquitto.
        try await client.send(.publish(PublishPacket(topic: "t", payload: ByteBuffer(string: "two"), qos: .exactlyOnce, packetID: 7)))
        let rest = try await client.waitForClose()
        guard case .disconnect(let disconnect)? = rest.last else { return XCTFail("expected DISCONNECT, got \(rest)") }
        XCTAssertEqual(disconnect.reasonCode, .qosNotSupported)
        // 3.1.1: no DISCONNECT to send, the connection closes.
        let (v3, _) = try await connect(broker, port: port, "v3", version: .v3_1_1)
        try await v3.send(.publish(PublishPacket(topic: "t", payload: ByteBuffer(string: "two"), qos: .exactlyOnce, packetID: 7)))
        let v3Rest = try await v3.waitForClose()
        XCTAssertEqual(v3Rest.count, 0)
    }

    // [MQTT-3.2.2-12]
    func testWillAboveMaxQoSIsRefused() async throws {
        let (broker, _, port) = try makeBroker { $0.maxQoS = 0 }
        defer { broker.shutdown() }
        let will = Will(topic: "w", payload: ByteBuffer(string: "x"), qos: .atLeastOnce)
        let (client, ack) = try await connect(broker, port: port, "w5", will: will)
        XCTAssertEqual(ack.reasonCode, .qosNotSupported)
        XCTAssertEqual(ack.properties.maximumQoS, 0, "announced in the refusal too, as Mosquitto")
        _ = try await client.waitForClose()
        // 3.1.1 has no return code for it: closed without CONNACK, as Mosquitto does.
        let v3 = try await PacketConnection.connect(port: port, version: .v3_1_1, group: broker.clientGroup)
        try await v3.send(.connect(ConnectPacket(protocolVersion: .v3_1_1, clientID: "w3", will: will)))
        let v3Rest = try await v3.waitForClose()
        XCTAssertEqual(v3Rest.count, 0, "no CONNACK")
    }

    // MARK: use_username_as_clientid, clientid_prefixes

    func testUsernameAsClientIDReplacesTheClientIDAndRefusesClientsWithoutUsername() async throws {
        let (broker, _, port) = try makeBroker { $0.useUsernameAsClientID = true }
        defer { broker.shutdown() }
        // Two connections with different ids but one user name are one client: the second takes over.
        let (first, ack) = try await connect(broker, port: port, "device-1", username: "alice")
        XCTAssertEqual(ack.reasonCode, .success)
        let (second, ack2) = try await connect(broker, port: port, "device-2", username: "alice")
        XCTAssertEqual(ack2.reasonCode, .success)
        let closing = try await first.waitForClose()
        guard case .disconnect(let takeover)? = closing.last else { return XCTFail("expected a takeover, got \(closing)") }
        XCTAssertEqual(takeover.reasonCode, .sessionTakenOver)
        await second.close()
        // An empty client id: the username, announced as the Assigned Client Identifier (as Mosquitto).
        let (assigned, assignedAck) = try await connect(broker, port: port, "", username: "carol")
        XCTAssertEqual(assignedAck.properties.assignedClientIdentifier, "carol")
        await assigned.close()
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let (anonymous, refused) = try await connect(broker, port: port, "nobody", version: version)
            XCTAssertEqual(refused.reasonCode, .notAuthorized, "\(version): 3.1.1 return code 5, v5 0x87")
            _ = try await anonymous.waitForClose()
        }
    }

    func testClientIDPrefixesRefuseOtherClientIDs() async throws {
        let (broker, port, _) = try makeBroker(configure: { $0.clientIDPrefixes = "secure-" })
        defer { broker.shutdown() }
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let (refused, ack) = try await connect(broker, port: port, "mqtt", version: version)
            XCTAssertEqual(ack.reasonCode, .notAuthorized, "\(version)")
            _ = try await refused.waitForClose()
            let (accepted, ok) = try await connect(broker, port: port, "secure-client", version: version)
            XCTAssertEqual(ok.reasonCode, .success, "\(version)")
            await accepted.close()
        }
    }

    // MARK: memory_limit

    func testMemoryLimitDisconnectsThePublisherWhenExceeded() async throws {
        // A limit of one byte: any payload passes it (the broker's growth counts from 0).
        let (broker, port, _) = try makeBroker(configure: { $0.memoryLimit = 1 })
        defer { broker.shutdown() }
        let (subscriber, _) = try await connect(broker, port: port, "sub")
        try await subscriber.subscribe("t")
        let (client, _) = try await connect(broker, port: port, "pub")
        try await client.send(.publish(PublishPacket(topic: "t", payload: ByteBuffer(string: "ab"), qos: .atLeastOnce, packetID: 1)))
        let rest = try await client.waitForClose()
        guard case .disconnect(let disconnect)? = rest.last else { return XCTFail("expected DISCONNECT, got \(rest)") }
        XCTAssertEqual(disconnect.reasonCode, .unspecifiedError)
        try await subscriber.expectSilence(for: .milliseconds(200), "the message was dropped")
        // A limit far above what the broker uses refuses nothing.
        XCTAssertFalse(MemoryLimit(limit: 1 << 40).exceeded(by: 1 << 20))
        XCTAssertFalse(MemoryLimit(limit: 0).exceeded(by: 1 << 30))
    }
}
