import MidgeBroker
import MQTTCodec
import NIOCore

/// The broker engine in memory: a `Broker` on `VirtualEventLoop`s, clients on
/// `InMemoryTransport`s, one virtual clock. Tests (and the engine fuzzer) drive it with
/// byte-exact packets and move time on explicitly: no sockets, no threads, no sleeping.
///
/// ```
/// let harness = EngineHarness()
/// let client = harness.connect()
/// client.send(.connect(ConnectPacket(clientID: "a", keepAlive: 10)))
/// harness.advance(by: .seconds(15))   // 1.5 × keep alive passes: the broker closes it
/// ```
public final class EngineHarness {
    public let scheduler: VirtualLoopScheduler
    public let broker: Broker
    public let policy: ListenerPolicy
    private var nextPort = 40000

    /// The wall clock the broker reads (milliseconds since the epoch): it moves with the
    /// virtual clock from `wallClockStart`.
    public static let wallClockStart: Int64 = 1_800_000_000_000

    /// With `store`, persistence is on: the broker first restores what the store holds.
    public init(configuration: BrokerConfiguration = .defaults, loops: Int = 1, policy: ListenerPolicy? = nil, log: BrokerLog = .silent(),
                store: SessionStore? = nil, wallClockOffset: Int64 = 0) {
        let scheduler = VirtualLoopScheduler(loopCount: loops)
        self.scheduler = scheduler
        let start = scheduler.now
        let base = Self.wallClockStart + wallClockOffset
        broker = Broker(configuration: configuration, eventLoops: scheduler.loops, log: log, store: store,
                        wallClock: { [unowned scheduler] in base + (scheduler.now - start).nanoseconds / 1_000_000 })
        self.policy = policy ?? ListenerPolicy(port: 1883)
        if let store {
            // A store that cannot load is a test failure.
            broker.restore(try! store.load())
        }
    }

    public var now: NIODeadline { scheduler.now }

    /// A new client connection on loop `loop` (its socket "accepted"); the engine's connect
    /// timer starts now.
    public func connect(loop: Int = 0, version: ProtocolVersion = .v3_1_1, policy: ListenerPolicy? = nil) -> HarnessClient {
        let eventLoop = scheduler.loops[loop % scheduler.loops.count]
        nextPort += 1
        let transport = InMemoryTransport(loop: eventLoop, remoteAddress: "127.0.0.1:\(nextPort)")
        scheduler.onLoop(eventLoop) {
            transport.connection = broker.makeConnection(transport: transport, policy: policy ?? self.policy)
        }
        return HarnessClient(harness: self, transport: transport, version: version)
    }

    /// Runs everything queued and due now.
    @discardableResult
    public func run() -> Int { scheduler.run() }

    /// Moves the virtual clock, running what falls due on the way.
    public func advance(by amount: TimeAmount) { scheduler.advance(by: amount) }

    /// Ends the loops (pending timers fail): call when done with a harness that is made over and
    /// over (the fuzzer), so that nothing of it outlives it.
    public func shutDown() { scheduler.shutDown() }

    /// Runs `body` on loop `index` (to read loop-confined engine state in a test).
    public func onLoop<T>(_ index: Int = 0, _ body: () throws -> T) rethrows -> T {
        try scheduler.onLoop(scheduler.loops[index], body)
    }
}

/// One client of an `EngineHarness`: sends bytes or packets as network reads and reads what
/// the broker flushed back.
public final class HarnessClient {
    public unowned let harness: EngineHarness
    public let transport: InMemoryTransport
    /// The protocol version used to encode what `send(_: MQTTPacket)` sends and decode replies.
    public var version: ProtocolVersion
    private var decoder: PacketStreamDecoder
    /// Packets read but handed back (`unread`), returned first by the next `receivedPackets`.
    private var unreadPackets: [MQTTPacket] = []

    init(harness: EngineHarness, transport: InMemoryTransport, version: ProtocolVersion) {
        self.harness = harness
        self.transport = transport
        self.version = version
        self.decoder = PacketStreamDecoder(PacketDecoder(protocolVersion: version))
    }

    /// The engine's state machine behind this client.
    public var connection: ClientConnection? { transport.connection }

    /// The peer's bytes arrive as one network read; the harness then runs to idle.
    public func send(_ bytes: [UInt8]) {
        var buffer = transport.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        send(buffer)
    }

    public func send(_ buffer: ByteBuffer) {
        let transport = self.transport
        transport.loop.execute { transport.deliver(buffer) }
        harness.run()
    }

    /// Encodes `packet` with this client's version (a CONNECT with its own) and sends it.
    public func send(_ packet: MQTTPacket) {
        var buffer = transport.allocator.buffer(capacity: 64)
        var encodeVersion = version
        if case .connect(let connect) = packet {
            encodeVersion = connect.protocolVersion
            version = connect.protocolVersion
            decoder = PacketStreamDecoder(PacketDecoder(protocolVersion: version))
        }
        PacketEncoder.encode(packet, version: encodeVersion, into: &buffer)
        send(buffer)
    }

    /// The peer closes its socket (no DISCONNECT): the engine hears it at once.
    public func dropConnection() {
        let transport = self.transport
        transport.loop.execute { transport.deliverClosed() }
        harness.run()
    }

    /// The peer stops reading (false) or catches up (true).
    public func setWritable(_ writable: Bool) {
        let transport = self.transport
        transport.loop.execute { transport.setWritable(writable) }
        harness.run()
    }

    /// The bytes the broker flushed since the last read.
    public func receivedBytes() -> [UInt8] {
        var output = transport.takeOutput()
        return output.readBytes(length: output.readableBytes) ?? []
    }

    /// The packets the broker flushed since the last read (a decoding error traps: the broker
    /// must only send well-formed packets).
    public func receivedPackets() -> [MQTTPacket] {
        var packets = unreadPackets
        unreadPackets = []
        // Raw CONNECT bytes set the version the broker answers in: decode with it.
        if let written = transport.writtenVersion { decoder.decoder.protocolVersion = written }
        do {
            try decoder.decode(transport.takeOutput()) { packet in
                packets.append(packet)
                return true
            }
        } catch {
            preconditionFailure("the broker sent bytes that do not decode: \(error)")
        }
        return packets
    }

    /// Hands packets back: the next `receivedPackets` returns them first.
    public func unread(_ packets: [MQTTPacket]) { unreadPackets = packets + unreadPackets }

    /// The connection was closed (by the engine, or the peer) and the engine was told.
    public var isClosed: Bool { transport.isClosed }
}
