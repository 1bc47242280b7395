import DequeModule
import MQTTCodec
import NIOCore

/// Outbound message flow of a session: the inflight window (Receive Maximum /
/// max_inflight_messages), the queue behind it (max_queued_messages / max_queued_bytes, also
/// used while offline), packet-id allocation, and redelivery on reconnect.
extension Session {
    /// Hands one routed message to this session. On the session's loop.
    func deliver(_ delivery: Delivery, broker: Broker, context: LoopContext) {
        context.assertOnLoop()
        assert(loopIndex == context.index, "Session.deliver on a loop that does not own the session")
        guard !isEnded else { broker.forgetDelivery(delivery.storeKey, of: self); return }
        // Read access, at the time of publication (live and retained messages alike).
        guard allows(.read, delivery.message.topic) else { broker.forgetDelivery(delivery.storeKey, of: self); return }
        if let connection, connection.isAttached {
            if delivery.qos == .atMostOnce {
                // A subscriber that reads slower than we write gets its QoS 0 messages queued
                // (bounded), not buffered in memory without limit.
                // QoS 0 is not held back by the QoS 1/2 window, but never overtakes QoS 0 still queued.
                if queuedQoS0 == 0 && connection.transport.isWritable {
                    connection.sendPublish(delivery, packetID: 0, dup: false)
                } else {
                    enqueue(delivery, broker: broker)
                }
                return
            }
            if queue.isEmpty && pendingResends == 0 && hasWindow(for: delivery, connection: connection) {
                sendNew(delivery, via: connection)
            } else {
                enqueue(delivery, broker: broker)
            }
            return
        }
        // Offline: only a session that outlives its connection queues, QoS 0 only if configured.
        guard persistsOffline else { broker.forgetDelivery(delivery.storeKey, of: self); return }
        if delivery.qos == .atMostOnce && !broker.configuration.queueQoS0Messages { return }
        enqueue(delivery, broker: broker)
    }

    private func hasWindow(for delivery: Delivery, connection: ClientConnection) -> Bool {
        if inflight.count - Int(pendingResends) >= connection.outboundWindow { return false }
        let byteLimit = connection.broker.configuration.maxInflightBytes
        if byteLimit > 0 && inflightBytes > 0 && inflightBytes + delivery.message.payload.readableBytes > byteLimit { return false }
        return true
    }

    private func enqueue(_ delivery: Delivery, broker: Broker) {
        let configuration = broker.configuration
        let size = delivery.message.payload.readableBytes
        if configuration.maxQueuedMessages > 0 && queue.count >= configuration.maxQueuedMessages {
            broker.log.debug("Outgoing messages are being dropped for client \(clientID).")
            broker.forgetDelivery(delivery.storeKey, of: self)
            return
        }
        // Like Mosquitto (db__ready_for_queue): a message is queued while the queued payload
        // bytes are below the limit; "once this limit has been reached" the rest is dropped.
        if configuration.maxQueuedBytes > 0 && queuedBytes >= configuration.maxQueuedBytes {
            broker.log.debug("Outgoing messages are being dropped for client \(clientID).")
            broker.forgetDelivery(delivery.storeKey, of: self)
            return
        }
        queue.append(delivery)
        queuedBytes += size
        if delivery.qos == .atMostOnce { queuedQoS0 += 1 }
    }

    private func sendNew(_ delivery: Delivery, via connection: ClientConnection) {
        var packetID = delivery.packetID
        if packetID == 0 || inflight[packetID] != nil {
            guard let free = allocatePacketID() else {
                connection.broker.forgetDelivery(delivery.storeKey, of: self)
                return
            }
            packetID = free
        }
        var entry = InflightMessage(message: delivery.message, qos: delivery.qos, retain: delivery.retain,
                                    subscriptionIDs: delivery.subscriptionIDs,
                                    stage: delivery.qos == .atLeastOnce ? .awaitingPubAck : .awaitingPubRec)
        entry.storeKey = delivery.storeKey
        inflight[packetID] = entry
        inflightBytes += entry.size
        if delivery.storeKey != 0 && delivery.qos == .exactlyOnce {
            // A QoS 2 delivery's packet id is kept: a resend after a restart must reuse it (the
            // receiver recognises the duplicate by it). QoS 1 needs no such record: after a
            // restart it goes out again as new, which "at least once" allows.
            connection.context.record(.deliveryUpdated(key: delivery.storeKey, stage: .published, packetID: packetID))
        }
        if !connection.sendPublish(delivery, packetID: packetID, dup: false) {
            // Too large for the client or expired: discarded as if its flow had completed [MQTT-3.1.2-25].
            completeOutbound(packetID, broker: connection.broker)
        }
    }

    /// Fills the inflight window: first the resends held back at reconnect, then the queue,
    /// oldest first.
    func pump() {
        guard let connection, connection.isAttached else { return }
        if pendingResends > 0 {
            // Ids first: a resend that cannot be sent completes (removes) its entry.
            let waiting = inflight.filter { $0.value.awaitingResend }.map(\.key)
            for packetID in waiting {
                guard inflight.count - Int(pendingResends) < connection.outboundWindow else { return }
                guard var entry = inflight[packetID] else { continue }
                entry.awaitingResend = false
                inflight[packetID] = entry
                pendingResends -= 1
                resend(packetID, entry, via: connection)
            }
            if pendingResends > 0 { return }
        }
        var now: NIODeadline?  // read once, and only when a queued message has an expiry
        while let next = queue.first {
            if !connection.transport.isWritable { break }
            if next.qos != .atMostOnce && !hasWindow(for: next, connection: connection) { break }
            queue.removeFirst()
            queuedBytes -= next.message.payload.readableBytes
            if next.qos == .atMostOnce { queuedQoS0 -= 1 }
            // Expired messages are dropped from the queue [MQTT-3.3.2-5].
            if next.message.expiresAt != nil {
                let current = now ?? connection.context.eventLoop.now
                now = current
                if next.message.isExpired(at: current) {
                    connection.broker.forgetDelivery(next.storeKey, of: self)
                    continue
                }
            }
            if next.qos == .atMostOnce {
                connection.sendPublish(next, packetID: 0, dup: false)
            } else {
                sendNew(next, via: connection)
            }
        }
    }

    /// PUBACK or PUBCOMP (or a failed PUBREC) ended the flow of `packetID`. Returns whether it was inflight.
    @discardableResult
    func completeOutbound(_ packetID: UInt16, broker: Broker) -> Bool {
        guard let entry = inflight.removeValue(forKey: packetID) else { return false }
        inflightBytes -= entry.size
        if entry.awaitingResend { pendingResends -= 1 }
        broker.forgetDelivery(entry.storeKey, of: self)
        return true
    }

    /// On reconnect to a persistent session: resend unacknowledged PUBLISH packets with DUP set
    /// and PUBREL for those already PUBREC'd, in their original order [MQTT-4.4.0-1] [MQTT-4.6.0-1],
    /// then send what was queued.
    /// No more are resent at once than the new connection's Receive Maximum allows
    /// [MQTT-3.3.4-9]; the rest follow as acknowledgements free the window.
    func resume(via connection: ClientConnection) {
        dropUnreadable(broker: connection.broker)
        pendingResends = 0
        var sent = 0
        let window = connection.outboundWindow
        var held = 0
        inflight.updateInOrder { entry in
            if sent < window {
                entry.awaitingResend = false
                sent += 1
            } else {
                entry.awaitingResend = true
                held += 1
            }
        }
        pendingResends = Int32(held)
        for (packetID, entry) in inflight where !entry.awaitingResend {
            resend(packetID, entry, via: connection)
        }
        pump()
    }

    /// At a reconnect, as Mosquitto does: messages queued or in flight on topics the client may
    /// no longer read (the ACL changed, or the client came back as another user) are dropped.
    private func dropUnreadable(broker: Broker) {
        guard let security, security.hasACL else { return }
        let denied = inflight.filter { !allows(.read, $0.value.message.topic) }.map(\.key)
        for packetID in denied { completeOutbound(packetID, broker: broker) }
        guard queue.contains(where: { !allows(.read, $0.message.topic) }) else { return }
        var kept: Deque<Delivery> = []
        for delivery in queue {
            if allows(.read, delivery.message.topic) {
                kept.append(delivery)
            } else {
                queuedBytes -= delivery.message.payload.readableBytes
                if delivery.qos == .atMostOnce { queuedQoS0 -= 1 }
                broker.forgetDelivery(delivery.storeKey, of: self)
            }
        }
        queue = kept
    }

    private func resend(_ packetID: UInt16, _ entry: InflightMessage, via connection: ClientConnection) {
        switch entry.stage {
        case .awaitingPubComp:
            connection.sendAck(.pubrel(PubAckPacket(packetID: packetID)))
        case .awaitingPubAck, .awaitingPubRec:
            let delivery = Delivery(session: self, message: entry.message, qos: entry.qos, retain: entry.retain,
                                    subscriptionIDs: entry.subscriptionIDs)
            // Already sent once: its delivery has started, so expiry no longer applies [MQTT-4.3.3-7].
            if !connection.sendPublish(delivery, packetID: packetID, dup: true, applyExpiry: false) {
                completeOutbound(packetID, broker: connection.broker)
            }
        }
    }

    func cancelTimers() {
        expiryTask?.cancel()
        expiryTask = nil
        willTask?.cancel()
        willTask = nil
        pendingWill = nil
    }
}
