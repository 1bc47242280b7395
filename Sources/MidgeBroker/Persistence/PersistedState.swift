import MQTTCodec
import NIOCore

// The broker state that persistence keeps, as plain values: what a store writes and what it
// gives back at start-up. About MQTT, not about any database: an SQLite store, Mosquitto's
// database importer and (later) a cluster backend all speak it.
//
// Times are wall-clock milliseconds since the Unix epoch (the engine's own clock is uptime,
// which does not survive a restart).

/// An application message as stored: once per message, shared by every session it is queued
/// for (`id`), or as the retained message of its topic.
public struct StoredMessage: Sendable, Equatable {
    /// Unique within a store (made by the loops' `GroupCommit` key counters); 0 for a retained message kept only by topic.
    public var id: UInt64
    public var topic: String
    public var payload: ByteBuffer
    public var qos: QoS
    public var retain: Bool
    /// The v5 properties forwarded with the message (no Topic Alias, no Subscription Identifier).
    public var properties: Properties
    /// When the message expires (Message Expiry Interval), nil = never.
    public var expiresAt: Int64?
    public var publisherClientID: String
    /// The publisher's username, kept for `check_retain_source` (a retained message is sent to a
    /// new subscriber only while its publisher may still write the topic, across restarts too).
    public var publisherUsername: String?
    /// The port of the listener the publisher came through (a retained message, for
    /// `check_retain_source` with `per_listener_settings`: that listener's ACL decides after a
    /// restart, as in Mosquitto); nil when not known.
    public var publisherPort: Int?

    public init(id: UInt64, topic: String, payload: ByteBuffer, qos: QoS, retain: Bool, properties: Properties = .none,
                expiresAt: Int64? = nil, publisherClientID: String = "", publisherUsername: String? = nil,
                publisherPort: Int? = nil) {
        self.publisherPort = publisherPort
        self.id = id
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
        self.expiresAt = expiresAt
        self.publisherClientID = publisherClientID
        self.publisherUsername = publisherUsername
    }
}

/// A will kept with its session: published when the session's client is gone for `delay`
/// seconds (counted from `StoredSession.disconnectedAt`), or when the session ends first.
public struct StoredWill: Sendable, Equatable {
    public var message: StoredMessage
    /// Will Delay Interval, seconds.
    public var delay: UInt32

    public init(message: StoredMessage, delay: UInt32) {
        self.message = message
        self.delay = delay
    }
}

/// A session that outlives its connection (3.1.1 clean session 0, v5 Session Expiry > 0).
public struct StoredSession: Sendable, Equatable {
    public var clientID: String
    /// Session Expiry Interval, seconds; UInt32.max = never.
    public var expiryInterval: UInt32
    /// 3 (MQTT 3.1), 4 (3.1.1) or 5, of the last connection.
    public var protocolLevel: UInt8
    public var username: String?
    /// When its last connection ended; nil while a connection is attached (after a crash the
    /// session counts as disconnected at the restart).
    public var disconnectedAt: Int64?
    public var will: StoredWill?
    /// The last packet id given to a message for this client (Mosquitto's `last_mid`), so that
    /// the numbering goes on after a restart; 0 = none yet.
    public var lastPacketID: UInt16

    public init(clientID: String, expiryInterval: UInt32, protocolLevel: UInt8, username: String? = nil,
                disconnectedAt: Int64? = nil, lastPacketID: UInt16 = 0, will: StoredWill? = nil) {
        self.lastPacketID = lastPacketID
        self.clientID = clientID
        self.expiryInterval = expiryInterval
        self.protocolLevel = protocolLevel
        self.username = username
        self.disconnectedAt = disconnectedAt
        self.will = will
    }
}

/// One subscription of a stored session.
public struct StoredSubscription: Sendable, Equatable {
    public var clientID: String
    /// As the client sent it (`$share/group/filter` included).
    public var filter: String
    public var options: SubscriptionOptions
    /// v5 Subscription Identifier.
    public var identifier: Int?

    public init(clientID: String, filter: String, options: SubscriptionOptions, identifier: Int? = nil) {
        self.clientID = clientID
        self.filter = filter
        self.options = options
        self.identifier = identifier
    }
}

/// Where an outbound QoS 1/2 message of a session stands.
public enum OutboundStage: UInt8, Sendable {
    /// Queued, not sent yet (with the packet id routing gave it; 0 in stores of older Midges).
    case queued = 0
    /// PUBLISH sent with `packetID`, awaiting PUBACK (QoS 1) or PUBREC (QoS 2).
    case published = 1
    /// PUBREC received, PUBREL sent, awaiting PUBCOMP.
    case released = 2
}

/// One message on its way to one session (queued or in flight).
public struct StoredDelivery: Sendable, Equatable {
    /// Unique within the store; also the delivery order of a session (lower first).
    public var key: UInt64
    public var clientID: String
    public var messageID: UInt64
    /// Granted QoS (1 or 2).
    public var qos: QoS
    /// The RETAIN flag it goes out with.
    public var retain: Bool
    public var subscriptionIDs: [Int]
    public var stage: OutboundStage
    /// Given when the message was queued for the session (0 in stores of older Midges, or
    /// for a delivery of an imported Mosquitto database that had none).
    public var packetID: UInt16

    public init(key: UInt64, clientID: String, messageID: UInt64, qos: QoS, retain: Bool, subscriptionIDs: [Int] = [],
                stage: OutboundStage = .queued, packetID: UInt16 = 0) {
        self.key = key
        self.clientID = clientID
        self.messageID = messageID
        self.qos = qos
        self.retain = retain
        self.subscriptionIDs = subscriptionIDs
        self.stage = stage
        self.packetID = packetID
    }
}

/// One change of broker state, in the order the engine made it. A store applies the changes
/// of one `commit` in order, all or none.
public enum StoreChange: Sendable, Equatable {
    /// Insert or replace the session (and its will) of `clientID`.
    case sessionSaved(StoredSession)
    /// The session ended: delete it with its subscriptions, deliveries and inbound QoS 2 ids.
    case sessionDeleted(clientID: String)
    /// Insert or replace the subscription (clientID, filter).
    case subscriptionSaved(StoredSubscription)
    case subscriptionDeleted(clientID: String, filter: String)
    /// The retained message of `message.topic` is now `message`.
    case retainedSet(StoredMessage)
    case retainedCleared(topic: String)
    /// A message was routed to persistent sessions: store the message (once per id: a second
    /// `messageRouted` with the same id stores only its deliveries) and its deliveries.
    case messageRouted(StoredMessage, [StoredDelivery])
    /// A delivery was sent (stage `.published`, packet id) or PUBREC'd (`.released`).
    case deliveryUpdated(key: UInt64, stage: OutboundStage, packetID: UInt16)
    /// A delivery is finished (acknowledged, dropped or expired). A message no delivery refers
    /// to any more is deleted with its last delivery.
    case deliveryDeleted(key: UInt64)
    /// An inbound QoS 2 PUBLISH was received and PUBREC'd: its packet id is held until PUBREL [MQTT-4.3.3-10].
    case inboundHeld(clientID: String, packetID: UInt16)
    case inboundReleased(clientID: String, packetID: UInt16)
}

/// Everything a store holds, as loaded at start-up.
public struct PersistedState: Sendable, Equatable {
    public var sessions: [StoredSession] = []
    public var subscriptions: [StoredSubscription] = []
    /// The messages deliveries refer to.
    public var messages: [StoredMessage] = []
    /// In key order.
    public var deliveries: [StoredDelivery] = []
    public var inboundQoS2: [(clientID: String, packetID: UInt16)] = []
    public var retained: [StoredMessage] = []

    public init() {}

    /// The next free message id and delivery key (above every stored one).
    public var nextKey: UInt64 {
        var highest: UInt64 = 0
        for message in messages { highest = max(highest, message.id) }
        for delivery in deliveries { highest = max(highest, delivery.key) }
        return highest + 1
    }

    public static func == (lhs: PersistedState, rhs: PersistedState) -> Bool {
        lhs.sessions == rhs.sessions && lhs.subscriptions == rhs.subscriptions && lhs.messages == rhs.messages
            && lhs.deliveries == rhs.deliveries && lhs.retained == rhs.retained
            && lhs.inboundQoS2.map { "\($0.clientID)\u{0}\($0.packetID)" } == rhs.inboundQoS2.map { "\($0.clientID)\u{0}\($0.packetID)" }
    }
}

extension PersistedState {
    /// The changes that build this state in an empty store (to import another broker's state).
    public var changes: [StoreChange] {
        var changes: [StoreChange] = []
        changes.reserveCapacity(sessions.count + subscriptions.count + messages.count + retained.count)
        for session in sessions { changes.append(.sessionSaved(session)) }
        for subscription in subscriptions { changes.append(.subscriptionSaved(subscription)) }
        var byMessage: [UInt64: [StoredDelivery]] = [:]
        for delivery in deliveries { byMessage[delivery.messageID, default: []].append(delivery) }
        for message in messages {
            guard let routed = byMessage[message.id] else { continue }
            changes.append(.messageRouted(message, routed))
        }
        for held in inboundQoS2 { changes.append(.inboundHeld(clientID: held.clientID, packetID: held.packetID)) }
        for message in retained { changes.append(.retainedSet(message)) }
        return changes
    }
}
