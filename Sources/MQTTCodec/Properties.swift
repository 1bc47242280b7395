import NIOCore

/// A v5 User Property: a UTF-8 string pair, order preserved, repeats allowed (spec 3.1.2.11.8).
public struct UserProperty: Hashable, Sendable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) { self.name = name; self.value = value }
}

/// The packets (and the will) a property may appear in; the spec's table 2.4.
public struct PropertyContext: OptionSet, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let connect = PropertyContext(rawValue: 1 << 0)
    public static let connack = PropertyContext(rawValue: 1 << 1)
    public static let publish = PropertyContext(rawValue: 1 << 2)
    public static let will = PropertyContext(rawValue: 1 << 3)
    public static let puback = PropertyContext(rawValue: 1 << 4)   // PUBACK, PUBREC, PUBREL, PUBCOMP
    public static let subscribe = PropertyContext(rawValue: 1 << 5)
    public static let suback = PropertyContext(rawValue: 1 << 6)
    public static let unsubscribe = PropertyContext(rawValue: 1 << 7)
    public static let unsuback = PropertyContext(rawValue: 1 << 8)
    public static let disconnect = PropertyContext(rawValue: 1 << 9)
    public static let auth = PropertyContext(rawValue: 1 << 10)
    public static let all: PropertyContext = [.connect, .connack, .publish, .will, .puback, .subscribe, .suback,
                                              .unsubscribe, .unsuback, .disconnect, .auth]
}

/// Property identifiers (spec 2.2.2.2).
public enum PropertyIdentifier: UInt8, Sendable, CaseIterable {
    case payloadFormatIndicator = 0x01
    case messageExpiryInterval = 0x02
    case contentType = 0x03
    case responseTopic = 0x08
    case correlationData = 0x09
    case subscriptionIdentifier = 0x0B
    case sessionExpiryInterval = 0x11
    case assignedClientIdentifier = 0x12
    case serverKeepAlive = 0x13
    case authenticationMethod = 0x15
    case authenticationData = 0x16
    case requestProblemInformation = 0x17
    case willDelayInterval = 0x18
    case requestResponseInformation = 0x19
    case responseInformation = 0x1A
    case serverReference = 0x1C
    case reasonString = 0x1F
    case receiveMaximum = 0x21
    case topicAliasMaximum = 0x22
    case topicAlias = 0x23
    case maximumQoS = 0x24
    case retainAvailable = 0x25
    case userProperty = 0x26
    case maximumPacketSize = 0x27
    case wildcardSubscriptionAvailable = 0x28
    case subscriptionIdentifierAvailable = 0x29
    case sharedSubscriptionAvailable = 0x2A

    /// Where this property may appear.
    public var contexts: PropertyContext {
        switch self {
        case .payloadFormatIndicator, .messageExpiryInterval, .contentType, .responseTopic, .correlationData:
            return [.publish, .will]
        case .subscriptionIdentifier: return [.publish, .subscribe]
        case .sessionExpiryInterval: return [.connect, .connack, .disconnect]
        case .assignedClientIdentifier, .serverKeepAlive, .responseInformation, .maximumQoS, .retainAvailable,
             .wildcardSubscriptionAvailable, .subscriptionIdentifierAvailable, .sharedSubscriptionAvailable:
            return [.connack]
        case .authenticationMethod, .authenticationData: return [.connect, .connack, .auth]
        case .requestProblemInformation, .requestResponseInformation: return [.connect]
        case .willDelayInterval: return [.will]
        case .serverReference: return [.connack, .disconnect]
        case .reasonString: return [.connack, .puback, .suback, .unsuback, .disconnect, .auth]
        case .receiveMaximum, .topicAliasMaximum, .maximumPacketSize: return [.connect, .connack]
        case .topicAlias: return [.publish]
        case .userProperty: return .all
        }
    }
}

/// The v5 properties of a packet, typed (spec 2.2.2). Absent properties are nil / empty.
public struct Properties: Equatable, Sendable {
    /// The fields, behind one reference: a packet's properties are copied several times on the
    /// way from the decoder to each subscriber, and a copy of this struct is then one retain
    /// instead of a copy of ~250 bytes with a retain per string, buffer and array (copy on write:
    /// a shared storage is copied before it is changed).
    final class Storage: @unchecked Sendable {
        @exclusivity(unchecked) var payloadFormatIndicator: UInt8?
        @exclusivity(unchecked) var messageExpiryInterval: UInt32?
        @exclusivity(unchecked) var contentType: String?
        @exclusivity(unchecked) var responseTopic: String?
        @exclusivity(unchecked) var correlationData: ByteBuffer?
        @exclusivity(unchecked) var subscriptionIdentifiers: [Int] = []
        @exclusivity(unchecked) var sessionExpiryInterval: UInt32?
        @exclusivity(unchecked) var assignedClientIdentifier: String?
        @exclusivity(unchecked) var serverKeepAlive: UInt16?
        @exclusivity(unchecked) var authenticationMethod: String?
        @exclusivity(unchecked) var authenticationData: ByteBuffer?
        @exclusivity(unchecked) var requestProblemInformation: UInt8?
        @exclusivity(unchecked) var willDelayInterval: UInt32?
        @exclusivity(unchecked) var requestResponseInformation: UInt8?
        @exclusivity(unchecked) var responseInformation: String?
        @exclusivity(unchecked) var serverReference: String?
        @exclusivity(unchecked) var reasonString: String?
        @exclusivity(unchecked) var receiveMaximum: UInt16?
        @exclusivity(unchecked) var topicAliasMaximum: UInt16?
        @exclusivity(unchecked) var topicAlias: UInt16?
        @exclusivity(unchecked) var maximumQoS: UInt8?
        @exclusivity(unchecked) var retainAvailable: UInt8?
        @exclusivity(unchecked) var userProperties: [UserProperty] = []
        @exclusivity(unchecked) var maximumPacketSize: UInt32?
        @exclusivity(unchecked) var wildcardSubscriptionAvailable: UInt8?
        @exclusivity(unchecked) var subscriptionIdentifierAvailable: UInt8?
        @exclusivity(unchecked) var sharedSubscriptionAvailable: UInt8?
        /// The encoded message properties (Payload Format Indicator, Content Type, Response Topic,
        /// Correlation Data, User Properties) in the order the sender wrote them, kept only when
        /// that is not the order `write` uses; nil again once one of them is changed.
        @exclusivity(unchecked) var receivedOrder: ByteBuffer?

        init() {}

        func copy() -> Storage {
            let copy = Storage()
            copy.payloadFormatIndicator = payloadFormatIndicator
            copy.messageExpiryInterval = messageExpiryInterval
            copy.contentType = contentType
            copy.responseTopic = responseTopic
            copy.correlationData = correlationData
            copy.subscriptionIdentifiers = subscriptionIdentifiers
            copy.sessionExpiryInterval = sessionExpiryInterval
            copy.assignedClientIdentifier = assignedClientIdentifier
            copy.serverKeepAlive = serverKeepAlive
            copy.authenticationMethod = authenticationMethod
            copy.authenticationData = authenticationData
            copy.requestProblemInformation = requestProblemInformation
            copy.willDelayInterval = willDelayInterval
            copy.requestResponseInformation = requestResponseInformation
            copy.responseInformation = responseInformation
            copy.serverReference = serverReference
            copy.reasonString = reasonString
            copy.receiveMaximum = receiveMaximum
            copy.topicAliasMaximum = topicAliasMaximum
            copy.topicAlias = topicAlias
            copy.maximumQoS = maximumQoS
            copy.retainAvailable = retainAvailable
            copy.userProperties = userProperties
            copy.maximumPacketSize = maximumPacketSize
            copy.wildcardSubscriptionAvailable = wildcardSubscriptionAvailable
            copy.subscriptionIdentifierAvailable = subscriptionIdentifierAvailable
            copy.sharedSubscriptionAvailable = sharedSubscriptionAvailable
            copy.receivedOrder = receivedOrder
            return copy
        }

        static func == (lhs: Storage, rhs: Storage) -> Bool {
            lhs === rhs || (lhs.payloadFormatIndicator == rhs.payloadFormatIndicator
                && lhs.messageExpiryInterval == rhs.messageExpiryInterval
                && lhs.contentType == rhs.contentType
                && lhs.responseTopic == rhs.responseTopic
                && lhs.correlationData == rhs.correlationData
                && lhs.subscriptionIdentifiers == rhs.subscriptionIdentifiers
                && lhs.sessionExpiryInterval == rhs.sessionExpiryInterval
                && lhs.assignedClientIdentifier == rhs.assignedClientIdentifier
                && lhs.serverKeepAlive == rhs.serverKeepAlive
                && lhs.authenticationMethod == rhs.authenticationMethod
                && lhs.authenticationData == rhs.authenticationData
                && lhs.requestProblemInformation == rhs.requestProblemInformation
                && lhs.willDelayInterval == rhs.willDelayInterval
                && lhs.requestResponseInformation == rhs.requestResponseInformation
                && lhs.responseInformation == rhs.responseInformation
                && lhs.serverReference == rhs.serverReference
                && lhs.reasonString == rhs.reasonString
                && lhs.receiveMaximum == rhs.receiveMaximum
                && lhs.topicAliasMaximum == rhs.topicAliasMaximum
                && lhs.topicAlias == rhs.topicAlias
                && lhs.maximumQoS == rhs.maximumQoS
                && lhs.retainAvailable == rhs.retainAvailable
                && lhs.userProperties == rhs.userProperties
                && lhs.maximumPacketSize == rhs.maximumPacketSize
                && lhs.wildcardSubscriptionAvailable == rhs.wildcardSubscriptionAvailable
                && lhs.subscriptionIdentifierAvailable == rhs.subscriptionIdentifierAvailable
                && lhs.sharedSubscriptionAvailable == rhs.sharedSubscriptionAvailable)
        }
    }

    /// Shared by every `Properties()` until one is changed.
    private static let emptyStorage = Storage()
    private var storage: Storage

    @inline(__always)
    private mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    public var payloadFormatIndicator: UInt8? {
        get { storage.payloadFormatIndicator }
        _modify { makeUnique(); storage.receivedOrder = nil; yield &storage.payloadFormatIndicator }
    }
    public var messageExpiryInterval: UInt32? {
        get { storage.messageExpiryInterval }
        _modify { makeUnique(); yield &storage.messageExpiryInterval }
    }
    public var contentType: String? {
        get { storage.contentType }
        _modify { makeUnique(); storage.receivedOrder = nil; yield &storage.contentType }
    }
    public var responseTopic: String? {
        get { storage.responseTopic }
        _modify { makeUnique(); storage.receivedOrder = nil; yield &storage.responseTopic }
    }
    public var correlationData: ByteBuffer? {
        get { storage.correlationData }
        _modify { makeUnique(); storage.receivedOrder = nil; yield &storage.correlationData }
    }
    /// Several on a PUBLISH sent by the server; at most one on SUBSCRIBE.
    public var subscriptionIdentifiers: [Int] {
        get { storage.subscriptionIdentifiers }
        _modify { makeUnique(); yield &storage.subscriptionIdentifiers }
    }
    public var sessionExpiryInterval: UInt32? {
        get { storage.sessionExpiryInterval }
        _modify { makeUnique(); yield &storage.sessionExpiryInterval }
    }
    public var assignedClientIdentifier: String? {
        get { storage.assignedClientIdentifier }
        _modify { makeUnique(); yield &storage.assignedClientIdentifier }
    }
    public var serverKeepAlive: UInt16? {
        get { storage.serverKeepAlive }
        _modify { makeUnique(); yield &storage.serverKeepAlive }
    }
    public var authenticationMethod: String? {
        get { storage.authenticationMethod }
        _modify { makeUnique(); yield &storage.authenticationMethod }
    }
    public var authenticationData: ByteBuffer? {
        get { storage.authenticationData }
        _modify { makeUnique(); yield &storage.authenticationData }
    }
    public var requestProblemInformation: UInt8? {
        get { storage.requestProblemInformation }
        _modify { makeUnique(); yield &storage.requestProblemInformation }
    }
    public var willDelayInterval: UInt32? {
        get { storage.willDelayInterval }
        _modify { makeUnique(); yield &storage.willDelayInterval }
    }
    public var requestResponseInformation: UInt8? {
        get { storage.requestResponseInformation }
        _modify { makeUnique(); yield &storage.requestResponseInformation }
    }
    public var responseInformation: String? {
        get { storage.responseInformation }
        _modify { makeUnique(); yield &storage.responseInformation }
    }
    public var serverReference: String? {
        get { storage.serverReference }
        _modify { makeUnique(); yield &storage.serverReference }
    }
    public var reasonString: String? {
        get { storage.reasonString }
        _modify { makeUnique(); yield &storage.reasonString }
    }
    public var receiveMaximum: UInt16? {
        get { storage.receiveMaximum }
        _modify { makeUnique(); yield &storage.receiveMaximum }
    }
    public var topicAliasMaximum: UInt16? {
        get { storage.topicAliasMaximum }
        _modify { makeUnique(); yield &storage.topicAliasMaximum }
    }
    public var topicAlias: UInt16? {
        get { storage.topicAlias }
        _modify { makeUnique(); yield &storage.topicAlias }
    }
    public var maximumQoS: UInt8? {
        get { storage.maximumQoS }
        _modify { makeUnique(); yield &storage.maximumQoS }
    }
    public var retainAvailable: UInt8? {
        get { storage.retainAvailable }
        _modify { makeUnique(); yield &storage.retainAvailable }
    }
    public var userProperties: [UserProperty] {
        get { storage.userProperties }
        _modify { makeUnique(); storage.receivedOrder = nil; yield &storage.userProperties }
    }
    public var maximumPacketSize: UInt32? {
        get { storage.maximumPacketSize }
        _modify { makeUnique(); yield &storage.maximumPacketSize }
    }
    public var wildcardSubscriptionAvailable: UInt8? {
        get { storage.wildcardSubscriptionAvailable }
        _modify { makeUnique(); yield &storage.wildcardSubscriptionAvailable }
    }
    public var subscriptionIdentifierAvailable: UInt8? {
        get { storage.subscriptionIdentifierAvailable }
        _modify { makeUnique(); yield &storage.subscriptionIdentifierAvailable }
    }
    public var sharedSubscriptionAvailable: UInt8? {
        get { storage.sharedSubscriptionAvailable }
        _modify { makeUnique(); yield &storage.sharedSubscriptionAvailable }
    }

    public init() { storage = Self.emptyStorage }

    public static let none = Properties()

    public static func == (lhs: Properties, rhs: Properties) -> Bool { lhs.storage == rhs.storage }

    public var isEmpty: Bool { storage === Self.emptyStorage || self == Properties.none }

    // MARK: Decoding

    /// Reads a property length and the properties that follow, checking that each is allowed in
    /// `context`, appears at most once where the spec says so, and has a legal value.
    public static func read(from buffer: inout ByteBuffer, context: PropertyContext) throws -> Properties {
        guard let length = try buffer.readVariableByteInteger() else { throw MQTTCodecError.malformed("truncated property length") }
        guard var slice = buffer.readSlice(length: length) else { throw MQTTCodecError.malformed("property length exceeds packet") }
        var properties = Properties()
        var seen: UInt64 = 0
        let start = slice
        // The rank of the last message property read (see `messagePropertyRank`): a lower rank
        // after a higher one means the sender's order is not ours, and is kept (rare, so the
        // common case costs a comparison per property).
        var lastRank = 0
        var reordered = false
        while slice.readableBytes > 0 {
            guard let rawIdentifier = try slice.readVariableByteInteger() else { throw MQTTCodecError.malformed("truncated property identifier") }
            guard rawIdentifier < 0x80, let identifier = PropertyIdentifier(rawValue: UInt8(rawIdentifier)) else {
                throw MQTTCodecError.malformed("unknown property identifier 0x\(String(rawIdentifier, radix: 16))")
            }
            guard identifier.contexts.contains(context) else {
                throw MQTTCodecError.malformed("property \(identifier) is not allowed in this packet")
            }
            let bit: UInt64 = 1 << UInt64(identifier.rawValue)
            let repeatable = identifier == .userProperty || (identifier == .subscriptionIdentifier && context == .publish)
            // Including a property more than once is a Protocol Error (spec 2.2.2.2).
            if seen & bit != 0 && !repeatable { throw MQTTCodecError.protocolError("duplicate property \(identifier)") }
            seen |= bit
            let rank = Self.messagePropertyRank(identifier)
            if rank > 0 {
                if rank < lastRank { reordered = true }
                lastRank = rank
            }
            try properties.readValue(of: identifier, from: &slice)
        }
        if reordered {
            properties.makeUnique()
            properties.storage.receivedOrder = Self.messagePropertiesInOrder(start)
        }
        return properties
    }

    /// 1...5 for the message properties a broker forwards as the publisher sent them, in the
    /// order `write` puts them; 0 for the others.
    @inline(__always)
    static func messagePropertyRank(_ identifier: PropertyIdentifier) -> Int {
        switch identifier {
        case .payloadFormatIndicator: return 1
        case .contentType: return 2
        case .responseTopic: return 3
        case .correlationData: return 4
        case .userProperty: return 5
        default: return 0
        }
    }

    /// The encoded message properties of `slice` (already validated), in their order there.
    private static func messagePropertiesInOrder(_ slice: ByteBuffer) -> ByteBuffer {
        var source = slice
        var result = ByteBufferAllocator().buffer(capacity: slice.readableBytes)
        while source.readableBytes > 0 {
            let entryStart = source.readerIndex
            guard let raw = try? source.readVariableByteInteger(), let identifier = PropertyIdentifier(rawValue: UInt8(raw)) else { break }
            var scratch = Properties()
            guard (try? scratch.readValue(of: identifier, from: &source)) != nil else { break }
            if messagePropertyRank(identifier) > 0, let entry = slice.getSlice(at: entryStart, length: source.readerIndex - entryStart) {
                var bytes = entry
                result.writeBuffer(&bytes)
            }
        }
        return result
    }

    private mutating func readValue(of identifier: PropertyIdentifier, from buffer: inout ByteBuffer) throws {
        let name = "property \(identifier)"
        func zeroOrOne(_ value: UInt8) throws -> UInt8 {
            guard value <= 1 else { throw MQTTCodecError.protocolError("\(identifier) must be 0 or 1") }
            return value
        }
        switch identifier {
        // Any value is kept and forwarded unaltered [MQTT-3.3.2-4]: the spec defines 0 and 1 but
        // does not make another value an error, and Mosquitto forwards it (12-prop-subpub-payload-format).
        case .payloadFormatIndicator: payloadFormatIndicator = try buffer.readMQTTByte(name)
        case .messageExpiryInterval: messageExpiryInterval = try buffer.readMQTTUInt32(name)
        case .contentType: contentType = try buffer.readMQTTString(name)
        case .responseTopic:
            let topic = try buffer.readMQTTString(name)
            // The Response Topic is a Topic Name: no wildcards [MQTT-3.3.2-14].
            guard Topic.isValidName(topic) else { throw MQTTCodecError.protocolError("response topic is not a valid topic name") }
            responseTopic = topic
        case .correlationData: correlationData = try buffer.readMQTTBinary(name)
        case .subscriptionIdentifier:
            guard let value = try buffer.readVariableByteInteger() else { throw MQTTCodecError.malformed("truncated \(name)") }
            // A Subscription Identifier of 0 is a Protocol Error (spec 3.8.2.1.2).
            guard value > 0 else { throw MQTTCodecError.protocolError("subscription identifier 0") }
            subscriptionIdentifiers.append(value)
        case .sessionExpiryInterval: sessionExpiryInterval = try buffer.readMQTTUInt32(name)
        case .assignedClientIdentifier: assignedClientIdentifier = try buffer.readMQTTString(name)
        case .serverKeepAlive: serverKeepAlive = try buffer.readMQTTUInt16(name)
        case .authenticationMethod: authenticationMethod = try buffer.readMQTTString(name)
        case .authenticationData: authenticationData = try buffer.readMQTTBinary(name)
        case .requestProblemInformation: requestProblemInformation = try zeroOrOne(buffer.readMQTTByte(name))
        case .willDelayInterval: willDelayInterval = try buffer.readMQTTUInt32(name)
        case .requestResponseInformation: requestResponseInformation = try zeroOrOne(buffer.readMQTTByte(name))
        case .responseInformation: responseInformation = try buffer.readMQTTString(name)
        case .serverReference: serverReference = try buffer.readMQTTString(name)
        case .reasonString: reasonString = try buffer.readMQTTString(name)
        case .receiveMaximum:
            let value = try buffer.readMQTTUInt16(name)
            // Receive Maximum of 0 is a Protocol Error (spec 3.1.2.11.3).
            guard value > 0 else { throw MQTTCodecError.protocolError("receive maximum 0") }
            receiveMaximum = value
        case .topicAliasMaximum: topicAliasMaximum = try buffer.readMQTTUInt16(name)
        case .topicAlias:
            let value = try buffer.readMQTTUInt16(name)
            // A Topic Alias of 0 is not permitted [MQTT-3.3.2-8].
            guard value > 0 else { throw MQTTCodecError(.topicAliasInvalid, "topic alias 0") }
            topicAlias = value
        case .maximumQoS: maximumQoS = try zeroOrOne(buffer.readMQTTByte(name))
        case .retainAvailable: retainAvailable = try zeroOrOne(buffer.readMQTTByte(name))
        case .userProperty:
            let key = try buffer.readMQTTString(name)
            let value = try buffer.readMQTTString(name)
            userProperties.append(UserProperty(key, value))
        case .maximumPacketSize:
            let value = try buffer.readMQTTUInt32(name)
            // Maximum Packet Size of 0 is a Protocol Error (spec 3.1.2.11.4).
            guard value > 0 else { throw MQTTCodecError.protocolError("maximum packet size 0") }
            maximumPacketSize = value
        case .wildcardSubscriptionAvailable: wildcardSubscriptionAvailable = try zeroOrOne(buffer.readMQTTByte(name))
        case .subscriptionIdentifierAvailable: subscriptionIdentifierAvailable = try zeroOrOne(buffer.readMQTTByte(name))
        case .sharedSubscriptionAvailable: sharedSubscriptionAvailable = try zeroOrOne(buffer.readMQTTByte(name))
        }
    }

    // MARK: Encoding

    /// Length of the encoded properties, without the property-length prefix.
    public var encodedLength: Int {
        var length = 0
        if payloadFormatIndicator != nil { length += 2 }
        if messageExpiryInterval != nil { length += 5 }
        if let contentType { length += 1 + contentType.mqttEncodedLength }
        if let responseTopic { length += 1 + responseTopic.mqttEncodedLength }
        if let correlationData { length += 3 + correlationData.readableBytes }
        for id in subscriptionIdentifiers { length += 1 + ByteBuffer.variableByteIntegerLength(id) }
        if sessionExpiryInterval != nil { length += 5 }
        if let assignedClientIdentifier { length += 1 + assignedClientIdentifier.mqttEncodedLength }
        if serverKeepAlive != nil { length += 3 }
        if let authenticationMethod { length += 1 + authenticationMethod.mqttEncodedLength }
        if let authenticationData { length += 3 + authenticationData.readableBytes }
        if requestProblemInformation != nil { length += 2 }
        if willDelayInterval != nil { length += 5 }
        if requestResponseInformation != nil { length += 2 }
        if let responseInformation { length += 1 + responseInformation.mqttEncodedLength }
        if let serverReference { length += 1 + serverReference.mqttEncodedLength }
        if let reasonString { length += 1 + reasonString.mqttEncodedLength }
        if receiveMaximum != nil { length += 3 }
        if topicAliasMaximum != nil { length += 3 }
        if topicAlias != nil { length += 3 }
        if maximumQoS != nil { length += 2 }
        if retainAvailable != nil { length += 2 }
        for property in userProperties { length += 1 + property.name.mqttEncodedLength + property.value.mqttEncodedLength }
        if maximumPacketSize != nil { length += 5 }
        if wildcardSubscriptionAvailable != nil { length += 2 }
        if subscriptionIdentifierAvailable != nil { length += 2 }
        if sharedSubscriptionAvailable != nil { length += 2 }
        return length
    }

    /// Length including the variable-byte-integer prefix.
    public var encodedLengthWithPrefix: Int {
        let length = encodedLength
        return ByteBuffer.variableByteIntegerLength(length) + length
    }

    /// Writes the property length then the properties.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeVariableByteInteger(encodedLength)
        writeBody(to: &buffer)
    }

    /// A CONNACK's properties in the order Mosquitto writes them (Topic Alias Maximum, Server Keep
    /// Alive, Assigned Client Identifier, Retain Available, Maximum Packet Size, Receive Maximum,
    /// Maximum QoS, then the rest): any order is valid MQTT, but clients and Mosquitto's own
    /// test suite compare CONNACKs byte for byte.
    public func writeConnAckOrder(to buffer: inout ByteBuffer) {
        buffer.writeVariableByteInteger(encodedLength)
        func id(_ identifier: PropertyIdentifier) { buffer.writeInteger(identifier.rawValue) }
        if let v = topicAliasMaximum { id(.topicAliasMaximum); buffer.writeInteger(v) }
        if let v = serverKeepAlive { id(.serverKeepAlive); buffer.writeInteger(v) }
        if let v = assignedClientIdentifier { id(.assignedClientIdentifier); buffer.writeMQTTString(v) }
        if let v = retainAvailable { id(.retainAvailable); buffer.writeInteger(v) }
        if let v = maximumPacketSize { id(.maximumPacketSize); buffer.writeInteger(v) }
        if let v = receiveMaximum { id(.receiveMaximum); buffer.writeInteger(v) }
        if let v = maximumQoS { id(.maximumQoS); buffer.writeInteger(v) }
        var rest = self
        rest.topicAliasMaximum = nil
        rest.serverKeepAlive = nil
        rest.assignedClientIdentifier = nil
        rest.retainAvailable = nil
        rest.maximumPacketSize = nil
        rest.receiveMaximum = nil
        rest.maximumQoS = nil
        rest.writeBody(to: &buffer)
    }

    /// The properties without their length: in identifier order, but for the message properties
    /// of a PUBLISH or will, which come last as Mosquitto writes them: Payload Format Indicator,
    /// Content Type, Response Topic, Correlation Data and User Properties (in the order the
    /// publisher sent them, if it was another), then Message Expiry Interval.
    private func writeBody(to buffer: inout ByteBuffer) {
        func id(_ identifier: PropertyIdentifier) { buffer.writeInteger(identifier.rawValue) }
        for v in subscriptionIdentifiers { id(.subscriptionIdentifier); buffer.writeVariableByteInteger(v) }
        if let v = sessionExpiryInterval { id(.sessionExpiryInterval); buffer.writeInteger(v) }
        if let v = assignedClientIdentifier { id(.assignedClientIdentifier); buffer.writeMQTTString(v) }
        if let v = serverKeepAlive { id(.serverKeepAlive); buffer.writeInteger(v) }
        if let v = authenticationMethod { id(.authenticationMethod); buffer.writeMQTTString(v) }
        if let v = authenticationData { id(.authenticationData); buffer.writeMQTTBinary(v) }
        if let v = requestProblemInformation { id(.requestProblemInformation); buffer.writeInteger(v) }
        if let v = willDelayInterval { id(.willDelayInterval); buffer.writeInteger(v) }
        if let v = requestResponseInformation { id(.requestResponseInformation); buffer.writeInteger(v) }
        if let v = responseInformation { id(.responseInformation); buffer.writeMQTTString(v) }
        if let v = serverReference { id(.serverReference); buffer.writeMQTTString(v) }
        if let v = reasonString { id(.reasonString); buffer.writeMQTTString(v) }
        if let v = receiveMaximum { id(.receiveMaximum); buffer.writeInteger(v) }
        if let v = topicAliasMaximum { id(.topicAliasMaximum); buffer.writeInteger(v) }
        if let v = topicAlias { id(.topicAlias); buffer.writeInteger(v) }
        if let v = maximumQoS { id(.maximumQoS); buffer.writeInteger(v) }
        if let v = retainAvailable { id(.retainAvailable); buffer.writeInteger(v) }
        if let v = maximumPacketSize { id(.maximumPacketSize); buffer.writeInteger(v) }
        if let v = wildcardSubscriptionAvailable { id(.wildcardSubscriptionAvailable); buffer.writeInteger(v) }
        if let v = subscriptionIdentifierAvailable { id(.subscriptionIdentifierAvailable); buffer.writeInteger(v) }
        if let v = sharedSubscriptionAvailable { id(.sharedSubscriptionAvailable); buffer.writeInteger(v) }
        if var ordered = storage.receivedOrder {
            buffer.writeBuffer(&ordered)
        } else {
            if let v = payloadFormatIndicator { id(.payloadFormatIndicator); buffer.writeInteger(v) }
            if let v = contentType { id(.contentType); buffer.writeMQTTString(v) }
            if let v = responseTopic { id(.responseTopic); buffer.writeMQTTString(v) }
            if let v = correlationData { id(.correlationData); buffer.writeMQTTBinary(v) }
            for p in userProperties { id(.userProperty); buffer.writeMQTTString(p.name); buffer.writeMQTTString(p.value) }
        }
        if let v = messageExpiryInterval { id(.messageExpiryInterval); buffer.writeInteger(v) }
    }
}
