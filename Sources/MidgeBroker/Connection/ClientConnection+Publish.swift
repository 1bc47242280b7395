import MQTTCodec
import NIOCore

/// Inbound PUBLISH (QoS 0/1/2, topic aliases, retain) and the acknowledgements of both directions.
extension ClientConnection {
    func handlePublish(_ packet: PublishPacket) {
        guard let session else { return }
        if packet.qos.rawValue > policy.maxQoS.rawValue {
            // max_qos: above it the client is disconnected, as Mosquitto does (v5 DISCONNECT 0x9B).
            close(reason: .qosNotSupported, log: "Too high QoS in PUBLISH from \(clientID), disconnecting.")
            return
        }
        if configuration.memoryLimit > 0, broker.memoryLimit.exceeded(by: packet.payload.readableBytes) {
            // memory_limit: the message is dropped and its publisher disconnected (v5 0x80), as
            // Mosquitto does when an allocation would exceed the limit.
            close(reason: .unspecifiedError, log: "Client \(clientID) disconnected due to out of memory.")
            return
        }
        if !packet.properties.subscriptionIdentifiers.isEmpty {
            // A PUBLISH from a client MUST NOT contain a Subscription Identifier [MQTT-3.3.4-6].
            protocolError("PUBLISH with a subscription identifier")
            return
        }
        var topic = packet.topic
        if version == .v5, let alias = packet.properties.topicAlias {
            // An alias above the Topic Alias Maximum we announced is invalid [MQTT-3.3.2-9].
            guard alias <= policy.maxTopicAlias else {
                protocolError("topic alias \(alias) above maximum \(policy.maxTopicAlias)", reason: .topicAliasInvalid)
                return
            }
            if topic.isEmpty {
                guard let known = aliases?.inbound[alias] else {
                    // 0x82, as Mosquitto (02-subpub-qos0-topic-alias-unknown).
                    protocolError("unknown topic alias \(alias)")
                    return
                }
                topic = known
            } else {
                aliasTables.inbound[alias] = topic
            }
        }
        if let mount = policy.mountPoint { topic = mount + topic }
        if log.isEnabled(.debug) {
            log.debug("Received PUBLISH from \(clientID) (d\(packet.dup ? 1 : 0), q\(packet.qos.rawValue), r\(packet.retain ? 1 : 0), m\(packet.packetID), '\(topic)', ... (\(packet.payload.readableBytes) bytes))")
        }
        if packet.retain && !configuration.retainAvailable {
            // Retain not supported: DISCONNECT 0x9A (spec 3.3.1.3; the client rule MQTT-3.2.2-14).
            protocolError("retain is not available", reason: .retainNotSupported)
            return
        }
        if packet.qos == .exactlyOnce {
            if session.inboundQoS2.contains(packet.packetID) {
                // Already received and not yet released: acknowledge again, do not route again [MQTT-4.3.3-10].
                sendAck(.pubrec(PubAckPacket(packetID: packet.packetID)))
                return
            }
            if version == .v5 && session.inboundQoS2.count >= inboundReceiveMaximum {
                // More unacknowledged QoS 2 PUBLISHes than our Receive Maximum: 0x93 (spec 3.3.4, the client
                // rule MQTT-3.3.4-7).
                protocolError("receive maximum exceeded", reason: .receiveMaximumExceeded)
                return
            }
        }

        var reason = ReasonCode.success
        let sizeLimit = configuration.messageSizeLimit
        if packet.qos != .atMostOnce, let store = broker.store, !store.isWritable {
            // The store cannot write: a message that may need storing is not acknowledged as
            // if it were. v5 gets 0x97 Quota exceeded (and may retry); 3.1.1 has no such answer,
            // so the connection closes and the client resends after reconnecting.
            guard version == .v5 else {
                close(reason: .quotaExceeded, log: "Client \(clientID) disconnected: the store cannot write, PUBLISH not accepted.")
                return
            }
            log.warning("Refused PUBLISH from \(clientID) on '\(topic)': the store cannot write.")
            reason = .quotaExceeded
        } else if sizeLimit > 0 && packet.payload.readableBytes > sizeLimit {
            // message_size_limit: not forwarded, but the QoS flow completes (Mosquitto's behaviour).
            // v5: 0x83, not Mosquitto's 0x95, which is not a PUBACK/PUBREC reason code [MQTT-3.4.2-1] [MQTT-3.5.2-1].
            reason = .implementationSpecificError
        } else if Self.isReservedDollarTopic(topic) || !session.allows(.write, topic) {
            // Denied by the ACL (and clients never publish into the broker's own $SYS tree):
            // v5 QoS 1/2 get 0x87; v3 gets its acknowledgement and the message is dropped.
            log.debug("Denied PUBLISH from \(clientID) (d\(packet.dup ? 1 : 0), q\(packet.qos.rawValue), r\(packet.retain ? 1 : 0), m\(packet.packetID), '\(topic)', ... (\(packet.payload.readableBytes) bytes))")
            reason = .notAuthorized
        } else {
            let message = Message(topic: topic, payload: packet.payload, qos: packet.qos, retain: packet.retain,
                                  properties: packet.properties, receivedAt: context.eventLoop.now,
                                  publisher: session.id, publisherClientID: clientID)
            if routeMemo == nil { routeMemo = RouteMemo() }
            if packet.qos == .exactlyOnce {
                // Accepted: the id is held until PUBREL, and the PUBREC (always success, as in
                // Mosquitto: whether anyone subscribed is no concern of QoS 2's first answer) goes
                // out once routing has recorded what it stores and before any copy is delivered,
                // so the publisher's own copy follows its PUBREC, as Mosquitto orders them.
                session.inboundQoS2.insert(packet.packetID)
                if session.isStored { context.record(.inboundHeld(clientID: clientID, packetID: packet.packetID)) }
                let packetID = packet.packetID
                broker.publish(message, from: session, context: context, routeMemo: routeMemo) {
                    self.sendPubRec(packetID, reason: .success)
                }
                return
            }
            // Mosquitto answers 0x10 only when no subscription matched at all (a No Local
            // subscription of the publisher itself counts as a match).
            let routed = broker.publish(message, from: session, context: context, routeMemo: routeMemo)
            if routed == 0 { reason = .noMatchingSubscribers }
        }

        switch packet.qos {
        case .atMostOnce:
            break
        case .atLeastOnce:
            log.debug("Sending PUBACK to \(clientID) (m\(packet.packetID), rc\(reason.rawValue))")
            sendFlowAck(0x40, packetID: packet.packetID, reason: reason)
        case .exactlyOnce:
            // Refused, so not routed: a PUBREC with an error ends the flow, no id is held.
            sendPubRec(packet.packetID, reason: reason)
        }
    }

    /// Topics no client may publish to, as in Mosquitto: `$SYS` (but for the bridge state topics
    /// `$SYS/broker/connection/+/state`) and `$share` (03-publish-dollar-v5).
    static func isReservedDollarTopic(_ topic: String) -> Bool {
        let bytes = topic.utf8
        guard bytes.first == UInt8(ascii: "$") else { return false }
        if bytes.starts(with: "$share".utf8) { return true }
        guard bytes.starts(with: "$SYS".utf8) else { return false }
        let levels = Topic.levels(topic)
        return !(levels.count == 5 && levels[0] == "$SYS" && levels[1] == "broker" && levels[2] == "connection" && levels[4] == "state")
    }

    private func sendPubRec(_ packetID: UInt16, reason: ReasonCode) {
        log.debug("Sending PUBREC to \(clientID) (m\(packetID), rc\(reason.rawValue))")
        sendFlowAck(0x50, packetID: packetID, reason: reason)
    }

    // Acknowledgements of our PUBLISHes, as Mosquitto treats them (handle_pubackcomp.c,
    // handle_pubrec.c): one for an unknown packet id is ignored (a PUBREC still gets its PUBREL);
    // one of the wrong kind for the message in flight under that id (PUBACK for QoS 2, PUBREC or
    // PUBCOMP for QoS 1, PUBCOMP before the PUBREC) is a Protocol Error, and the connection is
    // closed without a DISCONNECT, as Mosquitto closes it.

    func handlePubAck(_ ack: PubAckPacket) {
        guard let session else { return }
        log.debug("Received PUBACK from \(clientID) (Mid: \(ack.packetID), RC:\(ack.reasonCode.rawValue))")
        guard let entry = session.inflight[ack.packetID] else {
            log.warning("Warning: Received PUBACK from \(clientID) for an unknown packet identifier \(ack.packetID).")
            return
        }
        guard entry.qos == .atLeastOnce else {
            wrongAcknowledgement("PUBACK", packetID: ack.packetID)
            return
        }
        session.completeOutbound(ack.packetID, broker: broker)
        session.pump()
    }

    func handlePubRec(_ ack: PubAckPacket) {
        guard let session else { return }
        log.debug("Received PUBREC from \(clientID) (Mid: \(ack.packetID))")
        guard let entry = session.inflight[ack.packetID] else {
            if version != .v5 || ack.reasonCode.isSuccess {
                log.warning("Warning: Received PUBREC from \(clientID) for an unknown packet identifier \(ack.packetID).")
                log.debug("Sending PUBREL to \(clientID) (m\(ack.packetID))")
                sendFlowAck(0x62, packetID: ack.packetID)
            }
            return
        }
        guard entry.qos == .exactlyOnce else {
            wrongAcknowledgement("PUBREC", packetID: ack.packetID)
            return
        }
        if version == .v5 && !ack.reasonCode.isSuccess {
            // A PUBREC with an error ends the flow: no PUBREL [MQTT-4.3.3-4] [MQTT-4.4.0-2].
            guard entry.stage == .awaitingPubRec else {
                wrongAcknowledgement("PUBREC", packetID: ack.packetID)
                return
            }
            session.completeOutbound(ack.packetID, broker: broker)
            session.pump()
            return
        }
        if entry.stage != .awaitingPubComp {
            session.inflight[ack.packetID]?.stage = .awaitingPubComp
            if entry.storeKey != 0 {
                context.record(.deliveryUpdated(key: entry.storeKey, stage: .released, packetID: ack.packetID))
            }
        }
        log.debug("Sending PUBREL to \(clientID) (m\(ack.packetID))")
        sendFlowAck(0x62, packetID: ack.packetID)
    }

    func handlePubRel(_ ack: PubAckPacket) {
        guard let session else { return }
        log.debug("Received PUBREL from \(clientID) (Mid: \(ack.packetID))")
        let known = session.inboundQoS2.remove(ack.packetID) != nil
        if known && session.isStored { context.record(.inboundReleased(clientID: clientID, packetID: ack.packetID)) }
        // An unknown id (a PUBREL repeated after a reconnect, whose PUBCOMP was lost) still gets
        // PUBCOMP success, as from Mosquitto: the flow is complete either way.
        log.debug("Sending PUBCOMP to \(clientID) (m\(ack.packetID))")
        sendFlowAck(0x70, packetID: ack.packetID)
    }

    func handlePubComp(_ ack: PubAckPacket) {
        guard let session else { return }
        log.debug("Received PUBCOMP from \(clientID) (Mid: \(ack.packetID), RC:\(ack.reasonCode.rawValue))")
        guard let entry = session.inflight[ack.packetID] else {
            log.warning("Warning: Received PUBCOMP from \(clientID) for an unknown packet identifier \(ack.packetID).")
            return
        }
        guard entry.qos == .exactlyOnce, entry.stage == .awaitingPubComp else {
            wrongAcknowledgement("PUBCOMP", packetID: ack.packetID)
            return
        }
        session.completeOutbound(ack.packetID, broker: broker)
        session.pump()
    }

    /// An acknowledgement that does not fit the QoS flow of the message in flight under its id:
    /// closed as a Protocol Error without DISCONNECT (what Mosquitto does).
    private func wrongAcknowledgement(_ type: String, packetID: UInt16) {
        protocolError("\(type) does not match the QoS flow of message \(packetID)", sendDisconnect: false)
    }

    func handleDisconnect(_ disconnect: DisconnectPacket) {
        log.debug("Received DISCONNECT from \(clientID)")
        if version == .v5, let expiry = disconnect.properties.sessionExpiryInterval {
            // Setting a non-zero expiry at DISCONNECT after CONNECT said 0 is a Protocol Error (spec 3.14.2.2.2).
            if connectSessionExpiry == 0 && expiry != 0 {
                protocolError("session expiry set on DISCONNECT after 0 on CONNECT")
                return
            }
            session?.expiryInterval = expiry
        }
        receivedDisconnect = true
        // Only a DISCONNECT with 0x00 (v3: any DISCONNECT) discards the will [MQTT-3.1.2-10]
        // [MQTT-3.14.4-3]; 0x04 asks for it, and so does any error reason (spec 3.1.2.5).
        let publishWill = version == .v5 && disconnect.reasonCode != .normalDisconnection
        if configuration.connectionMessages { log.notice("Client \(clientID) disconnected.") }
        finish(publishWill: publishWill)
        closeTransport()
    }
}
