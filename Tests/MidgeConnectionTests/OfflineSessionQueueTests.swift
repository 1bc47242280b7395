import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// What a stored session keeps for its offline client (spec 4.1: QoS 1 and 2 messages pending
/// transmission): bounded by `max_queued_messages` (newest dropped, as Mosquitto), QoS 0 only with
/// `queue_qos0_messages`, delivered in order on reconnection.
final class OfflineSessionQueueTests: XCTestCase {
    private func storeSession(_ broker: TestBroker, _ id: String, _ version: ProtocolVersion) async throws {
        let (client, _) = try await connectAccepted(broker, id, version: version, cleanStart: false,
                                                    sessionExpiry: version == .v5 ? 60 : nil)
        try await subscribe(client, "offline/\(id)", qos: .exactlyOnce)
        try await disconnect(client)
    }

    private func receiveAll(_ client: PacketConnection) async throws -> [String] {
        var payloads: [String] = []
        while true {
            do {
                switch try await client.receive(timeout: .milliseconds(400)) {
                case .publish(let publish):
                    payloads.append(publish.payload.text)
                    switch publish.qos {
                    case .atMostOnce: break
                    case .atLeastOnce: try await client.send(.puback(PubAckPacket(packetID: publish.packetID)))
                    case .exactlyOnce: try await client.send(.pubrec(PubAckPacket(packetID: publish.packetID)))
                    }
                case .pubrel(let release):
                    try await client.send(.pubcomp(PubAckPacket(packetID: release.packetID)))
                case let other:
                    XCTFail("unexpected \(other)")
                }
            } catch PacketConnection.Failure.timeout {
                return payloads
            }
        }
    }

    func testQueueBoundedByMaxQueuedMessagesKeepingOldest() async throws {
        let broker = try startBroker { $0.maxQueuedMessages = 3 }
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let id = "bounded-\(version.rawValue)"
            try await storeSession(broker, id, version)
            let (publisher, _) = try await connectAccepted(broker, "bounded-pub-\(version.rawValue)")
            for index in 0..<6 {
                try await publish(publisher, "offline/\(id)", "m\(index)", qos: index % 2 == 0 ? .atLeastOnce : .exactlyOnce,
                                  packetID: UInt16(index + 1))
            }
            let (client, connack) = try await connectAccepted(broker, id, version: version, cleanStart: false,
                                                              sessionExpiry: version == .v5 ? 60 : nil)
            XCTAssertTrue(connack.sessionPresent)
            let payloads = try await receiveAll(client)
            XCTAssertEqual(payloads, ["m0", "m1", "m2"], "\(version): the first 3 in order, later ones dropped")
            try await disconnect(client)
            try await disconnect(publisher)
        }
    }

    func testQoS0QueuedOfflineOnlyWithQueueQoS0Messages() async throws {
        let dropping = try startBroker()
        let queueing = try startBroker { $0.queueQoS0Messages = true }
        for (broker, expected) in [(dropping, ["q1"]), (queueing, ["q0", "q1"])] {
            let id = "qos0-\(expected.count)"
            try await storeSession(broker, id, .v3_1_1)
            let (publisher, _) = try await connectAccepted(broker, "qos0-pub")
            try await publish(publisher, "offline/\(id)", "q0", qos: .atMostOnce)
            try await publish(publisher, "offline/\(id)", "q1", qos: .atLeastOnce)
            let (client, _) = try await connectAccepted(broker, id, version: .v3_1_1, cleanStart: false)
            let payloads = try await receiveAll(client)
            XCTAssertEqual(payloads, expected, "queue_qos0_messages \(expected.count == 2)")
            try await disconnect(client)
            try await disconnect(publisher)
        }
    }
}
