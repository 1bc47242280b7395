import MQTTCodec
import NIOCore

/// Writes Mosquitto database files byte by byte, laid out as Mosquitto's persist_write*.c lays
/// them out (formats 5 and 6), for the cases a running Mosquitto cannot be made to write: every
/// message state, old formats, damaged and hostile files.
struct MosquittoDatabaseFileBuilder {
    var bytes: [UInt8]
    let version: UInt32

    static let magic: [UInt8] = [0x00, 0xB5, 0x00] + Array("mosquitto db".utf8)
    static let headerLength = 23

    init(version: UInt32 = 6) {
        self.version = version
        bytes = Self.magic + [0, 0, 0, 0] + Self.be32(version)
    }

    static func be16(_ value: Int) -> [UInt8] { withUnsafeBytes(of: UInt16(value).bigEndian, Array.init) }
    static func be32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.bigEndian, Array.init) }
    static func le64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
    static func le64(_ value: Int64) -> [UInt8] { le64(UInt64(bitPattern: value)) }
    static func encoded(_ properties: Properties) -> [UInt8] {
        var buffer = ByteBuffer()
        properties.write(to: &buffer)
        return Array(buffer.readableBytesView)
    }

    mutating func chunk(_ type: UInt32, _ body: [UInt8], length: UInt32? = nil) {
        bytes += Self.be32(type) + Self.be32(length ?? UInt32(body.count)) + body
    }

    mutating func config(lastStoreID: UInt64, shutdown: Bool = true, storeIDSize: UInt8 = 8) {
        chunk(1, Self.le64(lastStoreID) + [shutdown ? 1 : 0, storeIDSize] + [UInt8](repeating: 0, count: 6))
    }

    mutating func message(storeID: UInt64, topic: String, payload: [UInt8] = Array("payload".utf8), qos: UInt8 = 1,
                          retain: Bool = false, expiryTime: Int64 = 0, source: String = "publisher",
                          properties: Properties? = nil, payloadLength: UInt32? = nil) {
        var body = Self.le64(storeID) + Self.le64(expiryTime) + Self.be32(payloadLength ?? UInt32(payload.count))
        body += Self.be16(0) + Self.be16(source.utf8.count) + Self.be16(0) + Self.be16(topic.utf8.count) + Self.be16(0)
        body += [qos, retain ? 1 : 0] + Array(source.utf8) + Array(topic.utf8) + payload
        if let properties { body += Self.encoded(properties) }
        chunk(2, body)
    }

    mutating func client(_ clientID: String, interval: UInt32 = .max, expiryTime: Int64 = 0, lastMID: Int = 0,
                         username: [UInt8]? = nil) {
        var body = Self.le64(expiryTime) + Self.be32(interval) + Self.be16(lastMID) + Self.be16(clientID.utf8.count)
        if version >= 6 {
            body += Self.be16(1883) + Self.be16(username?.count ?? 0) + [0, 0, 0, 0]
        }
        body += Array(clientID.utf8)
        if version >= 6 { body += username ?? [] }
        chunk(6, body)
    }

    mutating func clientMessage(_ clientID: String, storeID: UInt64, mid: Int = 1, qos: UInt8 = 1, state: UInt8 = 11,
                                direction: UInt8 = 1, retain: Bool = false, dup: Bool = false, properties: Properties? = nil) {
        var body = Self.le64(storeID) + Self.be16(mid) + Self.be16(clientID.utf8.count)
        body += [qos, state, (retain ? 0x10 : 0) | (dup ? 0x01 : 0), direction] + Array(clientID.utf8)
        if let properties { body += Self.encoded(properties) }
        chunk(3, body)
    }

    mutating func retain(storeID: UInt64) {
        chunk(4, Self.le64(storeID))
    }

    mutating func subscription(_ clientID: String, filter: String, qos: UInt8 = 1, options: UInt8 = 0, identifier: UInt32 = 0) {
        let body = Self.be32(identifier) + Self.be16(clientID.utf8.count) + Self.be16(filter.utf8.count) + [qos, options, 0, 0]
            + Array(clientID.utf8) + Array(filter.utf8)
        chunk(5, body)
    }

    /// The offsets where the chunks of `bytes` (a format 5 or 6 file) start, and its end.
    static func chunkBoundaries(_ bytes: [UInt8]) -> [Int] {
        var boundaries = [headerLength]
        var offset = headerLength
        while offset + 8 <= bytes.count {
            let length = bytes[(offset + 4)..<(offset + 8)].reduce(0) { $0 << 8 | Int($1) }
            offset += 8 + length
            boundaries.append(offset)
        }
        return boundaries
    }
}
