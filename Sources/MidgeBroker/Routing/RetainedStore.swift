import MQTTCodec
import NIOConcurrencyHelpers
import NIOCore

/// Retained messages by topic (spec 3.3.1.3). Written on a retained PUBLISH, read on SUBSCRIBE.
public final class RetainedStore: @unchecked Sendable {
    private let lock = NIOLock()
    /// Keyed by the topic's bytes: no normalisation [MQTT-4.7.3-4].
    private var messages: [ExactText: Message] = [:]

    public init() {}

    /// Stores `message` as the retained message of its topic; an empty payload clears it [MQTT-3.3.1-6] [MQTT-3.3.1-7].
    public func store(_ message: Message) {
        let message = message.payload.readableBytes == 0 ? message : message.compacted()
        lock.withLock {
            if message.payload.readableBytes == 0 {
                messages[ExactText(message.topic)] = nil
            } else {
                messages[ExactText(message.topic)] = message
            }
        }
    }

    /// Retained messages whose topic matches `filter`, expired ones dropped (and forgotten).
    public func matching(_ filter: String, now: NIODeadline = .now()) -> [Message] {
        lock.withLock {
            var result: [Message] = []
            if !Topic.hasWildcard(filter) {
                if let message = messages[ExactText(filter)] {
                    if message.isExpired(at: now) { messages[ExactText(filter)] = nil } else { result.append(message) }
                }
                return result
            }
            var expired: [ExactText] = []
            for (topic, message) in messages where Topic.matches(name: message.topic, filter: filter) {
                if message.isExpired(at: now) { expired.append(topic) } else { result.append(message) }
            }
            for topic in expired { messages[topic] = nil }
            return result.sorted { $0.topic < $1.topic }
        }
    }

    public var count: Int { lock.withLock { messages.count } }
}
