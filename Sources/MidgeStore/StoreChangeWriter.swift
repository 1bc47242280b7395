import Foundation
import GRDB
import GRDBSQLite
import MQTTCodec
import MidgeBroker

// Each StoreChange as SQL, with the connection's cached prepared statements (one SQL text per
// kind of change, compiled once per connection) bound through SQLite's C API (RawStatement).
// Called inside the group commit's transaction.
enum StoreChangeWriter {
    static func apply(_ change: StoreChange, in db: Database) throws {
        switch change {
        case .sessionSaved(let session):
            let will = session.will
            let message = will?.message
            try db.run(SQL.saveSession) {
                $0.bind(1, session.clientID); $0.bind(2, session.expiryInterval); $0.bind(3, session.protocolLevel)
                $0.bind(4, session.username); $0.bind(5, session.disconnectedAt)
                $0.bind(6, message?.id); $0.bind(7, message?.topic); $0.bind(8, message?.payload)
                $0.bind(9, message?.qos.rawValue); $0.bind(10, message?.retain)
                $0.bind(11, message.flatMap { StoreColumns.blob($0.properties) }); $0.bind(12, message?.expiresAt)
                $0.bind(13, message?.publisherClientID); $0.bind(14, will?.delay); $0.bind(15, session.lastPacketID)
            }

        case .sessionDeleted(let clientID):
            // The trigger deletes each message with its last delivery.
            for sql in [SQL.deleteSessionDeliveries, SQL.deleteSessionSubscriptions, SQL.deleteSessionInbound, SQL.deleteSession] {
                try db.run(sql) { $0.bind(1, clientID) }
            }

        case .subscriptionSaved(let subscription):
            let options = subscription.options
            try db.run(SQL.saveSubscription) {
                $0.bind(1, subscription.clientID); $0.bind(2, subscription.filter); $0.bind(3, options.qos.rawValue)
                $0.bind(4, options.noLocal); $0.bind(5, options.retainAsPublished)
                $0.bind(6, options.retainHandling.rawValue); $0.bind(7, subscription.identifier)
            }

        case .subscriptionDeleted(let clientID, let filter):
            try db.run(SQL.deleteSubscription) { $0.bind(1, clientID); $0.bind(2, filter) }

        case .retainedSet(let message):
            try db.run(SQL.setRetained) { bind(message, to: $0); $0.bind(10, message.publisherPort) }

        case .retainedCleared(let topic):
            try db.run(SQL.clearRetained) { $0.bind(1, topic) }

        case .messageRouted(let message, let deliveries):
            // A message no delivery refers to is not kept (it would be an orphan at once).
            guard !deliveries.isEmpty else { return }
            try db.run(SQL.insertMessage) { bind(message, to: $0) }
            let insert = try RawStatement(db, SQL.insertDelivery)
            for delivery in deliveries {
                insert.bind(1, delivery.key); insert.bind(2, delivery.clientID); insert.bind(3, delivery.messageID)
                insert.bind(4, delivery.qos.rawValue); insert.bind(5, delivery.retain)
                insert.bind(6, StoreColumns.text(delivery.subscriptionIDs)); insert.bind(7, delivery.stage.rawValue)
                insert.bind(8, delivery.packetID)
                try insert.run(db)
            }

        case .deliveryUpdated(let key, let stage, let packetID):
            try db.run(SQL.updateDelivery) { $0.bind(1, stage.rawValue); $0.bind(2, packetID); $0.bind(3, key) }

        case .deliveryDeleted(let key):
            try db.run(SQL.deleteDelivery) { $0.bind(1, key) }

        case .inboundHeld(let clientID, let packetID):
            try db.run(SQL.holdInbound) { $0.bind(1, clientID); $0.bind(2, packetID) }

        case .inboundReleased(let clientID, let packetID):
            try db.run(SQL.releaseInbound) { $0.bind(1, clientID); $0.bind(2, packetID) }
        }
    }

    /// A message's columns, in the order of `messages` and `retained`.
    private static func bind(_ message: StoredMessage, to statement: RawStatement) {
        statement.bind(1, message.id); statement.bind(2, message.topic); statement.bind(3, message.payload)
        statement.bind(4, message.qos.rawValue); statement.bind(5, message.retain)
        statement.bind(6, StoreColumns.blob(message.properties)); statement.bind(7, message.expiresAt)
        statement.bind(8, message.publisherClientID); statement.bind(9, message.publisherUsername)
    }

    enum SQL {
        // An upsert, not INSERT OR REPLACE: the row keeps its place (rowid), so sessions and
        // subscriptions load in the order they were first made.
        static let saveSession = """
            INSERT INTO sessions (client_id, expiry_interval, protocol_level, username, disconnected_at,
                will_id, will_topic, will_payload, will_qos, will_retain, will_properties, will_expires_at,
                will_publisher, will_delay, last_packet_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (client_id) DO UPDATE SET expiry_interval = excluded.expiry_interval,
                protocol_level = excluded.protocol_level, username = excluded.username,
                disconnected_at = excluded.disconnected_at, will_id = excluded.will_id,
                will_topic = excluded.will_topic, will_payload = excluded.will_payload,
                will_qos = excluded.will_qos, will_retain = excluded.will_retain,
                will_properties = excluded.will_properties, will_expires_at = excluded.will_expires_at,
                will_publisher = excluded.will_publisher, will_delay = excluded.will_delay,
                last_packet_id = excluded.last_packet_id
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
            INSERT OR REPLACE INTO retained (id, topic, payload, qos, retain, properties, expires_at, publisher,
                publisher_username, publisher_port)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """
        static let clearRetained = "DELETE FROM retained WHERE topic = ?"
        static let insertMessage = """
            INSERT OR IGNORE INTO messages (id, topic, payload, qos, retain, properties, expires_at, publisher,
                publisher_username)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
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
