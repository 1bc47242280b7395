import MQTTCodec
import NIOCore

/// What the engine tells its `SessionStore`, and how it rebuilds itself from one at start-up.
/// Every change is recorded on the loop that owns the state it changes (see `GroupCommit`).
extension Broker {
    /// `message` as stored, its uptime expiry turned into wall-clock time.
    func storedMessage(_ message: Message, id: UInt64) -> StoredMessage {
        var expiresAt: Int64?
        if let deadline = message.expiresAt {
            let now = loops[0].eventLoop.now
            expiresAt = wallClock() + (deadline - now).nanoseconds / 1_000_000
        }
        return StoredMessage(id: id, topic: message.topic, payload: message.payload, qos: message.qos, retain: message.retain,
                             properties: message.properties, expiresAt: expiresAt, publisherClientID: message.publisherClientID)
    }

    /// Stores the deliveries of `message` to sessions that outlive their connections (QoS 1
    /// and 2; QoS 0 is never kept), giving each its key. On the routing loop, before any of
    /// them leaves it.
    func recordDeliveries(of message: Message, _ matches: inout [Delivery], context: LoopContext) {
        guard let groupCommit = context.groupCommit else { return }
        var stored: [StoredDelivery] = []
        for index in matches.indices where matches[index].qos != .atMostOnce && matches[index].session.outlivesConnection {
            let key = groupCommit.makeKey()
            matches[index].storeKey = key
            let delivery = matches[index]
            stored.append(StoredDelivery(key: key, clientID: delivery.session.clientID, messageID: message.storeID,
                                         qos: delivery.qos, retain: delivery.retain, subscriptionIDs: delivery.subscriptionIDs,
                                         packetID: delivery.packetID))
        }
        if !stored.isEmpty { context.record(.messageRouted(storedMessage(message, id: message.storeID), stored)) }
    }

    /// Saves `session` (on its loop): while connected (`disconnected` false) or after.
    func saveSession(_ session: Session, will: (message: Message, delay: UInt32)?, connected: Bool = false) {
        let context = context(index: session.loopIndex)
        guard context.groupCommit != nil else { return }
        session.isStored = true
        let stored = StoredSession(clientID: session.clientID, expiryInterval: session.expiryInterval,
                                   protocolLevel: session.protocolVersion.rawValue, username: session.username,
                                   disconnectedAt: connected ? nil : wallClock(), lastPacketID: session.lastPacketID,
                                   will: will.map { StoredWill(message: storedMessage($0.message, id: 0), delay: $0.delay) })
        context.record(.sessionSaved(stored))
    }

    /// A connection attached to `session`: a session that outlives it is saved (with the
    /// connection's will), one that ends with it is no longer kept.
    func sessionAttached(_ session: Session, will: Message?, willDelay: UInt32) {
        if configuration.checkRetainSource { session.listenerPort = session.connection?.policy.port }
        guard store != nil else { return }
        if session.persistsOffline {
            saveSession(session, will: will.map { ($0, willDelay) }, connected: true)
        } else if session.isStored {
            session.isStored = false
            context(index: session.loopIndex).record(.sessionDeleted(clientID: session.clientID))
        }
    }

    /// Records on the session's loop that a stored delivery is finished (acknowledged, dropped, expired).
    func forgetDelivery(_ key: UInt64, of session: Session) {
        guard key != 0 else { return }
        context(index: session.loopIndex).record(.deliveryDeleted(key: key))
    }

    // MARK: Restart

    /// Rebuilds sessions (offline), their subscriptions, queued and in-flight messages, held
    /// inbound QoS 2 ids, wills and expiry timers, and the retained messages from `state`.
    /// Called once, before any connection is accepted (and before the loops record anything).
    /// Sessions are spread over the loops; a reconnecting client moves its session to its own loop.
    /// `security`: the rules deliveries to the restored (offline) sessions are checked against until
    /// their clients reconnect (the listener's then apply). `securityByPort`: each listener's
    /// rules, by port (`per_listener_settings`): a retained message published through a listener
    /// is checked against that listener's rules (`check_retain_source`).
    public func restore(_ state: PersistedState, security: SecurityPolicy? = nil, securityByPort: [Int: SecurityPolicy] = [:]) {
        let wallNow = wallClock()
        let now = loops[0].eventLoop.now
        func message(_ stored: StoredMessage) -> Message? {
            var expiresAt: NIODeadline?
            if let wall = stored.expiresAt {
                if wall <= wallNow { return nil }
                expiresAt = now + .milliseconds(wall - wallNow)
            }
            let message = Message(topic: stored.topic, payload: stored.payload, qos: stored.qos, retain: stored.retain,
                                  properties: stored.properties, expiresAt: expiresAt, publisher: nil,
                                  publisherClientID: stored.publisherClientID)
            message.storeID = stored.id
            return message
        }
        // Retained messages get fresh ids: their stored copies are kept by topic.
        var nextRetainedID = state.nextKey
        for stored in state.retained where !stored.topic.hasPrefix("$SYS") {
            guard let restored = message(stored) else { continue }
            restored.storeID = nextRetainedID
            nextRetainedID += 1
            // check_retain_source after a restart: the publisher as stored, under the rules of the
            // listener it came through (else the shared rules).
            var source: RetainSource?
            let policy = stored.publisherPort.flatMap { securityByPort[$0] } ?? security
            if configuration.checkRetainSource, let policy, !stored.publisherClientID.isEmpty {
                source = RetainSource(clientID: stored.publisherClientID, username: stored.publisherUsername, policy: policy,
                                      port: stored.publisherPort)
            }
            retained.store(restored, source: source)
        }
        // Keys the loops make start above every stored key and every retained id.
        for loop in loops { loop.groupCommit?.startKeys(from: nextRetainedID) }

        var byClient: [String: Session] = [:]
        var loopIndex = 0
        for stored in state.sessions {
            let session = Session(clientID: stored.clientID, loopIndex: loopIndex)
            loopIndex = (loopIndex + 1) % loops.count
            session.expiryInterval = stored.expiryInterval
            session.protocolVersion = ProtocolVersion(rawValue: stored.protocolLevel) ?? .v3_1_1
            session.username = stored.username
            session.security = security
            session.isStored = store != nil
            session.lastPacketID = stored.lastPacketID
            byClient[stored.clientID] = session
            registerRestored(session)
        }
        for stored in state.subscriptions {
            guard let session = byClient[stored.clientID] else { continue }
            let subscription = Subscription(session: session, filter: stored.filter, options: stored.options, identifier: stored.identifier)
            subscriptions.subscribe(subscription)
            session.subscriptions[ExactText(stored.filter)] = subscription
        }
        var messages: [UInt64: Message] = [:]
        var expired: [StoredDelivery] = []
        for stored in state.messages { if let restored = message(stored) { messages[stored.id] = restored } }
        for stored in state.deliveries {
            guard let session = byClient[stored.clientID] else { continue }
            // A delivery routed after the session row was last saved (a crash while its client
            // was connected) numbers past the row's last id: the session goes on after it.
            let ahead = stored.packetID &- session.lastPacketID
            if stored.packetID != 0 && ahead != 0 && ahead < 0x8000 { session.lastPacketID = stored.packetID }
            guard let message = messages[stored.messageID] else {
                expired.append(stored)
                continue
            }
            switch stored.stage {
            case .queued:
                var delivery = Delivery(session: session, message: message, qos: stored.qos, retain: stored.retain,
                                        subscriptionIDs: stored.subscriptionIDs)
                delivery.storeKey = stored.key
                // Its id from routing (a store of an older Midge has none: numbered now).
                delivery.packetID = stored.packetID != 0 ? stored.packetID : session.nextPacketID()
                session.queue.append(delivery)
                session.queuedBytes += message.payload.readableBytes
            case .published, .released:
                var entry = InflightMessage(message: message, qos: stored.qos, retain: stored.retain,
                                            subscriptionIDs: stored.subscriptionIDs,
                                            stage: stored.stage == .released ? .awaitingPubComp
                                                : stored.qos == .atLeastOnce ? .awaitingPubAck : .awaitingPubRec)
                entry.storeKey = stored.key
                session.inflight[stored.packetID] = entry
                session.inflightBytes += entry.size
            }
        }
        for held in state.inboundQoS2 { byClient[held.clientID]?.inboundQoS2.insert(held.packetID) }

        // Timers, from wall-clock times: a session whose client was connected at the crash counts
        // as disconnected now.
        for stored in state.sessions {
            guard let session = byClient[stored.clientID] else { continue }
            let away = max(0, wallNow - (stored.disconnectedAt ?? wallNow))
            if let will = stored.will, let willMessage = message(will.message) {
                session.pendingWill = willMessage
                scheduleWill(of: session, in: .milliseconds(max(0, Int64(will.delay) * 1000 - away)))
            }
            if session.expiryInterval != UInt32.max {
                scheduleExpiry(of: session, in: .milliseconds(max(0, Int64(session.expiryInterval) * 1000 - away)))
            }
        }
        // Deliveries of messages that expired while the broker was down are forgotten.
        if !expired.isEmpty, let store {
            store.commit(expired.map { .deliveryDeleted(key: $0.key) }) {}
        }
    }
}
