import MidgeBroker
import NIOCore
import NIOHTTP1

/// On a `protocol websockets` listener, answers every HTTP request that is not upgraded to an
/// MQTT WebSocket with an HTTP error, or, with `http_dir`, a plain request with the file it
/// names (`WebSocketHTTPFiles`), and closes the connection. It also closes a connection that
/// sends no complete request within `timeout`. Removed from the pipeline when the upgrade is accepted.
final class WebSocketHTTPErrorResponder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var request: HTTPRequestHead?
    private let files: WebSocketHTTPFiles?
    private let requestLog: BrokerLog?

    init(timeout: TimeAmount = .seconds(10), files: WebSocketHTTPFiles? = nil, requestLog: BrokerLog? = nil) {
        self.timeout = timeout
        self.files = files
        self.requestLog = requestLog
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
        let isUpgrade = head.headers[canonicalForm: "upgrade"].contains(where: { $0.lowercased() == "websocket" })
        if !isUpgrade, let files {
            let answer = files.response(to: head)
            requestLog?.log(.websockets, "HTTP \(head.method) \(head.uri) from \(MQTTChannelHandler.describe(context.channel.remoteAddress)): \(answer.status.code).")
            send(answer, method: head.method, context: context)
            return
        }
        requestLog?.log(.websockets, "HTTP \(head.method) \(head.uri) from \(MQTTChannelHandler.describe(context.channel.remoteAddress)) refused.")
        if isUpgrade {
            // A WebSocket upgrade the upgrader refused: no subprotocol we speak was offered, or
            // the request is not a valid WebSocket handshake.
            status = .badRequest
            text = "This is an MQTT over WebSocket endpoint: offer the WebSocket subprotocol \"mqtt\" (or \"mqttv3.1\").\n"
        } else {
            status = .upgradeRequired
            headers.add(name: "Upgrade", value: "websocket")
            text = "This is an MQTT over WebSocket endpoint: connect with a WebSocket client, subprotocol \"mqtt\".\n"
        }
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        send(WebSocketHTTPFiles.Response(status: status, headers: headers, body: Array(text.utf8)), method: head.method, context: context)
    }

    private func send(_ answer: WebSocketHTTPFiles.Response, method: HTTPMethod, context: ChannelHandlerContext) {
        var headers = answer.headers
        var body = context.channel.allocator.buffer(capacity: answer.body.count)
        body.writeBytes(answer.body)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Connection", value: "close")
        let response = HTTPResponseHead(version: .http1_1, status: answer.status, headers: headers)
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        if method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}
