/// A decoding failure, carrying the reason code the specification names for it
/// (0x81 Malformed Packet, 0x82 Protocol Error, 0x95 Packet too large, 0x84 Unsupported Protocol Version, ...).
public struct MQTTCodecError: Error, Equatable, Sendable, CustomStringConvertible {
    public var reasonCode: ReasonCode
    public var detail: String
    /// The type of the packet that failed, when its fixed header was read (nil for the
    /// reserved type 0). Set by `PacketDecoder.decode(from:)`.
    public var packetType: PacketType?

    public init(_ reasonCode: ReasonCode, _ detail: String, packetType: PacketType? = nil) {
        self.reasonCode = reasonCode
        self.detail = detail
        self.packetType = packetType
    }

    public static func malformed(_ detail: String) -> MQTTCodecError { .init(.malformedPacket, detail) }
    public static func protocolError(_ detail: String) -> MQTTCodecError { .init(.protocolError, detail) }

    /// Reason and detail: where the decoder noticed the error is not part of it.
    public static func == (lhs: MQTTCodecError, rhs: MQTTCodecError) -> Bool {
        lhs.reasonCode == rhs.reasonCode && lhs.detail == rhs.detail
    }

    public var description: String { "\(detail) [\(reasonCode)]" }
}
