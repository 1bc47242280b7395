// The driver of the engine fuzz target (Fuzz/FuzzEngine): it lives here so that crash inputs
// replay as ordinary tests (MidgeEngineTests/FuzzRegressionTests.swift) through the same code.
//
// Input layout:
//   byte 0  bits 0-1  event loops (1-3)   bit 2 max_packet_size 256   bit 3 max_queued_messages 4
//           bits 4-5  max_inflight_messages (0 = default 20, 1 = 1, 2 = 2, 3 = 65535)
//           bit 6     connect_timeout 0 (none) instead of 15 s
//           bit 7     persistence on, with an InMemorySessionStore whose commits complete only when
//                     the clock moves (so output is held meanwhile); at the end a broker restored
//                     from what was committed runs a day
//   then operations until the input ends, each one byte `op` (+ operands):
//     op & 0xC0 == 0x00  client (op & 3) sends the next L bytes as one read: L = ((op >> 2) & 0x0F) + 1,
//                        and when that gives 16, L = 16 + 4 × the next byte (up to 1036)
//     op & 0xC0 == 0x40  the clock moves ((op & 0x1F) + 1) × 250 ms, or × 2 s with bit 5 set
//     op & 0xC0 == 0x80  client (op & 3) drops its connection (a fresh one takes the slot)
//     op & 0xC0 == 0xC0  client (op & 3) stops reading (bit 2 set) or catches up (bit 2 clear)
//   A client slot connects on loop (slot % loops) at its first use.
//
// Invariants checked (a violation traps):
//  1. the engine never crashes, traps or trips a loop-confinement assertion (each virtual loop
//     is "in the event loop" only while it runs), whatever bytes, order, timing or closes;
//  2. every byte the broker sends decodes as well-formed MQTT packets of the client's version
//     (HarnessClient.receivedPackets traps otherwise);
//  3. at the end, with every client gone and the clock moved a day on, no client is counted
//     as connected.

import MidgeBroker
import MQTTCodec
import NIOCore

/// Plays one fuzz input against a fresh engine.
public final class EngineFuzzDriver {
    public let harness: EngineHarness
    var clients: [HarnessClient?] = [nil, nil, nil, nil]
    let store: InMemorySessionStore?
    let configuration: BrokerConfiguration
    let loopCount: Int

    public init(flags: UInt8) {
        var configuration = BrokerConfiguration.defaults
        if flags & 0x04 != 0 { configuration.maxPacketSize = 256 }
        if flags & 0x08 != 0 { configuration.maxQueuedMessages = 4 }
        switch (flags >> 4) & 3 {
        case 1: configuration.maxInflightMessages = 1
        case 2: configuration.maxInflightMessages = 2
        case 3: configuration.maxInflightMessages = 65535
        default: break
        }
        if flags & 0x40 != 0 { configuration.connectTimeout = 0 }
        if flags & 0x80 != 0 { configuration.persistence = true }
        let store = flags & 0x80 != 0 ? InMemorySessionStore(autoCommit: false) : nil
        self.store = store
        self.configuration = configuration
        loopCount = Int(flags & 3) % 3 + 1
        harness = EngineHarness(configuration: configuration, loops: loopCount, store: store)
    }

    func client(_ slot: Int) -> HarnessClient {
        if let client = clients[slot], !client.isClosed { return client }
        if let old = clients[slot] { drain(old) }
        let client = harness.connect(loop: slot)
        clients[slot] = client
        return client
    }

    /// Reads (and so checks) everything a client was sent.
    func drain(_ client: HarnessClient) {
        _ = client.receivedPackets()
    }

    /// Runs the operations of `bytes` (byte 0, the flags, is the initializer's).
    public func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        var index = 1
        func next() -> UInt8? {
            guard index < bytes.count else { return nil }
            defer { index += 1 }
            return bytes[index]
        }
        while let op = next() {
            let slot = Int(op & 3)
            switch op & 0xC0 {
            case 0x00:
                var length = Int((op >> 2) & 0x0F) + 1
                if length == 16, let extra = next() { length = 16 + Int(extra) * 4 }
                let end = min(bytes.count, index + length)
                let chunk = Array(bytes[index..<end])
                index = end
                client(slot).send(chunk)
            case 0x40:
                // Up to 8 s, or up to 64 s: every keep-alive sweep on the way runs (4 a second
                // while a client has a keep alive or awaits its CONNECT), so bigger moves would
                // cost the fuzzer most of its executions; longer waits take several moves.
                let units = Int64(op & 0x1F) + 1
                store?.completePending()
                harness.advance(by: op & 0x20 != 0 ? .seconds(2 * units) : .milliseconds(250 * units))
            case 0x80:
                if let client = clients[slot] { client.dropConnection() }
            default:
                client(slot).setWritable(op & 0x04 == 0)
            }
            for case let client? in clients { drain(client) }
        }
        // Everyone leaves; a day later no one may still count as connected.
        for case let client? in clients {
            client.setWritable(true)
            client.dropConnection()
            drain(client)
        }
        store?.completePending()
        harness.run()
        harness.advance(by: .seconds(86_400))
        precondition(harness.broker.connectedClientCount == 0, "a client still counted as connected after every socket closed")
        harness.shutDown()
        if let store {
            // Restart from what was committed: restoring must work whatever the state.
            store.completePending()
            let restarted = EngineHarness(configuration: configuration, loops: loopCount, store: store.crashed())
            restarted.advance(by: .seconds(86_400 * 2))
            restarted.shutDown()
        }
    }

    /// Runs one whole input (as the fuzz target does).
    public static func run(_ input: [UInt8]) {
        guard let flags = input.first else { return }
        input.withUnsafeBufferPointer { EngineFuzzDriver(flags: flags).run($0) }
    }
}
