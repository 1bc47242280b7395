import MQTTCodec
import NIOCore

/// An application message received from the broker.
public struct MQTTMessage: Sendable, Equatable {
    public var topic: String
    public var payload: ByteBuffer
    public var qos: QoS
    public var retain: Bool
    public var dup: Bool
    /// v5 properties as received (Topic Alias resolved and removed).
    public var properties: Properties
    /// The PUBLISH packet identifier (0 for QoS 0); informational, not part of `==`.
    public var packetID: UInt16

    public init(topic: String, payload: ByteBuffer, qos: QoS, retain: Bool, dup: Bool = false, properties: Properties = .none,
                packetID: UInt16 = 0) {
        self.topic = topic; self.payload = payload; self.qos = qos; self.retain = retain; self.dup = dup; self.properties = properties
        self.packetID = packetID
    }

    public static func == (lhs: MQTTMessage, rhs: MQTTMessage) -> Bool {
        lhs.topic == rhs.topic && lhs.payload == rhs.payload && lhs.qos == rhs.qos && lhs.retain == rhs.retain
            && lhs.dup == rhs.dup && lhs.properties == rhs.properties
    }

    /// The payload as UTF-8 text (invalid sequences replaced).
    public var payloadString: String { String(decoding: payload.readableBytesView, as: UTF8.self) }
}

/// The outcome of CONNECT.
public struct ConnectResult: Sendable, Equatable {
    public var sessionPresent: Bool
    public var reasonCode: ReasonCode
    /// v5 CONNACK properties (Assigned Client Identifier, Receive Maximum, Server Keep Alive...).
    public var properties: Properties
}

/// The outcome of a QoS 1/2 publish (QoS 0 always reports success).
public struct PublishResult: Sendable, Equatable {
    /// v5 reason code of PUBACK / PUBREC (PUBCOMP's if that fails); Success for v3.
    public var reasonCode: ReasonCode
    public var properties: Properties
}
