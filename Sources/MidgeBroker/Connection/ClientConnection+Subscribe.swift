import MQTTCodec
import NIOCore

/// SUBSCRIBE / SUBACK with retained-message delivery, and UNSUBSCRIBE / UNSUBACK.
extension ClientConnection {
    func handleSubscribe(_ packet: SubscribePacket) {
        guard let session else { return }
        log.debug("Received SUBSCRIBE from \(clientID)")
        let identifier = packet.properties.subscriptionIdentifiers.first
        var codes: [ReasonCode] = []
        var retainedDeliveries: [Delivery] = []
        let now = context.eventLoop.now
        for request in packet.subscriptions {
            let filter = request.filter
            log.debug("\t\(filter) (QoS \(request.options.qos.rawValue))")
            let shared = Topic.parseShared(filter)
            guard shared?.isValid ?? Topic.isValidFilter(filter) else {
                // 0x8F Topic Filter invalid (v5); 3.1.1 writes any failure as 0x80 [MQTT-3.9.3-2].
                codes.append(.topicFilterInvalid)
                continue
            }
            if !session.allows(.subscribe, shared?.filter ?? filter) {
                // Not granted by the ACL: 0x80 in both versions (3.1.1 Failure, v5 Unspecified
                // error), which the Paho interoperability suite expects for v5 too.
                log.debug("Denied SUBSCRIBE from \(clientID) to \(filter)")
                codes.append(.unspecifiedError)
                continue
            }
            let subscription = Subscription(session: session, filter: filter, options: request.options, identifier: identifier)
            let existed = broker.subscriptions.subscribe(subscription)
            session.subscriptions[ExactText(filter)] = subscription
            if session.isStored {
                context.record(.subscriptionSaved(StoredSubscription(clientID: clientID, filter: filter, options: request.options,
                                                                     identifier: identifier)))
            }
            codes.append(ReasonCode(rawValue: request.options.qos.rawValue))
            log.log(.subscribe, "\(clientID) \(request.options.qos.rawValue) \(filter)")

            // Retained messages: never for shared subscriptions (spec 4.8.2); per
            // Retain Handling otherwise [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11].
            guard shared == nil else { continue }
            switch request.options.retainHandling {
            case .doNotSend: continue
            case .sendOnNewSubscribe: if existed { continue }
            case .sendOnSubscribe: break
            }
            for entry in broker.retained.matchingEntries(filter, now: now) {
                let message = entry.message
                // check_retain_source: its publisher must still be allowed to write the topic
                // under the current ACL, or it is not sent (it stays retained, as in Mosquitto).
                if let source = entry.source, !source.mayStillWrite(message.topic) {
                    log.debug("Retained message on \(message.topic) not sent to \(clientID): its publisher \(source.clientID) may no longer write it")
                    continue
                }
                let qos = configuration.upgradeOutgoingQoS ? request.options.qos : min(message.qos, request.options.qos)
                // Sent because of a new subscription: RETAIN is 1 [MQTT-3.3.1-8].
                var delivery = Delivery(session: session, message: message, qos: qos, retain: true,
                                        subscriptionIDs: identifier.map { [$0] } ?? [])
                if qos != .atMostOnce { delivery.packetID = session.nextPacketID() }
                if session.isStored && qos != .atMostOnce && message.storeID != 0, let groupCommit = context.groupCommit {
                    delivery.storeKey = groupCommit.makeKey()
                    context.record(.messageRouted(broker.storedMessage(message, id: message.storeID), [
                        StoredDelivery(key: delivery.storeKey, clientID: clientID, messageID: message.storeID, qos: qos,
                                       retain: true, subscriptionIDs: delivery.subscriptionIDs, packetID: delivery.packetID),
                    ]))
                }
                retainedDeliveries.append(delivery)
            }
        }
        log.debug("Sending SUBACK to \(clientID)")
        sendAck(.suback(SubAckPacket(packetID: packet.packetID, reasonCodes: codes)))
        // Retained messages follow the SUBACK.
        for delivery in retainedDeliveries { session.deliver(delivery, broker: broker, context: context) }
    }

    func handleUnsubscribe(_ packet: UnsubscribePacket) {
        guard let session else { return }
        log.debug("Received UNSUBSCRIBE from \(clientID)")
        var codes: [ReasonCode] = []
        for filter in packet.filters {
            log.debug("\t\(filter)")
            let existed = broker.subscriptions.unsubscribe(session: session, filter: filter)
            session.subscriptions[ExactText(filter)] = nil
            if existed && session.isStored { context.record(.subscriptionDeleted(clientID: clientID, filter: filter)) }
            codes.append(existed ? .success : .noSubscriptionExisted)
            log.log(.unsubscribe, "\(clientID) \(filter)")
        }
        log.debug("Sending UNSUBACK to \(clientID)")
        // The UNSUBACK has one reason code per filter, in order [MQTT-3.11.3-1] (v5 only on the wire).
        sendAck(.unsuback(UnsubAckPacket(packetID: packet.packetID, reasonCodes: codes)))
    }
}
