import Atomics
import DequeModule
import MQTTCodec
import NIOCore
import OrderedCollections

/// A message on its way to one session, as chosen by routing: the shared message plus what is
/// particular to this subscriber (granted QoS, retain flag, subscription identifiers).
public struct Delivery {
    public let session: Session
    public let message: Message
    public var qos: QoS
    public var retain: Bool
    public var subscriptionIDs: [Int]
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
    var size: Int { message.payload.readableBytes }
}

/// The session state the spec requires the server to keep (4.1): subscriptions, outbound
/// inflight and queued messages, inbound QoS 2 ids awaiting PUBREL, the will, the expiry.
///
/// Owned by one event loop at a time (`loopIndex`): the loop of its current connection, or of its
/// last one while offline. All mutable state is touched only on that loop; other threads read
/// only `loopIndex` and `isOnline` (atomics) to route messages here. Being loop-confined, the
/// stored properties opt out of Swift's dynamic exclusivity checks (`@exclusivity(unchecked)`).
public final class Session: @unchecked Sendable {
    public let clientID: String
    public var id: ObjectIdentifier { ObjectIdentifier(self) }
    let loopIndexAtomic: ManagedAtomic<Int>
    private let onlineAtomic = ManagedAtomic<Bool>(false)

    public var loopIndex: Int { loopIndexAtomic.load(ordering: .acquiring) }
    public var isOnline: Bool { onlineAtomic.load(ordering: .relaxed) }

    // Everything below: only on the owning loop.
    @exclusivity(unchecked) public internal(set) var protocolVersion: ProtocolVersion = .v3_1_1
    /// Filter → subscription, as the client made them.
    /// By filter, compared byte for byte [MQTT-4.7.3-4].
    @exclusivity(unchecked) public internal(set) var subscriptions: [ExactText: Subscription] = [:]
    @exclusivity(unchecked) var inflight = InflightWindow()
    @exclusivity(unchecked) var inflightBytes = 0
    /// How many inflight entries wait to be resent (they do not count against the window).
    @exclusivity(unchecked) var pendingResends = 0
    @exclusivity(unchecked) var queue: Deque<Delivery> = []
    @exclusivity(unchecked) var queuedBytes = 0
    @exclusivity(unchecked) var queuedQoS0 = 0
    /// Packet ids of inbound QoS 2 messages received but not yet released (PUBREL) [MQTT-4.3.3-10]:
    /// a repeated PUBLISH with one of these ids is acknowledged but not routed again.
    @exclusivity(unchecked) var inboundQoS2: Set<UInt16> = []
    @exclusivity(unchecked) private var nextPacketID: UInt16 = 1
    /// Seconds; 0 = ends with the connection, UInt32.max = never.
    @exclusivity(unchecked) var expiryInterval: UInt32 = 0
    @exclusivity(unchecked) var expiryTask: Scheduled<Void>?
    @exclusivity(unchecked) var pendingWill: Message?
    @exclusivity(unchecked) var willTask: Scheduled<Void>?
    @exclusivity(unchecked) weak var connection: ClientConnection?
    @exclusivity(unchecked) var isEnded = false
    /// Who the client authenticated as, and the rules that apply to it (read access is checked
    /// on every delivery, cached per topic).
    @exclusivity(unchecked) var username: String?
    @exclusivity(unchecked) var security: SecurityPolicy?
    @exclusivity(unchecked) var access = AccessCache()

    /// Whether the ACL lets this client do `operation` on `topic` (cached).
    func allows(_ operation: AccessControlList.Operation, _ topic: String) -> Bool {
        guard let security, security.hasACL else { return true }
        return access.allows(operation, topic: topic, policy: security, clientID: clientID, username: username)
    }

    init(clientID: String, loopIndex: Int) {
        self.clientID = clientID
        self.loopIndexAtomic = ManagedAtomic(loopIndex)
    }

    func setOnline(_ online: Bool) { onlineAtomic.store(online, ordering: .relaxed) }

    /// Moves ownership to another loop; called on the current owner loop as its last act.
    func move(toLoop index: Int) { loopIndexAtomic.store(index, ordering: .releasing) }

    /// The next free packet identifier (1...65535, skipping ids still in flight) [MQTT-2.2.1-4].
    func allocatePacketID() -> UInt16? {
        guard inflight.count < 65535 else { return nil }
        while true {
            let candidate = nextPacketID
            nextPacketID = nextPacketID == 65535 ? 1 : nextPacketID + 1
            if inflight[candidate] == nil { return candidate }
        }
    }

    /// Whether a session with this expiry keeps state after its connection closes.
    var persistsOffline: Bool { expiryInterval > 0 }
}
