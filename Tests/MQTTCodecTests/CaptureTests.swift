import NIOCore
import XCTest
@testable import MQTTCodec

/// Packets captured on the wire (course material), decoded byte-exact by a server-side decoder.
final class CaptureTests: XCTestCase {
    static let connectCapture = hex("""
        10 34 00 04 4d 51 54 54 05 c2 00 3c 05 11 00 00 00 00 00 0f 6d 71 74 74 78 5f 62 61 64 63 6c 69 65 6e 74
        00 07 6d 79 73 74 65 72 65 00 08 47 72 65 61 74 4a 30 62
        """)

    static let publishCapture = hex("30 09 00 04 63 69 65 6c 00 35 31")

    func testV5ConnectCaptureDecodes() throws {
        var decoder = PacketDecoder()  // server side: version not known yet
        XCTAssertNil(decoder.protocolVersion)
        var input = ByteBuffer(bytes: Self.connectCapture)
        let packet = try decoder.decode(from: &input)
        XCTAssertEqual(input.readableBytes, 0)
        guard case .connect(let connect) = packet else { return XCTFail("expected CONNECT, got \(String(describing: packet))") }
        XCTAssertEqual(connect.protocolVersion, .v5)
        XCTAssertEqual(decoder.protocolVersion, .v5, "the server-side decoder learns the version from CONNECT")
        XCTAssertEqual(connect.clientID, "mqttx_badclient")
        XCTAssertEqual(connect.username, "mystere")
        XCTAssertEqual(connect.password.map(bytes(of:)), Array("GreatJ0b".utf8))
        XCTAssertEqual(connect.keepAlive, 60)
        XCTAssertTrue(connect.cleanStart)
        XCTAssertNil(connect.will)
        XCTAssertEqual(connect.properties.sessionExpiryInterval, 0, "Session Expiry Interval 0 is present, not absent")
        var expectedProperties = Properties()
        expectedProperties.sessionExpiryInterval = 0
        XCTAssertEqual(connect.properties, expectedProperties)
        XCTAssertEqual(packet, .connect(ConnectPacket(protocolVersion: .v5, cleanStart: true, keepAlive: 60, clientID: "mqttx_badclient",
                                                      username: "mystere", password: buffer("GreatJ0b"), properties: expectedProperties)))
    }

    func testV5ConnectCaptureReencodesByteExact() throws {
        let packet = try decodeOne(Self.connectCapture, version: nil)
        XCTAssertEqual(hexString(encode(packet!, .v5)), hexString(Self.connectCapture))
    }

    func testV5PublishCaptureDecodes() throws {
        var decoder = PacketDecoder(protocolVersion: .v5)
        var input = ByteBuffer(bytes: Self.publishCapture)
        let packet = try decoder.decode(from: &input)
        XCTAssertEqual(input.readableBytes, 0)
        guard case .publish(let publish) = packet else { return XCTFail("expected PUBLISH, got \(String(describing: packet))") }
        XCTAssertEqual(publish.topic, "ciel")
        XCTAssertEqual(bytes(of: publish.payload), Array("51".utf8))
        XCTAssertEqual(publish.qos, .atMostOnce)
        XCTAssertFalse(publish.dup)
        XCTAssertFalse(publish.retain)
        XCTAssertEqual(publish.packetID, 0)
        XCTAssertEqual(publish.properties, .none)
        XCTAssertTrue(publish.properties.isEmpty)
    }

    func testV5PublishCaptureReencodesByteExact() throws {
        let packet = try decodeOne(Self.publishCapture, version: .v5)
        XCTAssertEqual(hexString(encode(packet!, .v5)), hexString(Self.publishCapture))
        if case .publish(let publish) = packet {
            XCTAssertEqual(PacketEncoder.publishPacketSize(publish, version: .v5), Self.publishCapture.count)
        }
    }

    /// The two captures as one TCP stream: CONNECT teaches the decoder v5, so the PUBLISH that
    /// follows is read with its property length byte.
    func testCapturesAsOneStream() throws {
        var decoder = PacketDecoder()
        var input = ByteBuffer(bytes: Self.connectCapture + Self.publishCapture)
        guard case .connect = try decoder.decode(from: &input) else { return XCTFail("expected CONNECT first") }
        guard case .publish(let publish) = try decoder.decode(from: &input) else { return XCTFail("expected PUBLISH second") }
        XCTAssertEqual(publish.topic, "ciel")
        XCTAssertEqual(bytes(of: publish.payload), Array("51".utf8))
        XCTAssertEqual(input.readableBytes, 0)
        XCTAssertNil(try decoder.decode(from: &input))
    }

    /// Read with v3.1.1 rules the same PUBLISH has no property length: the 0x00 is payload.
    func testPublishCaptureUnderV311KeepsThePropertyByteAsPayload() throws {
        let packet = try decodeOne(Self.publishCapture, version: .v3_1_1)
        guard case .publish(let publish) = packet else { return XCTFail() }
        XCTAssertEqual(bytes(of: publish.payload), [0x00, 0x35, 0x31])
    }
}
