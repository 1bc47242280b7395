import DequeModule
import MQTTCodec
import NIOCore
import OrderedCollections
import Synchronization

/// A message on its way to one session, as chosen by routing: the shared message plus what is
/// particular to this subscriber (granted QoS, retain flag, subscription identifiers).
public struct Delivery {
    public let session: Session
    public let message: Message
    public var qos: QoS
    public var retain: Bool
    public var subscriptionIDs: [Int]
    /// The key of its `StoredDelivery` when persistence keeps it (0 = not stored).
    var storeKey: UInt64 = 0
    /// QoS 1/2: the packet id it was given when routing queued it for the session (as Mosquitto
    /// numbers a message when it queues it, not when it sends it); 0 for QoS 0.
    var packetID: UInt16 = 0
}

/// State of an outbound QoS 1/2 message that the client has not finished acknowledging.
struct InflightMessage {
    enum Stage { case awaitingPubAck, awaitingPubRec, awaitingPubComp }
    let message: Message
    let qos: QoS
    let retain: Bool
    let subscriptionIDs: [Int]
    var stage: Stage
    /// Not yet resent on the current connection (its Receive Maximum was full at reconnect).
    var awaitingResend = false
    /// The key of its `StoredDelivery` (0 = not stored).
    var storeKey: UInt64 = 0
    var size: Int { message.payload.readableBytes }
}

/// The session state the spec requires the server to keep (4.1): subscriptions, outbound
/// inflight and queued messages, inbound QoS 2 ids awaiting PUBREL, the will, the expiry.
///
/// Owned by one event loop at a time (`loopIndex`): the loop of its current connection, or of its
/// last one while offline. All mutable state is touched only on that loop; other threads read
/// only `loopIndex` and `isOnline` (one atomic word) to route messages here. Being loop-confined, the
/// stored properties opt out of Swift's dynamic exclusivity checks (`@exclusivity(unchecked)`).
public final class Session: @unchecked Sendable {
    // The stored properties are ordered by size so that an idle client's session stays small
    // (Swift lays them out in declaration order); read and written only on the owning loop,
    // except the atomic `ownerAndOnline`.
    public let clientID: String
    public var id: ObjectIdentifier { ObjectIdentifier(self) }
    /// The owning loop's index << 3, | 4 while the session outlives its connection (expiry > 0),
    /// | 2 when the last connection spoke MQTT 5, | 1 while a connection is attached. Written only
    /// by the owning loop (so a plain store keeps the other bits); read by every loop to route here.
    private let ownerAndOnline: Atomic<Int>
    private static let onlineBit = 1
    private static let v5Bit = 2
    private static let persistentBit = 4
    private static let ownerShift = 3
    /// The last packet id given to a message for this client (Mosquitto's `last_mid`): taken by
    /// routing on any loop when it queues a QoS 1/2 message for the session, kept across restarts.
    private let lastPacketIDWord = Atomic<UInt16>(0)

    public var loopIndex: Int { ownerAndOnline.load(ordering: .acquiring) >> Self.ownerShift }
    public var isOnline: Bool { ownerAndOnline.load(ordering: .relaxed) & Self.onlineBit != 0 }
    /// From any thread: whether the session's connection speaks MQTT 5 (routing's guess of which
    /// shared PUBLISH header to encode; the loop-confined `protocolVersion` is the truth).
    var speaksV5: Bool { ownerAndOnline.load(ordering: .relaxed) & Self.v5Bit != 0 }
    /// From any thread: whether the session outlives its connection (routing stores messages
    /// for such sessions when persistence is on; the loop-confined `expiryInterval` is the truth).
    var outlivesConnection: Bool { ownerAndOnline.load(ordering: .relaxed) & Self.persistentBit != 0 }

    /// Filter → subscription, as the client made them.
    /// By filter, compared byte for byte [MQTT-4.7.3-4].
    @exclusivity(unchecked) public internal(set) var subscriptions: [ExactText: Subscription] = [:]
    @exclusivity(unchecked) var inflight = InflightWindow()
    @exclusivity(unchecked) var inflightBytes = 0
    @exclusivity(unchecked) var queue: Deque<Delivery> = []
    @exclusivity(unchecked) var queuedBytes = 0
    /// Packet ids of inbound QoS 2 messages received but not yet released (PUBREL) [MQTT-4.3.3-10]:
    /// a repeated PUBLISH with one of these ids is acknowledged but not routed again.
    @exclusivity(unchecked) var inboundQoS2: Set<UInt16> = []
    /// The current connection (strong: `ClientConnection.finish` clears it when the connection ends).
    @exclusivity(unchecked) var connection: ClientConnection?
    /// The rules that apply to the client (read access is checked on every delivery, cached per
    /// topic) and who it authenticated as (kept out of line with the cache: made for a client with
    /// a username or once an ACL applies).
    @exclusivity(unchecked) var security: SecurityPolicy?
    @exclusivity(unchecked) private var accessState: AccessState?
    /// The expiry and will-delay timers and the delayed will of a disconnected session (allocated
    /// when first needed: most sessions never have them).
    @exclusivity(unchecked) private var offline: OfflineState?
    /// Seconds; 0 = ends with the connection, UInt32.max = never.
    @exclusivity(unchecked) var expiryInterval: UInt32 = 0 {
        didSet {
            let word = ownerAndOnline.load(ordering: .relaxed) & ~Self.persistentBit
            ownerAndOnline.store(word | (expiryInterval > 0 ? Self.persistentBit : 0), ordering: .releasing)
        }
    }
    /// How many inflight entries wait to be resent (they do not count against the window).
    @exclusivity(unchecked) var pendingResends: Int32 = 0
    @exclusivity(unchecked) var queuedQoS0: Int32 = 0
    /// Loop-confined; other threads read `speaksV5`.
    @exclusivity(unchecked) public internal(set) var protocolVersion: ProtocolVersion = .v3_1_1 {
        didSet {
            let word = ownerAndOnline.load(ordering: .relaxed) & ~Self.v5Bit
            ownerAndOnline.store(word | (protocolVersion == .v5 ? Self.v5Bit : 0), ordering: .releasing)
        }
    }
    @exclusivity(unchecked) var isEnded = false
    /// The store holds this session (persistence on, saved and not deleted since).
    @exclusivity(unchecked) var isStored = false

    private final class OfflineState {
        var expiryTask: Scheduled<Void>?
        var willTask: Scheduled<Void>?
        var pendingWill: Message?
    }

    private final class AccessState {
        @exclusivity(unchecked) var username: String?
        @exclusivity(unchecked) var listenerPort: Int?
        @exclusivity(unchecked) var cache = AccessCache()
    }

    var username: String? {
        get { accessState?.username }
        set {
            if newValue == nil && accessState == nil { return }
            if accessState == nil { accessState = AccessState() }
            accessState!.username = newValue
        }
    }

    /// The port of the listener of the client's connection, kept only for `check_retain_source`
    /// (a retained message stores it; see `RetainSource`).
    var listenerPort: Int? {
        get { accessState?.listenerPort }
        set {
            if newValue == nil && accessState == nil { return }
            if accessState == nil { accessState = AccessState() }
            accessState!.listenerPort = newValue
        }
    }

    private var offlineState: OfflineState {
        if let offline { return offline }
        let state = OfflineState()
        offline = state
        return state
    }

    var expiryTask: Scheduled<Void>? {
        get { offline?.expiryTask }
        set { if newValue != nil || offline != nil { offlineState.expiryTask = newValue } }
    }

    var willTask: Scheduled<Void>? {
        get { offline?.willTask }
        set { if newValue != nil || offline != nil { offlineState.willTask = newValue } }
    }

    var pendingWill: Message? {
        get { offline?.pendingWill }
        set { if newValue != nil || offline != nil { offlineState.pendingWill = newValue } }
    }

    /// Whether the ACL lets this client do `operation` on `topic` (cached).
    func allows(_ operation: AccessControlList.Operation, _ topic: String) -> Bool {
        guard let security, security.hasACL else { return true }
        if accessState == nil { accessState = AccessState() }
        let state = accessState!
        return state.cache.allows(operation, topic: topic, policy: security, clientID: clientID, username: state.username)
    }

    init(clientID: String, loopIndex: Int) {
        self.clientID = clientID
        self.ownerAndOnline = Atomic(loopIndex << Self.ownerShift)
    }

    /// On the owning loop.
    func setOnline(_ online: Bool) {
        let word = ownerAndOnline.load(ordering: .relaxed) & ~Self.onlineBit
        ownerAndOnline.store(word | (online ? Self.onlineBit : 0), ordering: .releasing)
    }

    /// Moves ownership to another loop; called on the current owner loop as its last act.
    func move(toLoop index: Int) {
        let flags = ownerAndOnline.load(ordering: .relaxed) & (Self.onlineBit | Self.v5Bit | Self.persistentBit)
        ownerAndOnline.store(index << Self.ownerShift | flags, ordering: .releasing)
    }

    /// The next packet identifier for a message queued for this client (1...65535, then 1 again).
    /// From any thread (routing numbers a message on the publisher's loop).
    func nextPacketID() -> UInt16 {
        while true {
            let id = lastPacketIDWord.wrappingAdd(1, ordering: .relaxed).newValue
            if id != 0 { return id }
        }
    }

    /// The last packet id given out (stored with the session; set when it is restored).
    var lastPacketID: UInt16 {
        get { lastPacketIDWord.load(ordering: .relaxed) }
        set { lastPacketIDWord.store(newValue, ordering: .relaxed) }
    }

    /// A free packet identifier, for a message whose own id is still in use by another one in
    /// flight (the counter wrapped while it was queued) [MQTT-2.2.1-4]. On the owning loop.
    func allocatePacketID() -> UInt16? {
        guard inflight.count < 65535 else { return nil }
        while true {
            let candidate = nextPacketID()
            if inflight[candidate] == nil { return candidate }
        }
    }

    /// Whether a session with this expiry keeps state after its connection closes.
    var persistsOffline: Bool { expiryInterval > 0 }
}
