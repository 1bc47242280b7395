import NIOCore
import NIOHTTP1

/// On a `protocol websockets` listener, answers every HTTP request that is not upgraded to an
/// MQTT WebSocket with an HTTP error and closes the connection (Midge serves no files:
/// `http_dir` is not supported). It also closes a connection that sends no complete request
/// within `timeout`. Removed from the pipeline when the upgrade is accepted.
final class WebSocketHTTPErrorResponder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var request: HTTPRequestHead?

    init(timeout: TimeAmount = .seconds(10)) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    /// A request that is not HTTP (e.g. MQTT bytes sent to the WebSocket port): NIO's
    /// HTTPServerProtocolErrorHandler has answered 400; the connection ends here.
    /// (A refused upgrade also reports an error here; the request itself follows and is answered.)
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is HTTPParserError { context.close(promise: nil) }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let status: HTTPResponseStatus
        let text: String
        var headers = HTTPHeaders()
        if head.headers[canonicalForm: "upgrade"].contains(where: { $0.lowercased() == "websocket" }) {
            // A WebSocket upgrade the upgrader refused: no subprotocol we speak was offered, or
            // the request is not a valid WebSocket handshake.
            status = .badRequest
            text = "This is an MQTT over WebSocket endpoint: offer the WebSocket subprotocol \"mqtt\" (or \"mqttv3.1\").\n"
        } else {
            status = .upgradeRequired
            headers.add(name: "Upgrade", value: "websocket")
            text = "This is an MQTT over WebSocket endpoint: connect with a WebSocket client, subprotocol \"mqtt\".\n"
        }
        var body = context.channel.allocator.buffer(capacity: text.utf8.count)
        body.writeString(text)
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Connection", value: "close")
        let response = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}
