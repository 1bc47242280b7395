import Foundation
import GRDB
import MQTTCodec
import MidgeBroker

// Each StoreChange as SQL, with the connection's cached prepared statements (one SQL text per
// kind of change, compiled once per connection). Called inside the group commit's transaction.
enum StoreChangeWriter {
    static func apply(_ change: StoreChange, in db: Database) throws {
        switch change {
        case .sessionSaved(let session):
            let will = session.will
            let message = will?.message
            try db.cachedStatement(sql: SQL.saveSession).execute(arguments: [
                session.clientID, Int64(session.expiryInterval), Int64(session.protocolLevel), session.username,
                session.disconnectedAt,
                message.map { StoreColumns.integer($0.id) }, message?.topic, message.flatMap { StoreColumns.blob($0.payload) },
                message.map { Int64($0.qos.rawValue) }, message?.retain, message.flatMap { StoreColumns.blob($0.properties) },
                message?.expiresAt, message?.publisherClientID, will.map { Int64($0.delay) },
            ])

        case .sessionDeleted(let clientID):
            // The trigger deletes each message with its last delivery.
            try db.cachedStatement(sql: SQL.deleteSessionDeliveries).execute(arguments: [clientID])
            try db.cachedStatement(sql: SQL.deleteSessionSubscriptions).execute(arguments: [clientID])
            try db.cachedStatement(sql: SQL.deleteSessionInbound).execute(arguments: [clientID])
            try db.cachedStatement(sql: SQL.deleteSession).execute(arguments: [clientID])

        case .subscriptionSaved(let subscription):
            let options = subscription.options
            try db.cachedStatement(sql: SQL.saveSubscription).execute(arguments: [
                subscription.clientID, subscription.filter, Int64(options.qos.rawValue), options.noLocal,
                options.retainAsPublished, Int64(options.retainHandling.rawValue), subscription.identifier,
            ])

        case .subscriptionDeleted(let clientID, let filter):
            try db.cachedStatement(sql: SQL.deleteSubscription).execute(arguments: [clientID, filter])

        case .retainedSet(let message):
            try db.cachedStatement(sql: SQL.setRetained).execute(arguments: arguments(message))

        case .retainedCleared(let topic):
            try db.cachedStatement(sql: SQL.clearRetained).execute(arguments: [topic])

        case .messageRouted(let message, let deliveries):
            // A message no delivery refers to is not kept (it would be an orphan at once).
            guard !deliveries.isEmpty else { return }
            try db.cachedStatement(sql: SQL.insertMessage).execute(arguments: arguments(message))
            let insert = try db.cachedStatement(sql: SQL.insertDelivery)
            for delivery in deliveries {
                try insert.execute(arguments: [
                    StoreColumns.integer(delivery.key), delivery.clientID, StoreColumns.integer(delivery.messageID),
                    Int64(delivery.qos.rawValue), delivery.retain, StoreColumns.text(delivery.subscriptionIDs),
                    Int64(delivery.stage.rawValue), Int64(delivery.packetID),
                ])
            }

        case .deliveryUpdated(let key, let stage, let packetID):
            try db.cachedStatement(sql: SQL.updateDelivery).execute(arguments: [
                Int64(stage.rawValue), Int64(packetID), StoreColumns.integer(key),
            ])

        case .deliveryDeleted(let key):
            try db.cachedStatement(sql: SQL.deleteDelivery).execute(arguments: [StoreColumns.integer(key)])

        case .inboundHeld(let clientID, let packetID):
            try db.cachedStatement(sql: SQL.holdInbound).execute(arguments: [clientID, Int64(packetID)])

        case .inboundReleased(let clientID, let packetID):
            try db.cachedStatement(sql: SQL.releaseInbound).execute(arguments: [clientID, Int64(packetID)])
        }
    }

    /// A message's columns, in the order of `messages` and `retained`.
    private static func arguments(_ message: StoredMessage) -> StatementArguments {
        [StoreColumns.integer(message.id), message.topic, StoreColumns.blob(message.payload), Int64(message.qos.rawValue),
         message.retain, StoreColumns.blob(message.properties), message.expiresAt, message.publisherClientID]
    }

    enum SQL {
        // An upsert, not INSERT OR REPLACE: the row keeps its place (rowid), so sessions and
        // subscriptions load in the order they were first made.
        static let saveSession = """
            INSERT INTO sessions (client_id, expiry_interval, protocol_level, username, disconnected_at,
                will_id, will_topic, will_payload, will_qos, will_retain, will_properties, will_expires_at,
                will_publisher, will_delay)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (client_id) DO UPDATE SET expiry_interval = excluded.expiry_interval,
                protocol_level = excluded.protocol_level, username = excluded.username,
                disconnected_at = excluded.disconnected_at, will_id = excluded.will_id,
                will_topic = excluded.will_topic, will_payload = excluded.will_payload,
                will_qos = excluded.will_qos, will_retain = excluded.will_retain,
                will_properties = excluded.will_properties, will_expires_at = excluded.will_expires_at,
                will_publisher = excluded.will_publisher, will_delay = excluded.will_delay
            """
        static let deleteSessionDeliveries = "DELETE FROM deliveries WHERE client_id = ?"
        static let deleteSessionSubscriptions = "DELETE FROM subscriptions WHERE client_id = ?"
        static let deleteSessionInbound = "DELETE FROM inbound_qos2 WHERE client_id = ?"
        static let deleteSession = "DELETE FROM sessions WHERE client_id = ?"
        static let saveSubscription = """
            INSERT INTO subscriptions (client_id, filter, qos, no_local, retain_as_published, retain_handling, identifier)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (client_id, filter) DO UPDATE SET qos = excluded.qos, no_local = excluded.no_local,
                retain_as_published = excluded.retain_as_published, retain_handling = excluded.retain_handling,
                identifier = excluded.identifier
            """
        static let deleteSubscription = "DELETE FROM subscriptions WHERE client_id = ? AND filter = ?"
        static let setRetained = """
            INSERT OR REPLACE INTO retained (id, topic, payload, qos, retain, properties, expires_at, publisher)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """
        static let clearRetained = "DELETE FROM retained WHERE topic = ?"
        static let insertMessage = """
            INSERT OR IGNORE INTO messages (id, topic, payload, qos, retain, properties, expires_at, publisher)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """
        static let insertDelivery = """
            INSERT OR REPLACE INTO deliveries (key, client_id, message_id, qos, retain, subscription_ids, stage, packet_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """
        static let updateDelivery = "UPDATE deliveries SET stage = ?, packet_id = ? WHERE key = ?"
        static let deleteDelivery = "DELETE FROM deliveries WHERE key = ?"
        static let holdInbound = "INSERT OR IGNORE INTO inbound_qos2 (client_id, packet_id) VALUES (?, ?)"
        static let releaseInbound = "DELETE FROM inbound_qos2 WHERE client_id = ? AND packet_id = ?"
    }
}
