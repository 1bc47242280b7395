import MQTTCodec
import NIOCore

// The content of a Mosquitto database file, chunk by chunk, as Mosquitto 1.6 and 2.0 write it
// (src/persist_write*.c there): database formats 5 and 6.
//
// The file: 15 bytes of magic ("\0\xB5\0mosquitto db"), a 4-byte CRC (always written as 0 and
// never checked by Mosquitto), the format version (4 bytes), then chunks. A chunk is its type
// and the length of its body (4 bytes each), then the body: a fixed part (a C struct written
// as it lies in memory, padding included) followed by the variable fields the fixed part gives
// the lengths of. Each chunk is read here within the length its header gives, and must use
// exactly that length: anything else is a damaged file.

/// The chunk types (`DB_CHUNK_*` in Mosquitto's persist.h).
enum MosquittoChunkType: UInt32 {
    case config = 1
    case messageStore = 2
    case clientMessage = 3
    case retain = 4
    case subscription = 5
    case client = 6

    var name: StaticString {
        switch self {
        case .config: return "CFG"
        case .messageStore: return "MSG_STORE"
        case .clientMessage: return "CLIENT_MSG"
        case .retain: return "RETAIN"
        case .subscription: return "SUB"
        case .client: return "CLIENT"
        }
    }
}

/// CFG: written first.
struct MosquittoConfigChunk {
    var lastStoreID: UInt64
    /// Written by a clean shutdown (not by a periodic autosave).
    var shutdown: Bool
}

/// MSG_STORE: one application message, shared by the client messages and the retain entry
/// that refer to its store id.
struct MosquittoMessageChunk {
    var offset: Int
    var storeID: UInt64
    /// Unix time in seconds when the message expires, 0 = never.
    var expiryTime: Int64
    var sourceMID: UInt16
    var sourceID: String
    var sourceUsername: String?
    var sourcePort: UInt16
    var topic: String
    var payload: ByteBuffer
    var qos: QoS
    var retain: Bool
    /// As Mosquitto keeps them: without Message Expiry Interval (that is `expiryTime`),
    /// Topic Alias and Subscription Identifiers.
    var properties: Properties
}

/// CLIENT: one session (a client with clean start / clean session off).
struct MosquittoClientChunk {
    var offset: Int
    var clientID: String
    /// Unix time in seconds when the session expires, 0 when not counting down (connected at
    /// the save, or a session that never expires).
    var sessionExpiryTime: Int64
    var sessionExpiryInterval: UInt32
    var lastMID: UInt16
    /// Format 6 only (0 in format 5).
    var listenerPort: UInt16
    var username: String?
}

/// CLIENT_MSG: one message of one session, in flight or queued, either way.
struct MosquittoClientMessageChunk {
    var offset: Int
    var storeID: UInt64
    var mid: UInt16
    var clientID: String
    var qos: UInt8
    var state: MosquittoMessageState
    var retain: Bool
    var dup: Bool
    var direction: MosquittoMessageDirection
    /// What this delivery adds to the message's own properties (Subscription Identifiers).
    var properties: Properties
}

/// `enum mosquitto_msg_direction` (lib/mosquitto_internal.h).
enum MosquittoMessageDirection: UInt8 {
    case incoming = 0
    case outgoing = 1
}

/// `enum mosquitto_msg_state` (lib/mosquitto_internal.h).
enum MosquittoMessageState: UInt8 {
    case invalid = 0
    case publishQoS0 = 1
    case publishQoS1 = 2
    case waitForPubAck = 3
    case publishQoS2 = 4
    case waitForPubRec = 5
    case resendPubRel = 6
    case waitForPubRel = 7
    case resendPubComp = 8
    case waitForPubComp = 9
    case sendPubRec = 10
    case queued = 11
}

/// RETAIN: the retained message of its topic (the message's own topic).
struct MosquittoRetainChunk {
    var offset: Int
    var storeID: UInt64
}

/// SUB: one subscription of one session.
struct MosquittoSubscriptionChunk {
    var offset: Int
    var clientID: String
    var filter: String
    var qos: UInt8
    /// The MQTT v5 options byte without its QoS bits: Mosquitto 2.0 sets No Local (0x04) and
    /// Retain As Published (0x08) only.
    var options: UInt8
    /// v5 Subscription Identifier, 0 = none.
    var identifier: UInt32
}

/// Every chunk of a file, in file order within each kind.
struct MosquittoDatabaseContents {
    var formatVersion: UInt32 = 0
    var config: MosquittoConfigChunk?
    var messages: [MosquittoMessageChunk] = []
    var clients: [MosquittoClientChunk] = []
    var clientMessages: [MosquittoClientMessageChunk] = []
    var retains: [MosquittoRetainChunk] = []
    var subscriptions: [MosquittoSubscriptionChunk] = []
    /// Chunks of a type this reader does not know (skipped, as Mosquitto does).
    var unknownChunks = 0
    /// CLIENT chunks with an empty client id (skipped, as Mosquitto does).
    var emptyClients = 0
}

enum MosquittoDatabaseParser {
    static let magic: [UInt8] = [0x00, 0xB5, 0x00] + Array("mosquitto db".utf8)
    static let headerLength = 15 + 4 + 4

    /// Reads every chunk of `bytes` (a whole file).
    static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> MosquittoDatabaseContents {
        var cursor = MosquittoDatabaseCursor(bytes: bytes, path: path)
        var contents = MosquittoDatabaseContents()
        for (index, expected) in magic.enumerated() {
            guard index < bytes.count else {
                throw cursor.error("the file ends inside the Mosquitto database header (\(bytes.count) of \(headerLength) bytes)", at: bytes.count)
            }
            guard bytes[index] == expected else {
                throw cursor.error("not a Mosquitto database: the file does not start with Mosquitto's magic bytes (00 B5 00 \"mosquitto db\")", at: index)
            }
        }
        try cursor.skip(15, "the magic bytes")
        // Mosquitto writes 0 here and never checks it: there is no checksum to verify.
        _ = try cursor.uint32("the header's CRC field")
        let versionOffset = cursor.offset
        let version = try cursor.uint32("the database format version")
        switch version {
        case 5, 6: break
        case 2, 3, 4:
            throw cursor.error("database format version \(version) (Mosquitto 1.5 or older) is not supported: start Mosquitto 2.0 on it once, which rewrites it in format 6", at: versionOffset)
        default:
            throw cursor.error("unknown database format version \(version) (format 6 is Mosquitto 2.0's, 5 Mosquitto 1.6's)", at: versionOffset)
        }
        contents.formatVersion = version

        while !cursor.isAtEnd {
            let start = cursor.offset
            guard cursor.remaining >= 8 else {
                throw cursor.error("the file ends inside a chunk header (\(cursor.remaining) of 8 bytes)")
            }
            let rawType = try cursor.uint32("a chunk type")
            let length = Int(try cursor.uint32("a chunk length"))
            guard length <= cursor.remaining else {
                let name = MosquittoChunkType(rawValue: rawType).map { "\($0.name)" } ?? "type \(rawType)"
                throw cursor.error("the \(name) chunk's length is \(length) bytes but only \(cursor.remaining) follow: the file is truncated or damaged", at: start)
            }
            guard let type = MosquittoChunkType(rawValue: rawType) else {
                contents.unknownChunks += 1
                try cursor.skip(length, "an unknown chunk")
                continue
            }
            try cursor.within(length, chunk: type.name, startingAt: start) { body in
                switch type {
                case .config:
                    contents.config = try readConfig(&body)
                case .messageStore:
                    contents.messages.append(try readMessage(&body, chunk: start))
                case .clientMessage:
                    contents.clientMessages.append(try readClientMessage(&body, chunk: start))
                case .retain:
                    contents.retains.append(MosquittoRetainChunk(offset: start, storeID: try body.hostUInt64("the store id")))
                case .subscription:
                    contents.subscriptions.append(try readSubscription(&body, chunk: start))
                case .client:
                    if let client = try readClient(&body, chunk: start, formatVersion: version) {
                        contents.clients.append(client)
                    } else {
                        contents.emptyClients += 1
                    }
                }
            }
        }
        return contents
    }

    // struct PF_cfg: last_db_id (8), shutdown (1), dbid_size (1), 6 bytes of padding.
    private static func readConfig(_ body: inout MosquittoDatabaseCursor) throws -> MosquittoConfigChunk {
        let lastStoreID = try body.hostUInt64("the last store id")
        let shutdown = try body.uint8("the shutdown flag")
        let sizeOffset = body.offset
        let storeIDSize = try body.uint8("the store id size")
        guard storeIDSize == 8 else {
            throw body.error("store ids are \(storeIDSize) bytes in this database, 8 are expected", at: sizeOffset)
        }
        try body.skip(6, "the padding")
        return MosquittoConfigChunk(lastStoreID: lastStoreID, shutdown: shutdown != 0)
    }

    // struct PF_msg_store: store_id (8), expiry_time (8), payloadlen (4), source_mid,
    // source_id_len, source_username_len, topic_len, source_port (2 each), qos, retain (1 each);
    // then source id, source username, topic, payload, properties.
    private static func readMessage(_ body: inout MosquittoDatabaseCursor, chunk: Int) throws -> MosquittoMessageChunk {
        let storeID = try body.hostUInt64("the store id")
        let expiryTime = try body.hostInt64("the expiry time")
        let payloadLength = try body.uint32("the payload length")
        let sourceMID = try body.uint16("the source mid")
        let sourceIDLength = try body.uint16("the source id length")
        let sourceUsernameLength = try body.uint16("the source username length")
        let topicLength = try body.uint16("the topic length")
        let sourcePort = try body.uint16("the source port")
        let qos = try qosField(&body)
        let retain = try body.uint8("the retain flag")
        let sourceID = try body.string(Int(sourceIDLength), "the source id")
        let sourceUsername = sourceUsernameLength == 0 ? nil : try body.string(Int(sourceUsernameLength), "the source username")
        guard topicLength > 0 else { throw body.error("the message has an empty topic") }
        let topic = try body.string(Int(topicLength), "the topic")
        let payload = try body.buffer(Int(payloadLength), "the payload")
        let properties = try readProperties(&body)
        return MosquittoMessageChunk(offset: chunk, storeID: storeID, expiryTime: expiryTime, sourceMID: sourceMID,
                                     sourceID: sourceID, sourceUsername: sourceUsername, sourcePort: sourcePort, topic: topic,
                                     payload: payload, qos: qos, retain: retain != 0, properties: properties)
    }

    // struct PF_client (format 6): session_expiry_time (8), session_expiry_interval (4),
    // last_mid, id_len, listener_port, username_len (2 each), 4 bytes of padding; then client
    // id, username. Format 5 stops after id_len (16 bytes) and has no username.
    private static func readClient(_ body: inout MosquittoDatabaseCursor, chunk: Int, formatVersion: UInt32) throws -> MosquittoClientChunk? {
        let expiryTime = try body.hostInt64("the session expiry time")
        let interval = try body.uint32("the session expiry interval")
        let lastMID = try body.uint16("the last mid")
        let idLength = try body.uint16("the client id length")
        var listenerPort: UInt16 = 0
        var usernameLength: UInt16 = 0
        if formatVersion >= 6 {
            listenerPort = try body.uint16("the listener port")
            usernameLength = try body.uint16("the username length")
            try body.skip(4, "the padding")
        }
        let clientID = try body.string(Int(idLength), "the client id")
        let usernameBytes = try body.raw(Int(usernameLength), "the username")
        // Mosquitto 2.0.11 does not reset its chunk between clients: one without a username
        // gets the bytes behind the previous client's username pointer, the NUL after it and
        // whatever follows (fixed in 2.0.16). A username never holds a NUL: that one is none.
        let username = usernameBytes.isEmpty || usernameBytes.contains(0) ? nil : String(decoding: usernameBytes, as: UTF8.self)
        guard !clientID.isEmpty else { return nil }
        return MosquittoClientChunk(offset: chunk, clientID: clientID, sessionExpiryTime: expiryTime, sessionExpiryInterval: interval,
                                    lastMID: lastMID, listenerPort: listenerPort, username: username)
    }

    // struct PF_client_msg: store_id (8), mid, id_len (2 each), qos, state, retain_dup,
    // direction (1 each); then client id, properties.
    private static func readClientMessage(_ body: inout MosquittoDatabaseCursor, chunk: Int) throws -> MosquittoClientMessageChunk {
        let storeID = try body.hostUInt64("the store id")
        let mid = try body.uint16("the mid")
        let idLength = try body.uint16("the client id length")
        let qosOffset = body.offset
        let qos = try body.uint8("the QoS")
        guard qos <= 2 else { throw body.error("QoS \(qos) is not 0, 1 or 2", at: qosOffset) }
        let stateOffset = body.offset
        let rawState = try body.uint8("the message state")
        guard let state = MosquittoMessageState(rawValue: rawState) else {
            throw body.error("unknown message state \(rawState)", at: stateOffset)
        }
        let retainDup = try body.uint8("the retain and dup flags")
        let directionOffset = body.offset
        let rawDirection = try body.uint8("the direction")
        guard let direction = MosquittoMessageDirection(rawValue: rawDirection) else {
            throw body.error("unknown message direction \(rawDirection)", at: directionOffset)
        }
        let clientIDOffset = body.offset
        let clientID = try body.string(Int(idLength), "the client id")
        guard !clientID.isEmpty else { throw body.error("the client message has an empty client id", at: clientIDOffset) }
        let properties = try readProperties(&body)
        return MosquittoClientMessageChunk(offset: chunk, storeID: storeID, mid: mid, clientID: clientID, qos: qos, state: state,
                                           retain: retainDup & 0xF0 != 0, dup: retainDup & 0x0F != 0, direction: direction,
                                           properties: properties)
    }

    // struct PF_sub: identifier (4), id_len, topic_len (2 each), qos, options (1 each), 2 bytes
    // of padding; then client id, topic filter.
    private static func readSubscription(_ body: inout MosquittoDatabaseCursor, chunk: Int) throws -> MosquittoSubscriptionChunk {
        let identifier = try body.uint32("the subscription identifier")
        let idLength = try body.uint16("the client id length")
        let filterLength = try body.uint16("the topic filter length")
        let qosOffset = body.offset
        let qos = try body.uint8("the QoS")
        guard qos <= 2 else { throw body.error("QoS \(qos) is not 0, 1 or 2", at: qosOffset) }
        let options = try body.uint8("the options")
        try body.skip(2, "the padding")
        let clientID = try body.string(Int(idLength), "the client id")
        let filter = try body.string(Int(filterLength), "the topic filter")
        return MosquittoSubscriptionChunk(offset: chunk, clientID: clientID, filter: filter, qos: qos, options: options,
                                          identifier: identifier)
    }

    private static func qosField(_ body: inout MosquittoDatabaseCursor) throws -> QoS {
        let offset = body.offset
        let raw = try body.uint8("the QoS")
        guard let qos = QoS(rawValue: raw) else { throw body.error("QoS \(raw) is not 0, 1 or 2", at: offset) }
        return qos
    }

    /// The rest of a chunk, if any: MQTT v5 properties as on the wire (a variable-length
    /// integer, then the properties), which must fill it exactly.
    private static func readProperties(_ body: inout MosquittoDatabaseCursor) throws -> Properties {
        guard !body.isAtEnd else { return .none }
        let start = body.offset
        var buffer = ByteBuffer(bytes: try body.raw(body.remaining, "the properties"))
        let total = buffer.readableBytes
        let properties: Properties
        do {
            properties = try Properties.read(from: &buffer, context: .publish)
        } catch {
            let detail = (error as? MQTTCodecError)?.detail ?? "\(error)"
            throw body.error("the properties are not valid MQTT v5 publish properties: \(detail)", at: start)
        }
        guard buffer.readableBytes == 0 else {
            throw body.error("\(buffer.readableBytes) byte(s) follow the properties", at: start + total - buffer.readableBytes)
        }
        return properties
    }
}
