import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

// Helpers of the section B conformance tests (PUBLISH and its acknowledgements, chapter 4 flows)
// that MidgeTestKit does not have. Names start with `b` so they cannot clash with the other
// sections' helpers.

extension XCTestCase {
    /// The next packet, which must be an acknowledgement of `kind` ("PUBACK", "PUBREC", "PUBREL", "PUBCOMP").
    func bExpectAck(_ connection: PacketConnection, _ kind: String, within seconds: Double = 5,
                    file: StaticString = #filePath, line: UInt = #line) async -> PubAckPacket? {
        guard let packet = await expectPacket(connection, within: seconds, kind, file: file, line: line) else { return nil }
        switch (kind, packet) {
        case ("PUBACK", .puback(let ack)), ("PUBREC", .pubrec(let ack)), ("PUBREL", .pubrel(let ack)), ("PUBCOMP", .pubcomp(let ack)):
            return ack
        default:
            XCTFail("expected \(kind), got \(packet)", file: file, line: line)
            return nil
        }
    }

    /// The raw bytes of the next packet on a raw connection, failing when none arrives.
    func bReadRaw(_ connection: RawConnection, _ what: String, within seconds: Double = 5,
                  file: StaticString = #filePath, line: UInt = #line) async -> [UInt8]? {
        guard let bytes = await connection.readPacket(timeout: seconds) else {
            XCTFail("expected \(what), got nothing", file: file, line: line)
            return nil
        }
        return bytes
    }
}
