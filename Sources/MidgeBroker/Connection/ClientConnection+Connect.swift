import MQTTCodec
import NIOCore

/// CONNECT → CONNACK: client id rules, anonymous access, keep alive limits, session expiry,
/// v5 limits both ways, then the session (new, resumed or taken over).
extension ClientConnection {
    func handleConnect(_ connect: ConnectPacket) {
        version = connect.protocolVersion
        keepAlive = connect.keepAlive
        cleanStart = connect.cleanStart
        username = connect.username
        let properties = connect.properties
        log.debug("Received CONNECT from \(transport.remoteAddress) as \(connect.clientID)")
        // Known before any refusal: a refusing CONNACK must fit it too [MQTT-3.2.2-19] [MQTT-3.2.2-20].
        if version == .v5 { clientMaximumPacketSize = properties.maximumPacketSize.map { Int($0) } ?? .max }
        if let will = connect.will, will.qos.rawValue > policy.maxQoS.rawValue {
            // max_qos: a will above it is refused as Mosquitto does (v5 CONNACK 0x9B; v3 has no
            // such code: the connection closes without CONNACK).
            guard version == .v5 else { return refuseSilently("will QoS \(will.qos.rawValue) above max_qos") }
            refuse(.qosNotSupported, "will QoS \(will.qos.rawValue) above max_qos \(policy.maxQoS.rawValue)")
            return
        }

        var clientID = connect.clientID
        var assignedID: String?
        if clientID.isEmpty {
            // 3.1 has no empty ids; 3.1.1 only with clean session [3.1.1:MQTT-3.1.3-8]; 5.0 gets one assigned [MQTT-3.2.2-16].
            if version == .v3_1 || (version == .v3_1_1 && !cleanStart) || !policy.allowZeroLengthClientID {
                // 3.1/3.1.1: return code 2; v5: 0x80 Unspecified error, as Mosquitto (01-connect-zero-length-id).
                refuse(version == .v5 ? .unspecifiedError : .clientIdentifierNotValid, "empty client id not allowed")
                return
            }
            clientID = broker.generateClientID(prefix: policy.autoIDPrefix)
            if version == .v5 { assignedID = clientID }
        }
        self.clientID = clientID
        if let prefix = configuration.clientIDPrefixes, !clientID.hasPrefix(prefix) {
            // clientid_prefixes (Mosquitto: CONNACK Not authorized, 3.1.1 code 5).
            refuse(.notAuthorized, "client id does not start with clientid_prefixes")
            return
        }

        if let will = connect.will, configuration.messageSizeLimit > 0, will.payload.readableBytes > configuration.messageSizeLimit {
            // A will payload over message_size_limit: v5 0x95 Packet too large, 3.1/3.1.1 return
            // code 5, as Mosquitto (07-will-oversize-payload).
            refuse(version == .v5 ? .packetTooLarge : .notAuthorized, "will payload over message_size_limit")
            return
        }
        if properties.authenticationMethod != nil {
            refuse(.badAuthenticationMethod, "enhanced authentication is not supported")
            return
        }
        let address = remoteHost
        switch broker.connectionGuard.admit(address, now: context.eventLoop.now) {
        case .banned(let remaining)?:
            refuse(.banned, "address \(address) is banned for \(remaining) s after repeated failed logins")
            return
        case .rateExceeded?:
            refuse(.connectionRateExceeded, "connection rate from \(address) exceeded")
            return
        case nil:
            break
        }
        let verdict: SecurityPolicy.Verdict
        if let source = policy.tlsUsername {
            // As Mosquitto: the certificate's name replaces username and password (the password
            // file is not consulted); no certificate, or no CN, is a bad user name or password.
            if let name = transport.tlsClientIdentity?.username(source) {
                username = name
                verdict = .accepted
            } else {
                verdict = .badCredentials
            }
        } else {
            verdict = policy.security.authenticate(username: connect.username, password: connect.password)
        }
        if policy.useUsernameAsClientID && verdict == .accepted {
            // use_username_as_clientid: the (certificate's or CONNECT's) username is the client
            // id; without one the client is not authorised, as in Mosquitto.
            guard let name = username else {
                refuse(.notAuthorized, "use_username_as_clientid and no username")
                return
            }
            // (An id assigned to an empty one is announced as the username, as Mosquitto does.)
            clientID = name
            self.clientID = name
        }
        switch verdict {
        case .accepted:
            broker.connectionGuard.recordSuccess(address)
        case .badCredentials:
            loginFailed(address)
            // The password file's refusal is "not authorised" (3.1.1 return code 5, v5 0x87), as
            // in Mosquitto; a missing or nameless TLS certificate is a bad user name or password
            // (4 / 0x86), also as in Mosquitto.
            refuse(policy.tlsUsername == nil ? .notAuthorized : .badUserNameOrPassword, "bad user name or password")
            return
        case .notAuthorized:
            loginFailed(address)
            refuse(.notAuthorized, "not authorised")
            return
        }
        if let will = connect.will, will.retain, !configuration.retainAvailable {
            // A will with retain when retain is unavailable [MQTT-3.2.2-13] (v5: 0x9A).
            refuse(.retainNotSupported, "retain not available")
            return
        }

        // Keep alive above max_keepalive: v5 is told the server's value (spec 3.2.2.3.14);
        // 3.1/3.1.1 cannot be told, so Mosquitto (and Midge) refuse it.
        var serverKeepAlive: UInt16?
        let maxKeepAlive = configuration.maxKeepalive
        if maxKeepAlive < 65535 && (connect.keepAlive > maxKeepAlive || connect.keepAlive == 0) {
            if version == .v5 {
                serverKeepAlive = UInt16(maxKeepAlive)
                keepAlive = UInt16(maxKeepAlive)
            } else if connect.keepAlive > maxKeepAlive {
                refuse(.clientIdentifierNotValid, "keepalive \(connect.keepAlive) above max_keepalive \(maxKeepAlive)")
                return
            }
        }

        if version == .v5 {
            connectSessionExpiry = properties.sessionExpiryInterval ?? 0
            outboundWindow = Int(properties.receiveMaximum ?? 65535)
            clientMaximumPacketSize = properties.maximumPacketSize.map { Int($0) } ?? .max
            clientTopicAliasMaximum = properties.topicAliasMaximum ?? 0
        } else {
            // v3: clean session 0 keeps the session until persistent_client_expiration (default never).
            connectSessionExpiry = cleanStart ? 0 : configuration.persistentClientExpiration.map { UInt32(clamping: $0) } ?? UInt32.max
            outboundWindow = configuration.maxInflightMessages > 0 ? configuration.maxInflightMessages : 65535
        }

        if let will = connect.will {
            var willProperties = will.properties
            willDelay = willProperties.willDelayInterval ?? 0
            willProperties.willDelayInterval = nil
            // Compacted: a slice of the read buffer would pin it (and make NIO allocate a new one
            // for the next read) for as long as the connection lives.
            self.will = Message(topic: (policy.mountPoint ?? "") + will.topic, payload: will.payload, qos: will.qos, retain: will.retain,
                                properties: willProperties, receivedAt: context.eventLoop.now, publisherClientID: clientID).compacted()
        }

        clientIDAssigned = assignedID != nil
        keepAliveLowered = serverKeepAlive != nil
        if clientMaximumPacketSize < 65536,
           PacketEncoder.encode(.connack(ConnAckPacket(reasonCode: .success, properties: connAckProperties())), version: .v5).readableBytes
           > clientMaximumPacketSize {
            // Our CONNACK would exceed the client's Maximum Packet Size, which we must not send
            // [MQTT-3.1.2-24]: closed without CONNACK, as Mosquitto (12-prop-maximum-packet-size-connect).
            return refuseSilently("its maximum packet size \(clientMaximumPacketSize) is smaller than the CONNACK")
        }
        state = .attaching
        broker.openSession(clientID: clientID, cleanStart: cleanStart, for: self)
    }

    /// The peer's address without its port (brute-force accounting is per address).
    var remoteHost: String {
        let address = transport.remoteAddress
        guard let colon = address.lastIndex(of: ":") else { return address }
        return String(address[..<colon])
    }

    private func loginFailed(_ address: String) {
        if let banned = broker.connectionGuard.recordFailure(address, now: context.eventLoop.now) {
            log.warning("Address \(address) banned for \(banned) s after repeated failed logins (last as '\(username ?? "")').")
        } else {
            log.notice("Failed login from \(address) as '\(username ?? "")' (client \(logName)).")
        }
    }

    /// v5 CONNACK properties: what the client must know about our limits (derived, not kept:
    /// every connection would otherwise carry a 251-byte Properties value for its lifetime).
    func connAckProperties() -> Properties {
        var connack = Properties()
        guard version == .v5 else { return connack }
        if clientIDAssigned { connack.assignedClientIdentifier = clientID }
        if keepAliveLowered { connack.serverKeepAlive = keepAlive }
        if inboundReceiveMaximum < 65535 { connack.receiveMaximum = UInt16(inboundReceiveMaximum) }
        if policy.maxTopicAlias > 0 { connack.topicAliasMaximum = UInt16(clamping: policy.maxTopicAlias) }
        if configuration.maxPacketSize > 0 { connack.maximumPacketSize = UInt32(clamping: configuration.maxPacketSize) }
        if !configuration.retainAvailable { connack.retainAvailable = 0 }
        // max_qos below 2: announced (a client must not publish above it [MQTT-3.2.2-11]).
        if policy.maxQoS != .exactlyOnce { connack.maximumQoS = policy.maxQoS.rawValue }
        return connack
    }

    /// The broker's Receive Maximum: unacknowledged QoS 2 PUBLISHes a v5 client may have open.
    var inboundReceiveMaximum: Int {
        let limit = configuration.maxInflightMessages
        return limit > 0 && limit < 65535 ? limit : 65535
    }

    /// Refuses the CONNECT with a CONNACK carrying `reason` (mapped to a 3.1.1 return code for
    /// v3 clients) and closes [MQTT-3.2.2-6] [MQTT-3.2.2-7]. The CONNACK has no Reason String
    /// (as Mosquitto's): `why` goes to the broker log.
    private func refuse(_ reason: ReasonCode, _ why: String) {
        var connack = ConnAckPacket(reasonCode: reason)
        // max_qos below 2 is announced in every v5 CONNACK, refusals too (as Mosquitto).
        if version == .v5 && policy.maxQoS != .exactlyOnce { connack.properties.maximumQoS = policy.maxQoS.rawValue }
        // A v5 CONNACK larger than the client's Maximum Packet Size is not sent [MQTT-3.1.2-24].
        if version != .v5 || PacketEncoder.encode(.connack(connack), version: .v5).readableBytes <= clientMaximumPacketSize {
            log.debug("Sending CONNACK to \(clientID) (0, \(reason.rawValue))")
            sendAck(.connack(connack))
        }
        state = .closed
        if configuration.connectionMessages { log.notice("Client \(logName) disconnected, \(why).") }
        closeTransport()
    }

    /// Closes a refused CONNECT without CONNACK (v3 has no return code for it).
    private func refuseSilently(_ why: String) {
        state = .closed
        if configuration.connectionMessages { log.notice("Client \(logName) disconnected, \(why).") }
        closeTransport()
    }

    /// The session is ready on this loop: send CONNACK, resume the session, then handle the
    /// packets that arrived meanwhile.
    func attach(_ session: Session, sessionPresent: Bool) {
        context.assertOnLoop()
        assert(session.loopIndex == context.index, "attach on a loop that does not own the session")
        guard state == .attaching else {
            // The connection went away while the session was being prepared.
            session.expiryInterval = connectSessionExpiry
            if session.connection == nil { broker.sessionDisconnected(session, will: nil, willDelay: 0, sessionContinues: false) }
            return
        }
        self.session = session
        session.cancelTimers()
        session.connection = self
        session.protocolVersion = version
        session.expiryInterval = connectSessionExpiry
        session.username = username
        session.security = policy.security
        session.setOnline(true)
        broker.sessionAttached(session, will: will, willDelay: willDelay)
        broker.noteConnected(1)
        state = .connected

        log.debug("Sending CONNACK to \(clientID) (\(sessionPresent ? 1 : 0), 0)")
        // MQTT 3.1 has no Session Present flag (that CONNACK byte is reserved), so it stays 0 for 3.1
        // clients even when their session is resumed, as in Mosquitto.
        send(.connack(ConnAckPacket(sessionPresent: sessionPresent && version != .v3_1, reasonCode: .success,
                                    properties: connAckProperties())))
        if configuration.connectionMessages {
            let protocolTag: Int = version == .v5 ? 5 : version == .v3_1_1 ? 2 : 1
            var line = "New client connected from \(transport.remoteAddress) as \(clientID) (p\(protocolTag), c\(cleanStart ? 1 : 0), k\(keepAlive)"
            if let username { line += ", u'\(username)'" }
            log.notice(line + ").")
        }
        session.resume(via: self)
        startKeepAlive(keepAlive)
        let pending = pendingPackets
        pendingPackets = []
        for packet in pending where state == .connected { handle(packet) }
    }
}
