import NIOCore

/// Frames a TCP byte stream into packets. Decodes straight from each incoming buffer (packet
/// payloads stay slices of it); only the bytes of a packet that straddles two reads are kept,
/// and copied, until the rest arrives.
public struct PacketStreamDecoder: Sendable {
    /// The packet decoder (its protocol version and maximum packet size).
    public var decoder: PacketDecoder
    private var pending: ByteBuffer?

    public init(_ decoder: PacketDecoder) {
        self.decoder = decoder
    }

    /// Decodes every complete packet of `bytes` (after any bytes kept from before) and passes
    /// each to `body`; when `body` returns false the rest is dropped (the connection is over).
    /// A decoding error drops everything and is rethrown. `body` must not use this decoder (it
    /// is being mutated): to end the stream from inside, return false.
    public mutating func decode(_ bytes: ByteBuffer, _ body: (MQTTPacket) throws -> Bool) throws {
        var buffer: ByteBuffer
        if var kept = pending {
            var incoming = bytes
            kept.writeBuffer(&incoming)
            buffer = kept
            pending = nil
        } else {
            buffer = bytes
        }
        while let packet = try decoder.decode(from: &buffer) {
            guard try body(packet) else { return }
        }
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            pending = buffer
        }
    }

    /// Forgets any partial packet.
    public mutating func reset() { pending = nil }
}
