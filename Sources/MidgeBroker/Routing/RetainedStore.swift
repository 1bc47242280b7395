import MQTTCodec
import NIOConcurrencyHelpers
import NIOCore

/// Retained messages by topic (spec 3.3.1.3). Written on a retained PUBLISH, read on SUBSCRIBE.
public final class RetainedStore: @unchecked Sendable {
    private let lock = NIOLock()
    private var messages: [String: Message] = [:]

    public init() {}

    /// Stores `message` as the retained message of its topic; an empty payload clears it [MQTT-3.3.1-6] [MQTT-3.3.1-7].
    public func store(_ message: Message) {
        let message = message.payload.readableBytes == 0 ? message : message.compacted()
        lock.withLock {
            if message.payload.readableBytes == 0 {
                messages[message.topic] = nil
            } else {
                messages[message.topic] = message
            }
        }
    }

    /// Retained messages whose topic matches `filter`, expired ones dropped (and forgotten).
    public func matching(_ filter: String, now: NIODeadline = .now()) -> [Message] {
        lock.withLock {
            var result: [Message] = []
            if !Topic.hasWildcard(filter) {
                if let message = messages[filter] {
                    if message.isExpired(at: now) { messages[filter] = nil } else { result.append(message) }
                }
                return result
            }
            var expired: [String] = []
            for (topic, message) in messages where Topic.matches(name: topic, filter: filter) {
                if message.isExpired(at: now) { expired.append(topic) } else { result.append(message) }
            }
            for topic in expired { messages[topic] = nil }
            return result.sorted { $0.topic < $1.topic }
        }
    }

    public var count: Int { lock.withLock { messages.count } }
}
