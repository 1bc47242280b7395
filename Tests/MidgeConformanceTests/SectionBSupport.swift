import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestSupport
import NIOCore
import XCTest

// Helpers of the section B conformance tests (PUBLISH and its acknowledgements, chapter 4 flows).
// Names start with `b` so they cannot clash with the other sections' helpers.

/// Both protocol families the section B tests run against.
let bVersions: [ProtocolVersion] = [.v3_1_1, .v5]

/// The bytes of a PUBLISH built field by field: `flags` are the low four bits of the first byte
/// (DUP, QoS, RETAIN); `properties` are v5 property bytes without their length (nil: v3, no
/// property section).
func bRawPublish(flags: UInt8, topic: [UInt8], packetID: UInt16? = nil, properties: [UInt8]? = [], payload: [UInt8] = Array("x".utf8)) -> [UInt8] {
    var body = mqttBinary(topic)
    if let packetID { body += [UInt8(packetID >> 8), UInt8(packetID & 0xFF)] }
    if let properties { body += rawProperties(properties) }
    return rawPacket(0x30 | flags, body + payload)
}

/// A PUBLISH of `topic` in the property form `version` uses.
func bRawPublish(_ version: ProtocolVersion, flags: UInt8, topic: String, packetID: UInt16? = nil, properties: [UInt8] = []) -> [UInt8] {
    bRawPublish(flags: flags, topic: Array(topic.utf8), packetID: packetID, properties: version == .v5 ? properties : nil)
}

/// The reason a v5 client gets before the close (v3: none, the connection is just closed).
func bReason(_ version: ProtocolVersion, _ reason: ReasonCode) -> ReasonCode? { version == .v5 ? reason : nil }

extension XCTestCase {
    /// A connected client with a clean session.
    func bConnect(_ broker: TestBroker, _ clientID: String, _ version: ProtocolVersion, properties: Properties = .none,
                  file: StaticString = #filePath, line: UInt = #line) async throws -> PacketConnection {
        let (connection, connack) = try await broker.connect(clientID, version: version, cleanStart: true, properties: properties)
        XCTAssertEqual(connack.reasonCode, .success, "CONNACK of \(clientID) (\(version))", file: file, line: line)
        return connection
    }

    /// A client whose session outlives the connection (3.1.1 Clean Session 0; v5 Session Expiry
    /// 300 s, Clean Start 1 unless `resume`). Returns the connection and Session Present.
    func bConnectPersistent(_ broker: TestBroker, _ clientID: String, _ version: ProtocolVersion, resume: Bool,
                            properties: Properties = .none,
                            file: StaticString = #filePath, line: UInt = #line) async throws -> (PacketConnection, Bool) {
        var properties = properties
        if version == .v5 && properties.sessionExpiryInterval == nil { properties.sessionExpiryInterval = 300 }
        let cleanStart = version == .v5 ? !resume : false
        let (connection, connack) = try await broker.connect(clientID, version: version, cleanStart: cleanStart, properties: properties)
        XCTAssertEqual(connack.reasonCode, .success, "CONNACK of \(clientID) (\(version))", file: file, line: line)
        return (connection, connack.sessionPresent)
    }

    /// Sends `bytes` on a fresh connection of `version` and expects the broker to close it, after a
    /// DISCONNECT with `reason` for v5 and with nothing for 3.1.1.
    func bExpectRefused(_ broker: TestBroker, _ version: ProtocolVersion, _ bytes: [UInt8], reason: ReasonCode, _ context: String,
                        properties: Properties = .none, file: StaticString = #filePath, line: UInt = #line) async throws {
        let client = try await bConnect(broker, "bad-\(UUID().uuidString.prefix(6))", version, properties: properties, file: file, line: line)
        try await client.send(bytes: bytes)
        await expectDisconnect(client, reason: bReason(version, reason), "\(context) (\(version))", file: file, line: line)
    }

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

extension Properties {
    /// v5 CONNECT properties with a Receive Maximum.
    static func bReceiveMaximum(_ value: UInt16) -> Properties {
        var properties = Properties()
        properties.receiveMaximum = value
        return properties
    }

    /// v5 PUBLISH properties with a Message Expiry Interval.
    static func bExpiry(_ seconds: UInt32) -> Properties {
        var properties = Properties()
        properties.messageExpiryInterval = seconds
        return properties
    }
}
