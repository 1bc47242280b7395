import NIOCore

/// Decodes MQTT control packets from a byte stream.
///
/// Stateful only in the protocol version: a server-side decoder learns it from the CONNECT it
/// decodes (v3.1.1 rules apply until then); a client-side decoder is told it up front.
public struct PacketDecoder: Sendable {
    /// The protocol version packets are decoded for; set by decoding a CONNECT.
    public var protocolVersion: ProtocolVersion?
    /// Packets whose total size exceeds this are rejected with 0x95 from the fixed header alone,
    /// before their body is buffered. `Int.max` means no limit beyond the protocol's own.
    /// (An MQTT packet is at most 268 435 460 bytes, so 32 bits hold every meaningful limit and
    /// keep the decoder, which every connection carries, small.)
    public var maximumPacketSize: Int {
        get { maximumPacketSizeStorage == .max ? .max : Int(maximumPacketSizeStorage) }
        set { maximumPacketSizeStorage = UInt32(clamping: newValue) }
    }
    private var maximumPacketSizeStorage: UInt32
    /// A server's decoder refuses a PUBLISH whose topic has more than `topicLevelLimit` "/"
    /// separators with a Protocol Error, as Mosquitto does; a client's decoder accepts any topic.
    public var limitsTopicLevels: Bool

    /// Mosquitto's limit: a topic name or filter may hold at most this many "/" separators.
    public static let topicLevelLimit = 200

    public init(protocolVersion: ProtocolVersion? = nil, maximumPacketSize: Int = .max, limitsTopicLevels: Bool = false) {
        self.protocolVersion = protocolVersion
        self.maximumPacketSizeStorage = UInt32(clamping: maximumPacketSize)
        self.limitsTopicLevels = limitsTopicLevels
    }

    /// Decodes the next complete packet from `buffer`, consuming its bytes. Returns nil (consuming
    /// nothing) when the packet is not complete yet.
    public mutating func decode(from buffer: inout ByteBuffer) throws -> MQTTPacket? {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        var cursor = buffer
        cursor.moveReaderIndex(forwardBy: 1)
        // Every error names the packet type of the first byte (the broker's answer depends on it).
        let packet: MQTTPacket
        do {
            guard let remainingLength = try cursor.readVariableByteInteger() else { return nil }
            let headerLength = cursor.readerIndex - start
            if headerLength + remainingLength > maximumPacketSize {
                throw MQTTCodecError(.packetTooLarge, "packet of \(headerLength + remainingLength) bytes exceeds the maximum packet size \(maximumPacketSize)")
            }
            guard var body = cursor.readSlice(length: remainingLength) else { return nil }
            packet = try decodePacket(first: first, body: &body)
        } catch var error as MQTTCodecError {
            error.packetType = PacketType(rawValue: first >> 4)
            throw error
        }
        buffer.moveReaderIndex(to: cursor.readerIndex)
        return packet
    }

    /// Decodes one packet from its first byte and its body (exactly the remaining length).
    public mutating func decodePacket(first: UInt8, body: inout ByteBuffer) throws -> MQTTPacket {
        let flags = first & 0x0F
        guard let type = PacketType(rawValue: first >> 4) else {
            throw MQTTCodecError.malformed("reserved packet type 0")
        }
        let version = protocolVersion ?? .v3_1_1
        // Fixed header flags are fixed for every type but PUBLISH: 0b0010 for PUBREL, SUBSCRIBE and
        // UNSUBSCRIBE, zero otherwise; anything else is a Malformed Packet [MQTT-2.1.3-1].
        if type != .publish {
            let qos1 = type == .pubrel || type == .subscribe || type == .unsubscribe
            let expected: UInt8 = qos1 ? 0x02 : 0x00
            // MQTT 3.1 (section 2.1) lets a client set DUP on a PUBREL, SUBSCRIBE or UNSUBSCRIBE it
            // sends again; 3.1.1 and 5.0 fixed the flags to 0b0010.
            let allowed = qos1 && version == .v3_1 ? flags & ~0x08 : flags
            guard allowed == expected else { throw MQTTCodecError.malformed("invalid fixed header flags for \(type)") }
        }
        let packet: MQTTPacket
        switch type {
        case .connect: packet = .connect(try decodeConnect(&body))
        case .connack: packet = .connack(try Self.decodeConnAck(&body, version: version))
        case .publish: packet = .publish(try Self.decodePublish(flags: flags, body: &body, version: version, limitsTopicLevels: limitsTopicLevels))
        case .puback: packet = .puback(try Self.decodePubAck(&body, version: version))
        case .pubrec: packet = .pubrec(try Self.decodePubAck(&body, version: version))
        case .pubrel: packet = .pubrel(try Self.decodePubAck(&body, version: version))
        case .pubcomp: packet = .pubcomp(try Self.decodePubAck(&body, version: version))
        case .subscribe: packet = .subscribe(try Self.decodeSubscribe(&body, version: version))
        case .suback: packet = .suback(try Self.decodeSubAck(&body, version: version))
        case .unsubscribe: packet = .unsubscribe(try Self.decodeUnsubscribe(&body, version: version))
        case .unsuback: packet = .unsuback(try Self.decodeUnsubAck(&body, version: version))
        case .pingreq, .pingresp:
            guard body.readableBytes == 0 else { throw MQTTCodecError.malformed("\(type) with a non-zero remaining length") }
            packet = type == .pingreq ? .pingreq : .pingresp
        case .disconnect: packet = .disconnect(try Self.decodeDisconnect(&body, version: version))
        case .auth:
            guard version == .v5 else { throw MQTTCodecError.malformed("AUTH is reserved before MQTT 5") }
            packet = .auth(try Self.decodeAuth(&body))
        }
        guard body.readableBytes == 0 else {
            throw MQTTCodecError.malformed("\(body.readableBytes) unexpected bytes at the end of \(type)")
        }
        return packet
    }

    // MARK: CONNECT

    private mutating func decodeConnect(_ body: inout ByteBuffer) throws -> ConnectPacket {
        let name = try body.readMQTTString("protocol name")
        let level = try body.readMQTTByte("protocol level")
        guard name == "MQTT" || name == "MQIsdp" else {
            throw MQTTCodecError.protocolError("invalid protocol name '\(name)'")
        }
        // A known name with an unknown level is answered with CONNACK 0x01 / 0x84 [MQTT-3.1.2-2].
        guard let version = ProtocolVersion(rawValue: level), version.protocolName == name else {
            throw MQTTCodecError(.unsupportedProtocolVersion, "unsupported protocol level \(level) for '\(name)'")
        }
        protocolVersion = version
        let flags = try body.readMQTTByte("connect flags")
        // The reserved flag must be zero [MQTT-3.1.2-3].
        guard flags & 0x01 == 0 else { throw MQTTCodecError.malformed("reserved connect flag set") }
        let cleanStart = flags & 0x02 != 0
        let hasWill = flags & 0x04 != 0
        let willQoSBits = (flags >> 3) & 0x03
        let willRetain = flags & 0x20 != 0
        let hasPassword = flags & 0x40 != 0
        let hasUsername = flags & 0x80 != 0
        if hasWill {
            guard let qos = QoS(rawValue: willQoSBits) else { throw MQTTCodecError.malformed("will QoS 3") }
            _ = qos
        } else if willQoSBits != 0 || willRetain {
            // Without a will, Will QoS and Will Retain must be 0 [MQTT-3.1.2-11] [MQTT-3.1.2-13].
            throw MQTTCodecError.malformed("will QoS or retain set without a will flag")
        }
        // 3.1.1: a password without a user name is not allowed [3.1.1:MQTT-3.1.2-22]; 5.0 allows it.
        if hasPassword && !hasUsername && version != .v5 {
            throw MQTTCodecError.malformed("password flag set without user name flag")
        }
        let keepAlive = try body.readMQTTUInt16("keep alive")
        let properties = version == .v5 ? try Properties.read(from: &body, context: .connect) : .none
        let clientID = try body.readMQTTString("client identifier")
        var will: Will?
        if hasWill {
            let willProperties = version == .v5 ? try Properties.read(from: &body, context: .will) : .none
            let topic = try body.readMQTTString("will topic")
            // The will topic is a Topic Name [MQTT-3.1.3-11].
            guard Topic.isValidName(topic) else { throw MQTTCodecError(.topicNameInvalid, "invalid will topic '\(topic)'") }
            let payload = try body.readMQTTBinary("will payload")
            will = Will(topic: topic, payload: payload, qos: QoS(rawValue: willQoSBits)!, retain: willRetain, properties: willProperties)
        }
        let username = hasUsername ? try body.readMQTTString("user name") : nil
        let password = hasPassword ? try body.readMQTTBinary("password") : nil
        return ConnectPacket(protocolVersion: version, cleanStart: cleanStart, keepAlive: keepAlive, clientID: clientID,
                             will: will, username: username, password: password, properties: properties)
    }

    // MARK: Other packets

    static func decodeConnAck(_ body: inout ByteBuffer, version: ProtocolVersion) throws -> ConnAckPacket {
        let flags = try body.readMQTTByte("connack flags")
        guard flags & 0xFE == 0 else { throw MQTTCodecError.malformed("reserved connack flags set") }
        let code = try body.readMQTTByte("connack code")
        if version == .v5 {
            let properties = body.readableBytes > 0 ? try Properties.read(from: &body, context: .connack) : .none
            return ConnAckPacket(sessionPresent: flags == 1, reasonCode: ReasonCode(rawValue: code), properties: properties)
        }
        guard let returnCode = ConnectReturnCode(rawValue: code) else { throw MQTTCodecError.malformed("unknown connack return code \(code)") }
        let reason: ReasonCode
        switch returnCode {
        case .accepted: reason = .success
        case .unacceptableProtocolVersion: reason = .unsupportedProtocolVersion
        case .identifierRejected: reason = .clientIdentifierNotValid
        case .serverUnavailable: reason = .serverUnavailable
        case .badUsernameOrPassword: reason = .badUserNameOrPassword
        case .notAuthorized: reason = .notAuthorized
        }
        return ConnAckPacket(sessionPresent: flags == 1, reasonCode: reason, returnCode: returnCode)
    }

    static func decodePublish(flags: UInt8, body: inout ByteBuffer, version: ProtocolVersion, limitsTopicLevels: Bool = false) throws -> PublishPacket {
        guard let qos = QoS(rawValue: (flags >> 1) & 0x03) else {
            // QoS 3 is a Malformed Packet [MQTT-3.3.1-4].
            throw MQTTCodecError.malformed("PUBLISH with QoS 3")
        }
        let dup = flags & 0x08 != 0
        let retain = flags & 0x01 != 0
        // DUP must be 0 for QoS 0 [MQTT-3.3.1-2].
        if qos == .atMostOnce && dup { throw MQTTCodecError.malformed("PUBLISH with QoS 0 and DUP set") }
        let topic = try body.readMQTTString("topic name")
        // A topic name never holds wildcards [MQTT-3.3.2-2]; an empty one is allowed only with a topic alias (v5).
        var separators = 0
        for byte in topic.utf8 where byte <= UInt8(ascii: "/") {
            if byte == UInt8(ascii: "/") {
                separators += 1
            } else if byte == UInt8(ascii: "+") || byte == UInt8(ascii: "#") {
                throw MQTTCodecError(.topicNameInvalid, "topic name '\(topic)' contains a wildcard")
            }
        }
        if limitsTopicLevels && separators > topicLevelLimit {
            throw MQTTCodecError.protocolError("topic name with more than \(topicLevelLimit) '/' separators")
        }
        var packetID: UInt16 = 0
        if qos != .atMostOnce {
            packetID = try body.readMQTTUInt16("packet identifier")
            // QoS > 0 PUBLISH needs a non-zero packet identifier [MQTT-2.2.1-3].
            guard packetID != 0 else { throw MQTTCodecError.protocolError("PUBLISH with packet identifier 0") }
        }
        let properties = version == .v5 ? try Properties.read(from: &body, context: .publish) : .none
        if topic.isEmpty && properties.topicAlias == nil {
            throw MQTTCodecError(version == .v5 ? .protocolError : .malformedPacket, "empty topic name")
        }
        let payload = body.readSlice(length: body.readableBytes)!
        return PublishPacket(topic: topic, payload: payload, qos: qos, retain: retain, dup: dup, packetID: packetID, properties: properties)
    }

    static func decodePubAck(_ body: inout ByteBuffer, version: ProtocolVersion) throws -> PubAckPacket {
        let packetID = try body.readMQTTUInt16("packet identifier")
        guard packetID != 0 else { throw MQTTCodecError.protocolError("packet identifier 0") }
        guard version == .v5 else { return PubAckPacket(packetID: packetID) }
        // v5: a remaining length of 2 means Success and no properties (spec 3.4.2.1).
        guard body.readableBytes > 0 else { return PubAckPacket(packetID: packetID) }
        let reason = ReasonCode(rawValue: try body.readMQTTByte("reason code"))
        let properties = body.readableBytes > 0 ? try Properties.read(from: &body, context: .puback) : .none
        return PubAckPacket(packetID: packetID, reasonCode: reason, properties: properties)
    }

    static func decodeSubscribe(_ body: inout ByteBuffer, version: ProtocolVersion) throws -> SubscribePacket {
        let packetID = try body.readMQTTUInt16("packet identifier")
        guard packetID != 0 else { throw MQTTCodecError.protocolError("SUBSCRIBE with packet identifier 0") }
        let properties = version == .v5 ? try Properties.read(from: &body, context: .subscribe) : .none
        if properties.subscriptionIdentifiers.count > 1 { throw MQTTCodecError.protocolError("more than one subscription identifier") }
        var subscriptions: [TopicSubscription] = []
        while body.readableBytes > 0 {
            let filter = try Self.readTopicFilter(&body)
            let options = try body.readMQTTByte("subscription options")
            if version == .v5 {
                // Bits 6 and 7 are reserved [MQTT-3.8.3-5]; Maximum QoS 3 and Retain Handling 3 are
                // Protocol Errors (spec 3.8.3.1).
                guard options & 0xC0 == 0 else { throw MQTTCodecError.malformed("reserved subscription option bits set") }
                guard let qos = QoS(rawValue: options & 0x03) else { throw MQTTCodecError.protocolError("subscription QoS 3") }
                guard let handling = RetainHandling(rawValue: (options >> 4) & 0x03) else {
                    throw MQTTCodecError.protocolError("retain handling 3")
                }
                let noLocal = options & 0x04 != 0
                // No Local on a Shared Subscription is a Protocol Error [MQTT-3.8.3-4].
                // Byte-wise, as Topic.parseShared decides what is shared (String's hasPrefix
                // compares Characters: "$share/" + a combining mark would not match).
                if noLocal && filter.utf8.starts(with: "$share/".utf8) {
                    throw MQTTCodecError.protocolError("no local set on shared subscription '\(filter)'")
                }
                subscriptions.append(TopicSubscription(filter: filter, options: SubscriptionOptions(
                    qos: qos, noLocal: noLocal, retainAsPublished: options & 0x08 != 0, retainHandling: handling)))
            } else {
                guard let qos = QoS(rawValue: options & 0x03) else { throw MQTTCodecError.malformed("subscription QoS 3") }
                // 3.1.1: the upper six bits are reserved and must be zero [3.1.1:MQTT-3.8.3-4].
                guard options & 0xFC == 0 else { throw MQTTCodecError.malformed("reserved subscription option bits set") }
                subscriptions.append(TopicSubscription(filter: filter, options: SubscriptionOptions(qos: qos)))
            }
        }
        // A SUBSCRIBE with no topic filter is a Protocol Error [MQTT-3.8.3-2] [3.1.1:MQTT-3.8.3-3].
        guard !subscriptions.isEmpty else { throw MQTTCodecError.protocolError("SUBSCRIBE with no topic filters") }
        return SubscribePacket(packetID: packetID, subscriptions: subscriptions, properties: properties)
    }

    /// A SUBSCRIBE or UNSUBSCRIBE topic filter. As in Mosquitto, a filter that is not valid (empty
    /// [MQTT-4.7.3-1], a wildcard misplaced [MQTT-4.7.1-1] [MQTT-4.7.1-2], a malformed shared
    /// subscription [MQTT-4.8.2-1] [MQTT-4.8.2-2], or more than `topicLevelLimit` "/" separators)
    /// makes the packet Malformed: v5 DISCONNECT 0x81, 3.1.1 closed (13-malformed-subscribe-v5,
    /// 02-subscribe-long-topic).
    static func readTopicFilter(_ body: inout ByteBuffer) throws -> String {
        let filter = try body.readMQTTString("topic filter")
        guard Topic.parseShared(filter)?.isValid ?? Topic.isValidFilter(filter) else {
            throw MQTTCodecError.malformed("invalid topic filter '\(filter)'")
        }
        var separators = 0
        for byte in filter.utf8 where byte == UInt8(ascii: "/") { separators += 1 }
        guard separators <= topicLevelLimit else {
            throw MQTTCodecError.malformed("topic filter with more than \(topicLevelLimit) '/' separators")
        }
        return filter
    }

    static func decodeSubAck(_ body: inout ByteBuffer, version: ProtocolVersion) throws -> SubAckPacket {
        let packetID = try body.readMQTTUInt16("packet identifier")
        let properties = version == .v5 ? try Properties.read(from: &body, context: .suback) : .none
        var codes: [ReasonCode] = []
        while body.readableBytes > 0 {
            let code = try body.readMQTTByte("reason code")
            // 3.1/3.1.1 allow only 0x00, 0x01, 0x02 and 0x80; the others are reserved [3.1.1:MQTT-3.9.3-2].
            if version != .v5 && code > 2 && code != 0x80 {
                throw MQTTCodecError.malformed("SUBACK return code 0x\(String(code, radix: 16)) is reserved")
            }
            codes.append(ReasonCode(rawValue: code))
        }
        return SubAckPacket(packetID: packetID, reasonCodes: codes, properties: properties)
    }

    static func decodeUnsubscribe(_ body: inout ByteBuffer, version: ProtocolVersion) throws -> UnsubscribePacket {
        let packetID = try body.readMQTTUInt16("packet identifier")
        guard packetID != 0 else { throw MQTTCodecError.protocolError("UNSUBSCRIBE with packet identifier 0") }
        let properties = version == .v5 ? try Properties.read(from: &body, context: .unsubscribe) : .none
        var filters: [String] = []
        while body.readableBytes > 0 {
            filters.append(try Self.readTopicFilter(&body))
        }
        // An UNSUBSCRIBE with no topic filter is a Protocol Error [MQTT-3.10.3-2].
        guard !filters.isEmpty else { throw MQTTCodecError.protocolError("UNSUBSCRIBE with no topic filters") }
        return UnsubscribePacket(packetID: packetID, filters: filters, properties: properties)
    }

    static func decodeUnsubAck(_ body: inout ByteBuffer, version: ProtocolVersion) throws -> UnsubAckPacket {
        let packetID = try body.readMQTTUInt16("packet identifier")
        guard version == .v5 else { return UnsubAckPacket(packetID: packetID) }
        let properties = try Properties.read(from: &body, context: .unsuback)
        var codes: [ReasonCode] = []
        while body.readableBytes > 0 { codes.append(ReasonCode(rawValue: try body.readMQTTByte("reason code"))) }
        return UnsubAckPacket(packetID: packetID, reasonCodes: codes, properties: properties)
    }

    static func decodeDisconnect(_ body: inout ByteBuffer, version: ProtocolVersion) throws -> DisconnectPacket {
        guard version == .v5 else {
            guard body.readableBytes == 0 else { throw MQTTCodecError.malformed("DISCONNECT with a non-zero remaining length") }
            return DisconnectPacket()
        }
        guard body.readableBytes > 0 else { return DisconnectPacket() }
        let reason = ReasonCode(rawValue: try body.readMQTTByte("reason code"))
        let properties = body.readableBytes > 0 ? try Properties.read(from: &body, context: .disconnect) : .none
        return DisconnectPacket(reasonCode: reason, properties: properties)
    }

    static func decodeAuth(_ body: inout ByteBuffer) throws -> AuthPacket {
        guard body.readableBytes > 0 else { return AuthPacket() }
        let reason = ReasonCode(rawValue: try body.readMQTTByte("reason code"))
        let properties = body.readableBytes > 0 ? try Properties.read(from: &body, context: .auth) : .none
        return AuthPacket(reasonCode: reason, properties: properties)
    }
}
