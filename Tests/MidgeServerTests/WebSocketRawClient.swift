import Foundation
import MQTTCodec
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A byte-level WebSocket client for the transport tests: writes the HTTP handshake and frames
/// by hand (masked or not, fragmented or not, any opcode), so each test controls exactly what
/// the broker receives, and parses what comes back.
final class WebSocketRawClient: @unchecked Sendable {
    struct Frame: Equatable {
        var fin: Bool
        var opcode: UInt8
        var payload: [UInt8]
    }

    static let text: UInt8 = 0x1, binary: UInt8 = 0x2, continuation: UInt8 = 0x0
    static let close: UInt8 = 0x8, ping: UInt8 = 0x9, pong: UInt8 = 0xA

    private let channel: Channel
    private let collector: ByteCollector
    private var mqttDecoder = PacketStreamDecoder(PacketDecoder(protocolVersion: .v5))

    private init(channel: Channel, collector: ByteCollector) {
        self.channel = channel
        self.collector = collector
    }

    /// Opens a TCP connection (nothing sent).
    static func connect(port: Int, group: EventLoopGroup) async throws -> WebSocketRawClient {
        let collector = ByteCollector()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in channel.pipeline.addHandler(collector) }
            .connect(host: "127.0.0.1", port: port).get()
        return WebSocketRawClient(channel: channel, collector: collector)
    }

    /// Opens a connection and sends the upgrade request; returns the HTTP response head
    /// (status line and headers, lower-cased header names).
    static func upgrade(port: Int, group: EventLoopGroup, path: String = "/mqtt",
                        subprotocols: String? = "mqtt") async throws -> (WebSocketRawClient, HTTPAnswer) {
        let client = try await connect(port: port, group: group)
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        if let subprotocols { request += "Sec-WebSocket-Protocol: \(subprotocols)\r\n" }
        request += "\r\n"
        try await client.send(Array(request.utf8))
        return (client, try await client.readHTTPAnswer())
    }

    struct HTTPAnswer {
        var status: Int
        var headers: [String: String]
        var body: String
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    /// Reads an HTTP response head (and its body when it has a Content-Length).
    func readHTTPAnswer(timeout: TimeInterval = 5) async throws -> HTTPAnswer {
        let separator = Array("\r\n\r\n".utf8)
        let headEnd = try await waitFor(timeout: timeout) { bytes in
            bytes.indices.first { i in i + 4 <= bytes.count && Array(bytes[i..<i + 4]) == separator }
        }
        let head = collector.take(headEnd + 4)
        let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = ""
        if let length = headers["content-length"].flatMap(Int.init), length > 0 {
            _ = try await waitFor(timeout: timeout) { $0.count >= length ? length : nil }
            body = String(decoding: collector.take(length), as: UTF8.self)
        }
        return HTTPAnswer(status: status, headers: headers, body: body)
    }

    /// Sends one frame, masked as a client must (RFC 6455 5.3) unless `masked` is false.
    func sendFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true, masked: Bool = true) async throws {
        var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        let maskBit: UInt8 = masked ? 0x80 : 0
        if payload.count < 126 {
            frame.append(maskBit | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            frame.append(maskBit | 126)
            frame += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(maskBit | 127)
            frame += (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        if masked {
            let key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
            frame += key
            frame += payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
        } else {
            frame += payload
        }
        try await send(frame)
    }

    /// The encoded bytes of an MQTT packet.
    static func encode(_ packet: MQTTPacket, version: ProtocolVersion = .v5) -> [UInt8] {
        var buffer = PacketEncoder.encode(packet, version: version, allocator: ByteBufferAllocator())
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    /// The next frame from the server (server frames are not masked).
    func readFrame(timeout: TimeInterval = 5) async throws -> Frame {
        let length = try await waitFor(timeout: timeout) { bytes -> Int? in
            guard bytes.count >= 2 else { return nil }
            var size = Int(bytes[1] & 0x7F), header = 2
            if size == 126 {
                guard bytes.count >= 4 else { return nil }
                size = Int(bytes[2]) << 8 | Int(bytes[3]); header = 4
            } else if size == 127 {
                guard bytes.count >= 10 else { return nil }
                size = (2..<10).reduce(0) { $0 << 8 | Int(bytes[$1]) }; header = 10
            }
            if bytes[1] & 0x80 != 0 { header += 4 }
            return bytes.count >= header + size ? header + size : nil
        }
        let bytes = collector.take(length)
        var header = 2
        if bytes[1] & 0x7F == 126 { header = 4 } else if bytes[1] & 0x7F == 127 { header = 10 }
        return Frame(fin: bytes[0] & 0x80 != 0, opcode: bytes[0] & 0x0F, payload: Array(bytes[header...]))
    }

    /// The next MQTT packet, reassembled from binary frames (as many as it takes).
    func readPacket(version: ProtocolVersion = .v5, timeout: TimeInterval = 5) async throws -> MQTTPacket {
        mqttDecoder.decoder.protocolVersion = version
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let packet = try nextBufferedPacket() { return packet }
            let frame = try await readFrame(timeout: max(0.1, deadline.timeIntervalSinceNow))
            guard frame.opcode == Self.binary || frame.opcode == Self.continuation else {
                throw WebSocketTestError.unexpectedFrame(frame)
            }
            pendingMQTT += frame.payload
        }
    }

    private var pendingMQTT: [UInt8] = []
    private var decodedPackets: [MQTTPacket] = []

    private func nextBufferedPacket() throws -> MQTTPacket? {
        if !pendingMQTT.isEmpty {
            let bytes = pendingMQTT
            pendingMQTT = []
            try mqttDecoder.decode(ByteBuffer(bytes: bytes)) { packet in
                decodedPackets.append(packet)
                return true
            }
        }
        return decodedPackets.isEmpty ? nil : decodedPackets.removeFirst()
    }

    /// Waits until the server closed the TCP connection; returns the bytes left unread.
    func waitForClose(timeout: TimeInterval = 5) async throws -> [UInt8] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if collector.isClosed { return collector.take(collector.count) }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        throw WebSocketTestError.timeout("the connection stayed open")
    }

    func close() {
        channel.close(promise: nil)
    }

    private func waitFor(timeout: TimeInterval, _ ready: ([UInt8]) -> Int?) async throws -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let result = collector.inspect(ready) { return result }
            if collector.isClosed { throw WebSocketTestError.closed(collector.take(collector.count)) }
            if Date() >= deadline { throw WebSocketTestError.timeout("have \(collector.count) bytes") }
            try await Task.sleep(nanoseconds: 5_000_000)
        }
    }
}

enum WebSocketTestError: Error {
    case timeout(String)
    case closed([UInt8])
    case unexpectedFrame(WebSocketRawClient.Frame)
}

/// Keeps every byte received, and whether the peer closed.
private final class ByteCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private let lock = NIOLock()
    private var bytes: [UInt8] = []
    private var closed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let new = buffer.readBytes(length: buffer.readableBytes) ?? []
        lock.withLock { bytes += new }
    }

    func channelInactive(context: ChannelHandlerContext) {
        lock.withLock { closed = true }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    var isClosed: Bool { lock.withLock { closed && true } }
    var count: Int { lock.withLock { bytes.count } }
    func inspect<T>(_ body: ([UInt8]) -> T?) -> T? { lock.withLock { body(bytes) } }
    func take(_ n: Int) -> [UInt8] {
        lock.withLock {
            let taken = Array(bytes.prefix(n))
            bytes.removeFirst(min(n, bytes.count))
            return taken
        }
    }
}
