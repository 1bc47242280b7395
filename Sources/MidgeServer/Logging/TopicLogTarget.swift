import Foundation
import MQTTCodec
import MidgeBroker
import NIOCore

/// `log_dest topic`: each line is published by the broker on `$SYS/broker/log/<severity>`, as
/// Mosquitto does (src/logging.c): QoS 2, not retained, Message Expiry Interval 20 s, the
/// payload the whole line (time stamp included). Debug lines never go to topics. Lines logged
/// before the broker exists (start-up) have nobody to go to and are dropped.
final class TopicLogTarget: LogTarget {
    /// Mosquitto's topic per log type.
    static func topic(for type: LogType) -> String? {
        switch type {
        case .debug: return nil
        case .error, .none, .all: return "$SYS/broker/log/E"
        case .warning: return "$SYS/broker/log/W"
        case .notice: return "$SYS/broker/log/N"
        case .information: return "$SYS/broker/log/I"
        case .subscribe: return "$SYS/broker/log/M/subscribe"
        case .unsubscribe: return "$SYS/broker/log/M/unsubscribe"
        case .websockets: return "$SYS/broker/log/WS"
        }
    }

    static let messageExpiryInterval: UInt32 = 20

    private let lock = NSLock()
    private var broker: Broker?

    func attach(_ broker: Broker?) {
        lock.lock()
        self.broker = broker
        lock.unlock()
    }

    func write(_ entries: [LogEntry]) {
        var properties = Properties.none
        properties.messageExpiryInterval = Self.messageExpiryInterval
        let messages: [Message] = entries.compactMap { entry in
            guard let topic = Self.topic(for: entry.type) else { return nil }
            return Message(topic: topic, payload: ByteBuffer(string: entry.line), qos: .exactlyOnce, retain: false,
                           properties: properties)
        }
        // Handed over under the lock: once `attach(nil)` returns, nothing more reaches the
        // broker's loops (it is about to shut down).
        lock.lock()
        defer { lock.unlock() }
        broker?.publishBrokerMessages(messages)
    }
}
