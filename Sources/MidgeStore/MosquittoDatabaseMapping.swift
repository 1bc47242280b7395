import MQTTCodec
import MidgeBroker
import NIOCore

/// Turns the chunks of a Mosquitto database into Midge's `PersistedState`, as Mosquitto itself
/// restores them (src/persist_read.c): chunks refer to each other by store id and client id,
/// in any order; a reference to a message that is not in the file is dropped, as Mosquitto drops
/// it; a client id met in a SUB or CLIENT_MSG chunk without a CLIENT chunk still makes a session.
/// Expired messages are kept with their expiry time (the engine drops them, as it does its own).
enum MosquittoDatabaseMapping {
    static func map(_ contents: MosquittoDatabaseContents, path: String) throws -> MosquittoDatabase.Import {
        var builder = Builder(path: path, contents: contents)
        try builder.indexMessages()
        builder.addClients()
        try builder.addClientMessages()
        builder.addSubscriptions()
        builder.addRetained()
        return builder.finish()
    }

    private struct Builder {
        let path: String
        let contents: MosquittoDatabaseContents
        var state = PersistedState()
        var dropped = Dropped()

        /// Store id → index in `contents.messages`.
        var messageIndex = StoreIDIndex()
        /// Indexes of the messages some delivery refers to.
        var referenced: [Bool] = []
        var sessionIndex: [String: Int] = [:]
        /// Sessions whose file shows MQTT v5 use (Mosquitto does not store the protocol level).
        var usesV5: Set<String> = []
        var subscriptionIndex: [String: Int] = [:]
        var inboundSeen: Set<String> = []

        init(path: String, contents: MosquittoDatabaseContents) {
            self.path = path
            self.contents = contents
            dropped.unknownChunks = contents.unknownChunks
            dropped.emptyClients = contents.emptyClients
        }

        mutating func indexMessages() throws {
            let messages = contents.messages
            messageIndex = StoreIDIndex(ids: messages.lazy.map(\.storeID))
            referenced = Array(repeating: false, count: messages.count)
            for index in messages.indices {
                let storeID = messages[index].storeID
                guard storeID != 0 else {
                    throw StoreError(path: path, offset: messages[index].offset, message: "the MSG_STORE chunk has store id 0")
                }
                if let first = messageIndex.insert(storeID, at: index) {
                    throw StoreError(path: path, offset: messages[index].offset,
                                     message: "store id \(storeID) is also the MSG_STORE chunk's at byte \(messages[first].offset)")
                }
                guard messages[index].expiryTime <= Int64.max / 1000 else {
                    throw StoreError(path: path, offset: messages[index].offset,
                                     message: "impossible expiry time \(messages[index].expiryTime)")
                }
            }
        }

        /// The index of the session of `clientID`, made (never expiring, MQTT 3.1.1) if the file
        /// has no CLIENT chunk for it, as Mosquitto does.
        mutating func session(_ clientID: String) -> Int {
            if let index = sessionIndex[clientID] { return index }
            state.sessions.append(StoredSession(clientID: clientID, expiryInterval: .max, protocolLevel: 4))
            sessionIndex[clientID] = state.sessions.count - 1
            return state.sessions.count - 1
        }

        mutating func addClients() {
            for client in contents.clients {
                let index = session(client.clientID)
                state.sessions[index].expiryInterval = client.sessionExpiryInterval
                state.sessions[index].disconnectedAt = Self.disconnectedAt(expiryTime: client.sessionExpiryTime,
                                                                         interval: client.sessionExpiryInterval)
                // A second CLIENT chunk of the same id keeps the first username, as in Mosquitto.
                if state.sessions[index].username == nil { state.sessions[index].username = client.username }
                // Mosquitto's last_mid: the session's numbering goes on after it.
                state.sessions[index].lastPacketID = client.lastMID
                // An MQTT 3.x session with clean session 0 always has the interval "never"
                // (UINT32_MAX): any other interval was set by a v5 CONNECT.
                if client.sessionExpiryInterval != .max { usesV5.insert(client.clientID) }
            }
        }

        /// Mosquitto stores when a disconnected session expires (its disconnection plus its
        /// interval, in seconds), 0 while it is not counting down (connected at the save, or
        /// never expiring). Midge keeps when it was disconnected: the same moment of expiry.
        static func disconnectedAt(expiryTime: Int64, interval: UInt32) -> Int64? {
            guard expiryTime > 0, interval != .max else { return nil }
            let seconds = expiryTime - Int64(interval)
            guard seconds > 0, seconds <= Int64.max / 1000 else { return nil }
            return seconds * 1000
        }

        mutating func addClientMessages() throws {
            var key: UInt64 = 0
            for message in contents.clientMessages {
                guard let index = messageIndex[message.storeID] else {
                    dropped.missingMessages += 1
                    continue
                }
                _ = session(message.clientID)
                if !message.properties.isEmpty { usesV5.insert(message.clientID) }
                switch message.direction {
                case .incoming:
                    // Received with QoS 2 and PUBREC'd, waiting for PUBREL (or about to PUBREC).
                    guard message.qos == 2, message.mid != 0,
                          message.state == .waitForPubRel || message.state == .sendPubRec else {
                        dropped.otherIncoming += 1
                        continue
                    }
                    dropped.inboundContent += 1
                    if inboundSeen.insert("\(message.clientID)\u{0}\(message.mid)").inserted {
                        state.inboundQoS2.append((clientID: message.clientID, packetID: message.mid))
                    }
                case .outgoing:
                    guard let qos = QoS(rawValue: message.qos), qos != .atMostOnce else {
                        dropped.qos0 += 1
                        continue
                    }
                    var stage = Self.stage(message.state, qos: qos)
                    if message.mid == 0 { stage = .queued }
                    key += 1
                    state.deliveries.append(StoredDelivery(
                        key: key, clientID: message.clientID, messageID: message.storeID, qos: qos, retain: message.retain,
                        subscriptionIDs: message.properties.subscriptionIdentifiers, stage: stage,
                        packetID: message.mid))
                    referenced[index] = true
                }
            }
        }

        /// Where an outgoing message stands. Mosquitto's outgoing flow is publish_qos1 →
        /// wait_for_puback, publish_qos2 → wait_for_pubrec → resend_pubrel / wait_for_pubcomp;
        /// the other states belong to incoming messages, and a message found in one is sent
        /// again, as Mosquitto does when its client reconnects.
        static func stage(_ state: MosquittoMessageState, qos: QoS) -> OutboundStage {
            switch state {
            case .queued:
                return .queued
            case .resendPubRel, .waitForPubComp:
                return qos == .exactlyOnce ? .released : .published
            case .invalid, .publishQoS0, .publishQoS1, .waitForPubAck, .publishQoS2, .waitForPubRec, .waitForPubRel,
                 .resendPubComp, .sendPubRec:
                return .published
            }
        }

        mutating func addSubscriptions() {
            for subscription in contents.subscriptions {
                guard !subscription.clientID.isEmpty, !subscription.filter.isEmpty else {
                    dropped.emptySubscriptions += 1
                    continue
                }
                _ = session(subscription.clientID)
                let options = SubscriptionOptions(
                    qos: QoS(rawValue: subscription.qos) ?? .atMostOnce,
                    noLocal: subscription.options & 0x04 != 0,
                    retainAsPublished: subscription.options & 0x08 != 0,
                    retainHandling: RetainHandling(rawValue: (subscription.options >> 4) & 0x03) ?? .sendOnSubscribe)
                let stored = StoredSubscription(clientID: subscription.clientID, filter: subscription.filter, options: options,
                                                identifier: subscription.identifier == 0 ? nil : Int(subscription.identifier))
                if stored.identifier != nil || options.noLocal || options.retainAsPublished || options.retainHandling != .sendOnSubscribe {
                    usesV5.insert(subscription.clientID)
                }
                // The same filter twice: the later replaces the earlier, as a SUBSCRIBE would.
                let key = "\(subscription.clientID)\u{0}\(subscription.filter)"
                if let index = subscriptionIndex[key] {
                    state.subscriptions[index] = stored
                } else {
                    subscriptionIndex[key] = state.subscriptions.count
                    state.subscriptions.append(stored)
                }
            }
        }

        mutating func addRetained() {
            var topicIndex: [String: Int] = [:]
            topicIndex.reserveCapacity(contents.retains.count)
            state.retained.reserveCapacity(contents.retains.count)
            for retain in contents.retains {
                guard let index = messageIndex[retain.storeID] else {
                    dropped.missingRetained += 1
                    continue
                }
                let message = contents.messages[index]
                // Mosquitto does not save them either: they describe the broker that wrote the file.
                guard !message.topic.hasPrefix("$SYS") else {
                    dropped.sysRetained += 1
                    continue
                }
                let stored = Self.storedMessage(message, id: 0, retain: true)
                if let existing = topicIndex[message.topic] {
                    state.retained[existing] = stored
                } else {
                    topicIndex[message.topic] = state.retained.count
                    state.retained.append(stored)
                }
            }
        }

        static func storedMessage(_ message: MosquittoMessageChunk, id: UInt64, retain: Bool) -> StoredMessage {
            StoredMessage(id: id, topic: message.topic, payload: message.payload, qos: message.qos, retain: retain,
                          properties: message.properties, expiresAt: message.expiryTime > 0 ? message.expiryTime * 1000 : nil,
                          publisherClientID: message.sourceID, publisherUsername: message.sourceUsername)
        }

        mutating func finish() -> MosquittoDatabase.Import {
            for (index, message) in contents.messages.enumerated() where referenced[index] {
                state.messages.append(Self.storedMessage(message, id: message.storeID, retain: message.retain))
            }
            for clientID in usesV5 {
                if let index = sessionIndex[clientID] { state.sessions[index].protocolLevel = 5 }
            }
            return MosquittoDatabase.Import(state: state, formatVersion: Int(contents.formatVersion),
                                            writtenAtShutdown: contents.config?.shutdown, dropped: dropped.lines)
        }
    }

    /// Store id → index of its MSG_STORE chunk. Mosquitto numbers its messages from 1 up, so the
    /// ids of a file are nearly dense: a table then (no hashing of a million ids), a dictionary
    /// for ids too sparse for one.
    struct StoreIDIndex {
        private var lowest: UInt64 = 0
        private var table: [Int32] = []
        private var dictionary: [UInt64: Int] = [:]
        private var dense = false

        init() {}

        init<IDs: Sequence>(ids: IDs) where IDs.Element == UInt64 {
            var count = 0
            var lowest = UInt64.max
            var highest: UInt64 = 0
            for id in ids {
                count += 1
                lowest = min(lowest, id)
                highest = max(highest, id)
            }
            guard count > 0 else { return }
            let span = highest - lowest
            if count < Int(Int32.max), span < UInt64(4 * count + 1024) {
                dense = true
                self.lowest = lowest
                table = Array(repeating: -1, count: Int(span) + 1)
            } else {
                dictionary.reserveCapacity(count)
            }
        }

        subscript(id: UInt64) -> Int? {
            guard dense else { return dictionary[id] }
            guard id >= lowest, id - lowest < UInt64(table.count) else { return nil }
            let index = table[Int(id - lowest)]
            return index < 0 ? nil : Int(index)
        }

        /// Adds `id`; returns the index it already had, if any (and keeps that one).
        mutating func insert(_ id: UInt64, at index: Int) -> Int? {
            if let existing = self[id] { return existing }
            if dense {
                table[Int(id - lowest)] = Int32(index)
            } else {
                dictionary[id] = index
            }
            return nil
        }
    }

    /// Counts of what the file holds that the state cannot, for `Import.dropped`.
    private struct Dropped {
        var qos0 = 0
        var missingMessages = 0
        var inboundContent = 0
        var otherIncoming = 0
        var missingRetained = 0
        var sysRetained = 0
        var emptySubscriptions = 0
        var emptyClients = 0
        var unknownChunks = 0

        var lines: [String] {
            var lines: [String] = []
            func add(_ count: Int, _ text: String) { if count > 0 { lines.append("\(count) \(text)") } }
            add(qos0, "QoS 0 message(s) queued for sessions (Midge queues QoS 1 and 2 only)")
            add(missingMessages, "client message(s) referring to a message not in the file (expired)")
            add(inboundContent, "incoming QoS 2 message(s) awaiting PUBREL: their packet ids are held, their content is not published")
            add(otherIncoming, "incoming message(s) in another state")
            add(missingRetained, "retained entr(y/ies) referring to a message not in the file (expired)")
            add(sysRetained, "$SYS retained message(s)")
            add(emptySubscriptions, "subscription(s) with an empty client id or filter")
            add(emptyClients, "CLIENT chunk(s) with an empty client id")
            add(unknownChunks, "chunk(s) of an unknown type")
            return lines
        }
    }
}
