import MQTTCodec
import NIOCore

/// The MQTT protocol state machine of one network connection: decodes bytes, enforces the
/// spec's rules, drives the session, writes responses. Lives on its transport's event loop.
///
/// Its state is confined to that loop, so its stored properties opt out of Swift's dynamic
/// exclusivity checks (`@exclusivity(unchecked)`, a runtime call per access on the hot path).
public final class ClientConnection {
    enum State { case awaitingConnect, attaching, connected, closed }

    // The stored properties are ordered by size so that an idle connection stays small (Swift
    // lays them out in declaration order); narrow integers keep values that fit them.
    let transport: ConnectionTransport
    let policy: ListenerPolicy
    let context: LoopContext
    var broker: Broker { context.broker }
    var log: BrokerLog { broker.log }
    var configuration: BrokerConfiguration { broker.configuration }

    @exclusivity(unchecked) var stream: PacketStreamDecoder
    @exclusivity(unchecked) var state: State = .awaitingConnect
    @exclusivity(unchecked) var needsFlush = false
    @exclusivity(unchecked) var version: ProtocolVersion = .v3_1_1
    @exclusivity(unchecked) var cleanStart = true
    @exclusivity(unchecked) var receivedDisconnect = false
    /// This client's last published topic and its matches (made at its first PUBLISH).
    @exclusivity(unchecked) var routeMemo: RouteMemo?

    // Set by CONNECT.
    @exclusivity(unchecked) public internal(set) var clientID = ""
    @exclusivity(unchecked) var username: String?
    @exclusivity(unchecked) var session: Session?
    @exclusivity(unchecked) var pendingPackets: [MQTTPacket] = []
    @exclusivity(unchecked) var will: Message?
    /// v5 topic aliases both ways (made at the first alias: most clients use none).
    @exclusivity(unchecked) var aliases: TopicAliasTables?
    @exclusivity(unchecked) private(set) var lastActivity = NIODeadline.uptimeNanoseconds(0)
    /// Outbound QoS 1/2 window: the client's Receive Maximum (v5) or max_inflight_messages (v3).
    @exclusivity(unchecked) private var outboundWindowStorage: Int32 = 65535
    /// The client's Maximum Packet Size (v5); UInt32.max = unlimited.
    @exclusivity(unchecked) private var clientMaximumPacketSizeStorage: UInt32 = .max
    /// Milliseconds. Until CONNECT: `connect_timeout`; then 1.5 × Keep Alive (at most ~98 000 000);
    /// 0 when the client has none. Watched by the loop's `KeepAliveMonitor`.
    @exclusivity(unchecked) private var keepAliveTimeoutMilliseconds: UInt32 = 0
    @exclusivity(unchecked) var willDelay: UInt32 = 0
    @exclusivity(unchecked) var connectSessionExpiry: UInt32 = 0
    /// This connection's index in its loop's `KeepAliveMonitor` (-1 when not watched).
    @exclusivity(unchecked) var keepAliveSlot: Int32 = -1
    @exclusivity(unchecked) var keepAlive: UInt16 = 0
    /// The client's Topic Alias Maximum (v5): how many aliases we may use towards it.
    @exclusivity(unchecked) var clientTopicAliasMaximum: UInt16 = 0
    /// v5: the client id was assigned by us / the keep alive lowered to max_keepalive
    /// (both go into CONNACK, built at attach).
    @exclusivity(unchecked) var clientIDAssigned = false
    @exclusivity(unchecked) var keepAliveLowered = false
    /// Output waiting for this loop's store batches to commit (persistence on; see `GroupCommit`).
    @exclusivity(unchecked) var heldOutput: HeldOutput?

    var outboundWindow: Int {
        get { Int(outboundWindowStorage) }
        set { outboundWindowStorage = Int32(clamping: newValue) }
    }

    var clientMaximumPacketSize: Int {
        get { clientMaximumPacketSizeStorage == .max ? .max : Int(clientMaximumPacketSizeStorage) }
        set { clientMaximumPacketSizeStorage = UInt32(clamping: newValue) }
    }

    private(set) var keepAliveTimeout: TimeAmount? {
        get { keepAliveTimeoutMilliseconds == 0 ? nil : .milliseconds(Int64(keepAliveTimeoutMilliseconds)) }
        set { keepAliveTimeoutMilliseconds = UInt32(clamping: (newValue?.nanoseconds ?? 0) / 1_000_000) }
    }

    var aliasTables: TopicAliasTables {
        if let aliases { return aliases }
        let tables = TopicAliasTables()
        aliases = tables
        return tables
    }

    var isAttached: Bool { state == .connected }

    init(broker: Broker, transport: ConnectionTransport, policy: ListenerPolicy, context: LoopContext) {
        self.transport = transport
        self.policy = policy
        self.context = context
        let limit = broker.configuration.maxPacketSize
        self.stream = PacketStreamDecoder(PacketDecoder(maximumPacketSize: limit > 0 ? limit : .max, limitsTopicLevels: true))
    }

    /// The protocol version the broker writes to this client in: the accepted CONNECT's; before
    /// that, the level the decoder read from a CONNECT being refused, else 3.1.1. On the loop.
    public var protocolVersion: ProtocolVersion {
        session == nil ? (stream.decoder.protocolVersion ?? version) : version
    }

    /// The name Mosquitto's log lines use before the client id is known.
    var logName: String { clientID.isEmpty ? "<unknown>" : clientID }

    // MARK: Input

    /// Bytes from the network. Decodes and handles every complete packet.
    public func receive(_ bytes: ByteBuffer) {
        context.assertOnLoop()
        guard state != .closed else { return }
        // Only a complete Control Packet is activity for Keep Alive [MQTT-3.1.2-22]
        // [3.1.1:MQTT-3.1.2-24]; the bytes of an unfinished one are not (as in Mosquitto). One
        // clock read per network read that completes a packet.
        var sawPacket = false
        do {
            try stream.decode(bytes) { packet in
                if !sawPacket { sawPacket = true; lastActivity = context.eventLoop.now }
                handle(packet)
                return state != .closed
            }
        } catch let error as MQTTCodecError {
            decodeFailed(error)
        } catch {
            close(reason: .unspecifiedError, log: "Client \(logName) disconnected due to an internal error.")
        }
    }

    /// A network read starts (the transport then calls `readComplete` when it is done): what it
    /// writes back to this connection is flushed at `readComplete`, without a flush task.
    public func readStarted() { context.beginRead(self) }

    /// The read that `readStarted` began is complete, or failed.
    public func readComplete() { context.endRead(self) }

    /// The network connection closed (by the peer, an error, or us).
    public func transportClosed() {
        context.assertOnLoop()
        guard state != .closed else { return }
        // Every connection and disconnection line is a `connection_messages` line, as in Mosquitto.
        if configuration.connectionMessages {
            let disconnected = receivedDisconnect && (state == .connected || state == .attaching)
            log.notice(disconnected ? "Client \(logName) disconnected." : "Client \(logName) closed its connection.")
        }
        // What waited for the store can no longer be written.
        heldOutput = nil
        // Losing the connection without DISCONNECT publishes the will [MQTT-3.1.2-8].
        finish(publishWill: !receivedDisconnect)
    }

    func handle(_ packet: MQTTPacket) {
        switch state {
        case .awaitingConnect:
            guard case .connect(let connect) = packet else {
                // The first packet must be CONNECT [MQTT-3.1.0-1].
                close(reason: .protocolError, log: "Client \(logName) disconnected due to protocol error (first packet not CONNECT).", sendDisconnect: false)
                return
            }
            handleConnect(connect)
        case .attaching:
            pendingPackets.append(packet)
        case .connected:
            handleConnected(packet)
        case .closed:
            break
        }
    }

    private func handleConnected(_ packet: MQTTPacket) {
        switch packet {
        case .publish(let publish): handlePublish(publish)
        case .puback(let ack): handlePubAck(ack)
        case .pubrec(let ack): handlePubRec(ack)
        case .pubrel(let ack): handlePubRel(ack)
        case .pubcomp(let ack): handlePubComp(ack)
        case .subscribe(let subscribe): handleSubscribe(subscribe)
        case .unsubscribe(let unsubscribe): handleUnsubscribe(unsubscribe)
        case .pingreq:
            log.debug("Received PINGREQ from \(clientID)")
            log.debug("Sending PINGRESP to \(clientID)")
            send(.pingresp)
        case .disconnect(let disconnect): handleDisconnect(disconnect)
        case .connect:
            // A second CONNECT is a Protocol Error [MQTT-3.1.0-2]: closed without DISCONNECT, as
            // Mosquitto does (01-connect-duplicate).
            protocolError("second CONNECT", sendDisconnect: false)
        case .auth:
            // No Authentication Method was given in CONNECT, so AUTH is a Protocol Error (spec 4.12).
            protocolError("AUTH without an authentication method", sendDisconnect: false)
        case .connack, .suback, .unsuback, .pingresp:
            protocolError("\(packet.type) sent by a client", sendDisconnect: false)
        }
    }

    private func decodeFailed(_ error: MQTTCodecError) {
        let what = error.reasonCode == .malformedPacket ? "malformed packet" : "protocol error"
        if state == .awaitingConnect {
            // A bad CONNECT: an unknown protocol level gets the 3.1.1 answer 0x01 [MQTT-3.1.2-2];
            // anything else is closed without CONNACK, as Mosquitto does ([3.1.1:MQTT-3.1.4-1];
            // v5 only allows a CONNACK here, spec 4.13.1).
            if error.reasonCode == .unsupportedProtocolVersion {
                var buffer = transport.allocator.buffer(capacity: 4)
                PacketEncoder.encode(.connack(ConnAckPacket(reasonCode: .unsupportedProtocolVersion)), version: .v3_1_1, into: &buffer)
                transport.write(buffer)
            }
            close(reason: error.reasonCode, log: "Client \(logName) disconnected due to \(what) (\(error.detail)).", sendDisconnect: false)
            return
        }
        // v5 DISCONNECT where Mosquitto sends one: a packet over the maximum size, and errors in
        // PUBLISH, SUBSCRIBE, UNSUBSCRIBE or a reserved packet type; an error in any other
        // packet just closes (the DISCONNECT is a SHOULD, spec 4.13.1).
        let disconnects: Bool
        var reason = error.reasonCode
        switch error.packetType {
        case .subscribe?, .unsubscribe?:
            // Mosquitto calls every error in these Malformed Packet (e.g. packet identifier 0,
            // Retain Handling 3: 13-malformed-subscribe-v5), where the spec names some a Protocol
            // Error; the DISCONNECT's reason code is a SHOULD (spec 4.13.1).
            disconnects = true
            if reason == .protocolError { reason = .malformedPacket }
        case .publish?:
            // A wildcard in a PUBLISH topic: Mosquitto answers Protocol Error, not 0x90 Topic Name
            // invalid (13-malformed-publish-v5 "Bad topic"); the reason code is a SHOULD.
            disconnects = true
            if reason == .topicNameInvalid { reason = .protocolError }
        case nil: disconnects = true
        default: disconnects = reason == .packetTooLarge
        }
        close(reason: reason, log: "Client \(logName) disconnected due to \(what) (\(error.detail)).", sendDisconnect: disconnects)
    }

    func protocolError(_ detail: String, reason: ReasonCode = .protocolError, sendDisconnect: Bool = true) {
        close(reason: reason, log: "Client \(logName) disconnected due to protocol error (\(detail)).", sendDisconnect: sendDisconnect)
    }

    // MARK: Output

    func send(_ packet: MQTTPacket) {
        guard state != .closed else { return }
        var buffer = transport.allocator.buffer(capacity: 16)
        PacketEncoder.encode(packet, version: version, into: &buffer)
        write(buffer)
    }

    /// Sends an acknowledgement, dropping the reason string and user properties first if that
    /// keeps it within the client's Maximum Packet Size ([MQTT-3.4.2-2] [MQTT-3.4.2-3] and the same
    /// rules for CONNACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK).
    func sendAck(_ packet: MQTTPacket) {
        guard state != .closed else { return }
        var buffer = transport.allocator.buffer(capacity: 16)
        PacketEncoder.encode(packet, version: version, into: &buffer)
        if buffer.readableBytes > clientMaximumPacketSize {
            buffer.clear()
            PacketEncoder.encode(Self.strippingProperties(packet), version: version, into: &buffer)
        }
        write(buffer)
    }

    /// PUBACK (0x40), PUBREC (0x50), PUBREL (0x62) or PUBCOMP (0x70) without properties, as the
    /// broker sends them: four or five bytes, without building an `MQTTPacket`.
    func sendFlowAck(_ first: UInt8, packetID: UInt16, reason: ReasonCode = .success) {
        guard state != .closed else { return }
        var buffer = transport.allocator.buffer(capacity: 5)
        PacketEncoder.encodeAck(first, packetID: packetID, reason: reason, v5: version == .v5, into: &buffer)
        write(buffer)
    }

    private static func strippingProperties(_ packet: MQTTPacket) -> MQTTPacket {
        switch packet {
        case .puback(var ack): ack.properties = .none; return .puback(ack)
        case .pubrec(var ack): ack.properties = .none; return .pubrec(ack)
        case .pubrel(var ack): ack.properties = .none; return .pubrel(ack)
        case .pubcomp(var ack): ack.properties = .none; return .pubcomp(ack)
        case .suback(var ack): ack.properties = .none; return .suback(ack)
        case .unsuback(var ack): ack.properties = .none; return .unsuback(ack)
        case .connack(var ack): ack.properties.reasonString = nil; ack.properties.userProperties = []; return .connack(ack)
        case .disconnect(var packet): packet.properties = .none; return .disconnect(packet)
        default: return packet
        }
    }

    @inline(__always)
    func write(_ buffer: ByteBuffer) {
        if context.persists, let groupCommit = context.groupCommit, groupCommit.isHolding {
            groupCommit.hold(buffer, for: self)
            return
        }
        transport.write(buffer)
        context.markDirty(self)
    }

    /// Writes the held output of batches up to `batch` (they are durable). Returns true when
    /// nothing is held any more.
    func releaseHeldOutput(upTo batch: UInt64) -> Bool {
        guard let held = heldOutput else { return true }
        var index = 0
        while index < held.entries.count && held.entries[index].batch <= batch {
            transport.write(held.entries[index].buffer)
            index += 1
        }
        if index > 0 { context.markDirty(self) }
        if index < held.entries.count {
            held.entries.removeFirst(index)
            return false
        }
        heldOutput = nil
        if held.closeWhenWritten { transport.close() }
        return true
    }

    /// Flushes and closes the transport, after the output still held for the store (if any).
    func closeTransport() {
        if let heldOutput {
            heldOutput.closeWhenWritten = true
        } else {
            transport.close()
        }
    }

    /// Payloads up to this size are copied behind the PUBLISH header into one buffer (cheaper
    /// than a second write through the pipeline and a second iovec); larger ones are written as
    /// the shared slice, without a copy.
    static let inlinePayloadLimit = 512

    /// Writes one PUBLISH for `delivery`. Returns false when it was not sent: expired, or larger
    /// than the client's Maximum Packet Size (then dropped for this client [MQTT-3.1.2-25]).
    @discardableResult
    func sendPublish(_ delivery: Delivery, packetID: UInt16, dup: Bool, applyExpiry: Bool = true) -> Bool {
        guard state == .connected else { return false }
        var message = delivery.message
        if let mount = policy.mountPoint {
            // mount_point: the prefix comes off; a topic that is only the prefix (or outside it)
            // is not sent, as in Mosquitto.
            guard let unmounted = message.unmounted(mount) else { return false }
            message = unmounted
        }
        var size = 0
        var payloadIncluded = false
        var alias: (alias: UInt16, sendTopic: Bool)?
        if clientTopicAliasMaximum > 0 {
            let assigned = aliases?.outbound.count ?? 0
            if let known = aliases?.outbound[ExactText(message.topic)] {
                alias = (known, false)
            } else if assigned < Int(clientTopicAliasMaximum) {
                alias = (UInt16(assigned + 1), true)
            }
        }
        guard let header = message.header(version: version, qos: delivery.qos, retain: delivery.retain, dup: dup,
                                          packetID: packetID, subscriptionIDs: version == .v5 ? delivery.subscriptionIDs : [],
                                          topicAlias: alias, applyExpiry: applyExpiry,
                                          now: message.expiresAt == nil ? .uptimeNanoseconds(0) : context.eventLoop.now, allocator: transport.allocator,
                                          packetSize: &size, inlinePayloadUpTo: Self.inlinePayloadLimit,
                                          payloadIncluded: &payloadIncluded) else {
            return false
        }
        if size > clientMaximumPacketSize {
            log.debug("Dropped too large PUBLISH for \(clientID) (\(size) bytes).")
            return false
        }
        if log.isEnabled(.debug) {
            log.debug("Sending PUBLISH to \(clientID) (d\(dup ? 1 : 0), q\(delivery.qos.rawValue), r\(delivery.retain ? 1 : 0), m\(packetID), '\(message.topic)', ... (\(message.payload.readableBytes) bytes))")
        }
        if let alias, alias.sendTopic { aliasTables.outbound[ExactText(message.topic)] = alias.alias }
        if context.persists, let groupCommit = context.groupCommit, groupCommit.isHolding {
            groupCommit.hold(header, for: self)
            if !payloadIncluded && message.payload.readableBytes > 0 { groupCommit.hold(message.payload, for: self) }
            return true
        }
        transport.write(header)
        if !payloadIncluded && message.payload.readableBytes > 0 { transport.write(message.payload) }
        context.markDirty(self)
        return true
    }

    /// Closes the connection: v5 clients first get a DISCONNECT with `reason` when it is an error
    /// (spec 4.13), without a Reason String (Mosquitto sends none: the reason is in the broker's
    /// log line); the will is published (the client did not DISCONNECT normally).
    func close(reason: ReasonCode, log line: String, sendDisconnect: Bool = true) {
        guard state != .closed else { return }
        if configuration.connectionMessages { log.notice(line) }
        if sendDisconnect && version == .v5 && state == .connected && reason.rawValue >= 0x80 {
            send(.disconnect(DisconnectPacket(reasonCode: reason)))
        }
        finish(publishWill: true)
        closeTransport()
    }

    /// Releases the session (will, expiry) exactly once. On this connection's loop. With
    /// `sessionContinues` (takeover by a new connection) the session is neither ended nor timed.
    func finish(publishWill: Bool, sessionContinues: Bool = false) {
        guard state != .closed else { return }
        let wasAttached = state == .connected
        state = .closed
        context.keepAlive.unwatch(self)
        // No stream.reset() here: this can run inside stream.decode's callback (a DISCONNECT);
        // receive() stops decoding once the state is closed, and the bytes go with the connection.
        guard wasAttached, let session else { return }
        broker.noteConnected(-1)
        guard session.connection === self else { return }
        session.connection = nil
        var will = publishWill ? self.will : nil
        if let pending = will, !session.allows(.write, pending.topic) {
            log.notice("Denied will of \(clientID) on '\(pending.topic)' (ACL).")
            will = nil
        }
        self.will = nil
        broker.sessionDisconnected(session, will: will, willDelay: willDelay, sessionContinues: sessionContinues)
        context.flushDirty()
    }

    /// Another connection took this client id over [MQTT-3.1.4-3]. On this connection's loop.
    /// `publishWill`: whether a v5 will goes out (Mosquitto: only when the session ends with the
    /// takeover). A 3.1/3.1.1 will always does: its connection closes without DISCONNECT
    /// [3.1.1:MQTT-3.1.2-8] (Mosquitto drops it when both sessions persist).
    func takenOver(publishWill: Bool = true) {
        context.assertOnLoop()
        guard state != .closed else { return }
        // What the client sent on this connection before it opened the new one (a PUBLISH just
        // before it closed, say) is handled first, as Mosquitto's single thread would have read
        // it: routed before the takeover completes. If the client closed meanwhile, that close
        // ends this connection the ordinary way and there is nothing left to take over.
        transport.readPending()
        guard state != .closed else { return }
        if configuration.connectionMessages { log.notice("Client \(clientID) already connected, closing old connection.") }
        if version == .v5 && state == .connected {
            send(.disconnect(DisconnectPacket(reasonCode: .sessionTakenOver)))
        }
        finish(publishWill: publishWill || version != .v5, sessionContinues: true)
        closeTransport()
    }

    /// The peer caught up: send what waited in the session queue.
    public func transportBecameWritable() {
        context.assertOnLoop()
        guard state == .connected, let session else { return }
        session.pump()
    }

    // MARK: Keep alive

    /// Closes the connection when no packet arrives within 1.5 × Keep Alive [MQTT-3.1.2-22] [3.1.1:MQTT-3.1.2-24].
    /// The loop's `KeepAliveMonitor` checks `keepAliveExpired(at:)` a few times a second.
    func startKeepAlive(_ seconds: UInt16) {
        guard seconds > 0 else {
            keepAliveTimeout = nil
            context.keepAlive.unwatch(self)
            return
        }
        keepAliveTimeout = .milliseconds(Int64(seconds) * 1500)
        context.keepAlive.watch(self)
    }

    /// A connection that has not sent CONNECT within `seconds` of opening (a stalled TLS handshake,
    /// an idle or slow-dripping socket) is closed, so idle sockets cannot pile up; 0 = no limit.
    func startConnectTimer(seconds: Int) {
        lastActivity = context.eventLoop.now
        guard seconds > 0 else { return }
        keepAliveTimeout = .seconds(Int64(seconds))
        context.keepAlive.watch(self)
    }

    /// When this connection's Keep Alive (or connect timeout) runs out, if it has one.
    var keepAliveDeadline: NIODeadline? {
        guard let timeout = keepAliveTimeout, state != .closed else { return nil }
        return lastActivity + timeout
    }

    func keepAliveExpired(at now: NIODeadline) -> Bool {
        guard let timeout = keepAliveTimeout, state != .closed else { return false }
        return lastActivity + timeout <= now
    }

    func keepAliveTimedOut() {
        guard state != .closed else { return }
        guard state == .connected else {
            // No CONNECT (or its attach) in time: nothing may be sent before CONNACK.
            log.notice("Client connection from \(transport.remoteAddress) sent no CONNECT within connect_timeout, disconnecting.")
            finish(publishWill: false)
            transport.abort()
            return
        }
        close(reason: .keepAliveTimeout, log: "Client \(logName) has exceeded timeout, disconnecting.")
    }
}

/// A v5 connection's topic aliases: the client's (alias → topic) and ours
/// (topic → alias; they last as long as the connection [MQTT-3.3.2-7]).
final class TopicAliasTables {
    @exclusivity(unchecked) var inbound: [UInt16: String] = [:]
    @exclusivity(unchecked) var outbound: [ExactText: UInt16] = [:]
}
