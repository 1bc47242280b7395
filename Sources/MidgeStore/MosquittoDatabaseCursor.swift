import NIOCore

/// Reads the fields of a Mosquitto database (mosquitto.db) from its bytes, never past `limit`:
/// the end of the file, or of the chunk being read. Every read checks the bytes left first, so a
/// length field can never make it read (or allocate) beyond them; a failed check throws a
/// `StoreError` at the offset of the field that did not fit.
///
/// Byte order is the file's: Mosquitto writes its 16- and 32-bit fields in network order
/// (big-endian) and its 64-bit ones (`dbid_t` store ids, `time_t` times) as they lie in memory,
/// little-endian on every machine it is built for in practice (x86-64, ARM64).
struct MosquittoDatabaseCursor {
    let bytes: UnsafeRawBufferPointer
    let path: String
    private(set) var offset: Int
    /// The first offset not to read.
    private(set) var limit: Int
    /// What `limit` is the end of, for messages: the file, or the chunk of this name starting
    /// at this offset (made into text only for an error).
    private(set) var scope: (name: StaticString, start: Int)?

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
        self.offset = 0
        self.limit = bytes.count
        self.scope = nil
    }

    var remaining: Int { limit - offset }
    var isAtEnd: Bool { offset >= limit }

    func error(_ message: String, at position: Int? = nil) -> StoreError {
        StoreError(path: path, offset: position ?? offset, message: message)
    }

    /// Reads within `length` bytes from here (a chunk's body) with `body`, which must use them
    /// all; then goes on after them in the enclosing scope.
    mutating func within<T>(_ length: Int, chunk name: StaticString, startingAt start: Int,
                            _ body: (inout MosquittoDatabaseCursor) throws -> T) throws -> T {
        try require(length, "the \(name) chunk")
        var inner = self
        inner.limit = offset + length
        inner.scope = (name, start)
        let value = try body(&inner)
        if inner.remaining != 0 {
            throw inner.error("\(inner.scopeDescription) has \(inner.remaining) byte(s) after its last field (its length says \(length) bytes)")
        }
        offset = inner.limit
        return value
    }

    private var scopeDescription: String {
        guard let scope else { return "the file" }
        return "the \(scope.name) chunk at byte \(scope.start)"
    }

    private func require(_ count: Int, _ what: @autoclosure () -> String) throws {
        guard count >= 0, count <= remaining else {
            throw error("\(what()) needs \(count) bytes but \(scopeDescription) has only \(remaining) left")
        }
    }

    mutating func skip(_ count: Int, _ what: @autoclosure () -> String) throws {
        try require(count, what())
        offset += count
    }

    mutating func uint8(_ what: @autoclosure () -> String) throws -> UInt8 {
        try require(1, what())
        defer { offset += 1 }
        return bytes[offset]
    }

    /// A 16-bit field in network byte order.
    mutating func uint16(_ what: @autoclosure () -> String) throws -> UInt16 {
        try require(2, what())
        defer { offset += 2 }
        return UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// A 32-bit field in network byte order.
    mutating func uint32(_ what: @autoclosure () -> String) throws -> UInt32 {
        try require(4, what())
        defer { offset += 4 }
        return UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// A 64-bit field as Mosquitto writes it: in its memory order, little-endian.
    mutating func hostUInt64(_ what: @autoclosure () -> String) throws -> UInt64 {
        try require(8, what())
        defer { offset += 8 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    mutating func hostInt64(_ what: @autoclosure () -> String) throws -> Int64 {
        Int64(bitPattern: try hostUInt64(what()))
    }

    /// `count` bytes as they are (no copy: valid while the file's bytes are).
    mutating func raw(_ count: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        try require(count, what())
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }

    /// A string of `count` bytes (no length prefix and no terminator in the file). Mosquitto
    /// stores only UTF-8 it has checked; anything else is decoded with replacement characters.
    mutating func string(_ count: Int, _ what: @autoclosure () -> String) throws -> String {
        String(decoding: try raw(count, what()), as: UTF8.self)
    }

    /// `count` bytes copied into a buffer of their own.
    mutating func buffer(_ count: Int, _ what: @autoclosure () -> String) throws -> ByteBuffer {
        let source = try raw(count, what())
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        buffer.writeBytes(source)
        return buffer
    }
}
