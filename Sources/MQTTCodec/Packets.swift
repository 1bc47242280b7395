import NIOCore

/// Control packet types (spec 2.1.2).
public enum PacketType: UInt8, Sendable, CustomStringConvertible {
    case connect = 1, connack, publish, puback, pubrec, pubrel, pubcomp
    case subscribe, suback, unsubscribe, unsuback, pingreq, pingresp, disconnect, auth

    public var description: String {
        switch self {
        case .connect: return "CONNECT"
        case .connack: return "CONNACK"
        case .publish: return "PUBLISH"
        case .puback: return "PUBACK"
        case .pubrec: return "PUBREC"
        case .pubrel: return "PUBREL"
        case .pubcomp: return "PUBCOMP"
        case .subscribe: return "SUBSCRIBE"
        case .suback: return "SUBACK"
        case .unsubscribe: return "UNSUBSCRIBE"
        case .unsuback: return "UNSUBACK"
        case .pingreq: return "PINGREQ"
        case .pingresp: return "PINGRESP"
        case .disconnect: return "DISCONNECT"
        case .auth: return "AUTH"
        }
    }
}

/// The will message carried in CONNECT.
public struct Will: Equatable, Sendable {
    public var topic: String
    public var payload: ByteBuffer
    public var qos: QoS
    public var retain: Bool
    public var properties: Properties

    public init(topic: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false, properties: Properties = .none) {
        self.topic = topic; self.payload = payload; self.qos = qos; self.retain = retain; self.properties = properties
    }
}

public struct ConnectPacket: Equatable, Sendable {
    public var protocolVersion: ProtocolVersion
    public var cleanStart: Bool
    public var keepAlive: UInt16
    public var clientID: String
    public var will: Will?
    public var username: String?
    public var password: ByteBuffer?
    public var properties: Properties

    public init(protocolVersion: ProtocolVersion = .v5, cleanStart: Bool = true, keepAlive: UInt16 = 60, clientID: String,
                will: Will? = nil, username: String? = nil, password: ByteBuffer? = nil, properties: Properties = .none) {
        self.protocolVersion = protocolVersion; self.cleanStart = cleanStart; self.keepAlive = keepAlive
        self.clientID = clientID; self.will = will; self.username = username; self.password = password
        self.properties = properties
    }
}

public struct ConnAckPacket: Equatable, Sendable {
    public var sessionPresent: Bool
    /// v5 reason code; for v3 it is mapped to a ConnectReturnCode on the wire.
    public var reasonCode: ReasonCode
    /// When set, written as-is for v3 (lets a v3 answer carry an exact return code).
    public var returnCode: ConnectReturnCode?
    public var properties: Properties

    public init(sessionPresent: Bool = false, reasonCode: ReasonCode = .success, returnCode: ConnectReturnCode? = nil, properties: Properties = .none) {
        self.sessionPresent = sessionPresent; self.reasonCode = reasonCode; self.returnCode = returnCode; self.properties = properties
    }
}

public struct PublishPacket: Equatable, Sendable {
    public var topic: String
    public var payload: ByteBuffer
    public var qos: QoS
    public var retain: Bool
    public var dup: Bool
    /// Present only when qos > 0.
    public var packetID: UInt16
    public var properties: Properties

    public init(topic: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false, dup: Bool = false,
                packetID: UInt16 = 0, properties: Properties = .none) {
        self.topic = topic; self.payload = payload; self.qos = qos; self.retain = retain; self.dup = dup
        self.packetID = packetID; self.properties = properties
    }
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape: a packet id, and for v5 a reason code and properties.
public struct PubAckPacket: Equatable, Sendable {
    public var packetID: UInt16
    public var reasonCode: ReasonCode
    public var properties: Properties

    public init(packetID: UInt16, reasonCode: ReasonCode = .success, properties: Properties = .none) {
        self.packetID = packetID; self.reasonCode = reasonCode; self.properties = properties
    }
}

/// Retain Handling subscription option (spec 3.8.3.1).
public enum RetainHandling: UInt8, Sendable {
    case sendOnSubscribe = 0
    case sendOnNewSubscribe = 1
    case doNotSend = 2
}

public struct SubscriptionOptions: Equatable, Sendable {
    public var qos: QoS
    public var noLocal: Bool
    public var retainAsPublished: Bool
    public var retainHandling: RetainHandling

    public init(qos: QoS = .atMostOnce, noLocal: Bool = false, retainAsPublished: Bool = false, retainHandling: RetainHandling = .sendOnSubscribe) {
        self.qos = qos; self.noLocal = noLocal; self.retainAsPublished = retainAsPublished; self.retainHandling = retainHandling
    }

    var byte: UInt8 {
        qos.rawValue | (noLocal ? 0x04 : 0) | (retainAsPublished ? 0x08 : 0) | (retainHandling.rawValue << 4)
    }
}

public struct TopicSubscription: Equatable, Sendable {
    public var filter: String
    public var options: SubscriptionOptions
    public init(filter: String, options: SubscriptionOptions = .init()) { self.filter = filter; self.options = options }
}

public struct SubscribePacket: Equatable, Sendable {
    public var packetID: UInt16
    public var subscriptions: [TopicSubscription]
    public var properties: Properties
    public init(packetID: UInt16, subscriptions: [TopicSubscription], properties: Properties = .none) {
        self.packetID = packetID; self.subscriptions = subscriptions; self.properties = properties
    }
}

public struct SubAckPacket: Equatable, Sendable {
    public var packetID: UInt16
    /// v5 reason codes; v3 return codes are 0, 1, 2 or 0x80 (any failure code is written as 0x80).
    public var reasonCodes: [ReasonCode]
    public var properties: Properties
    public init(packetID: UInt16, reasonCodes: [ReasonCode], properties: Properties = .none) {
        self.packetID = packetID; self.reasonCodes = reasonCodes; self.properties = properties
    }
}

public struct UnsubscribePacket: Equatable, Sendable {
    public var packetID: UInt16
    public var filters: [String]
    public var properties: Properties
    public init(packetID: UInt16, filters: [String], properties: Properties = .none) {
        self.packetID = packetID; self.filters = filters; self.properties = properties
    }
}

public struct UnsubAckPacket: Equatable, Sendable {
    public var packetID: UInt16
    /// v5 only; v3 UNSUBACK has no payload.
    public var reasonCodes: [ReasonCode]
    public var properties: Properties
    public init(packetID: UInt16, reasonCodes: [ReasonCode] = [], properties: Properties = .none) {
        self.packetID = packetID; self.reasonCodes = reasonCodes; self.properties = properties
    }
}

public struct DisconnectPacket: Equatable, Sendable {
    public var reasonCode: ReasonCode
    public var properties: Properties
    public init(reasonCode: ReasonCode = .normalDisconnection, properties: Properties = .none) {
        self.reasonCode = reasonCode; self.properties = properties
    }
}

public struct AuthPacket: Equatable, Sendable {
    public var reasonCode: ReasonCode
    public var properties: Properties
    public init(reasonCode: ReasonCode = .success, properties: Properties = .none) {
        self.reasonCode = reasonCode; self.properties = properties
    }
}

/// One MQTT control packet.
public enum MQTTPacket: Equatable, Sendable {
    case connect(ConnectPacket)
    case connack(ConnAckPacket)
    case publish(PublishPacket)
    case puback(PubAckPacket)
    case pubrec(PubAckPacket)
    case pubrel(PubAckPacket)
    case pubcomp(PubAckPacket)
    case subscribe(SubscribePacket)
    case suback(SubAckPacket)
    case unsubscribe(UnsubscribePacket)
    case unsuback(UnsubAckPacket)
    case pingreq
    case pingresp
    case disconnect(DisconnectPacket)
    case auth(AuthPacket)

    public var type: PacketType {
        switch self {
        case .connect: return .connect
        case .connack: return .connack
        case .publish: return .publish
        case .puback: return .puback
        case .pubrec: return .pubrec
        case .pubrel: return .pubrel
        case .pubcomp: return .pubcomp
        case .subscribe: return .subscribe
        case .suback: return .suback
        case .unsubscribe: return .unsubscribe
        case .unsuback: return .unsuback
        case .pingreq: return .pingreq
        case .pingresp: return .pingresp
        case .disconnect: return .disconnect
        case .auth: return .auth
        }
    }
}
