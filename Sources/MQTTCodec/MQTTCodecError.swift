/// A decoding failure, carrying the reason code the specification names for it
/// (0x81 Malformed Packet, 0x82 Protocol Error, 0x95 Packet too large, 0x84 Unsupported Protocol Version, ...).
public struct MQTTCodecError: Error, Equatable, Sendable, CustomStringConvertible {
    public var reasonCode: ReasonCode
    public var detail: String

    public init(_ reasonCode: ReasonCode, _ detail: String) {
        self.reasonCode = reasonCode
        self.detail = detail
    }

    public static func malformed(_ detail: String) -> MQTTCodecError { .init(.malformedPacket, detail) }
    public static func protocolError(_ detail: String) -> MQTTCodecError { .init(.protocolError, detail) }

    public var description: String { "\(detail) [\(reasonCode)]" }
}
