import MidgeBroker
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// The handlers of a connection on a `protocol websockets` listener (MQTT 5.0 chapter 6,
/// RFC 6455): HTTP/1.1 until the client asks for the WebSocket upgrade, then
///
///     WebSocketFrameEncoder / WebSocketFrameDecoder (NIO)
///       → WebSocketStreamHandler (binary frames ⇄ MQTT byte stream)
///       → the MQTT handler
///
/// An HTTP request that is not an acceptable upgrade gets an HTTP error from
/// `WebSocketHTTPErrorResponder`, or with `http_dir` a file (`WebSocketHTTPFiles`). With TLS (wss) the TLS handler comes first.
enum WebSocketServerPipeline {
    /// The subprotocols accepted, best first. [MQTT-6.0.0-4]: the name the server selects is
    /// "mqtt"; "mqttv3.1" is what MQTT 3.1 clients offer (Mosquitto accepts it too).
    static let subprotocols = ["mqtt", "mqttv3.1"]

    enum SubprotocolChoice: Equatable {
        /// Answer with this subprotocol.
        case selected(String)
        /// The client offered none: accepted without a `Sec-WebSocket-Protocol` answer, as
        /// Mosquitto does ([MQTT-6.0.0-3] binds the client, and a browser fails a handshake
        /// whose answer names a subprotocol it did not offer).
        case noneOffered
        /// The client offered only subprotocols we do not speak: refused (HTTP 400).
        case unsupported
    }

    /// [MQTT-6.0.0-3]/[MQTT-6.0.0-4]: picks the subprotocol from the request's
    /// `Sec-WebSocket-Protocol` headers (comma-separated lists, possibly repeated).
    static func chooseSubprotocol(_ headers: HTTPHeaders) -> SubprotocolChoice {
        let offered = headers[canonicalForm: "sec-websocket-protocol"].map { String($0) }
        if offered.isEmpty { return .noneOffered }
        for name in subprotocols where offered.contains(name) { return .selected(name) }
        return .unsupported
    }

    /// `websockets_log_level` is libwebsockets' bit mask (1 error, 2 warning, 4 notice, 8 info,
    /// 16 debug, 64 header, ...): with notice, info, debug or header set, and `log_type
    /// websockets`, Midge logs its own HTTP side of a websockets listener (requests answered,
    /// upgrades), the nearest thing it has to libwebsockets' messages.
    static func logsRequests(level: Int) -> Bool { level & (4 | 8 | 16 | 64) != 0 }

    /// The largest WebSocket frame accepted: the broker's maximum packet size (`max_packet_size`,
    /// else MQTT's own limit of 256 MiB plus the fixed header), but never under 64 KiB so that
    /// clients packing several small packets into one frame are not refused.
    static func maxFrameSize(maxPacketSize: Int) -> Int {
        let mqttLimit = 268_435_455 + 5
        let limit = maxPacketSize > 0 ? min(maxPacketSize, mqttLimit) : mqttLimit
        return max(limit, 64 * 1024)
    }

    /// Adds the HTTP handlers and the WebSocket upgrader to `channel`; `makeMQTTHandler` is
    /// called once the upgrade is done, and its handler appended after the stream handler.
    /// `httpFiles`: `http_dir` (plain HTTP GET/HEAD of its files); nil = every plain request is an error.
    /// `requestLog`: where each HTTP request answered and each upgrade is logged (type websockets;
    /// `websockets_log_level`, see `logsRequests`).
    static func configure(_ channel: Channel, maxPacketSize: Int, httpFiles: WebSocketHTTPFiles? = nil, requestLog: BrokerLog? = nil,
                          makeMQTTHandler: @escaping () -> ChannelHandler) -> EventLoopFuture<Void> {
        let responder = WebSocketHTTPErrorResponder(files: httpFiles, requestLog: requestLog)
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: maxFrameSize(maxPacketSize: maxPacketSize),
            automaticErrorHandling: false,  // WebSocketStreamHandler answers frame errors itself
            shouldUpgrade: { channel, head in
                var headers = HTTPHeaders()
                switch chooseSubprotocol(head.headers) {
                case .unsupported:
                    return channel.eventLoop.makeSucceededFuture(nil)
                case .noneOffered:
                    break
                case .selected(let name):
                    headers.add(name: "Sec-WebSocket-Protocol", value: name)
                }
                // The responder sits after the upgrade handler: it must go before the
                // WebSocket handlers are appended.
                return channel.pipeline.syncOperations.removeHandler(responder).map { headers }
            },
            upgradePipelineHandler: { channel, head in
                requestLog?.log(.websockets, "WebSocket upgrade of \(head.uri) from \(MQTTChannelHandler.describe(channel.remoteAddress)).")
                do {
                    try channel.pipeline.syncOperations.addHandlers([WebSocketStreamHandler(), makeMQTTHandler()])
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            })
        do {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
            try channel.pipeline.syncOperations.addHandler(responder)
            return channel.eventLoop.makeSucceededVoidFuture()
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
    }
}
