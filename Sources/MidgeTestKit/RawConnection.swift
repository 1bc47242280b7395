import Foundation
import MidgeTestSupport
import NIOCore
import NIOPosix

/// A TCP client that sends and receives raw bytes: for checking the broker's output byte for byte
/// and for sending what a well-behaved encoder never would.
public final class RawConnection: @unchecked Sendable {
    private final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let lock = NSLock()
        var bytes: [UInt8] = []
        var closed = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            lock.lock()
            bytes.append(contentsOf: buffer.readableBytesView)
            lock.unlock()
        }

        func channelInactive(context: ChannelHandlerContext) {
            lock.lock()
            closed = true
            lock.unlock()
        }
    }

    public let channel: Channel
    private let collector: Collector

    private init(channel: Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    public static func connect(_ broker: TestBroker) async throws -> RawConnection {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: broker.clientGroup)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { $0.pipeline.addHandler(collector) }
            .connect(host: "127.0.0.1", port: broker.port).get()
        return RawConnection(channel: channel, collector: collector)
    }

    public func send(_ bytes: [UInt8]) async throws {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try await channel.writeAndFlush(buffer).get()
    }

    private func snapshot() -> (bytes: [UInt8], closed: Bool) {
        collector.lock.lock()
        defer { collector.lock.unlock() }
        return (collector.bytes, collector.closed)
    }

    private func consume(_ count: Int) -> [UInt8] {
        collector.lock.lock()
        defer { collector.lock.unlock() }
        let taken = Array(collector.bytes.prefix(count))
        collector.bytes.removeFirst(taken.count)
        return taken
    }

    /// The bytes of the next complete MQTT packet, or nil if the connection closes or nothing
    /// complete arrives in time.
    public func readPacket(timeout seconds: Double = 5) async -> [UInt8]? {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let (bytes, closed) = snapshot()
            if let length = Self.completePacketLength(bytes) { return consume(length) }
            if closed || Date() >= deadline { return nil }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    /// Everything received until the peer closes; `closed` is false if it stayed open for `seconds`.
    public func readUntilClose(timeout seconds: Double = 5) async -> (bytes: [UInt8], closed: Bool) {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let (_, closed) = snapshot()
            if closed || Date() >= deadline { return (consume(Int.max), closed) }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    public func close() async {
        try? await channel.close().get()
    }

    /// Length of the first complete packet in `bytes`, if there is one.
    public static func completePacketLength(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        var value = 0, multiplier = 1, index = 1
        while true {
            guard index < bytes.count, index <= 4 else { return nil }
            let byte = bytes[index]
            value += Int(byte & 0x7F) * multiplier
            index += 1
            if byte & 0x80 == 0 { break }
            multiplier *= 128
        }
        return bytes.count >= index + value ? index + value : nil
    }
}

/// Hex rendering for readable failure messages.
public func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined(separator: " ") }
