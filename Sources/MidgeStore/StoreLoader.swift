import Foundation
import GRDB
import MQTTCodec
import MidgeBroker

/// Reads a store back into a `PersistedState`, after deleting its orphans: deliveries,
/// subscriptions and inbound QoS 2 ids of no stored session, deliveries of a missing message, and
/// messages no delivery refers to. A value that cannot be read (a bad QoS, properties that do not
/// decode) throws `StoreError` naming the table and row.
struct StoreLoader {
    let path: String
    let log: @Sendable (String) -> Void

    func load(_ db: Database) throws -> PersistedState {
        try dropOrphans(db)
        var state = PersistedState()
        state.sessions = try read(db, table: "sessions", sql: """
            SELECT client_id, expiry_interval, protocol_level, username, disconnected_at, will_id, will_topic,
                will_payload, will_qos, will_retain, will_properties, will_expires_at, will_publisher, will_delay, last_packet_id, rowid
            FROM sessions ORDER BY rowid
            """, session)
        state.subscriptions = try read(db, table: "subscriptions", sql: """
            SELECT client_id, filter, qos, no_local, retain_as_published, retain_handling, identifier, rowid
            FROM subscriptions ORDER BY rowid
            """, subscription)
        state.messages = try read(db, table: "messages", sql: """
            SELECT id, topic, payload, qos, retain, properties, expires_at, publisher, publisher_username, id
            FROM messages ORDER BY id
            """, message)
        state.deliveries = try read(db, table: "deliveries", sql: """
            SELECT key, client_id, message_id, qos, retain, subscription_ids, stage, packet_id, key
            FROM deliveries ORDER BY key
            """, delivery)
        state.inboundQoS2 = try read(db, table: "inbound_qos2", sql: """
            SELECT client_id, packet_id, packet_id FROM inbound_qos2 ORDER BY client_id, packet_id
            """) { row in
            (try row.decode(String.self, atIndex: 0), try StoreColumns.exact(row.decode(atIndex: 1), UInt16.self, column: "packet_id"))
        }
        state.retained = try read(db, table: "retained", sql: """
            SELECT id, topic, payload, qos, retain, properties, expires_at, publisher, publisher_username,
                publisher_port, topic
            FROM retained ORDER BY topic
            """) { row in
            var message = try message(row)
            let port: Int64? = try row.decode(atIndex: 9)
            message.publisherPort = try port.map { try StoreColumns.exact($0, Int.self, column: "publisher_port") }
            return message
        }
        return state
    }

    private func dropOrphans(_ db: Database) throws {
        let statements: [(what: String, sql: String)] = [
            ("deliveries of no session", "DELETE FROM deliveries WHERE client_id NOT IN (SELECT client_id FROM sessions)"),
            ("deliveries of a missing message", "DELETE FROM deliveries WHERE message_id NOT IN (SELECT id FROM messages)"),
            ("subscriptions of no session", "DELETE FROM subscriptions WHERE client_id NOT IN (SELECT client_id FROM sessions)"),
            ("inbound QoS 2 ids of no session", "DELETE FROM inbound_qos2 WHERE client_id NOT IN (SELECT client_id FROM sessions)"),
            // After the deliveries: the trigger already took the messages of the deliveries deleted above.
            ("messages of no delivery", "DELETE FROM messages WHERE id NOT IN (SELECT message_id FROM deliveries)"),
        ]
        var dropped: [String] = []
        do {
            try db.inTransaction(.immediate) {
                for statement in statements {
                    try db.execute(sql: statement.sql)
                    if db.changesCount > 0 { dropped.append("\(db.changesCount) \(statement.what)") }
                }
                return .commit
            }
        } catch {
            throw StoreError(path: path, message: "cannot delete orphans: \(SQLiteSessionStore.explain(error))")
        }
        if !dropped.isEmpty { log("Store \(path): dropped orphans: \(dropped.joined(separator: ", ")).") }
    }

    /// Every row of `sql` through `decode`; the query's last column identifies the row in errors.
    private func read<T>(_ db: Database, table: String, sql: String, _ decode: (Row) throws -> T) throws -> [T] {
        var result: [T] = []
        let rows = try Row.fetchCursor(db, sql: sql)
        while let row = try rows.next() {
            do {
                result.append(try decode(row))
            } catch {
                let what = (error as? StoreColumns.BadValue)?.message ?? "\(error)"
                let id = row.databaseValues.last.map { "\($0)" } ?? "?"
                throw StoreError(path: path, message: "damaged: table \(table), row \(id): \(what)")
            }
        }
        return result
    }

    private func session(_ row: Row) throws -> StoredSession {
        var will: StoredWill?
        if let topic: String = try row.decode(atIndex: 6) {
            let message = StoredMessage(
                id: StoreColumns.unsigned(try row.decode(atIndex: 5)), topic: topic,
                payload: StoreColumns.buffer(try row.decode(atIndex: 7)),
                qos: try StoreColumns.qos(row.decode(atIndex: 8), column: "will_qos"),
                retain: try row.decode(atIndex: 9),
                properties: try StoreColumns.properties(row.decode(atIndex: 10), context: .will, column: "will_properties"),
                expiresAt: try row.decode(atIndex: 11), publisherClientID: try row.decode(atIndex: 12))
            will = StoredWill(message: message, delay: try StoreColumns.exact(row.decode(atIndex: 13), UInt32.self, column: "will_delay"))
        }
        return StoredSession(
            clientID: try row.decode(atIndex: 0),
            expiryInterval: try StoreColumns.exact(row.decode(atIndex: 1), UInt32.self, column: "expiry_interval"),
            protocolLevel: try StoreColumns.exact(row.decode(atIndex: 2), UInt8.self, column: "protocol_level"),
            username: try row.decode(atIndex: 3), disconnectedAt: try row.decode(atIndex: 4),
            lastPacketID: try StoreColumns.exact(row.decode(atIndex: 14), UInt16.self, column: "last_packet_id"), will: will)
    }

    private func subscription(_ row: Row) throws -> StoredSubscription {
        let options = SubscriptionOptions(
            qos: try StoreColumns.qos(row.decode(atIndex: 2), column: "qos"), noLocal: try row.decode(atIndex: 3),
            retainAsPublished: try row.decode(atIndex: 4),
            retainHandling: try StoreColumns.retainHandling(row.decode(atIndex: 5)))
        let identifier: Int64? = try row.decode(atIndex: 6)
        return StoredSubscription(clientID: try row.decode(atIndex: 0), filter: try row.decode(atIndex: 1), options: options,
                                  identifier: try identifier.map { try StoreColumns.exact($0, Int.self, column: "identifier") })
    }

    /// A row of `messages` or `retained` (same columns, in the same order).
    private func message(_ row: Row) throws -> StoredMessage {
        StoredMessage(
            id: StoreColumns.unsigned(try row.decode(atIndex: 0)), topic: try row.decode(atIndex: 1),
            payload: StoreColumns.buffer(try row.decode(atIndex: 2)),
            qos: try StoreColumns.qos(row.decode(atIndex: 3), column: "qos"), retain: try row.decode(atIndex: 4),
            properties: try StoreColumns.properties(row.decode(atIndex: 5), context: .publish, column: "properties"),
            expiresAt: try row.decode(atIndex: 6), publisherClientID: try row.decode(atIndex: 7),
            publisherUsername: try row.decode(atIndex: 8))
    }

    private func delivery(_ row: Row) throws -> StoredDelivery {
        StoredDelivery(
            key: StoreColumns.unsigned(try row.decode(atIndex: 0)), clientID: try row.decode(atIndex: 1),
            messageID: StoreColumns.unsigned(try row.decode(atIndex: 2)),
            qos: try StoreColumns.qos(row.decode(atIndex: 3), column: "qos"), retain: try row.decode(atIndex: 4),
            subscriptionIDs: try StoreColumns.subscriptionIDs(row.decode(atIndex: 5)),
            stage: try StoreColumns.stage(row.decode(atIndex: 6)),
            packetID: try StoreColumns.exact(row.decode(atIndex: 7), UInt16.self, column: "packet_id"))
    }
}
