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
        for var request in packet.subscriptions {
            // max_qos caps the granted QoS; mount_point prefixes the filter (inside a shared one).
            if request.options.qos.rawValue > policy.maxQoS.rawValue { request.options.qos = policy.maxQoS }
            let filter = mounted(request.filter)
            log.debug("\t\(filter) (QoS \(request.options.qos.rawValue))")
            // The decoder has refused invalid filters (Malformed Packet, as Mosquitto).
            let shared = Topic.parseShared(filter)
            // As with Mosquitto's acl_file, every valid filter is granted and the ACL decides what
            // is delivered (`read`), message by message (09-acl-access-variants, 09-acl-empty-file);
            // Midge's `acl_refuses_subscriptions` refuses a filter the ACL gives no read access to
            // with 0x80 in both versions (which the Paho suite's v5 test_subscribe_failure requires).
            if configuration.aclRefusesSubscriptions && !session.allows(.subscribe, shared?.filter ?? filter) {
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

    /// `filter` under the listener's mount_point (for `$share/GROUP/F`, F is mounted).
    func mounted(_ filter: String) -> String {
        guard let mount = policy.mountPoint else { return filter }
        if let shared = Topic.parseShared(filter) {
            // An invalid shared filter stays as it is (and is refused as such).
            return shared.isValid ? "$share/\(shared.group)/" + mount + shared.filter : filter
        }
        return mount + filter
    }

    func handleUnsubscribe(_ packet: UnsubscribePacket) {
        guard let session else { return }
        log.debug("Received UNSUBSCRIBE from \(clientID)")
        var codes: [ReasonCode] = []
        for requested in packet.filters {
            // Mosquitto 2.0.11 forgets the mount point here (the subscription stays); the spec
            // wants it removed [MQTT-3.10.4-1], so the filter is mounted as in SUBSCRIBE.
            let filter = mounted(requested)
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
