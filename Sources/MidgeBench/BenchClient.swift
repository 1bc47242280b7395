import MQTTCodec
import NIOCore

/// What every simulated client of one run shares.
struct ClientSettings {
    let version: ProtocolVersion
    let qos: QoS
    let keepAlive: UInt16
    /// The publisher's own window limit (the broker's Receive Maximum may lower it).
    let inflight: Int
    /// Messages per second per publisher, 0 = unthrottled.
    let rate: Double
    /// Messages per publisher, 0 = unlimited.
    let count: Int
    /// Subscribers size their sequence trackers by this.
    let publisherCount: Int
    /// Persistent sessions: clean session 0 (3.1.1), Clean Start 0 + `sessionExpiry` (v5).
    var persistent = false
    var sessionExpiry: UInt32 = 0

    /// The CONNECT a client with this id sends.
    func connectPacket(clientID: String) -> ConnectPacket {
        var properties = Properties()
        if version == .v5 {
            properties.receiveMaximum = 65535
            if persistent { properties.sessionExpiryInterval = sessionExpiry }
        }
        return ConnectPacket(protocolVersion: version, cleanStart: !persistent, keepAlive: keepAlive, clientID: clientID,
                             properties: properties)
    }
}

/// One simulated MQTT client: a NIO channel handler with a small state machine (CONNECT,
/// SUBSCRIBE, PUBLISH with the QoS 1/2 flows both ways, PINGREQ). Loop-confined.
///
/// Inbound packets are framed by hand: PUBLISH and the acknowledgements (the hot path) are read
/// in place without building packet values; the rare rest goes through `PacketDecoder`.
/// Outbound bytes produced while handling one read (acks, new publishes) are gathered into one
/// buffer and written with one flush when the read completes.
final class BenchClient: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Role {
        case publisher(PublishTemplate)
        case subscriber(filter: String)
        case idle
    }

    enum State { case connecting, subscribing, ready, closing }

    let role: Role
    let clientID: String
    let settings: ClientSettings
    let stats: LoopStats
    /// Completed when the client is connected (and subscribed).
    let ready: EventLoopPromise<Void>
    /// When the connection attempt began (for the connect latency).
    var connectStarted: UInt64 = 0

    private(set) var state = State.connecting
    private var context: ChannelHandlerContext?
    private var inbound: ByteBuffer?
    private var decoder: PacketDecoder
    private var outgoing: ByteBuffer?
    private var pingTask: RepeatedTask?
    private var readyTimeout: Scheduled<Void>?
    private let v5: Bool

    // Publisher state.
    private var template: PublishTemplate?
    private var ids = PacketIDPool()
    /// Messages sent; the next sequence number.
    private(set) var sent = 0
    private var inflightCount = 0
    private var window = 0
    private var publishing = false
    private(set) var finished = false
    private var startNanos: UInt64 = 0
    private var tickTask: RepeatedTask?
    private var stopTask: Scheduled<Void>?
    private var pumpScheduled = false

    // Subscriber state: one tracker per publisher index.
    private(set) var trackers: [SequenceTracker?] = []

    init(role: Role, clientID: String, settings: ClientSettings, stats: LoopStats, ready: EventLoopPromise<Void>) {
        self.role = role
        self.clientID = clientID
        self.settings = settings
        self.stats = stats
        self.ready = ready
        self.decoder = PacketDecoder(protocolVersion: settings.version)
        self.v5 = settings.version == .v5
        switch role {
        case .publisher(let template): self.template = template
        case .subscriber: trackers = Array(repeating: nil, count: settings.publisherCount)
        case .idle: break
        }
    }

    var isPublisher: Bool { template != nil }

    // MARK: Channel events

    /// The client's channel, once added to one.
    private(set) var channel: Channel?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        channel = context.channel
    }

    /// The TCP connection could not be made. On the loop.
    func connectionFailed(_ error: Error) {
        guard state == .connecting else { return }
        state = .closing
        stats.connectFailures += 1
        stats.note(error: "\(clientID): \(error)")
        ready.fail(error)
    }

    func channelActive(context: ChannelHandlerContext) {
        let connect = settings.connectPacket(clientID: clientID)
        let buffer = PacketEncoder.encode(.connect(connect), version: settings.version, allocator: context.channel.allocator)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        readyTimeout = context.eventLoop.scheduleTask(in: .seconds(30)) { [weak self] in
            self?.failSetup("no CONNACK/SUBACK within 30 s")
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        var buffer: ByteBuffer
        if var pending = inbound {
            inbound = nil
            pending.writeBuffer(&incoming)
            buffer = pending
        } else {
            buffer = incoming
        }
        let now = BenchPayload.now()
        while buffer.readableBytes >= 2 {
            let start = buffer.readerIndex
            let first: UInt8 = buffer.getInteger(at: start)!
            var remaining = 0, multiplier = 1, offset = start + 1, complete = false
            while offset - start <= 4, let byte: UInt8 = buffer.getInteger(at: offset) {
                offset += 1
                remaining += Int(byte & 0x7F) * multiplier
                multiplier *= 128
                if byte & 0x80 == 0 { complete = true; break }
            }
            if !complete {
                if offset - start > 4 { protocolFailure("malformed remaining length"); return }
                break
            }
            guard buffer.readableBytes >= offset - start + remaining else { break }
            handlePacket(first: first, body: offset, length: remaining, in: buffer, now: now)
            buffer.moveReaderIndex(to: offset + remaining)
        }
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            inbound = buffer
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if publishing { pump() }
        flushOutgoing()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && publishing {
            pump()
            flushOutgoing()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimers()
        if state != .closing {
            stats.unexpectedCloses += 1
            stats.note(error: "\(clientID): connection closed by the broker")
        }
        if state == .connecting || state == .subscribing {
            stats.connectFailures += 1
            stats.note(error: "\(clientID): connection closed during setup")
            ready.fail(BenchError.connectFailed("\(clientID): connection closed during setup"))
        }
        state = .closing
        publishing = false
        markFinished()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        stats.note(error: "\(clientID): \(error)")
        context.close(promise: nil)
    }

    // MARK: Inbound packets

    @inline(__always)
    private func handlePacket(first: UInt8, body: Int, length: Int, in buffer: ByteBuffer, now: UInt64) {
        switch first >> 4 {
        case 3: handlePublish(first: first, body: body, length: length, in: buffer, now: now)
        case 4: // PUBACK
            let id: UInt16 = buffer.getInteger(at: body) ?? 0
            let reason: UInt8 = length > 2 ? buffer.getInteger(at: body + 2)! : 0
            completePublish(id, failed: reason >= 0x80)
        case 5: // PUBREC
            let id: UInt16 = buffer.getInteger(at: body) ?? 0
            let reason: UInt8 = length > 2 ? buffer.getInteger(at: body + 2)! : 0
            if reason >= 0x80 {
                completePublish(id, failed: true)
            } else {
                if !ids.contains(id) { stats.unexpectedAcks += 1 }
                appendAck(0x62, id)
            }
        case 6: // PUBREL
            appendAck(0x70, buffer.getInteger(at: body) ?? 0)
        case 7: // PUBCOMP
            completePublish(buffer.getInteger(at: body) ?? 0, failed: false)
        case 13: // PINGRESP
            break
        default:
            guard var slice = buffer.getSlice(at: body, length: length) else { return }
            do {
                handleControl(try decoder.decodePacket(first: first, body: &slice), now: now)
            } catch {
                protocolFailure("undecodable packet: \(error)")
            }
        }
    }

    @inline(__always)
    private func handlePublish(first: UInt8, body: Int, length: Int, in buffer: ByteBuffer, now: UInt64) {
        let qos = (first >> 1) & 0x03
        var index = body
        let topicLength: UInt16 = buffer.getInteger(at: index) ?? 0
        index += 2 + Int(topicLength)
        var id: UInt16 = 0
        if qos > 0 {
            id = buffer.getInteger(at: index) ?? 0
            index += 2
        }
        if v5 {
            var propertiesLength = 0, multiplier = 1
            while let byte: UInt8 = buffer.getInteger(at: index) {
                index += 1
                propertiesLength += Int(byte & 0x7F) * multiplier
                multiplier *= 128
                if byte & 0x80 == 0 { break }
            }
            index += propertiesLength
        }
        stats.received += 1
        stats.lastReceive = now
        if body + length - index >= BenchPayload.headerSize,
           let timestamp: UInt64 = buffer.getInteger(at: index),
           let publisher: UInt32 = buffer.getInteger(at: index + 8),
           let sequence: UInt32 = buffer.getInteger(at: index + 12),
           Int(publisher) < trackers.count {
            _ = stats.latency.record(now >= timestamp ? (now - timestamp) / 1000 : 0)
            if let tracker = trackers[Int(publisher)] {
                tracker.record(sequence)
            } else {
                let tracker = SequenceTracker()
                tracker.record(sequence)
                trackers[Int(publisher)] = tracker
            }
        } else {
            stats.foreign += 1
        }
        if qos == 1 { appendAck(0x40, id) } else if qos == 2 { appendAck(0x50, id) }
    }

    private func handleControl(_ packet: MQTTPacket, now: UInt64) {
        switch packet {
        case .connack(let connack):
            guard state == .connecting else { return protocolFailure("unexpected CONNACK") }
            guard connack.reasonCode == .success else {
                return failSetup("CONNACK refused the connection (reason \(connack.reasonCode.rawValue))")
            }
            window = min(settings.inflight, Int(connack.properties.receiveMaximum ?? 65535))
            if case .subscriber(let filter) = role {
                state = .subscribing
                let subscribe = SubscribePacket(packetID: 1, subscriptions: [TopicSubscription(filter: filter, options: .init(qos: settings.qos))])
                guard let context else { return }
                context.writeAndFlush(wrapOutboundOut(PacketEncoder.encode(.subscribe(subscribe), version: settings.version,
                                                                           allocator: context.channel.allocator)), promise: nil)
            } else {
                becomeReady(now: now)
            }
        case .suback(let suback):
            guard state == .subscribing else { return }
            if let code = suback.reasonCodes.first, code.rawValue < 0x80 {
                becomeReady(now: now)
            } else {
                failSetup("SUBACK refused the subscription (\(suback.reasonCodes.map { $0.rawValue }))")
            }
        case .disconnect(let disconnect):
            stats.note(error: "\(clientID): broker sent DISCONNECT (reason 0x\(String(disconnect.reasonCode.rawValue, radix: 16)))")
        default:
            break
        }
    }

    private func becomeReady(now: UInt64) {
        state = .ready
        readyTimeout?.cancel()
        readyTimeout = nil
        stats.connected += 1
        _ = stats.connectLatency.record(now >= connectStarted ? (now - connectStarted) / 1000 : 0)
        if settings.keepAlive > 0, let context {
            let interval = TimeAmount.seconds(Int64(settings.keepAlive))
            pingTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
                guard let self, let context = self.context, self.state == .ready else { return }
                var buffer = context.channel.allocator.buffer(capacity: 2)
                buffer.writeInteger(UInt16(0xC000))
                context.writeAndFlush(self.wrapOutboundOut(buffer), promise: nil)
            }
        }
        ready.succeed(())
    }

    private func failSetup(_ message: String) {
        guard state == .connecting || state == .subscribing else { return }
        stats.connectFailures += 1
        stats.note(error: "\(clientID): \(message)")
        ready.fail(BenchError.refused(message))
        state = .closing
        context?.close(promise: nil)
    }

    private func protocolFailure(_ message: String) {
        stats.note(error: "\(clientID): \(message)")
        if state == .connecting || state == .subscribing { failSetup(message) } else { context?.close(promise: nil) }
    }

    @inline(__always)
    private func appendAck(_ first: UInt8, _ id: UInt16) {
        if outgoing == nil, let context { outgoing = context.channel.allocator.buffer(capacity: 256) }
        outgoing!.writeInteger(first)
        outgoing!.writeInteger(UInt8(2))
        outgoing!.writeInteger(id)
    }

    private func flushOutgoing() {
        guard let buffer = outgoing, let context else { return }
        outgoing = nil
        if buffer.readableBytes > 0 { context.writeAndFlush(wrapOutboundOut(buffer), promise: nil) }
    }

    // MARK: Publishing

    @inline(__always)
    private func completePublish(_ id: UInt16, failed: Bool) {
        guard ids.release(id) else {
            stats.unexpectedAcks += 1
            return
        }
        inflightCount -= 1
        if failed { stats.publishErrors += 1 } else { stats.acked += 1 }
        if !publishing { markFinished() }
    }

    /// Starts publishing at `start` (monotonic ns) until `stop` (if given) or the message count.
    func start(at start: UInt64, stop: UInt64?) {
        guard isPublisher, state == .ready, let context else { return markFinished() }
        startNanos = start
        let loop = context.eventLoop
        if let stop {
            stopTask = loop.scheduleTask(deadline: .uptimeNanoseconds(stop)) { [weak self] in self?.stopPublishing() }
        }
        let begin = NIODeadline.uptimeNanoseconds(start)
        if settings.rate > 0 {
            // One tick per message at low rates, at most 200 ticks a second at high ones; every
            // tick sends what is due since the start, so a late tick catches up.
            let interval = max(5_000_000, min(1_000_000_000, Int64(1e9 / settings.rate)))
            let stagger = Int64.random(in: 0..<interval)
            let delay = begin - .now() + .nanoseconds(stagger)
            publishing = true
            tickTask = loop.scheduleRepeatedTask(initialDelay: max(delay, .zero), delay: .nanoseconds(interval)) { [weak self] _ in
                guard let self else { return }
                self.pump()
                self.flushOutgoing()
            }
        } else {
            loop.scheduleTask(deadline: begin) { [weak self] in
                guard let self, self.state == .ready else { return }
                self.publishing = true
                self.pump()
                self.flushOutgoing()
            }
        }
    }

    /// Writes the messages due now into `outgoing` (the caller flushes).
    private func pump() {
        guard publishing, let context, let template, context.channel.isWritable else { return }
        var budget = settings.count > 0 ? settings.count - sent : Int.max
        if settings.qos != .atMostOnce { budget = min(budget, window - inflightCount) }
        let now = BenchPayload.now()
        if settings.rate > 0 {
            let due = now > startNanos ? Int(Double(now - startNanos) * settings.rate / 1e9) + 1 : 0
            budget = min(budget, due - sent)
        } else {
            budget = min(budget, 256)
        }
        if budget > 0 {
            if outgoing == nil { outgoing = context.channel.allocator.buffer(capacity: budget * template.packetSize + 64) }
            let hasID = settings.qos != .atMostOnce
            for _ in 0..<budget {
                let id = hasID ? ids.allocate() : 0
                template.write(sequence: UInt32(truncatingIfNeeded: sent), timestamp: now, packetID: id, into: &outgoing!)
                sent += 1
            }
            if hasID { inflightCount += budget }
            stats.sent += budget
            stats.lastSend = now
        }
        if settings.count > 0 && sent >= settings.count {
            stopPublishing()
        } else if settings.rate == 0 && settings.qos == .atMostOnce && budget > 0 && !pumpScheduled {
            // Unthrottled QoS 0 has no acknowledgements to clock it: go on at the next turn of
            // the loop (after other channels' work) while the socket stays writable.
            pumpScheduled = true
            context.eventLoop.execute { [weak self] in
                guard let self else { return }
                self.pumpScheduled = false
                self.pump()
                self.flushOutgoing()
            }
        }
    }

    private func stopPublishing() {
        guard publishing || tickTask != nil else { return markFinished() }
        publishing = false
        tickTask?.cancel()
        tickTask = nil
        stopTask?.cancel()
        stopTask = nil
        markFinished()
    }

    /// A publisher is finished when it stopped sending and nothing it sent is unacknowledged.
    private func markFinished() {
        guard isPublisher, !finished, !publishing, settings.qos == .atMostOnce || inflightCount == 0 || state == .closing else { return }
        finished = true
        stats.publishersFinished += 1
    }

    // MARK: Closing

    private func cancelTimers() {
        pingTask?.cancel(); pingTask = nil
        tickTask?.cancel(); tickTask = nil
        stopTask?.cancel(); stopTask = nil
        readyTimeout?.cancel(); readyTimeout = nil
    }

    /// Sends DISCONNECT and closes. On the loop.
    func disconnect() {
        guard state != .closing, let context else { return }
        state = .closing
        publishing = false
        cancelTimers()
        flushOutgoing()
        var buffer = context.channel.allocator.buffer(capacity: 2)
        buffer.writeInteger(UInt16(0xE000))
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        context.close(promise: nil)
    }
}
