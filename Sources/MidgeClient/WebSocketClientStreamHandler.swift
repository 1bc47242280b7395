import NIOCore
import NIOWebSocket

/// MQTT over WebSocket, client side, after the HTTP upgrade: the broker's binary frames become
/// the byte stream the MQTT decoder reads (packets need not align with frames [MQTT-6.0.0-2]),
/// and every buffer written becomes one masked binary frame (RFC 6455 5.3: clients mask).
final class WebSocketClientStreamHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = WebSocketFrame

    private var closeSent = false
    private var fragmentedMessageIsBinary = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closeSent else { return }
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .binary:
            fragmentedMessageIsBinary = !frame.fin
            forward(frame, context: context)
        case .continuation where fragmentedMessageIsBinary:
            if frame.fin { fragmentedMessageIsBinary = false }
            forward(frame, context: context)
        case .text:
            // [MQTT-6.0.0-1] binary frames only: anything else closes the connection.
            sendClose(context, code: .unacceptableData)
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(),
                                                                 data: frame.unmaskedData)), promise: nil)
        case .pong:
            break
        case .connectionClose:
            var data = frame.unmaskedData
            var reply = context.channel.allocator.buffer(capacity: 2)
            if let code = data.readWebSocketErrorCode() { reply.write(webSocketErrorCode: code) }
            closeSent = true
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: reply)))
                .whenComplete { _ in context.close(promise: nil) }
        default:
            sendClose(context, code: .protocolError)
        }
    }

    private func forward(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        let payload = frame.unmaskedData
        if payload.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(payload)) }
    }

    private func sendClose(_ context: ChannelHandlerContext, code: WebSocketErrorCode) {
        guard !closeSent else { return }
        closeSent = true
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: data)))
            .whenComplete { _ in context.close(promise: nil) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !closeSent else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        let frame = WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: unwrapOutboundIn(data))
        context.write(wrapOutboundOut(frame), promise: promise)
    }

    /// Closing the client: a normal-closure frame first, so the broker sees a clean WebSocket close.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode != .input && !closeSent && context.channel.isActive {
            closeSent = true
            var data = context.channel.allocator.buffer(capacity: 2)
            data.write(webSocketErrorCode: .normalClosure)
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: data)),
                                  promise: nil)
        }
        context.close(mode: mode, promise: promise)
    }
}
