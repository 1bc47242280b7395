import NIOCore
import XCTest
@testable import MQTTCodec

/// Partial input and several packets in one buffer: the decoder works on a TCP byte stream.
final class StreamingTests: XCTestCase {

    /// One sample of every packet type, with the version it is encoded and decoded in.
    static var samples: [(MQTTPacket, ProtocolVersion)] {
        var properties = Properties()
        properties.reasonString = "r"
        properties.userProperties = [UserProperty("k", "v")]
        var publishProperties = Properties()
        publishProperties.messageExpiryInterval = 10
        publishProperties.subscriptionIdentifiers = [200]
        return [
            (.connect(ConnectPacket(protocolVersion: .v5, clientID: "c", will: Will(topic: "w", payload: buffer("x")), username: "u", password: buffer("p"))), .v5),
            (.connect(ConnectPacket(protocolVersion: .v3_1_1, clientID: "c", username: "u", password: buffer("p"))), .v3_1_1),
            (.connect(ConnectPacket(protocolVersion: .v3_1, clientID: "c")), .v3_1),
            (.connack(ConnAckPacket(sessionPresent: true, properties: properties)), .v5),
            (.publish(PublishPacket(topic: "a/b", payload: ByteBuffer(repeating: 7, count: 300), qos: .exactlyOnce, packetID: 9,
                                    properties: publishProperties)), .v5),
            (.publish(PublishPacket(topic: "a/b", payload: buffer("hello"), qos: .atLeastOnce, packetID: 9)), .v3_1_1),
            (.puback(PubAckPacket(packetID: 1)), .v5),
            (.pubrec(PubAckPacket(packetID: 1, reasonCode: .noMatchingSubscribers)), .v5),
            (.pubrel(PubAckPacket(packetID: 1, reasonCode: .packetIdentifierNotFound, properties: properties)), .v5),
            (.pubcomp(PubAckPacket(packetID: 1)), .v3_1_1),
            (.subscribe(SubscribePacket(packetID: 2, subscriptions: [TopicSubscription(filter: "a/+"), TopicSubscription(filter: "#")])), .v5),
            (.suback(SubAckPacket(packetID: 2, reasonCodes: [.grantedQoS1, .notAuthorized], properties: properties)), .v5),
            (.unsubscribe(UnsubscribePacket(packetID: 3, filters: ["a/+"])), .v3_1_1),
            (.unsuback(UnsubAckPacket(packetID: 3, reasonCodes: [.success])), .v5),
            (.pingreq, .v3_1_1),
            (.pingresp, .v5),
            (.disconnect(DisconnectPacket(reasonCode: .serverShuttingDown, properties: properties)), .v5),
            (.auth(AuthPacket(reasonCode: .continueAuthentication, properties: properties)), .v5),
        ]
    }

    private static func decoder(for packet: MQTTPacket, _ version: ProtocolVersion) -> PacketDecoder {
        if case .connect = packet { return PacketDecoder() }
        return PacketDecoder(protocolVersion: version)
    }

    func testEveryPrefixOfEveryPacketReturnsNilAndConsumesNothing() throws {
        for (packet, version) in Self.samples {
            let encoded = encode(packet, version)
            for length in 0..<encoded.count {
                var decoder = Self.decoder(for: packet, version)
                let before = decoder.protocolVersion
                var input = ByteBuffer(bytes: encoded.prefix(length))
                XCTAssertNil(try decoder.decode(from: &input), "\(packet.type) prefix \(length)/\(encoded.count)")
                XCTAssertEqual(input.readerIndex, 0, "\(packet.type) prefix \(length)")
                XCTAssertEqual(input.readableBytes, length, "\(packet.type) prefix \(length)")
                XCTAssertEqual(decoder.protocolVersion, before, "an incomplete CONNECT must not change the decoder's version")
            }
        }
    }

    func testPacketsFedOneByteAtATime() throws {
        for (packet, version) in Self.samples {
            let encoded = encode(packet, version)
            var decoder = Self.decoder(for: packet, version)
            var input = ByteBuffer()
            var decoded: [MQTTPacket] = []
            for (index, byte) in encoded.enumerated() {
                input.writeInteger(byte)
                if let next = try decoder.decode(from: &input) {
                    XCTAssertEqual(index, encoded.count - 1, "\(packet.type) decoded before its last byte")
                    decoded.append(next)
                }
            }
            XCTAssertEqual(decoded, [packet])
            XCTAssertEqual(input.readableBytes, 0)
        }
    }

    func testTwoPacketsBackToBackDecodeInOrder() throws {
        for (first, version) in Self.samples {
            if case .connect = first { continue }
            for (second, secondVersion) in Self.samples where secondVersion == version {
                if case .connect = second { continue }
                var decoder = PacketDecoder(protocolVersion: version)
                var input = ByteBuffer(bytes: encode(first, version) + encode(second, version))
                XCTAssertEqual(try decoder.decode(from: &input), first)
                XCTAssertEqual(try decoder.decode(from: &input), second)
                XCTAssertEqual(input.readableBytes, 0)
                XCTAssertNil(try decoder.decode(from: &input))
            }
        }
    }

    func testSecondPacketIncompleteIsLeftInTheBuffer() throws {
        var decoder = PacketDecoder(protocolVersion: .v5)
        let second = encode(.publish(PublishPacket(topic: "t", payload: buffer("abc"), qos: .atLeastOnce, packetID: 4)), .v5)
        var input = ByteBuffer(bytes: hex("c0 00") + second.dropLast())
        XCTAssertEqual(try decoder.decode(from: &input), .pingreq)
        let readerIndex = input.readerIndex
        XCTAssertNil(try decoder.decode(from: &input))
        XCTAssertEqual(input.readerIndex, readerIndex)
        input.writeInteger(second.last!)
        XCTAssertEqual(try decoder.decode(from: &input), .publish(PublishPacket(topic: "t", payload: buffer("abc"), qos: .atLeastOnce, packetID: 4)))
        XCTAssertEqual(input.readableBytes, 0)
    }

    /// A whole v5 session in one stream: the server-side decoder learns v5 from CONNECT and reads the
    /// following packets with v5 rules (property lengths, reason codes, AUTH).
    func testSessionStreamV5() throws {
        let packets: [MQTTPacket] = [
            .connect(ConnectPacket(protocolVersion: .v5, clientID: "s")),
            .auth(AuthPacket(reasonCode: .continueAuthentication)),
            .subscribe(SubscribePacket(packetID: 1, subscriptions: [TopicSubscription(filter: "x/#", options: .init(qos: .exactlyOnce, noLocal: true))])),
            .publish(PublishPacket(topic: "x/y", payload: buffer("1"), qos: .atLeastOnce, packetID: 2)),
            .puback(PubAckPacket(packetID: 3, reasonCode: .noMatchingSubscribers)),
            .unsubscribe(UnsubscribePacket(packetID: 4, filters: ["x/#"])),
            .pingreq,
            .disconnect(DisconnectPacket(reasonCode: .disconnectWithWillMessage)),
        ]
        var input = ByteBuffer(bytes: packets.flatMap { encode($0, .v5) })
        var decoder = PacketDecoder()
        for expected in packets { XCTAssertEqual(try decoder.decode(from: &input), expected) }
        XCTAssertEqual(decoder.protocolVersion, .v5)
        XCTAssertEqual(input.readableBytes, 0)
    }

    /// The same with 3.1.1: after a level-4 CONNECT, a PUBLISH has no property length.
    func testSessionStreamV311() throws {
        let packets: [MQTTPacket] = [
            .connect(ConnectPacket(protocolVersion: .v3_1_1, clientID: "s")),
            .subscribe(SubscribePacket(packetID: 1, subscriptions: [TopicSubscription(filter: "x/#", options: .init(qos: .atLeastOnce))])),
            .publish(PublishPacket(topic: "x/y", payload: buffer("1"), qos: .exactlyOnce, packetID: 2)),
            .pubrel(PubAckPacket(packetID: 2)),
            .pingreq,
            .disconnect(DisconnectPacket()),
        ]
        var input = ByteBuffer(bytes: packets.flatMap { encode($0, .v3_1_1) })
        var decoder = PacketDecoder()
        for expected in packets { XCTAssertEqual(try decoder.decode(from: &input), expected) }
        XCTAssertEqual(decoder.protocolVersion, .v3_1_1)
        XCTAssertEqual(input.readableBytes, 0)
    }

    func testDecodePacketDirectlyFromFirstByteAndBody() throws {
        var decoder = PacketDecoder(protocolVersion: .v5)
        var body = ByteBuffer(bytes: hex("00 01 10"))
        XCTAssertEqual(try decoder.decodePacket(first: 0x40, body: &body), .puback(PubAckPacket(packetID: 1, reasonCode: .noMatchingSubscribers)))
    }

    func testDecodedPayloadIsIndependentOfLaterBufferWrites() throws {
        var decoder = PacketDecoder(protocolVersion: .v3_1_1)
        var input = ByteBuffer(bytes: encode(.publish(PublishPacket(topic: "t", payload: buffer("abc"))), .v3_1_1))
        let packet = try decoder.decode(from: &input)
        input.discardReadBytes()
        input.writeBytes([0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE])
        guard case .publish(let publish) = packet else { return XCTFail() }
        XCTAssertEqual(bytes(of: publish.payload), Array("abc".utf8))
    }
}
