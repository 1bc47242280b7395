import MQTTCodec
import NIOCore

/// Decodes the broker's bytes into packets for `MQTTClient`, and reports the connection's end.
final class ClientPacketHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private var stream: PacketStreamDecoder
    private let onPacket: (MQTTPacket) -> Void
    private let onClose: (Error?) -> Void
    private var error: Error?

    init(version: ProtocolVersion, onPacket: @escaping (MQTTPacket) -> Void, onClose: @escaping (Error?) -> Void) {
        self.stream = PacketStreamDecoder(PacketDecoder(protocolVersion: version))
        self.onPacket = onPacket
        self.onClose = onClose
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try stream.decode(unwrapInboundIn(data)) { packet in
                onPacket(packet)
                return true
            }
        } catch {
            self.error = MQTTClientError.protocolViolation("\(error)")
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if self.error == nil { self.error = (error as? MQTTClientError) ?? MQTTClientError.unreachable("Connection error: \(error)") }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        onClose(error)
    }
}
