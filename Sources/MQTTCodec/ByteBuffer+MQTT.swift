import NIOCore

/// Primitive MQTT data types (spec 1.5) read from and written to a ByteBuffer.
extension ByteBuffer {
    /// Largest value a variable byte integer can hold (four bytes) [MQTT-1.5.5].
    public static let maxVariableByteInteger = 268_435_455

    /// Reads a variable byte integer. Returns nil when more bytes are needed; throws when the
    /// encoding uses more than four bytes, or is not minimal.
    public mutating func readVariableByteInteger() throws -> Int? {
        var value = 0
        var multiplier = 1
        var index = readerIndex
        for position in 0..<4 {
            guard let byte = getInteger(at: index, as: UInt8.self) else { return nil }
            index += 1
            value += Int(byte & 0x7F) * multiplier
            if byte & 0x80 == 0 {
                // A trailing zero byte means the same value fits in fewer bytes: not the minimal
                // number of bytes the spec requires [MQTT-1.5.5-1].
                if position > 0 && byte == 0 { throw MQTTCodecError.malformed("variable byte integer not minimally encoded") }
                moveReaderIndex(to: index)
                return value
            }
            multiplier *= 128
        }
        throw MQTTCodecError.malformed("variable byte integer longer than 4 bytes")
    }

    /// Writes a variable byte integer; returns the number of bytes written.
    @discardableResult
    public mutating func writeVariableByteInteger(_ value: Int) -> Int {
        precondition(value >= 0 && value <= ByteBuffer.maxVariableByteInteger)
        var remaining = value
        var written = 0
        repeat {
            var byte = UInt8(remaining & 0x7F)
            remaining >>= 7
            if remaining > 0 { byte |= 0x80 }
            writeInteger(byte)
            written += 1
        } while remaining > 0
        return written
    }

    /// Number of bytes `writeVariableByteInteger(value)` writes.
    @inlinable
    public static func variableByteIntegerLength(_ value: Int) -> Int {
        value < 128 ? 1 : value < 16_384 ? 2 : value < 2_097_152 ? 3 : 4
    }

    mutating func readMQTTByte(_ what: @autoclosure () -> String) throws -> UInt8 {
        guard let value = readInteger(as: UInt8.self) else { throw MQTTCodecError.malformed("truncated \(what())") }
        return value
    }

    mutating func readMQTTUInt16(_ what: @autoclosure () -> String) throws -> UInt16 {
        guard let value = readInteger(as: UInt16.self) else { throw MQTTCodecError.malformed("truncated \(what())") }
        return value
    }

    mutating func readMQTTUInt32(_ what: @autoclosure () -> String) throws -> UInt32 {
        guard let value = readInteger(as: UInt32.self) else { throw MQTTCodecError.malformed("truncated \(what())") }
        return value
    }

    /// Binary Data: two-byte length then bytes (returned as a slice, no copy).
    mutating func readMQTTBinary(_ what: @autoclosure () -> String) throws -> ByteBuffer {
        guard let length = readInteger(as: UInt16.self), let slice = readSlice(length: Int(length)) else {
            throw MQTTCodecError.malformed("truncated \(what())")
        }
        return slice
    }

    /// UTF-8 Encoded String: well-formed UTF-8 (which excludes the surrogates U+D800..U+DFFF)
    /// and no U+0000 [MQTT-1.5.4-1] [MQTT-1.5.4-2]; a violation is a Malformed Packet.
    mutating func readMQTTString(_ what: @autoclosure () -> String) throws -> String {
        guard let length = readInteger(as: UInt16.self) else { throw MQTTCodecError.malformed("truncated \(what())") }
        guard let string = try readValidatedUTF8(length: Int(length), what()) else {
            throw MQTTCodecError.malformed("truncated \(what())")
        }
        return string
    }

    mutating func readValidatedUTF8(length: Int, _ what: @autoclosure () -> String) throws -> String? {
        guard readableBytes >= length else { return nil }
        let result: String? = withUnsafeReadableBytes { raw in
            let bytes = UnsafeRawBufferPointer(rebasing: raw.prefix(length))
            var ascii = true
            for byte in bytes {
                if byte == 0 { return nil }
                if byte >= 0x80 { ascii = false }
            }
            if ascii { return String(decoding: bytes, as: UTF8.self) }
            return String(validating: bytes, as: UTF8.self)
        }
        guard let string = result else {
            throw MQTTCodecError.malformed("\(what()) is not valid UTF-8 or contains U+0000")
        }
        moveReaderIndex(forwardBy: length)
        return string
    }

    /// Writes a UTF-8 Encoded String (two-byte length prefix).
    @discardableResult
    public mutating func writeMQTTString(_ string: String) -> Int {
        // Fast path (native contiguous UTF-8): length prefix and bytes in one write.
        var string = string
        let written: Int? = string.withUTF8 { utf8 in
            guard utf8.count <= 0xFFFF else { return nil }
            return writeWithUnsafeMutableBytes(minimumWritableBytes: utf8.count + 2) { target in
                target[0] = UInt8(truncatingIfNeeded: utf8.count >> 8)
                target[1] = UInt8(truncatingIfNeeded: utf8.count)
                if let base = utf8.baseAddress, utf8.count > 0 {
                    UnsafeMutableRawBufferPointer(rebasing: target[2...]).copyMemory(from: UnsafeRawBufferPointer(start: base, count: utf8.count))
                }
                return utf8.count + 2
            }
        }
        if let written { return written }
        let lengthIndex = writerIndex
        writeInteger(UInt16(0))
        let count = writeString(string)
        setInteger(UInt16(truncatingIfNeeded: count), at: lengthIndex)
        return count + 2
    }

    /// Writes Binary Data (two-byte length prefix).
    @discardableResult
    public mutating func writeMQTTBinary(_ data: ByteBuffer) -> Int {
        writeInteger(UInt16(truncatingIfNeeded: data.readableBytes))
        var copy = data
        return writeBuffer(&copy) + 2
    }
}

extension String {
    /// Length of this string as an MQTT UTF-8 Encoded String (prefix included).
    @inlinable
    public var mqttEncodedLength: Int { utf8.count + 2 }
}
