import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import XCTest

/// PINGREQ / PINGRESP (spec 3.12 and 3.13): the server answers every PINGREQ with a PINGRESP,
/// `d0 00`, in both protocol versions, one answer per request even when they are pipelined.
final class PingConformanceTests: XCTestCase {
    // [MQTT-3.12.4-1] [3.1.1:MQTT-3.12.4-1]
    func testEveryPingReqIsAnsweredWithPingResp() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let raw = try await RawConnection.connect(broker)
            try await raw.send(connectBytes("ping-\(version)", version))
            _ = await raw.readPacket()
            try await raw.send([0xC0, 0x00])
            let first = await raw.readPacket()
            XCTAssertEqual(first, [0xD0, 0x00], "\(version): PINGRESP")
            // Three pipelined in one segment: three answers.
            try await raw.send([0xC0, 0x00, 0xC0, 0x00, 0xC0, 0x00])
            for index in 0..<3 {
                let answer = await raw.readPacket()
                XCTAssertEqual(answer, [0xD0, 0x00], "\(version): PINGRESP #\(index)")
            }
            let rest = await raw.readPacket(timeout: 0.2)
            XCTAssertNil(rest, "\(version): one PINGRESP per PINGREQ")
            await raw.close()
        }
    }

    // A PINGREQ with a body is malformed (its remaining length is 0).
    // [MQTT-4.13.1-1] [3.1.1:MQTT-4.8.0-1]
    func testPingReqWithABodyIsMalformed() async throws {
        let broker = try startBroker()
        for version in messagingVersions {
            let (connection, _) = try await connectAccepted(broker, "ping-body-\(version)", version: version)
            try await connection.send(bytes: [0xC0, 0x01, 0x00])
            // Closed without DISCONNECT, as Mosquitto (a SHOULD, spec 4.13.1).
            await expectViolationClose(connection, version, v5Reason: nil, "PINGREQ with a body \(version)")
        }
        try await assertBrokerServes(broker)
    }
}
