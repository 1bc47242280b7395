import Foundation
import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

// Helpers of the section A conformance tests (chapters 1 and 2, CONNECT and CONNACK) that
// MidgeTestKit does not have. Every name starts with `sectionA` or is fileprivate so the three
// helpers' files can share one target.

extension XCTestCase {
    /// Opens a raw TCP connection, sends `bytes`, and returns everything the broker sent until it
    /// closed the connection (`closed` false: still open after `seconds`).
    func sectionASend(_ broker: TestBroker, _ bytes: [UInt8], within seconds: Double = 4) async throws -> (bytes: [UInt8], closed: Bool) {
        let raw = try await RawConnection.connect(broker)
        try await raw.send(bytes)
        let result = await raw.readUntilClose(timeout: seconds)
        await raw.close()
        return result
    }

    /// Sends a CONNECT the broker must refuse because it is malformed or violates a CONNECT rule:
    /// the connection is closed with nothing sent before, in every version. `reason` is the v5
    /// reason code the spec names for the error (nil for 3.1/3.1.1): v5 lets the server send it in
    /// a CONNACK first, but Midge, as Mosquitto 2.0.11, sends none (01-connect-invalid-id-utf8,
    /// 07-will-no-flag, ...); 3.1.1 forbids it [3.1.1:MQTT-3.1.4-1].
    func sectionAExpectConnectRefused(_ broker: TestBroker, _ bytes: [UInt8], reason: UInt8?, _ context: String,
                                      file: StaticString = #filePath, line: UInt = #line) async throws {
        let (received, closed) = try await sectionASend(broker, bytes)
        XCTAssertTrue(closed, "the broker must close the connection: \(context)", file: file, line: line)
        XCTAssertEqual(received, [], "\(context): nothing may precede the close, got \(hex(received))", file: file, line: line)
    }

    /// `expectRejectedAfterConnect` with the v5 reason given as its byte (nil for 3.1/3.1.1).
    func sectionAExpectRejectedAfterConnect(_ broker: TestBroker, _ bytes: [UInt8], version: ProtocolVersion, reason: UInt8?,
                                            _ context: String, file: StaticString = #filePath, line: UInt = #line) async throws {
        try await expectRejectedAfterConnect(broker, version, bytes, v5Reason: reason.map { ReasonCode(rawValue: $0) }, context,
                                             within: 3, file: file, line: line)
    }

    /// A raw connection that has completed CONNECT/CONNACK for `clientID` (the CONNACK bytes are returned).
    func sectionARawConnected(_ broker: TestBroker, _ clientID: String, _ version: ProtocolVersion = .v5, cleanStart: Bool = true,
                              properties: Properties = .none,
                              file: StaticString = #filePath, line: UInt = #line) async throws -> (RawConnection, [UInt8]) {
        let raw = try await RawConnection.connect(broker)
        try await raw.send(connectBytes(clientID, version, cleanStart: cleanStart, properties: properties))
        let connack = await raw.readPacket() ?? []
        XCTAssertEqual(connack.first, 0x20, "CONNACK expected: \(hex(connack))", file: file, line: line)
        return (raw, connack)
    }
}

/// A 3.1.1 CONNECT built field by field (no property section).
func sectionAConnect311(flags: UInt8 = 0x02, keepAlive: UInt16 = 60, payload: [UInt8]) -> [UInt8] {
    rawConnect(name: "MQTT", level: 4, flags: flags, keepAlive: keepAlive, properties: nil, payload: payload)
}

/// The v5 property bytes of one User Property (identifier 0x26 and a string pair given as raw bytes).
func sectionAUserProperty(key: [UInt8], value: [UInt8]) -> [UInt8] { [0x26] + mqttBinary(key) + mqttBinary(value) }

/// Ill-formed UTF-8 byte sequences (each invalid per RFC 3629), with a name for messages.
let sectionAIllFormedUTF8: [(String, [UInt8])] = [
    ("bad continuation", [0x61, 0xC3, 0x28]),
    ("lone continuation byte", [0x80]),
    ("byte 0xFF", [0x61, 0xFF]),
    ("truncated 3-byte sequence", [0x61, 0xE2, 0x82]),
    ("overlong NUL C0 80", [0xC0, 0x80]),
    ("overlong '/' C1 AF", [0xC1, 0xAF]),
    ("overlong 3-byte E0 80 AF", [0xE0, 0x80, 0xAF]),
    ("overlong 4-byte F0 80 80 AF", [0xF0, 0x80, 0x80, 0xAF]),
    ("surrogate U+D800", [0xED, 0xA0, 0x80]),
    ("surrogate U+DFFF", [0xED, 0xBF, 0xBF]),
    ("surrogate pair as CESU-8", [0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80]),
    ("above U+10FFFF", [0xF4, 0x90, 0x80, 0x80]),
]

/// Strings that hold U+0000 (well-formed UTF-8, still forbidden).
let sectionANullCharacter: [(String, [UInt8])] = [
    ("U+0000 alone", [0x00]),
    ("U+0000 inside", [0x61, 0x00, 0x62]),
]

/// Configures a broker whose v5 CONNACK carries no property at all: no Receive Maximum (no
/// inflight limit), no Topic Alias Maximum, defaults everywhere else; anonymous clients allowed.
func sectionAPlainConnAck(_ configuration: inout BrokerConfiguration) {
    configuration.maxInflightMessages = 0
    var security = configuration.security
    security.allowAnonymous = true
    configuration.listeners = [ListenerConfiguration(port: 0, bindAddress: "127.0.0.1", maxTopicAlias: 0, security: security)]
    configuration.perListenerSettings = true
}
