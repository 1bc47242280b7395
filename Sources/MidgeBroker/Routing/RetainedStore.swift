import MQTTCodec
import NIOConcurrencyHelpers
import NIOCore

/// Who published a retained message, as `check_retain_source` needs it: the client id and
/// username at publish time and the security policy of the listener it came through. Kept only
/// while the option is on (Mosquitto's `source_id`, `source_username`, `source_listener`).
public struct RetainSource: Sendable {
    public let clientID: String
    public let username: String?
    public let policy: SecurityPolicy
    /// The port of the listener the publisher came through (stored, so that a restart finds
    /// that listener's rules again); nil when not known.
    public let port: Int?

    public init(clientID: String, username: String?, policy: SecurityPolicy, port: Int? = nil) {
        self.port = port
        self.clientID = clientID
        self.username = username
        self.policy = policy
    }

    /// Whether the publisher may still write `topic` under the policy's current ACL.
    public func mayStillWrite(_ topic: String) -> Bool {
        policy.allows(.write, topic: topic, clientID: clientID, username: username)
    }
}

/// Retained messages by topic (spec 3.3.1.3). Written on a retained PUBLISH, read on SUBSCRIBE.
public final class RetainedStore: @unchecked Sendable {
    public struct Entry: Sendable {
        public let message: Message
        /// The publisher, when `check_retain_source` is on and a client published it.
        public let source: RetainSource?
    }

    private let lock = NIOLock()
    /// Keyed by the topic's bytes: no normalisation [MQTT-4.7.3-4].
    private var entries: [ExactText: Entry] = [:]

    public init() {}

    /// Stores `message` as the retained message of its topic; an empty payload clears it [MQTT-3.3.1-6] [MQTT-3.3.1-7].
    public func store(_ message: Message, source: RetainSource? = nil) {
        let message = message.payload.readableBytes == 0 ? message : message.compacted()
        lock.withLock {
            if message.payload.readableBytes == 0 {
                entries[ExactText(message.topic)] = nil
            } else {
                entries[ExactText(message.topic)] = Entry(message: message, source: source)
            }
        }
    }

    /// Retained messages whose topic matches `filter`, expired ones dropped (and forgotten).
    public func matching(_ filter: String, now: NIODeadline = .now()) -> [Message] {
        matchingEntries(filter, now: now).map(\.message)
    }

    /// Retained messages whose topic matches `filter`, with their publishers, expired ones
    /// dropped (and forgotten); sorted by topic.
    public func matchingEntries(_ filter: String, now: NIODeadline = .now()) -> [Entry] {
        lock.withLock {
            var result: [Entry] = []
            if !Topic.hasWildcard(filter) {
                if let entry = entries[ExactText(filter)] {
                    if entry.message.isExpired(at: now) { entries[ExactText(filter)] = nil } else { result.append(entry) }
                }
                return result
            }
            var expired: [ExactText] = []
            for (topic, entry) in entries where Topic.matches(name: entry.message.topic, filter: filter) {
                if entry.message.isExpired(at: now) { expired.append(topic) } else { result.append(entry) }
            }
            for topic in expired { entries[topic] = nil }
            return result.sorted { $0.message.topic < $1.message.topic }
        }
    }

    public var count: Int { lock.withLock { entries.count } }
}
