import MQTTCodec
import NIOCore

/// The bench payload: an 8-byte send timestamp (monotonic nanoseconds), the 4-byte publisher
/// index and the 4-byte sequence number, then padding up to the payload size.
public enum BenchPayload {
    public static let headerSize = 16

    /// Monotonic nanoseconds, comparable between all clients of one process.
    @inline(__always)
    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }
}

/// A publisher's PUBLISH packet encoded once: per message only the packet id, timestamp and
/// sequence number are written, the rest is copied from prebuilt buffers.
struct PublishTemplate {
    /// Fixed header and topic name.
    let prefix: ByteBuffer
    /// The payload bytes after the bench header.
    let padding: ByteBuffer
    let hasPacketID: Bool
    let v5: Bool
    let publisherID: UInt32
    /// Bytes of one encoded PUBLISH.
    let packetSize: Int

    init(topic: String, qos: QoS, version: ProtocolVersion, payloadSize: Int, publisherID: Int, padding: ByteBuffer) {
        let v5 = version == .v5
        let topicLength = topic.utf8.count
        let remaining = 2 + topicLength + (qos == .atMostOnce ? 0 : 2) + (v5 ? 1 : 0) + payloadSize
        var prefix = ByteBuffer()
        PacketEncoder.writeFixedHeader(0x30 | (qos.rawValue << 1), remaining: remaining, into: &prefix)
        prefix.writeInteger(UInt16(topicLength))
        prefix.writeString(topic)
        self.prefix = prefix
        self.padding = padding
        self.hasPacketID = qos != .atMostOnce
        self.v5 = v5
        self.publisherID = UInt32(publisherID)
        self.packetSize = prefix.readableBytes + remaining - 2 - topicLength
    }

    @inline(__always)
    func write(sequence: UInt32, timestamp: UInt64, packetID: UInt16, into buffer: inout ByteBuffer) {
        buffer.writeImmutableBuffer(prefix)
        if hasPacketID { buffer.writeInteger(packetID) }
        if v5 { buffer.writeInteger(UInt8(0)) }
        buffer.writeInteger(timestamp)
        buffer.writeInteger(publisherID)
        buffer.writeInteger(sequence)
        buffer.writeImmutableBuffer(padding)
    }

    /// The shared padding for `payloadSize`.
    static func padding(payloadSize: Int) -> ByteBuffer {
        let count = max(0, payloadSize - BenchPayload.headerSize)
        var buffer = ByteBuffer()
        buffer.writeRepeatingByte(UInt8(ascii: "x"), count: count)
        return buffer
    }
}

/// Packet identifiers in use by one publisher (a 65,536-bit set).
struct PacketIDPool {
    private var words = [UInt64](repeating: 0, count: 1024)
    private var next: UInt16 = 1

    /// A free id; the caller keeps fewer than 65,535 in use.
    mutating func allocate() -> UInt16 {
        while true {
            let id = next
            next = next == UInt16.max ? 1 : next + 1
            let word = Int(id >> 6), bit = UInt64(1) << UInt64(id & 63)
            if words[word] & bit == 0 {
                words[word] |= bit
                return id
            }
        }
    }

    /// Frees `id`; false if it was not in use.
    mutating func release(_ id: UInt16) -> Bool {
        let word = Int(id >> 6), bit = UInt64(1) << UInt64(id & 63)
        guard words[word] & bit != 0 else { return false }
        words[word] &= ~bit
        return true
    }

    func contains(_ id: UInt16) -> Bool {
        words[Int(id >> 6)] & (UInt64(1) << UInt64(id & 63)) != 0
    }
}
