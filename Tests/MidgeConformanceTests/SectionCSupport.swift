import Foundation
import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

// Helpers of the section C conformance tests (SUBSCRIBE … AUTH, topics, shared subscriptions,
// flow control, error handling) that MidgeTestKit does not have. Names carry a `sectionC` prefix
// so they cannot clash with the other sections' helpers.

/// The reason codes a v5 SUBACK may carry (spec table 3.9.3) and the 3.1.1 return codes.
let sectionCSubAckCodesV5: Set<UInt8> = [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2]
let sectionCSubAckCodesV311: Set<UInt8> = [0x00, 0x01, 0x02, 0x80]
/// The reason codes a v5 UNSUBACK may carry (spec table 3.11.3).
let sectionCUnsubAckCodesV5: Set<UInt8> = [0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91]
/// The reason codes a v5 DISCONNECT may carry (spec table 3.14.2.1), minus 0x04 which only a
/// client sends.
let sectionCServerDisconnectCodes: Set<UInt8> = [0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93,
                                                 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0,
                                                 0xA1, 0xA2]

/// A SUBSCRIBE built byte by byte: `entries` are (filter bytes, options byte); v5 gets an empty
/// property section unless `properties` is given. `first` is the fixed header's first byte.
func sectionCRawSubscribe(_ version: ProtocolVersion, packetID: UInt16 = 1, first: UInt8 = 0x82,
                          properties: [UInt8] = [], _ entries: [([UInt8], UInt8)]) -> [UInt8] {
    var body: [UInt8] = [UInt8(packetID >> 8), UInt8(packetID & 0xFF)]
    if version == .v5 { body += rawProperties(properties) }
    for (filter, options) in entries { body += mqttBinary(filter) + [options] }
    return rawPacket(first, body)
}

/// An UNSUBSCRIBE built byte by byte.
func sectionCRawUnsubscribe(_ version: ProtocolVersion, packetID: UInt16 = 1, first: UInt8 = 0xA2, _ filters: [[UInt8]]) -> [UInt8] {
    var body: [UInt8] = [UInt8(packetID >> 8), UInt8(packetID & 0xFF)]
    if version == .v5 { body += rawProperties([]) }
    for filter in filters { body += mqttBinary(filter) }
    return rawPacket(first, body)
}

extension XCTestCase {
    /// The next packet, which must be a SUBACK for `packetID`.
    func sectionCExpectSubAck(_ connection: PacketConnection, packetID: UInt16, _ context: String = "",
                              file: StaticString = #filePath, line: UInt = #line) async -> SubAckPacket? {
        guard let packet = await expectPacket(connection, "SUBACK \(context)", file: file, line: line) else { return nil }
        guard case .suback(let suback) = packet else {
            XCTFail("expected SUBACK \(context), got \(packet)", file: file, line: line)
            return nil
        }
        XCTAssertEqual(suback.packetID, packetID, "SUBACK packet id \(context)", file: file, line: line)
        return suback
    }

    /// The next packet, which must be an UNSUBACK for `packetID`.
    func sectionCExpectUnsubAck(_ connection: PacketConnection, packetID: UInt16, _ context: String = "",
                                file: StaticString = #filePath, line: UInt = #line) async -> UnsubAckPacket? {
        guard let packet = await expectPacket(connection, "UNSUBACK \(context)", file: file, line: line) else { return nil }
        guard case .unsuback(let unsuback) = packet else {
            XCTFail("expected UNSUBACK \(context), got \(packet)", file: file, line: line)
            return nil
        }
        XCTAssertEqual(unsuback.packetID, packetID, "UNSUBACK packet id \(context)", file: file, line: line)
        return unsuback
    }

    /// Subscribes to several filters in one SUBSCRIBE and returns the SUBACK's codes.
    func sectionCSubscribe(_ connection: PacketConnection, _ subscriptions: [(String, SubscriptionOptions)], packetID: UInt16 = 1,
                           properties: Properties = .none,
                           file: StaticString = #filePath, line: UInt = #line) async throws -> [ReasonCode] {
        try await connection.send(.subscribe(SubscribePacket(packetID: packetID, subscriptions: subscriptions.map {
            TopicSubscription(filter: $0.0, options: $0.1)
        }, properties: properties)))
        return await sectionCExpectSubAck(connection, packetID: packetID, file: file, line: line)?.reasonCodes ?? []
    }

    /// Each filter in a SUBSCRIBE of its own on a fresh connection: refused as a Malformed Packet
    /// (v5 DISCONNECT 0x81, 3.1.1 the close alone), as Mosquitto refuses an invalid filter.
    func sectionCExpectFiltersRefused(_ broker: TestBroker, _ version: ProtocolVersion, _ filters: [String], _ context: String,
                                      file: StaticString = #filePath, line: UInt = #line) async throws {
        for filter in filters {
            let (connection, _) = try await connectAccepted(broker, "bad-filter-\(version)-\(UUID().uuidString.prefix(8))", version: version,
                                                            file: file, line: line)
            try await connection.send(.subscribe(SubscribePacket(packetID: 1, subscriptions: [
                TopicSubscription(filter: filter, options: SubscriptionOptions()),
            ])))
            await expectViolationClose(connection, version, v5Reason: .malformedPacket, "\(context): '\(filter.prefix(40))' \(version)",
                                       file: file, line: line)
        }
    }

    /// Reads (and acknowledges) PUBLISH packets until one on `marker` arrives; returns the others.
    /// The marker is published by the same client after the messages under test, so it is routed
    /// after them: whatever was not delivered before it, was not delivered.
    func sectionCPublishesBefore(_ connection: PacketConnection, marker: String,
                                 file: StaticString = #filePath, line: UInt = #line) async -> [PublishPacket] {
        do {
            return try await connection.publishesBefore(marker: marker)
        } catch {
            XCTFail("waiting for marker \(marker): \(error)", file: file, line: line)
            return []
        }
    }
}

/// An ACL file in a fresh world-readable temporary directory.
func sectionCWriteACL(_ text: String) throws -> String {
    let directory = NSTemporaryDirectory() + "midge-conf-c-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let path = directory + "/acl"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}
