import DequeModule
import MQTTCodec
import NIOCore
import NIOPosix
import OrderedCollections

/// An MQTT 3.1.1 / 5.0 client with async/await.
///
/// ```swift
/// let client = MQTTClient(configuration: .init(host: "localhost", version: .v5, clientID: "sensor-1"))
/// try await client.connect()
/// try await client.subscribe(to: "sensors/+/temperature", qos: .atLeastOnce)
/// try await client.publish("sensors/1/temperature", payload: "21.5", qos: .atLeastOnce)
/// for try await message in client.messages {
///     print(message.topic, message.payloadString)
/// }
/// ```
///
/// One client is one logical session: after `disconnect()` its `messages` sequence ends; make a
/// new client to connect again. All state lives on one event loop, so the client is safe to use
/// from any task.
public final class MQTTClient: @unchecked Sendable {
    public let configuration: Configuration
    public let eventLoop: EventLoop
    private let group: EventLoopGroup?

    /// Messages from the broker, in arrival order. Ends when the client disconnects, or throws
    /// when the connection is lost and no reconnection is configured (or it gave up).
    public let messages: AsyncThrowingStream<MQTTMessage, Error>
    private let messageSink: AsyncThrowingStream<MQTTMessage, Error>.Continuation

    // Everything below: only on `eventLoop`.
    private enum State { case idle, connecting, connected, reconnecting, closed }
    private var state: State = .idle
    private var channel: Channel?
    private var connectPromise: EventLoopPromise<ConnectResult>?
    private var connackTimeout: Scheduled<Void>?
    private var nextPacketID: UInt16 = 1
    private struct Outbound {
        enum Stage { case awaitingPubAck, awaitingPubRec, awaitingPubComp }
        var packet: PublishPacket
        var stage: Stage
        let promise: EventLoopPromise<PublishResult>
    }
    private var inflight: OrderedDictionary<UInt16, Outbound> = [:]
    private var waiting: Deque<(PublishPacket, EventLoopPromise<PublishResult>)> = []
    private var pendingAcks: [UInt16: (promise: EventLoopPromise<MQTTPacket>, timeout: Scheduled<Void>)] = [:]
    private var inboundQoS2: Set<UInt16> = []
    private var serverReceiveMaximum = 65535
    private var serverTopicAliasMaximum: UInt16 = 0
    private var outboundAliases: [String: UInt16] = [:]
    private var inboundAliases: [UInt16: String] = [:]
    private var keepAliveTask: RepeatedTask?
    private var lastSent = NIODeadline.now()
    private var pingOutstanding = false
    private var closeReason: ReasonCode?
    private var clientIDInUse: String
    private var sessionStarted = false
    private var reconnectAttempt = 0

    /// - Parameter eventLoopGroup: where the connection runs; by default a private one-thread group.
    public init(configuration: Configuration, eventLoopGroup: EventLoopGroup? = nil) {
        self.configuration = configuration
        if let eventLoopGroup {
            self.group = nil
            self.eventLoop = eventLoopGroup.next()
        } else {
            let own = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            self.group = own
            self.eventLoop = own.next()
        }
        self.clientIDInUse = configuration.clientID
        (messages, messageSink) = AsyncThrowingStream.makeStream(of: MQTTMessage.self, throwing: Error.self)
    }

    deinit {
        messageSink.finish()
        if let group { group.shutdownGracefully { _ in } }
    }

    /// The client id in use (the broker's Assigned Client Identifier when it gave one).
    public var clientID: String {
        get async { (try? await eventLoop.submit { self.clientIDInUse }.get()) ?? configuration.clientID }
    }

    // MARK: Public API

    /// Opens the connection and completes CONNECT/CONNACK.
    /// - Throws: `MQTTClientError.connectionRefused` with the broker's reason, `.unreachable`, `.timeout`.
    @discardableResult
    public func connect() async throws -> ConnectResult {
        try await eventLoop.flatSubmit { () -> EventLoopFuture<ConnectResult> in
            guard self.state == .idle else {
                return self.eventLoop.makeFailedFuture(MQTTClientError.invalidArgument("connect() called twice"))
            }
            return self.open()
        }.get()
    }

    /// Publishes a message; returns when its QoS flow completes (at once for QoS 0).
    @discardableResult
    public func publish(_ topic: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false,
                        properties: Properties = .none) async throws -> PublishResult {
        try await enqueuePublish(topic, payload: payload, qos: qos, retain: retain, properties: properties).get()
    }

    /// Starts a publish without waiting for it: the future completes when its QoS flow does.
    /// Publishes enqueued one after the other from one task leave in that order, so a producer can
    /// keep several in flight (pipelining, as `midge pub -l` does) and still keep their order.
    public func enqueuePublish(_ topic: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false,
                               properties: Properties = .none) -> EventLoopFuture<PublishResult> {
        guard Topic.isValidName(topic) else {
            return eventLoop.makeFailedFuture(MQTTClientError.invalidArgument("Invalid publish topic '\(topic)', does it contain '+' or '#'?"))
        }
        let packet = PublishPacket(topic: topic, payload: payload, qos: qos, retain: retain, properties: properties)
        return eventLoop.flatSubmit { self.startPublish(packet) }
    }

    @discardableResult
    public func publish(_ topic: String, payload: String, qos: QoS = .atMostOnce, retain: Bool = false,
                        properties: Properties = .none) async throws -> PublishResult {
        try await publish(topic, payload: ByteBuffer(string: payload), qos: qos, retain: retain, properties: properties)
    }

    /// Subscribes; returns the broker's reason code (granted QoS or failure) for each filter.
    @discardableResult
    public func subscribe(_ subscriptions: [TopicSubscription], properties: Properties = .none) async throws -> [ReasonCode] {
        guard !subscriptions.isEmpty else { throw MQTTClientError.invalidArgument("no topic filter to subscribe to") }
        for subscription in subscriptions {
            let valid = Topic.parseShared(subscription.filter)?.isValid ?? Topic.isValidFilter(subscription.filter)
            guard valid else { throw MQTTClientError.invalidArgument("Invalid subscription topic '\(subscription.filter)', are all '+' and '#' wildcards correct?") }
        }
        let reply = try await eventLoop.flatSubmit { () -> EventLoopFuture<MQTTPacket> in
            let packetID = self.allocatePacketID()
            return self.request(.subscribe(SubscribePacket(packetID: packetID, subscriptions: subscriptions, properties: properties)), packetID: packetID)
        }.get()
        guard case .suback(let suback) = reply else { throw MQTTClientError.protocolViolation("expected SUBACK") }
        return suback.reasonCodes
    }

    @discardableResult
    public func subscribe(to filter: String, qos: QoS = .atMostOnce) async throws -> ReasonCode {
        try await subscribe([TopicSubscription(filter: filter, options: SubscriptionOptions(qos: qos))]).first ?? .unspecifiedError
    }

    /// Unsubscribes; returns the v5 reason code per filter (Success for v3).
    @discardableResult
    public func unsubscribe(_ filters: [String], properties: Properties = .none) async throws -> [ReasonCode] {
        let reply = try await eventLoop.flatSubmit { () -> EventLoopFuture<MQTTPacket> in
            let packetID = self.allocatePacketID()
            return self.request(.unsubscribe(UnsubscribePacket(packetID: packetID, filters: filters, properties: properties)), packetID: packetID)
        }.get()
        guard case .unsuback(let unsuback) = reply else { throw MQTTClientError.protocolViolation("expected UNSUBACK") }
        return configuration.version == .v5 ? unsuback.reasonCodes : filters.map { _ in .success }
    }

    /// Sends DISCONNECT (v5: with `reason`) and closes. The `messages` sequence ends.
    public func disconnect(reason: ReasonCode = .normalDisconnection, properties: Properties = .none) async {
        let future: EventLoopFuture<Void> = eventLoop.flatSubmit {
            let wasOpen = self.state == .connected
            self.state = .closed
            guard let channel = self.channel else {
                self.finish(error: nil)
                return self.eventLoop.makeSucceededVoidFuture()
            }
            guard wasOpen, let written = self.send(.disconnect(DisconnectPacket(reasonCode: reason, properties: properties))) else {
                return channel.close().recover { _ in }
            }
            // Close once everything queued before (the last publishes, then DISCONNECT) reached the
            // socket: closing at once would drop writes still waiting for the socket to drain.
            let drainLimit = self.eventLoop.scheduleTask(in: self.configuration.timeout) { channel.close(promise: nil) }
            written.whenComplete { _ in
                drainLimit.cancel()
                channel.close(promise: nil)
            }
            return channel.closeFuture.recover { _ in }
        }
        try? await future.get()
    }

    // MARK: Connection

    private func open() -> EventLoopFuture<ConnectResult> {
        state = sessionStarted ? .reconnecting : .connecting
        let promise = eventLoop.makePromise(of: ConnectResult.self)
        connectPromise = promise
        let handler = ClientPacketHandler(version: configuration.version,
                                          onPacket: { [weak self] packet in self?.received(packet) },
                                          onClose: { [weak self] error in self?.connectionLost(error) })
        configuration.transport.connect(configuration.host, configuration.port, eventLoop, handler).whenComplete { result in
            switch result {
            case .failure(let error):
                self.connectPromise = nil
                promise.fail(MQTTClientError.unreachable(Self.describeConnectError(error)))
            case .success(let channel):
                self.channel = channel
                self.sendConnect()
                self.connackTimeout = self.eventLoop.scheduleTask(in: self.configuration.timeout) {
                    self.connectPromise?.fail(MQTTClientError.timeout("no CONNACK"))
                    self.connectPromise = nil
                    channel.close(promise: nil)
                }
            }
        }
        return promise.futureResult
    }

    private func sendConnect() {
        var properties = configuration.connectProperties
        if configuration.version == .v5, let expiry = configuration.sessionExpiryInterval { properties.sessionExpiryInterval = expiry }
        let cleanStart = sessionStarted ? false : configuration.cleanStart
        let connect = ConnectPacket(protocolVersion: configuration.version, cleanStart: cleanStart, keepAlive: configuration.keepAlive,
                                    clientID: clientIDInUse, will: configuration.will, username: configuration.username,
                                    password: configuration.password.map { ByteBuffer(bytes: $0) }, properties: properties)
        send(.connect(connect))
    }

    private func received(_ packet: MQTTPacket) {
        configuration.packetObserver?(.received, packet)
        switch packet {
        case .connack(let connack): handleConnAck(connack)
        case .publish(let publish): handleIncoming(publish)
        case .puback(let ack):
            guard let entry = inflight[ack.packetID], entry.stage == .awaitingPubAck else { return }
            complete(ack.packetID, PublishResult(reasonCode: ack.reasonCode, properties: ack.properties))
        case .pubrec(let ack):
            guard let entry = inflight[ack.packetID] else {
                send(.pubrel(PubAckPacket(packetID: ack.packetID, reasonCode: .packetIdentifierNotFound)))
                return
            }
            if !ack.reasonCode.isSuccess {
                complete(ack.packetID, PublishResult(reasonCode: ack.reasonCode, properties: ack.properties))
                return
            }
            if entry.stage == .awaitingPubRec { inflight[ack.packetID]?.stage = .awaitingPubComp }
            send(.pubrel(PubAckPacket(packetID: ack.packetID)))
        case .pubrel(let ack):
            inboundQoS2.remove(ack.packetID)
            send(.pubcomp(PubAckPacket(packetID: ack.packetID)))
        case .pubcomp(let ack):
            guard let entry = inflight[ack.packetID], entry.stage == .awaitingPubComp else { return }
            complete(ack.packetID, PublishResult(reasonCode: ack.reasonCode, properties: ack.properties))
        case .suback(let ack): answer(ack.packetID, packet)
        case .unsuback(let ack): answer(ack.packetID, packet)
        case .pingresp: pingOutstanding = false
        case .disconnect(let disconnect):
            closeReason = disconnect.reasonCode
            channel?.close(promise: nil)
        case .connect, .subscribe, .unsubscribe, .pingreq, .auth:
            closeReason = .protocolError
            channel?.close(promise: nil)
        }
    }

    private func handleConnAck(_ connack: ConnAckPacket) {
        connackTimeout?.cancel()
        guard let promise = connectPromise else { return }
        connectPromise = nil
        guard connack.reasonCode == .success else {
            state = .closed
            promise.fail(MQTTClientError.connectionRefused(connack.reasonCode, reasonString: connack.properties.reasonString))
            channel?.close(promise: nil)
            return
        }
        state = .connected
        reconnectAttempt = 0
        sessionStarted = true
        if let assigned = connack.properties.assignedClientIdentifier { clientIDInUse = assigned }
        serverReceiveMaximum = Int(connack.properties.receiveMaximum ?? 65535)
        serverTopicAliasMaximum = configuration.useTopicAliases ? (connack.properties.topicAliasMaximum ?? 0) : 0
        outboundAliases = [:]
        inboundAliases = [:]
        startKeepAlive(connack.properties.serverKeepAlive ?? configuration.keepAlive)
        // Resend what was not acknowledged, in order, with DUP [MQTT-4.4.0-1].
        for (packetID, entry) in inflight {
            if entry.stage == .awaitingPubComp {
                send(.pubrel(PubAckPacket(packetID: packetID)))
            } else {
                var packet = entry.packet
                packet.dup = true
                sendPublish(packet)
            }
        }
        pump()
        promise.succeed(ConnectResult(sessionPresent: connack.sessionPresent, reasonCode: connack.reasonCode, properties: connack.properties))
    }

    private func handleIncoming(_ publish: PublishPacket) {
        var message = MQTTMessage(topic: publish.topic, payload: publish.payload, qos: publish.qos, retain: publish.retain,
                                  dup: publish.dup, properties: publish.properties, packetID: publish.packetID)
        if let alias = publish.properties.topicAlias {
            if publish.topic.isEmpty {
                guard let topic = inboundAliases[alias] else {
                    closeReason = .topicAliasInvalid
                    send(.disconnect(DisconnectPacket(reasonCode: .topicAliasInvalid)))
                    channel?.close(promise: nil)
                    return
                }
                message.topic = topic
            } else {
                inboundAliases[alias] = publish.topic
            }
            message.properties.topicAlias = nil
        }
        switch publish.qos {
        case .atMostOnce:
            messageSink.yield(message)
        case .atLeastOnce:
            messageSink.yield(message)
            send(.puback(PubAckPacket(packetID: publish.packetID)))
        case .exactlyOnce:
            // Deliver once; a repeat before PUBREL is only acknowledged [MQTT-4.3.3-10].
            if inboundQoS2.insert(publish.packetID).inserted { messageSink.yield(message) }
            send(.pubrec(PubAckPacket(packetID: publish.packetID)))
        }
    }

    private func connectionLost(_ error: Error?) {
        channel = nil
        keepAliveTask?.cancel()
        keepAliveTask = nil
        connackTimeout?.cancel()
        let failure: Error = error ?? MQTTClientError.connectionClosed(closeReason)
        if let promise = connectPromise {
            connectPromise = nil
            promise.fail(failure)
        }
        for (_, pending) in pendingAcks {
            pending.timeout.cancel()
            pending.promise.fail(failure)
        }
        pendingAcks = [:]
        if state == .closed {
            finish(error: nil)
            return
        }
        if configuration.reconnect != nil, sessionStarted {
            scheduleReconnect(after: failure)
            return
        }
        state = .closed
        finish(error: failure)
    }

    /// Tries again after the policy's back-off; an attempt that cannot even open the socket
    /// (broker still down) schedules the next one, until `maximumAttempts`.
    private func scheduleReconnect(after failure: Error) {
        guard let policy = configuration.reconnect, policy.maximumAttempts.map({ reconnectAttempt < $0 }) ?? true else {
            state = .closed
            finish(error: failure)
            return
        }
        state = .reconnecting
        let delay = min(policy.initialDelay.nanoseconds << min(reconnectAttempt, 20), policy.maximumDelay.nanoseconds)
        reconnectAttempt += 1
        eventLoop.scheduleTask(in: .nanoseconds(delay)) { [weak self] in
            guard let self, self.state == .reconnecting else { return }
            self.open().whenFailure { [weak self] error in
                // A refused CONNECT closes the channel and ends in connectionLost; only a
                // socket that never opened lands here.
                guard let self, self.state == .reconnecting, self.channel == nil else { return }
                self.scheduleReconnect(after: error)
            }
        }
    }

    private func finish(error: Error?) {
        let pending = inflight.values.map(\.promise) + waiting.map(\.1)
        inflight = [:]
        waiting = []
        let failure = error ?? MQTTClientError.connectionClosed(closeReason)
        for promise in pending { promise.fail(failure) }
        if let error { messageSink.finish(throwing: error) } else { messageSink.finish() }
    }

    // MARK: Publishing

    private func startPublish(_ packet: PublishPacket) -> EventLoopFuture<PublishResult> {
        switch state {
        case .connected, .reconnecting: break
        case .idle, .connecting, .closed: return eventLoop.makeFailedFuture(MQTTClientError.notConnected)
        }
        if packet.qos == .atMostOnce {
            guard state == .connected else { return eventLoop.makeFailedFuture(MQTTClientError.notConnected) }
            sendPublish(packet)
            return eventLoop.makeSucceededFuture(PublishResult(reasonCode: .success, properties: .none))
        }
        let promise = eventLoop.makePromise(of: PublishResult.self)
        waiting.append((packet, promise))
        pump()
        return promise.futureResult
    }

    /// Moves waiting QoS 1/2 publishes into flight while the broker's Receive Maximum allows.
    private func pump() {
        guard state == .connected else { return }
        while inflight.count < serverReceiveMaximum, let (packet, promise) = waiting.popFirst() {
            var packet = packet
            packet.packetID = allocatePacketID()
            inflight[packet.packetID] = Outbound(packet: packet, stage: packet.qos == .atLeastOnce ? .awaitingPubAck : .awaitingPubRec,
                                                 promise: promise)
            sendPublish(packet)
        }
    }

    private func complete(_ packetID: UInt16, _ result: PublishResult) {
        guard let entry = inflight.removeValue(forKey: packetID) else { return }
        entry.promise.succeed(result)
        pump()
    }

    /// Sends a PUBLISH, replacing a repeated topic by its alias when the broker allows (v5).
    private func sendPublish(_ packet: PublishPacket) {
        var packet = packet
        if serverTopicAliasMaximum > 0 && configuration.version == .v5 {
            if let alias = outboundAliases[packet.topic] {
                packet.properties.topicAlias = alias
                packet.topic = ""
            } else if outboundAliases.count < Int(serverTopicAliasMaximum) {
                let alias = UInt16(outboundAliases.count + 1)
                outboundAliases[packet.topic] = alias
                packet.properties.topicAlias = alias
            }
        }
        send(.publish(packet))
    }

    private func allocatePacketID() -> UInt16 {
        while true {
            let candidate = nextPacketID
            nextPacketID = nextPacketID == 65535 ? 1 : nextPacketID + 1
            if inflight[candidate] == nil && pendingAcks[candidate] == nil { return candidate }
        }
    }

    // MARK: Requests with a reply

    private func request(_ packet: MQTTPacket, packetID: UInt16) -> EventLoopFuture<MQTTPacket> {
        guard state == .connected else { return eventLoop.makeFailedFuture(MQTTClientError.notConnected) }
        let promise = eventLoop.makePromise(of: MQTTPacket.self)
        let timeout = eventLoop.scheduleTask(in: configuration.timeout) { [weak self] in
            guard let self, let pending = self.pendingAcks.removeValue(forKey: packetID) else { return }
            pending.promise.fail(MQTTClientError.timeout("no reply to \(packet.type)"))
        }
        pendingAcks[packetID] = (promise, timeout)
        send(packet)
        return promise.futureResult
    }

    private func answer(_ packetID: UInt16, _ packet: MQTTPacket) {
        guard let pending = pendingAcks.removeValue(forKey: packetID) else { return }
        pending.timeout.cancel()
        pending.promise.succeed(packet)
    }

    // MARK: Output and keep alive

    @discardableResult
    private func send(_ packet: MQTTPacket) -> EventLoopFuture<Void>? {
        guard let channel else { return nil }
        configuration.packetObserver?(.sent, packet)
        let buffer = PacketEncoder.encode(packet, version: configuration.version, allocator: channel.allocator)
        lastSent = .now()
        return channel.writeAndFlush(buffer)
    }

    /// Checks every half keep-alive period: PINGREQ when nothing was sent for that long; a
    /// PINGREQ still unanswered at the next check means the broker is gone.
    private func startKeepAlive(_ seconds: UInt16) {
        keepAliveTask?.cancel()
        pingOutstanding = false
        guard seconds > 0 else { return }
        let half = TimeAmount.milliseconds(Int64(seconds) * 500)
        keepAliveTask = eventLoop.scheduleRepeatedTask(initialDelay: half, delay: half) { [weak self] _ in
            guard let self, self.state == .connected, let channel = self.channel else { return }
            if self.pingOutstanding {
                self.closeReason = nil
                channel.pipeline.fireErrorCaught(MQTTClientError.timeout("no PINGRESP from the broker"))
                return
            }
            if NIODeadline.now() - self.lastSent >= half - .milliseconds(50) {
                self.pingOutstanding = true
                self.send(.pingreq)
            }
        }
    }

    private static func describeConnectError(_ error: Error) -> String {
        if let io = error as? IOError { return "Connection error: \(io.description)" }
        if let connect = error as? NIOConnectionError {
            if let first = connect.connectionErrors.first { return "Connection error: \(first.error)" }
            if let dns = connect.dnsAAAAError ?? connect.dnsAError { return "Connection error: \(dns)" }
        }
        return "Connection error: \(error)"
    }
}
