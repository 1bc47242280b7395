import MQTTCodec
import NIOCore

/// An application message inside the broker: received once, shared by reference with every
/// subscriber it is delivered to, never mutated after it is published to other event loops.
///
/// The payload stays the ByteBuffer slice it was decoded into (no copy). Each delivery writes a
/// small per-subscriber header (fixed header, topic, packet id, properties) followed by the
/// shared payload; for the common QoS 0 live delivery the header itself is encoded once per
/// protocol family and shared too (see `prepareSharedHeaders`).
public final class Message: @unchecked Sendable {
    public let topic: String
    public let payload: ByteBuffer
    public let qos: QoS
    public let retain: Bool
    /// The publish properties to forward unchanged (Topic Alias and Subscription Identifiers removed).
    public let properties: Properties
    /// When the message expires (v5 Message Expiry Interval), nil = never.
    public let expiresAt: NIODeadline?
    /// Identity of the publishing session (for No Local), nil for wills and broker-made messages.
    public let publisher: ObjectIdentifier?
    public let publisherClientID: String

    /// Its id in the store (`StoredMessage.id`), 0 until persistence stores it. Set by routing
    /// before the message is shared with other threads, read-only after.
    @exclusivity(unchecked) var storeID: UInt64 = 0
    /// Set before the message is shared with other threads, read-only after (no exclusivity checks).
    @exclusivity(unchecked) private(set) var sharedHeaderV3: ByteBuffer?
    @exclusivity(unchecked) private(set) var sharedHeaderV5: ByteBuffer?

    /// A message received now: its expiry deadline comes from the Message Expiry Interval property.
    public convenience init(topic: String, payload: ByteBuffer, qos: QoS, retain: Bool, properties: Properties = .none,
                            receivedAt now: NIODeadline = .now(), publisher: ObjectIdentifier? = nil, publisherClientID: String = "") {
        let expiresAt = properties.messageExpiryInterval.map { now + .seconds(Int64($0)) }
        self.init(topic: topic, payload: payload, qos: qos, retain: retain, properties: properties, expiresAt: expiresAt,
                  publisher: publisher, publisherClientID: publisherClientID)
    }

    public init(topic: String, payload: ByteBuffer, qos: QoS, retain: Bool, properties: Properties, expiresAt: NIODeadline?,
                publisher: ObjectIdentifier?, publisherClientID: String) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        var forwarded = properties
        // Changed only when set: a change copies the (shared) property storage.
        if forwarded.topicAlias != nil { forwarded.topicAlias = nil }
        if !forwarded.subscriptionIdentifiers.isEmpty { forwarded.subscriptionIdentifiers = [] }
        self.properties = forwarded
        self.expiresAt = expiresAt
        self.publisher = publisher
        self.publisherClientID = publisherClientID
    }

    /// This message, or a copy whose payload no longer pins the (larger) network read buffer it
    /// was sliced from: for messages kept long, like retained ones.
    public func compacted() -> Message {
        guard payload.storageCapacity > 2 * payload.readableBytes + 64 else { return self }
        var copy = ByteBufferAllocator().buffer(capacity: payload.readableBytes)
        var source = payload
        copy.writeBuffer(&source)
        let compact = Message(topic: topic, payload: copy, qos: qos, retain: retain, properties: properties, expiresAt: expiresAt,
                              publisher: publisher, publisherClientID: publisherClientID)
        compact.storeID = storeID
        return compact
    }

    /// This message with `mount` taken off the front of its topic (for a client of a listener
    /// with `mount_point`), or nil when the topic does not continue past it.
    func unmounted(_ mount: String) -> Message? {
        guard topic.utf8.count > mount.utf8.count, topic.utf8.starts(with: mount.utf8) else { return nil }
        let rest = String(Substring(topic.utf8.dropFirst(mount.utf8.count)))
        let copy = Message(topic: rest, payload: payload, qos: qos, retain: retain, properties: properties, expiresAt: expiresAt,
                           publisher: publisher, publisherClientID: publisherClientID)
        copy.storeID = storeID
        return copy
    }

    public func isExpired(at now: NIODeadline) -> Bool {
        guard let deadline = expiresAt else { return false }
        return deadline <= now
    }

    /// Remaining Message Expiry Interval in whole seconds (rounded up), nil if none.
    func remainingExpiry(at now: NIODeadline) -> UInt32? {
        guard let deadline = expiresAt else { return nil }
        let nanos = (deadline - now).nanoseconds
        if nanos <= 0 { return 0 }
        return UInt32(clamping: (nanos + 999_999_999) / 1_000_000_000)
    }

    /// Encodes the QoS 0, non-retained, no-subscription-id header once per protocol family so
    /// that fan-out shares it. Must be called before the message is handed to other threads.
    func prepareSharedHeaders(v3: Bool, v5: Bool) {
        guard expiresAt == nil else { return }
        let allocator = ByteBufferAllocator()
        if v3 && sharedHeaderV3 == nil {
            var buffer = allocator.buffer(capacity: topic.utf8.count + 8)
            writeHeader(into: &buffer, version: .v3_1_1, qos: .atMostOnce, retain: false, dup: false, packetID: 0,
                        properties: nil)
            sharedHeaderV3 = buffer
        }
        if v5 && sharedHeaderV5 == nil {
            var buffer = allocator.buffer(capacity: topic.utf8.count + 8 + properties.encodedLength)
            writeHeader(into: &buffer, version: .v5, qos: .atMostOnce, retain: false, dup: false, packetID: 0,
                        properties: properties)
            sharedHeaderV5 = buffer
        }
    }

    /// The header (everything before the payload) of a PUBLISH of this message, or nil when the
    /// message has expired and `applyExpiry` is set. `packetSize` receives the size of the whole packet.
    /// A resend of a PUBLISH already sent passes `applyExpiry: false`: once onward delivery has
    /// started, expiry no longer removes the message [MQTT-3.3.2-5] [MQTT-4.3.3-7]; its interval
    /// then goes out as what is left of it, at least 0.
    /// With `topicAlias`, the Topic Alias property is sent, and the topic name only when
    /// `sendTopic` (the first use of the alias on a connection, spec 3.3.2.3.4).
    /// With `inlinePayloadUpTo` > 0, a header encoded for this delivery (not a shared one) also
    /// carries a payload of at most that many bytes (`payloadIncluded` is then set): one buffer,
    /// one write through the channel pipeline instead of two.
    func header(version: ProtocolVersion, qos: QoS, retain: Bool, dup: Bool, packetID: UInt16, subscriptionIDs: [Int],
                topicAlias: (alias: UInt16, sendTopic: Bool)? = nil, applyExpiry: Bool = true,
                now: NIODeadline, allocator: ByteBufferAllocator, packetSize: inout Int,
                inlinePayloadUpTo inlineLimit: Int = 0, payloadIncluded: inout Bool) -> ByteBuffer? {
        payloadIncluded = false
        if qos == .atMostOnce && !retain && subscriptionIDs.isEmpty && topicAlias == nil {
            if let shared = version == .v5 ? sharedHeaderV5 : sharedHeaderV3 {
                packetSize = shared.readableBytes + payload.readableBytes
                return shared
            }
        }
        var outgoing: Properties? = nil
        if version == .v5 {
            var props = properties
            if let remaining = remainingExpiry(at: now) {
                if remaining == 0 && applyExpiry { return nil }
                props.messageExpiryInterval = remaining
            }
            // `properties` has neither (see init); set only what this delivery adds, as a change
            // copies the shared property storage.
            if !subscriptionIDs.isEmpty { props.subscriptionIdentifiers = subscriptionIDs }
            if let alias = topicAlias?.alias { props.topicAlias = alias }
            outgoing = props
        } else if applyExpiry && isExpired(at: now) {
            return nil
        }
        let inline = payload.readableBytes <= inlineLimit
        var buffer = allocator.buffer(capacity: topic.utf8.count + 16 + (outgoing?.encodedLength ?? 0)
                                          + (inline ? payload.readableBytes : 0))
        writeHeader(into: &buffer, version: version, qos: qos, retain: retain, dup: dup, packetID: packetID, properties: outgoing,
                    omitTopic: topicAlias.map { !$0.sendTopic } ?? false)
        packetSize = buffer.readableBytes + payload.readableBytes
        if inline {
            buffer.writeImmutableBuffer(payload)
            payloadIncluded = true
        }
        return buffer
    }

    private func writeHeader(into buffer: inout ByteBuffer, version: ProtocolVersion, qos: QoS, retain: Bool, dup: Bool,
                             packetID: UInt16, properties: Properties?, omitTopic: Bool = false) {
        let propertiesLength = properties?.encodedLengthWithPrefix ?? 0
        let topicName = omitTopic ? "" : topic
        let remaining = topicName.mqttEncodedLength + (qos == .atMostOnce ? 0 : 2) + propertiesLength + payload.readableBytes
        let first: UInt8 = 0x30 | (dup ? 0x08 : 0) | (qos.rawValue << 1) | (retain ? 0x01 : 0)
        PacketEncoder.writeFixedHeader(first, remaining: remaining, into: &buffer)
        buffer.writeMQTTString(topicName)
        if qos != .atMostOnce { buffer.writeInteger(packetID) }
        properties?.write(to: &buffer)
    }
}
