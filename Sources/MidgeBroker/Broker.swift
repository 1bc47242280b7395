import Foundation
import MQTTCodec
import NIOConcurrencyHelpers
import NIOCore

/// What a listener decides about the clients it accepts (from `allow_anonymous`,
/// `allow_zero_length_clientid`, `auto_id_prefix`, per listener or global). Anonymous access is
/// decided by `security`. A class: every connection keeps a reference to its listener's policy
/// (one word, not a copy). Set up before the listener opens, read-only afterwards.
public final class ListenerPolicy: @unchecked Sendable {
    public var port: Int
    public var allowZeroLengthClientID: Bool
    public var autoIDPrefix: String
    /// `max_topic_alias` of the listener: Topic Alias Maximum announced to v5 clients.
    public var maxTopicAlias: Int
    /// Password file, ACL and anonymous access of this listener (shared by all listeners
    /// without `per_listener_settings`).
    public var security: SecurityPolicy
    /// `use_identity_as_username` / `use_subject_as_username` of a TLS listener: the client
    /// certificate names the user instead of CONNECT's username and password.
    public var tlsUsername: TLSUsernameSource?
    /// `mount_point`: prefix of every topic this listener's clients use (nil = none).
    public var mountPoint: String?
    /// `max_qos`: the highest QoS this listener's clients may publish and are granted.
    public var maxQoS: QoS = .exactlyOnce
    /// `use_username_as_clientid`: the client id is the username.
    public var useUsernameAsClientID = false

    /// - Parameter allowAnonymous: only used without `security` (a policy with no files).
    public init(port: Int, allowAnonymous: Bool = true, allowZeroLengthClientID: Bool = true, autoIDPrefix: String = "auto-",
                maxTopicAlias: Int = 10, security: SecurityPolicy? = nil) {
        self.port = port
        self.maxTopicAlias = maxTopicAlias
        self.security = security ?? SecurityPolicy(allowAnonymous: allowAnonymous)
        self.allowZeroLengthClientID = allowZeroLengthClientID
        self.autoIDPrefix = autoIDPrefix
    }
}

/// The broker engine: sessions by client id, the subscription tree, retained messages, and
/// routing of each published message to the event loops of its subscribers. No sockets here:
/// connections reach it through `ClientConnection` and a `ConnectionTransport`.
public final class Broker: @unchecked Sendable {
    public let configuration: BrokerConfiguration
    public let log: BrokerLog
    public let subscriptions = SubscriptionTree()
    public let retained = RetainedStore()
    /// Brute-force and connection-rate defence, per remote address.
    public let connectionGuard: ConnectionGuard
    /// `memory_limit` (see MemoryLimit.swift).
    public let memoryLimit: MemoryLimit
    /// One context per event loop (set in init; LoopContext needs `self`, hence var).
    private(set) var loops: [LoopContext] = []
    private var loopIndexByID: [ObjectIdentifier: Int] = [:]

    private let registryLock = NIOLock()
    /// By client identifier, compared byte for byte (two ids that are canonically equivalent
    /// Unicode are still two clients).
    private var sessions = SessionTable()
    private var connectedCount = 0
    /// Where persistent state goes (nil = persistence off).
    public let store: SessionStore?
    /// Called on the connecting loop before a client's session is opened: the `midge` process
    /// applies a SIGHUP received before that CONNECT here (as Mosquitto's loop handles the signal
    /// before the next network event), so the new connection sees the reloaded ACL. Set before
    /// the listeners open.
    public var beforeSessionOpens: (@Sendable () -> Void)?
    /// Wall-clock milliseconds since the Unix epoch: stored times (expiry, disconnection) are
    /// wall-clock, the engine's own clock (`EventLoop.now`) is uptime.
    let wallClock: @Sendable () -> Int64

    public init(configuration: BrokerConfiguration = .defaults, eventLoops: [EventLoop], log: BrokerLog = .silent(),
                store: SessionStore? = nil,
                wallClock: @escaping @Sendable () -> Int64 = { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }) {
        precondition(!eventLoops.isEmpty)
        self.configuration = configuration
        self.log = log
        self.store = store
        self.wallClock = wallClock
        self.connectionGuard = ConnectionGuard(configuration: configuration)
        self.memoryLimit = MemoryLimit(limit: configuration.memoryLimit)
        for (index, loop) in eventLoops.enumerated() {
            loopIndexByID[ObjectIdentifier(loop)] = index
        }
        loops = eventLoops.indices.map {
            LoopContext(index: $0, eventLoop: eventLoops[$0], broker: self, loopCount: eventLoops.count)
        }
        if let store {
            for loop in loops { loop.attachStore(store, loopCount: eventLoops.count) }
        }
    }

    func context(for eventLoop: EventLoop) -> LoopContext {
        guard let index = loopIndexByID[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("event loop not registered with the broker")
        }
        return loops[index]
    }

    func context(index: Int) -> LoopContext { loops[index] }

    /// Creates the protocol handler for a new network connection on `transport.eventLoop`.
    public func makeConnection(transport: ConnectionTransport, policy: ListenerPolicy) -> ClientConnection {
        let connection = ClientConnection(broker: self, transport: transport, policy: policy, context: context(for: transport.eventLoop))
        connection.startConnectTimer(seconds: configuration.connectTimeout)
        return connection
    }

    // MARK: Sessions

    public var sessionCount: Int { registryLock.withLock { sessions.count } }
    public var connectedClientCount: Int { registryLock.withLock { connectedCount } }

    public func session(clientID: String) -> Session? { registryLock.withLock { sessions[clientID] } }

    /// Registers a session rebuilt from the store (at start-up).
    func registerRestored(_ session: Session) { registryLock.withLock { sessions.insert(session) } }

    func noteConnected(_ delta: Int) { registryLock.withLock { connectedCount += delta } }

    /// A new connection wants `clientID`. Finds or creates its session, takes over a live
    /// connection of the same id (closed with 0x8E [MQTT-3.1.4-3]), moves a resumed session to
    /// the new connection's loop, then calls `connection.attach` on that loop.
    func openSession(clientID: String, cleanStart: Bool, for connection: ClientConnection) {
        beforeSessionOpens?()
        let loop = connection.context
        let (session, existing): (Session, Session?) = registryLock.withLock {
            let existing = sessions[clientID]
            if let existing, !cleanStart, !existing.isEnded {
                return (existing, existing)
            }
            let fresh = Session(clientID: clientID, loopIndex: loop.index)
            sessions.insert(fresh)
            return (fresh, existing)
        }
        guard let existing else {
            connection.attach(session, sessionPresent: false)
            return
        }
        let owner = context(index: existing.loopIndex)
        owner.eventLoop.execute {
            // On the loop that owns the old session.
            if let old = existing.connection {
                // As Mosquitto: the old connection's will goes out (when it has no delay) only if
                // its session ends here, by its own expiry 0 or the new Clean Start.
                old.takenOver(publishWill: cleanStart || !existing.persistsOffline)
            }
            // A new connection for the client id cancels a will still waiting on its delay,
            // whatever its Clean Start [MQTT-3.1.2-8] [MQTT-3.1.3-9] (Mosquitto's will_delay__remove).
            existing.willTask?.cancel()
            existing.willTask = nil
            existing.pendingWill = nil
            if existing === session && !existing.persistsOffline {
                // The taken-over connection's session was to end with it (3.1.1 clean session 1, v5
                // expiry 0) [3.1.1:MQTT-3.1.2-6] [MQTT-3.1.2-23]: it ends now (will included) and Clean Start 0 finds none.
                let fresh = Session(clientID: clientID, loopIndex: loop.index)
                self.registryLock.withLock {
                    if self.sessions[clientID] === existing { self.sessions.insert(fresh) }
                }
                self.endSession(existing)
                // The deletion reaches the store before anything the new loop records.
                owner.groupCommit?.submit()
                loop.eventLoop.execute { connection.attach(fresh, sessionPresent: false) }
            } else if existing === session {
                existing.cancelTimers()
                owner.move(existing, to: loop.index)
                loop.eventLoop.execute { connection.attach(session, sessionPresent: true) }
            } else {
                self.endSession(existing)
                owner.groupCommit?.submit()
                loop.eventLoop.execute { connection.attach(session, sessionPresent: false) }
            }
        }
    }

    /// Ends a session (expiry, clean start, or a connection closing with expiry 0): forgets its
    /// subscriptions and queued messages and publishes a will still waiting on its delay
    /// [MQTT-3.1.2-8]. On the session's loop.
    func endSession(_ session: Session) {
        guard !session.isEnded else { return }
        session.isEnded = true
        session.expiryTask?.cancel()
        session.expiryTask = nil
        session.willTask?.cancel()
        session.willTask = nil
        registryLock.withLock {
            sessions.remove(session)
        }
        if session.isStored {
            session.isStored = false
            context(index: session.loopIndex).record(.sessionDeleted(clientID: session.clientID))
        }
        for filter in session.subscriptions.keys { subscriptions.unsubscribe(session: session, filter: filter.string) }
        session.subscriptions.removeAll()
        session.queue.removeAll()
        session.queuedBytes = 0
        session.queuedQoS0 = 0
        session.inflight.removeAll()
        if let will = session.pendingWill {
            session.pendingWill = nil
            publish(will, from: nil, context: context(index: session.loopIndex), willOf: session)
        }
    }

    /// After the connection of a session closed (on the session's loop): keeps or ends the
    /// session according to its expiry interval, and publishes or schedules the will.
    func sessionDisconnected(_ session: Session, will: Message?, willDelay: UInt32, sessionContinues: Bool) {
        session.setOnline(false)
        let context = context(index: session.loopIndex)
        if let will {
            if willDelay == 0 {
                publish(will, from: nil, context: context, willOf: session)
            } else {
                session.pendingWill = will
                // (A takeover cancels it: see `openSession`.)
                if !sessionContinues { scheduleWill(of: session, in: .seconds(Int64(willDelay))) }
            }
        }
        if sessionContinues { return }
        if !session.persistsOffline {
            // The session ends now, so a delayed will goes out now: "until the Will Delay Interval
            // has passed or the Session ends, whichever happens first" [MQTT-3.1.2-8] (spec
            // 3.1.3.2.2; the Paho suite's test_will_delay). Mosquitto 2.0.11 waits for the delay
            // anyway (its 07-will-delay fails here on purpose).
            endSession(session)
            return
        }
        if store != nil {
            saveSession(session, will: session.pendingWill.map { ($0, willDelay) })
        }
        if session.expiryInterval != UInt32.max {
            scheduleExpiry(of: session, in: .seconds(Int64(session.expiryInterval)))
        }
    }

    /// Publishes the session's pending will after `delay`, unless a connection attached meanwhile.
    func scheduleWill(of session: Session, in delay: TimeAmount) {
        session.willTask = context(index: session.loopIndex).eventLoop.scheduleTask(in: delay) { [weak self, weak session] in
            guard let self, let session, let pending = session.pendingWill, session.connection == nil else { return }
            session.pendingWill = nil
            self.publish(pending, from: nil, context: self.context(index: session.loopIndex), willOf: session)
            if session.isStored { self.saveSession(session, will: nil) }
            // A session of expiry 0 only waited for its will.
            if !session.persistsOffline { self.endSession(session) }
            self.context(index: session.loopIndex).flushDirty()
        }
    }

    /// Ends the session after `delay`, unless a connection attached meanwhile.
    func scheduleExpiry(of session: Session, in delay: TimeAmount) {
        session.expiryTask = context(index: session.loopIndex).eventLoop.scheduleTask(in: delay) { [weak self, weak session] in
            guard let self, let session, session.connection == nil else { return }
            self.endSession(session)
            self.context(index: session.loopIndex).flushDirty()
        }
    }

    // MARK: Routing

    /// Routes `message` to every matching subscription: one copy per session with the highest
    /// granted QoS of its matching subscriptions and all their identifiers ([MQTT-3.3.4-2],
    /// [MQTT-3.3.4-3]; Midge sends one copy, see docs/conformance.md), one member per shared
    /// group. Retains it first when flagged. Returns the number of subscriptions (and shared
    /// groups) whose filter matched, counting a No Local subscription of the publisher itself,
    /// which gets no copy: Mosquitto counts it too (its PUBACK then says success, not 0x10).
    /// `willOf`: the session whose will this is (its publisher for `check_retain_source`).
    /// `beforeDelivery` runs once everything routing stores is recorded and before any copy is
    /// handed to a session: the publisher's PUBREC goes out there, ahead of its own copy.
    @discardableResult
    func publish(_ message: Message, from publisher: Session?, context: LoopContext, routeMemo: RouteMemo? = nil,
                 willOf: Session? = nil, beforeDelivery: (() -> Void)? = nil) -> Int {
        // The loop's scratch array (no allocation per message); handed back emptied at the end.
        var matches = context.takeMatchScratch()
        defer { context.returnMatchScratch(&matches) }
        let groupCommit = context.persists ? context.groupCommit : nil
        // Still this loop's alone: give it its store id before anything shares it.
        if let groupCommit, message.storeID == 0, message.qos != .atMostOnce || message.retain {
            message.storeID = groupCommit.makeKey()
        }
        let upgrade = configuration.upgradeOutgoingQoS
        func add(_ subscription: Subscription) {
            let options = subscription.options
            // No Local: not back to the publishing session [MQTT-3.8.3-3].
            if options.noLocal, let publisher, subscription.session === publisher { return }
            let qos = upgrade ? options.qos : min(message.qos, options.qos)
            // Retain As Published keeps the flag; otherwise live messages go out with RETAIN 0 [MQTT-3.3.1-12].
            let retainFlag = options.retainAsPublished ? message.retain : false
            var ids: [Int] = []
            if let identifier = subscription.identifier { ids.append(identifier) }
            matches.append(Delivery(session: subscription.session, message: message, qos: qos, retain: retainFlag, subscriptionIDs: ids))
        }
        let found = context.routeCache.matches(topic: message.topic, in: subscriptions, memo: routeMemo)
        for subscription in found.subscriptions { add(subscription) }
        for group in found.groups { if let member = group.pick() { add(member) } }
        let sources = found.sources
        if sources > 1 && matches.count > 1 { matches = Self.mergePerSession(matches) }
        // Numbered as they are queued, as Mosquitto does: a message that expires or is dropped
        // before it is sent still used its id.
        for index in matches.indices where matches[index].qos != .atMostOnce {
            matches[index].packetID = matches[index].session.nextPacketID()
        }

        if matches.count > 1 {
            // Encode the shared QoS 0 headers while the message is still this thread's alone
            // (before the retained store or another loop can see it). `speaksV5` is an atomic
            // hint: a session reconnecting meanwhile with another version only costs an
            // unshared header.
            var v3 = false, v5 = false
            for delivery in matches where delivery.qos == .atMostOnce && delivery.subscriptionIDs.isEmpty && !delivery.retain {
                if delivery.session.speaksV5 { v5 = true } else { v3 = true }
            }
            message.prepareSharedHeaders(v3: v3, v5: v5)
        }
        if message.retain {
            let source = retainSource(publisher ?? willOf)
            retained.store(message, source: source)
            if groupCommit != nil {
                var stored = storedMessage(message, id: 0)
                stored.publisherUsername = source?.username
                stored.publisherPort = source?.port
                context.record(message.payload.readableBytes == 0 ? .retainedCleared(topic: message.topic) : .retainedSet(stored))
            }
        }
        let matched = found.subscriptions.count + found.groups.count
        if groupCommit != nil && !matches.isEmpty { recordDeliveries(of: message, &matches, context: context) }
        beforeDelivery?()
        if matches.isEmpty { return matched }

        if loops.count == 1 {
            for delivery in matches { deliverOnLoop(delivery, context: context) }
            return matched
        }
        for delivery in matches {
            let target = delivery.session.loopIndex
            if target == context.index {
                deliverOnLoop(delivery, context: context)
            } else {
                context.outgoing[target].append(delivery)
            }
        }
        for index in context.outgoing.indices where !context.outgoing[index].isEmpty {
            if let groupCommit, groupCommit.isHolding {
                // Not before the deliveries are stored (see `GroupCommit`).
                groupCommit.holdHandoff(context.outgoing[index], to: index)
            } else {
                loops[index].enqueue(context.outgoing[index])
            }
            context.outgoing[index].removeAll(keepingCapacity: true)
        }
        return matched
    }

    /// `check_retain_source`: who published a retained message, so that its delivery to a new
    /// subscriber can check the publisher's write access again. Nil when the option is off, for
    /// broker-made messages, and for a session with no policy (no ACL can apply to it).
    private func retainSource(_ session: Session?) -> RetainSource? {
        guard configuration.checkRetainSource, let session, let policy = session.security else { return nil }
        return RetainSource(clientID: session.clientID, username: session.username, policy: policy, port: session.listenerPort)
    }

    /// One delivery per session: highest QoS, union of subscription ids, retain if any says so.
    static func mergePerSession(_ deliveries: [Delivery]) -> [Delivery] {
        var position: [ObjectIdentifier: Int] = [:]
        var merged: [Delivery] = []
        merged.reserveCapacity(deliveries.count)
        for delivery in deliveries {
            if let index = position[delivery.session.id] {
                merged[index].qos = max(merged[index].qos, delivery.qos)
                merged[index].retain = merged[index].retain || delivery.retain
                merged[index].subscriptionIDs.append(contentsOf: delivery.subscriptionIDs)
            } else {
                position[delivery.session.id] = merged.count
                merged.append(delivery)
            }
        }
        return merged
    }

    /// Runs on the loop of `context`: hands the delivery to its session, forwarding it when
    /// the session moved to another loop meanwhile.
    func deliverOnLoop(_ delivery: Delivery, context: LoopContext) {
        let session = delivery.session
        let owner = session.loopIndex
        if owner != context.index {
            loops[owner].enqueue([delivery])
            return
        }
        session.deliver(delivery, broker: self, context: context)
    }

    // MARK: Client ids

    /// A generated client identifier: the prefix and a random UUID, like Mosquitto's.
    func generateClientID(prefix: String) -> String {
        prefix + UUID().uuidString.lowercased()
    }
}
