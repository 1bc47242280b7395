import MQTTCodec
import NIOCore

/// Decodes the broker's bytes into packets for `MQTTClient`, and reports the connection's end.
final class ClientPacketHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private var decoder: PacketDecoder
    private var cumulation: ByteBuffer?
    private let onPacket: (MQTTPacket) -> Void
    private let onClose: (Error?) -> Void
    private var error: Error?

    init(version: ProtocolVersion, onPacket: @escaping (MQTTPacket) -> Void, onClose: @escaping (Error?) -> Void) {
        self.decoder = PacketDecoder(protocolVersion: version)
        self.onPacket = onPacket
        self.onClose = onClose
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if var pending = cumulation {
            pending.writeBuffer(&buffer)
            buffer = pending
            cumulation = nil
        }
        do {
            while let packet = try decoder.decode(from: &buffer) { onPacket(packet) }
        } catch {
            self.error = MQTTClientError.protocolViolation("\(error)")
            context.close(promise: nil)
            return
        }
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            cumulation = buffer
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
