import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

extension MQTTTransport {
    /// MQTT over WebSocket (`ws://host:port/path`), or over TLS with `tls` (`wss://`): an HTTP/1.1
    /// upgrade to the WebSocket subprotocol "mqtt" [MQTT-6.0.0-3], then MQTT in binary frames.
    /// The connection counts as made once the broker accepted the upgrade.
    /// - Parameters:
    ///   - path: the HTTP request path (Mosquitto accepts any; many brokers use `/mqtt`).
    ///   - tls: TLS options for `wss`; nil for plain `ws`.
    ///   - onFailure: told why a connection attempt failed (TLS handshake, HTTP refusal).
    public static func webSocket(path: String = "/", tls: TLSClientOptions? = nil,
                                 onFailure: (@Sendable (Error) -> Void)? = nil) -> MQTTTransport {
        let sslContext = tls.map { options in Result { try options.makeContext() } }
        return MQTTTransport { host, port, eventLoop, handler in
            var context: NIOSSLContext?
            switch sslContext {
            case .success(let made)?: context = made
            case .failure(let error)?:
                onFailure?(error)
                return eventLoop.makeFailedFuture(error)
            case nil: context = nil
            }
            let upgraded = eventLoop.makePromise(of: Void.self)
            let requester = WebSocketUpgradeRequester(host: host, port: port, path: path, secure: tls != nil, upgraded: upgraded)
            let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 268_435_455 + 5, automaticErrorHandling: true) { channel, response in
                // [MQTT-6.0.0-4]: a broker that names a subprotocol must have chosen "mqtt".
                let chosen = response.headers[canonicalForm: "sec-websocket-protocol"].map(String.init)
                guard chosen.isEmpty || chosen == ["mqtt"] else {
                    let error = MQTTClientError.unreachable("WebSocket: the broker chose the subprotocol \(chosen.joined(separator: ", ")), not mqtt")
                    upgraded.fail(error)
                    return channel.eventLoop.makeFailedFuture(error)
                }
                return channel.pipeline.syncOperations.removeHandler(requester).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandlers([WebSocketClientStreamHandler(), handler])
                    upgraded.succeed()
                }
            }
            let connected = ClientBootstrap(group: eventLoop)
                .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    do {
                        if let tls, let context {
                            try channel.pipeline.syncOperations.addHandlers(
                                tls.makeHandlers(context: context, host: host, onFailure: onFailure.map { report in { report($0) } }))
                        }
                    } catch {
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                    do {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes,
                            withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                        try channel.pipeline.syncOperations.addHandler(requester)
                        return channel.eventLoop.makeSucceededVoidFuture()
                    } catch {
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                }
                .connect(host: host, port: port)
            return connected.flatMap { channel in
                upgraded.futureResult.map { channel }.flatMapError { error in
                    onFailure?(error)
                    channel.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }.flatMapError { error in
                upgraded.fail(error)
                return eventLoop.makeFailedFuture(error)
            }
        }
    }
}

/// Sends the WebSocket upgrade request once connected (the upgrade handler adds the
/// `Upgrade`, `Sec-WebSocket-Key` and version headers), and fails the upgrade when the broker
/// answers anything but 101 or closes first. Removed when the upgrade succeeds.
final class WebSocketUpgradeRequester: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let host: String
    private let port: Int
    private let path: String
    private let secure: Bool
    private let upgraded: EventLoopPromise<Void>
    private var status: HTTPResponseStatus?

    init(host: String, port: Int, path: String, secure: Bool, upgraded: EventLoopPromise<Void>) {
        self.host = host; self.port = port; self.path = path.isEmpty ? "/" : path
        self.secure = secure; self.upgraded = upgraded
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { sendRequest(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        sendRequest(context)
        context.fireChannelActive()
    }

    private func sendRequest(_ context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        let defaultPort = secure ? 443 : 80
        let hostHeader = host.contains(":") ? "[\(host)]" : host
        headers.add(name: "Host", value: port == defaultPort ? hostHeader : "\(hostHeader):\(port)")
        headers.add(name: "Sec-WebSocket-Protocol", value: "mqtt")
        headers.add(name: "Content-Length", value: "0")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) { status = head.status }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is NIOHTTPClientUpgradeError {
            let answer = status.map { "HTTP \($0.code) \($0.reasonPhrase)" } ?? "no WebSocket upgrade"
            upgraded.fail(MQTTClientError.unreachable("WebSocket upgrade refused by the broker (\(answer))"))
        } else {
            upgraded.fail(error)
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let answer = status.map { " (HTTP \($0.code) \($0.reasonPhrase))" } ?? ""
        upgraded.fail(MQTTClientError.unreachable("WebSocket upgrade refused: the broker closed the connection\(answer)"))
        context.fireChannelInactive()
    }
}
