import MQTTCodec
import NIOCore

extension Broker {
    /// Routes messages the broker makes itself (`log_dest topic`: log lines on
    /// `$SYS/broker/log/...`), from any thread: one task on the first event loop publishes them
    /// in order, as a will is published (no publishing session, so no ACL check on the way in;
    /// each subscriber's read access is checked on delivery), then flushes.
    public func publishBrokerMessages(_ messages: [Message]) {
        guard !messages.isEmpty else { return }
        let context = context(index: 0)
        context.eventLoop.execute { [self] in
            for message in messages { publish(message, from: nil, context: context) }
            context.flushDirty()
        }
    }
}
