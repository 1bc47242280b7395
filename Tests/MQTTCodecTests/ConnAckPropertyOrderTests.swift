import MQTTCodec
import NIOCore
import XCTest

/// A v5 CONNACK's properties go out in Mosquitto's order (Topic Alias Maximum, Server Keep Alive,
/// Assigned Client Identifier, Retain Available, Maximum Packet Size, Receive Maximum, Maximum
/// QoS, then the rest): the spec allows any order, but Mosquitto's own test suite and some clients
/// compare CONNACKs byte for byte.
final class ConnAckPropertyOrderTests: XCTestCase {
    private func bytes(_ properties: Properties) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        PacketEncoder.encode(.connack(ConnAckPacket(properties: properties)), version: .v5, into: &buffer)
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    func testTopicAliasMaximumBeforeReceiveMaximumAsMosquittoSendsThem() {
        var properties = Properties()
        properties.receiveMaximum = 20
        properties.topicAliasMaximum = 10
        XCTAssertEqual(bytes(properties), [0x20, 0x09, 0x00, 0x00, 0x06, 0x22, 0x00, 0x0A, 0x21, 0x00, 0x14])
    }

    func testEveryMosquittoPropertyInItsOrderThenTheRest() throws {
        var properties = Properties()
        properties.reasonString = "r"
        properties.maximumQoS = 1
        properties.receiveMaximum = 20
        properties.maximumPacketSize = 1000
        properties.retainAvailable = 0
        properties.assignedClientIdentifier = "a"
        properties.serverKeepAlive = 30
        properties.topicAliasMaximum = 10
        let encoded = bytes(properties)
        let order = [0x22, 0x13, 0x12, 0x25, 0x27, 0x21, 0x24, 0x1F] as [UInt8]
        // Property identifiers as they appear, read from the encoding.
        var seen: [UInt8] = []
        var index = 5
        let sizes: [UInt8: Int] = [0x22: 2, 0x13: 2, 0x25: 1, 0x27: 4, 0x21: 2, 0x24: 1]
        while index < encoded.count {
            let id = encoded[index]
            seen.append(id)
            if let size = sizes[id] { index += 1 + size } else { index += 3 + Int(encoded[index + 1]) << 8 + Int(encoded[index + 2]) }
        }
        XCTAssertEqual(seen, order)
        // And it still decodes to the same properties.
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        buffer.writeBytes(encoded)
        var decoder = PacketDecoder(protocolVersion: .v5)
        guard case .connack(let decoded)? = try decoder.decode(from: &buffer) else {
            return XCTFail("not a CONNACK")
        }
        XCTAssertEqual(decoded.properties, properties)
    }
}
