import NIOCore
import NIOWebSocket

/// MQTT over WebSocket, server side, after the HTTP upgrade: turns the client's binary frames
/// into the byte stream `MQTTChannelHandler` reads, and wraps what it writes into binary frames.
///
/// MQTT packets are not aligned on frame boundaries [MQTT-6.0.0-2]: a frame's payload is passed
/// on as it comes and the MQTT decoder reassembles packets across reads, as it does for TCP
/// segments. Outbound bytes written between two flushes go out as one binary frame.
final class WebSocketStreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = WebSocketFrame

    /// Bytes written since the last flush, and the promises of those writes.
    private var pending: ByteBuffer?
    private var pendingPromise: EventLoopPromise<Void>?
    /// A close frame was sent: nothing more may be written, and what arrives is ignored.
    private var closeSent = false
    /// The type of the current fragmented data message (RFC 6455 5.4: continuation frames carry
    /// the type of the message's first frame).
    private var fragmentedMessageIsBinary = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closeSent else { return }
        let frame = unwrapInboundIn(data)
        // RFC 6455 5.1/5.2: every frame from a client is masked, and no extension was negotiated.
        guard frame.maskKey != nil, !frame.rsv1, !frame.rsv2, !frame.rsv3 else {
            sendClose(context, code: .protocolError)
            return
        }
        switch frame.opcode {
        case .binary:
            fragmentedMessageIsBinary = !frame.fin
            forward(frame, context: context)
        case .continuation:
            guard fragmentedMessageIsBinary else {
                sendClose(context, code: .protocolError)
                return
            }
            if frame.fin { fragmentedMessageIsBinary = false }
            forward(frame, context: context)
        case .text:
            // [MQTT-6.0.0-1] MQTT packets travel in binary frames only; any other data frame
            // closes the network connection.
            sendClose(context, code: .unacceptableData)
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .pong:
            break
        case .connectionClose:
            // Answer with the peer's status code (RFC 6455 5.5.1), then close the TCP connection:
            // the server closes first.
            var data = frame.unmaskedData
            var reply = context.channel.allocator.buffer(capacity: 2)
            if let code = data.readWebSocketErrorCode() { reply.write(webSocketErrorCode: code) }
            closeSent = true
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: reply)))
                .whenComplete { _ in context.close(promise: nil) }
        default:
            sendClose(context, code: .protocolError)
        }
    }

    private func forward(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        let payload = frame.unmaskedData
        if payload.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(payload)) }
    }

    /// Sends a close frame with `code`, then shuts down our sending side; the socket closes
    /// when the peer closes it, or after 2 s. (Closing at once while the peer still sends makes
    /// the kernel answer with RST, which can destroy the close frame before the peer reads it.)
    private func sendClose(_ context: ChannelHandlerContext, code: WebSocketErrorCode) {
        guard !closeSent else { return }
        writeCloseFrame(context, code: code)
        let channel = context.channel
        context.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
        channel.eventLoop.scheduleTask(in: TransportPolicy.closeLinger) { channel.close(promise: nil) }
    }

    /// Frame-level errors from NIO's decoder (frame over the size limit, a fragmented or
    /// oversized control frame): answered with the matching close code, not passed on.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let webSocketError = error as? NIOWebSocketError else {
            context.fireErrorCaught(error)
            return
        }
        switch webSocketError {
        case .invalidFrameLength: sendClose(context, code: .messageTooLarge)
        default: sendClose(context, code: .protocolError)
        }
    }

    private func writeCloseFrame(_ context: ChannelHandlerContext, code: WebSocketErrorCode) {
        writePending(context)
        closeSent = true
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)), promise: nil)
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !closeSent else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        let buffer = unwrapOutboundIn(data)
        if pending == nil {
            pending = buffer
        } else {
            pending!.writeImmutableBuffer(buffer)
        }
        if let promise {
            if let pendingPromise {
                pendingPromise.futureResult.cascade(to: promise)
            } else {
                pendingPromise = promise
            }
        }
    }

    func flush(context: ChannelHandlerContext) {
        writePending(context)
        context.flush()
    }

    private func writePending(_ context: ChannelHandlerContext) {
        guard let buffer = pending else { return }
        let promise = pendingPromise
        pending = nil
        pendingPromise = nil
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .binary, data: buffer)), promise: promise)
    }

    /// The broker closes a connection by shutting down its sending side (see
    /// `MQTTChannelHandler.close`): on a WebSocket that first needs a close frame.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode != .input && !closeSent && context.channel.isActive {
            writeCloseFrame(context, code: .normalClosure)
        }
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        pendingPromise?.fail(ChannelError.ioOnClosedChannel)
        pendingPromise = nil
    }
}
