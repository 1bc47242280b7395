import MQTTCodec
import NIOCore

/// Outbound message flow of a session: the inflight window (Receive Maximum /
/// max_inflight_messages), the queue behind it (max_queued_messages / max_queued_bytes, also
/// used while offline), packet-id allocation, and redelivery on reconnect.
extension Session {
    /// Hands one routed message to this session. On the session's loop.
    func deliver(_ delivery: Delivery, broker: Broker, context: LoopContext) {
        guard !isEnded else { return }
        // Read access, at the time of publication (live and retained messages alike).
        guard allows(.read, delivery.message.topic) else { return }
        if let connection, connection.isAttached {
            if delivery.qos == .atMostOnce {
                connection.sendPublish(delivery, packetID: 0, dup: false)
                return
            }
            if queue.isEmpty && hasWindow(for: delivery, connection: connection) {
                sendNew(delivery, via: connection)
            } else {
                enqueue(delivery, broker: broker)
            }
            return
        }
        // Offline: only a session that outlives its connection queues, QoS 0 only if configured.
        guard persistsOffline else { return }
        if delivery.qos == .atMostOnce && !broker.configuration.queueQoS0Messages { return }
        enqueue(delivery, broker: broker)
    }

    private func hasWindow(for delivery: Delivery, connection: ClientConnection) -> Bool {
        if inflight.count >= connection.outboundWindow { return false }
        let byteLimit = connection.broker.configuration.maxInflightBytes
        if byteLimit > 0 && inflightBytes > 0 && inflightBytes + delivery.message.payload.readableBytes > byteLimit { return false }
        return true
    }

    private func enqueue(_ delivery: Delivery, broker: Broker) {
        let configuration = broker.configuration
        let size = delivery.message.payload.readableBytes
        if configuration.maxQueuedMessages > 0 && queue.count >= configuration.maxQueuedMessages {
            broker.log.debug("Outgoing messages are being dropped for client \(clientID).")
            return
        }
        // Like Mosquitto (db__ready_for_queue): a message is queued while the queued payload
        // bytes are below the limit; "once this limit has been reached" the rest is dropped.
        if configuration.maxQueuedBytes > 0 && queuedBytes >= configuration.maxQueuedBytes {
            broker.log.debug("Outgoing messages are being dropped for client \(clientID).")
            return
        }
        queue.append(delivery)
        queuedBytes += size
    }

    private func sendNew(_ delivery: Delivery, via connection: ClientConnection) {
        guard let packetID = allocatePacketID() else { return }
        let entry = InflightMessage(message: delivery.message, qos: delivery.qos, retain: delivery.retain,
                                    subscriptionIDs: delivery.subscriptionIDs,
                                    stage: delivery.qos == .atLeastOnce ? .awaitingPubAck : .awaitingPubRec)
        inflight[packetID] = entry
        inflightBytes += entry.size
        if !connection.sendPublish(delivery, packetID: packetID, dup: false) {
            // Too large for the client or expired: discarded as if its flow had completed [MQTT-3.1.2-25].
            completeOutbound(packetID)
        }
    }

    /// Fills the inflight window from the queue, oldest first.
    func pump() {
        guard let connection, connection.isAttached else { return }
        let now = NIODeadline.now()
        while let next = queue.first {
            if next.qos != .atMostOnce && !hasWindow(for: next, connection: connection) { break }
            queue.removeFirst()
            queuedBytes -= next.message.payload.readableBytes
            // Expired messages are dropped from the queue [MQTT-3.3.2-5].
            if next.message.isExpired(at: now) { continue }
            if next.qos == .atMostOnce {
                connection.sendPublish(next, packetID: 0, dup: false)
            } else {
                sendNew(next, via: connection)
            }
        }
    }

    /// PUBACK or PUBCOMP (or a failed PUBREC) ended the flow of `packetID`. Returns whether it was inflight.
    @discardableResult
    func completeOutbound(_ packetID: UInt16) -> Bool {
        guard let entry = inflight.removeValue(forKey: packetID) else { return false }
        inflightBytes -= entry.size
        return true
    }

    /// On reconnect to a persistent session: resend unacknowledged PUBLISH packets with DUP set
    /// and PUBREL for those already PUBREC'd, in their original order [MQTT-4.4.0-1] [MQTT-4.6.0-1],
    /// then send what was queued.
    func resume(via connection: ClientConnection) {
        for (packetID, entry) in inflight {
            switch entry.stage {
            case .awaitingPubComp:
                connection.sendAck(.pubrel(PubAckPacket(packetID: packetID)))
            case .awaitingPubAck, .awaitingPubRec:
                let delivery = Delivery(session: self, message: entry.message, qos: entry.qos, retain: entry.retain,
                                        subscriptionIDs: entry.subscriptionIDs)
                if !connection.sendPublish(delivery, packetID: packetID, dup: true) { completeOutbound(packetID) }
            }
        }
        pump()
    }

    func cancelTimers() {
        expiryTask?.cancel()
        expiryTask = nil
        willTask?.cancel()
        willTask = nil
        pendingWill = nil
    }
}
