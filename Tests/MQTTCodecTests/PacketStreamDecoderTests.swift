@testable import MQTTCodec
import NIOCore
import XCTest

final class PacketStreamDecoderTests: XCTestCase {
    private func encoded(_ packets: [MQTTPacket]) -> [UInt8] {
        var buffer = ByteBuffer()
        for packet in packets { PacketEncoder.encode(packet, version: .v5, into: &buffer) }
        return Array(buffer.readableBytesView)
    }

    let packets: [MQTTPacket] = [
        .publish(PublishPacket(topic: "a/b", payload: ByteBuffer(string: "hello"), qos: .atLeastOnce, packetID: 1)),
        .pingreq,
        .publish(PublishPacket(topic: "c", payload: ByteBuffer(repeating: 7, count: 300))),
    ]

    /// Any split of the stream into reads gives the same packets in the same order.
    func testEverySplitPointYieldsTheSamePackets() throws {
        let bytes = encoded(packets)
        for split in 0...bytes.count {
            var stream = PacketStreamDecoder(PacketDecoder(protocolVersion: .v5))
            var out: [MQTTPacket] = []
            try stream.decode(ByteBuffer(bytes: bytes[..<split])) { out.append($0); return true }
            try stream.decode(ByteBuffer(bytes: bytes[split...])) { out.append($0); return true }
            XCTAssertEqual(out, packets, "split at \(split)")
        }
    }

    func testStoppingDropsTheRest() throws {
        var stream = PacketStreamDecoder(PacketDecoder(protocolVersion: .v5))
        var out: [MQTTPacket] = []
        try stream.decode(ByteBuffer(bytes: encoded(packets))) { out.append($0); return false }
        XCTAssertEqual(out.count, 1)
        try stream.decode(ByteBuffer(bytes: encoded([.pingresp]))) { out.append($0); return true }
        XCTAssertEqual(out.last, .pingresp, "nothing of the dropped rest is left over")
    }

    func testDecodingErrorsPropagateWithTheirReasonCode() {
        var stream = PacketStreamDecoder(PacketDecoder(protocolVersion: .v5))
        XCTAssertThrowsError(try stream.decode(ByteBuffer(bytes: [0x36, 0x00])) { _ in true }) { error in
            XCTAssertEqual((error as? MQTTCodecError)?.reasonCode, .malformedPacket)  // QoS 3
        }
    }
}
