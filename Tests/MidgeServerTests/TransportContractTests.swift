import MidgeBroker
import MQTTCodec
import NIOCore
import NIOEmbedded
import XCTest
#if os(Linux)
import Glibc
import MidgeReactor
#endif
@testable import MidgeServer

/// One contract for every `ConnectionTransport` (TransportPolicy.swift): the epoll
/// `SocketConnection` over a real socket and the NIO `MQTTChannelHandler` on an `EmbeddedChannel`
/// run the same checks, through the real engine:
/// - a read's replies reach the peer whole and in order (flushed at the end of the read);
/// - when the engine closes, what it wrote is sent first, then the peer sees the close, the
///   engine hears `transportClosed` once and the listener's connection count drops;
/// - when the peer closes, the engine hears it once (its session ends).
///
/// The checks are `check…` methods of this base class (XCTest on Linux runs only the `test…`
/// methods a class declares itself), and each transport's class calls every one of them.
class TransportContractTests: XCTestCase {
    /// The transport under test with a peer on the other side.
    protocol Fixture: AnyObject {
        var broker: Broker { get }
        var limit: ConnectionLimit { get }
        func peerSend(_ bytes: [UInt8]) throws
        /// Reads until `count` bytes arrived (or fails after a few seconds).
        func peerRead(_ count: Int) throws -> [UInt8]
        /// Waits until the transport closed the connection (EOF at the peer), past the linger.
        func peerSeesClose() throws -> Bool
        func peerClose() throws
        /// Lets the loop run everything pending.
        func settle() throws
        func tearDown() throws
    }

    /// Made by each transport's subclass.
    func makeFixture() throws -> Fixture { preconditionFailure("a transport's subclass makes its fixture") }

    private func expected(_ packets: [MQTTPacket], _ version: ProtocolVersion = .v5) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        for packet in packets { PacketEncoder.encode(packet, version: version, into: &buffer) }
        return buffer.readBytes(length: buffer.readableBytes)!
    }

    private func connect(_ id: String) -> [UInt8] {
        expected([.connect(ConnectPacket(protocolVersion: .v5, keepAlive: 0, clientID: id))])
    }

    func checkRepliesOfOneReadArriveWholeAndInOrder() throws {
        let fixture = try makeFixture()
        defer { try? fixture.tearDown() }
        try fixture.peerSend(connect("contract-a") + expected([.pingreq, .pingreq]))
        // A default broker's v5 CONNACK: Receive Maximum 20, Topic Alias Maximum 10.
        var properties = Properties.none
        properties.receiveMaximum = 20
        properties.topicAliasMaximum = 10
        let connack = expected([.connack(ConnAckPacket(properties: properties))])
        let reply = try fixture.peerRead(connack.count + 4)
        XCTAssertEqual(reply, connack + [0xD0, 0x00, 0xD0, 0x00], "CONNACK then two PINGRESPs")
        try fixture.settle()
        XCTAssertEqual(fixture.broker.connectedClientCount, 1)
        XCTAssertEqual(fixture.limit.current, 1)
    }

    func checkEngineCloseSendsWhatWasWrittenThenCloses() throws {
        let fixture = try makeFixture()
        defer { try? fixture.tearDown() }
        try fixture.peerSend(connect("contract-b"))
        _ = try fixture.peerRead(3)
        try fixture.settle()
        _ = try? fixture.peerRead(0)
        // A PUBLISH with a Subscription Identifier is a protocol error: DISCONNECT 0x82, then the
        // transport closes.
        try fixture.peerSend([0x30, 0x07, 0x00, 0x01, 0x61, 0x02, 0x0B, 0x01, 0x78])
        let disconnect = try fixture.peerRead(3)
        XCTAssertEqual(disconnect.first, 0xE0, "DISCONNECT")
        XCTAssertEqual(disconnect.count >= 3 ? disconnect[2] : nil, 0x82, "reason Protocol Error")
        XCTAssertTrue(try fixture.peerSeesClose(), "the transport did not close after the engine's close")
        try fixture.settle()
        XCTAssertEqual(fixture.broker.connectedClientCount, 0, "transportClosed not delivered to the engine")
        XCTAssertEqual(fixture.limit.current, 0, "max_connections still counts the closed socket")
    }

    func checkPeerCloseReachesTheEngineOnce() throws {
        let fixture = try makeFixture()
        defer { try? fixture.tearDown() }
        try fixture.peerSend(connect("contract-c"))
        _ = try fixture.peerRead(3)
        try fixture.settle()
        XCTAssertEqual(fixture.broker.sessionCount, 1)
        try fixture.peerClose()
        try fixture.settle()
        XCTAssertEqual(fixture.broker.connectedClientCount, 0)
        XCTAssertEqual(fixture.broker.sessionCount, 0, "the session (expiry 0) did not end with the connection")
        XCTAssertEqual(fixture.limit.current, 0)
    }
}

/// `MQTTChannelHandler` (TLS, WebSocket and Unix-socket listeners) on an `EmbeddedChannel`.
final class ChannelHandlerTransportContractTests: TransportContractTests {
    final class EmbeddedFixture: Fixture {
        let channel = EmbeddedChannel()
        let broker: Broker
        let limit = ConnectionLimit(limit: -1)
        private var received: [UInt8] = []

        init() throws {
            broker = Broker(eventLoops: [channel.embeddedEventLoop])
            let limit = self.limit
            XCTAssertTrue(limit.admit(peer: "embedded", log: broker.log))
            let handler = MQTTChannelHandler(broker: broker, policy: ListenerPolicy(port: 1883), eventLoop: channel.embeddedEventLoop,
                                             allocator: channel.allocator, onClose: { limit.release() })
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        func peerSend(_ bytes: [UInt8]) throws {
            try channel.writeInbound(channel.allocator.buffer(bytes: bytes))
            channel.embeddedEventLoop.run()
        }

        func peerRead(_ count: Int) throws -> [UInt8] {
            channel.embeddedEventLoop.run()
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { received += Array(buffer.readableBytesView) }
            let taken = Array(received.prefix(max(count, received.count)))
            received.removeAll()
            return taken
        }

        func peerSeesClose() throws -> Bool {
            channel.embeddedEventLoop.advanceTime(by: TransportPolicy.closeLinger + .milliseconds(1))
            return !channel.isActive
        }

        func peerClose() throws {
            channel.pipeline.fireChannelInactive()
            channel.embeddedEventLoop.run()
        }

        func settle() throws { channel.embeddedEventLoop.run() }

        func tearDown() throws { _ = try? channel.finish() }
    }

    override func makeFixture() throws -> Fixture { try EmbeddedFixture() }
    func testRepliesOfOneReadArriveWholeAndInOrder() throws { try checkRepliesOfOneReadArriveWholeAndInOrder() }
    func testEngineCloseSendsWhatWasWrittenThenCloses() throws { try checkEngineCloseSendsWhatWasWrittenThenCloses() }
    func testPeerCloseReachesTheEngineOnce() throws { try checkPeerCloseReachesTheEngineOnce() }
}

#if os(Linux)
/// `SocketConnection` (plain TCP listeners) on an epoll loop, with a real client socket.
final class SocketTransportContractTests: TransportContractTests {
    final class SocketFixture: Fixture {
        let group: EpollEventLoopGroup
        let broker: Broker
        let limit = ConnectionLimit(limit: -1)
        let listener: ReactorListener
        let peer: Int32

        init() throws {
            group = try EpollEventLoopGroup(numberOfThreads: 1, name: "contract")
            broker = Broker(eventLoops: group.loops)
            let plan = ListenerPlan(endpoint: .tcp(host: "127.0.0.1", port: 0), policy: ListenerPolicy(port: 0),
                                    maxConnections: -1, listenerIndex: 0)
            let loop = group.loops[0]
            let broker = self.broker, limit = self.limit, group = self.group
            listener = try loop.submit {
                try ReactorListener(host: "127.0.0.1", port: 0, plan: plan, broker: broker, group: group, limit: limit, acceptLoop: loop)
            }.wait()
            let port = listener.socket.localAddress.port!
            peer = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(peer, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard result == 0 else { throw IOError(errnoCode: errno, reason: "connect") }
        }

        func peerSend(_ bytes: [UInt8]) throws {
            let sent = bytes.withUnsafeBytes { Glibc.send(peer, $0.baseAddress, $0.count, 0) }
            guard sent == bytes.count else { throw IOError(errnoCode: errno, reason: "send") }
        }

        func peerRead(_ count: Int) throws -> [UInt8] {
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while bytes.count < count {
                let got = recv(peer, &chunk, chunk.count, 0)
                if got <= 0 { break }
                bytes += chunk[0..<got]
            }
            return bytes
        }

        func peerSeesClose() throws -> Bool {
            // The transport shut its sending side: recv returns 0 (EOF), well within the linger.
            var chunk = [UInt8](repeating: 0, count: 256)
            while true {
                let got = recv(peer, &chunk, chunk.count, 0)
                if got == 0 { break }
                if got < 0 { return false }
            }
            // Closing our end completes the close at once, as a client does.
            Glibc.shutdown(peer, Int32(SHUT_WR))
            return true
        }

        func peerClose() throws { Glibc.shutdown(peer, Int32(SHUT_RDWR)) }

        func settle() throws {
            // The kernel hands the peer's bytes or close to the loop on its own time: give it
            // twenty turns 5 ms apart to see them and run their effects.
            for _ in 0..<20 {
                try group.loops[0].submit {}.wait()
                usleep(5_000)
            }
        }

        func tearDown() throws {
            Glibc.close(peer)
            listener.close()
            try group.loops[0].submit {
                for source in self.group.loops[0].registeredSources { (source as? SocketConnection)?.closeNow() }
            }.wait()
            try group.syncShutdownGracefully()
        }
    }

    override func makeFixture() throws -> Fixture { try SocketFixture() }
    func testRepliesOfOneReadArriveWholeAndInOrder() throws { try checkRepliesOfOneReadArriveWholeAndInOrder() }
    func testEngineCloseSendsWhatWasWrittenThenCloses() throws { try checkEngineCloseSendsWhatWasWrittenThenCloses() }
    func testPeerCloseReachesTheEngineOnce() throws { try checkPeerCloseReachesTheEngineOnce() }
}
#endif
