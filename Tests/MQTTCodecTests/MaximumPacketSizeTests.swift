import NIOCore
import XCTest
@testable import MQTTCodec

/// The decoder's maximum packet size: a packet larger than the limit is rejected with 0x95 Packet
/// too large from its fixed header alone, before its body is buffered (spec 3.1.2.11.4 and 3.2.2.3.6,
/// the receiving side of MQTT-3.1.2-24 and of the client rule MQTT-3.2.2-15; the size is the whole
/// packet: fixed header + remaining length).
final class MaximumPacketSizeTests: XCTestCase {

    private func expectTooLarge(_ input: [UInt8], limit: Int, version: ProtocolVersion? = .v5,
                                file: StaticString = #filePath, line: UInt = #line) {
        var decoder = PacketDecoder(protocolVersion: version, maximumPacketSize: limit)
        var buffer = ByteBuffer(bytes: input)
        XCTAssertThrowsError(try decoder.decode(from: &buffer), file: file, line: line) { error in
            XCTAssertEqual((error as? MQTTCodecError)?.reasonCode, .packetTooLarge, "\(error)", file: file, line: line)
        }
    }

    func testPacketOfExactlyTheLimitIsAccepted() throws {
        let packet = MQTTPacket.publish(PublishPacket(topic: "t", payload: ByteBuffer(repeating: 1, count: 50)))
        let encoded = encode(packet, .v5)
        var decoder = PacketDecoder(protocolVersion: .v5, maximumPacketSize: encoded.count)
        var input = ByteBuffer(bytes: encoded)
        XCTAssertEqual(try decoder.decode(from: &input), packet)
    }

    func testPacketOneByteOverTheLimitIsRejectedWithWholeBody() {
        let encoded = encode(.publish(PublishPacket(topic: "t", payload: ByteBuffer(repeating: 1, count: 50))), .v5)
        expectTooLarge(encoded, limit: encoded.count - 1)
    }

    func testRejectedFromTheFixedHeaderAloneBeforeTheBodyArrives() throws {
        // N = 100. "30 62" announces 98 bytes: 2 + 98 = 100 fits, so with only the header the decoder waits.
        var decoder = PacketDecoder(protocolVersion: .v5, maximumPacketSize: 100)
        var input = ByteBuffer(bytes: hex("30 62"))
        XCTAssertNil(try decoder.decode(from: &input))
        XCTAssertEqual(input.readerIndex, 0)
        // "30 63" announces 99: 2 + 99 = 101 = N + 1 bytes, rejected although no body byte has arrived.
        expectTooLarge(hex("30 63"), limit: 100)
        // With a few body bytes present it is the same.
        expectTooLarge(hex("30 63 00 01 74"), limit: 100)
    }

    func testMultiByteRemainingLengthCountsInTheSize() throws {
        // N = 1000. Remaining 997 ("e5 07") + 3 header bytes = 1000 fits; 998 ("e6 07") + 3 = 1001 does not.
        var decoder = PacketDecoder(protocolVersion: .v5, maximumPacketSize: 1000)
        var input = ByteBuffer(bytes: hex("30 e5 07"))
        XCTAssertNil(try decoder.decode(from: &input))
        expectTooLarge(hex("30 e6 07"), limit: 1000)
    }

    func testHugeAnnouncedLengthRejectedImmediately() {
        expectTooLarge(hex("30 ff ff ff 7f"), limit: 1 << 20)
        expectTooLarge(hex("10 ff ff ff 7f"), limit: 1 << 20, version: nil)  // a server's first packet: CONNECT
    }

    func testIncompleteHeaderIsNotRejectedYet() throws {
        // "30 e6" is not a complete remaining length: nothing can be judged yet.
        var decoder = PacketDecoder(protocolVersion: .v5, maximumPacketSize: 1000)
        var input = ByteBuffer(bytes: hex("30 e6"))
        XCTAssertNil(try decoder.decode(from: &input))
        input.writeInteger(UInt8(0x07))
        XCTAssertThrowsError(try decoder.decode(from: &input)) { error in
            XCTAssertEqual((error as? MQTTCodecError)?.reasonCode, .packetTooLarge)
        }
    }

    func testLimitAppliesToEveryPacketType() {
        let packets: [(MQTTPacket, ProtocolVersion?)] = [
            (.connect(ConnectPacket(protocolVersion: .v5, clientID: "client-with-a-long-identifier")), nil),
            (.connack(ConnAckPacket()), .v5),
            (.publish(PublishPacket(topic: "t", payload: buffer("x"))), .v5),
            (.puback(PubAckPacket(packetID: 1, reasonCode: .unspecifiedError)), .v5),
            (.pubrec(PubAckPacket(packetID: 1)), .v5),
            (.pubrel(PubAckPacket(packetID: 1)), .v5),
            (.pubcomp(PubAckPacket(packetID: 1)), .v5),
            (.subscribe(SubscribePacket(packetID: 1, subscriptions: [TopicSubscription(filter: "t")])), .v5),
            (.suback(SubAckPacket(packetID: 1, reasonCodes: [.grantedQoS0])), .v5),
            (.unsubscribe(UnsubscribePacket(packetID: 1, filters: ["t"])), .v5),
            (.unsuback(UnsubAckPacket(packetID: 1, reasonCodes: [.success])), .v5),
            (.pingreq, .v5), (.pingresp, .v5),
            (.disconnect(DisconnectPacket(reasonCode: .serverBusy)), .v5),
            (.auth(AuthPacket(reasonCode: .reAuthenticate)), .v5),
        ]
        for (packet, version) in packets {
            let encoded = encode(packet, version ?? .v5)
            let headerLength = 1 + ByteBuffer.variableByteIntegerLength(encoded.count - 2)
            // Only the fixed header is fed.
            expectTooLarge(Array(encoded.prefix(headerLength)), limit: encoded.count - 1, version: version)
            var decoder = PacketDecoder(protocolVersion: version, maximumPacketSize: encoded.count)
            var input = ByteBuffer(bytes: encoded)
            XCTAssertEqual(try decoder.decode(from: &input), packet, "\(packet.type)")
        }
    }

    func testDefaultIsUnlimited() {
        XCTAssertEqual(PacketDecoder().maximumPacketSize, .max)
    }
}
