import MQTTCodec
import NIOCore

// Packets as bytes: encoded by the codec, or built field by field for what a well-behaved
// encoder never writes (wrong flags, bad strings, missing fields).

/// The bytes `packet` encodes to for `version`.
public func encoded(_ packet: MQTTPacket, _ version: ProtocolVersion) -> [UInt8] {
    let buffer = PacketEncoder.encode(packet, version: version)
    return buffer.getBytes(at: buffer.readerIndex, length: buffer.readableBytes) ?? []
}

/// A valid CONNECT's bytes for `version`.
public func connectBytes(_ clientID: String, _ version: ProtocolVersion, cleanStart: Bool = true, keepAlive: UInt16 = 60,
                         will: Will? = nil, username: String? = nil, properties: Properties = .none) -> [UInt8] {
    encoded(.connect(ConnectPacket(protocolVersion: version, cleanStart: cleanStart, keepAlive: keepAlive, clientID: clientID,
                                   will: will, username: username, properties: properties)), version)
}

/// Index of the Connect Flags byte in a CONNECT whose remaining length is below 128.
public func connectFlagsIndex(_ version: ProtocolVersion) -> Int {
    2 + version.protocolName.mqttEncodedLength + 1
}

/// A UTF-8 Encoded String (two-byte length, then the bytes).
public func mqttString(_ string: String) -> [UInt8] { mqttBinary(Array(string.utf8)) }

/// Binary Data / a string given as raw bytes (two-byte length, then the bytes).
public func mqttBinary(_ bytes: [UInt8]) -> [UInt8] { [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes }

/// A Variable Byte Integer.
public func variableByteInteger(_ value: Int) -> [UInt8] {
    var remaining = value
    var bytes: [UInt8] = []
    repeat {
        var byte = UInt8(remaining & 0x7F)
        remaining >>= 7
        if remaining > 0 { byte |= 0x80 }
        bytes.append(byte)
    } while remaining > 0
    return bytes
}

/// A packet from its first byte and body (the remaining length is computed).
public func rawPacket(_ first: UInt8, _ body: [UInt8]) -> [UInt8] { [first] + variableByteInteger(body.count) + body }

/// v5 properties with their length prefix.
public func rawProperties(_ bytes: [UInt8]) -> [UInt8] { variableByteInteger(bytes.count) + bytes }

/// A CONNECT built field by field; `properties` are the v5 property bytes without their length
/// (nil: no property section, as in v3), `payload` everything after (client id, will, ...).
public func rawConnect(name: String = "MQTT", level: UInt8 = 5, flags: UInt8 = 0x02, keepAlive: UInt16 = 60,
                       properties: [UInt8]? = [], payload: [UInt8]) -> [UInt8] {
    var body = mqttString(name) + [level, flags, UInt8(keepAlive >> 8), UInt8(keepAlive & 0xFF)]
    if let properties { body += rawProperties(properties) }
    return rawPacket(0x10, body + payload)
}

/// A PUBLISH built field by field: `flags` are the low four bits of the first byte (DUP, QoS,
/// RETAIN); `properties` are v5 property bytes without their length (nil: v3, no property section).
public func rawPublish(flags: UInt8, topic: [UInt8], packetID: UInt16? = nil, properties: [UInt8]? = [],
                       payload: [UInt8] = Array("x".utf8)) -> [UInt8] {
    var body = mqttBinary(topic)
    if let packetID { body += [UInt8(packetID >> 8), UInt8(packetID & 0xFF)] }
    if let properties { body += rawProperties(properties) }
    return rawPacket(0x30 | flags, body + payload)
}

/// A PUBLISH of `topic` in the property form `version` uses (v3: no property section).
public func rawPublish(_ version: ProtocolVersion, flags: UInt8 = 0, topic: [UInt8], packetID: UInt16? = nil,
                       properties: [UInt8] = [], payload: [UInt8] = Array("x".utf8)) -> [UInt8] {
    rawPublish(flags: flags, topic: topic, packetID: packetID, properties: version == .v5 ? properties : nil, payload: payload)
}

/// The same, with the topic given as a string.
public func rawPublish(_ version: ProtocolVersion, flags: UInt8 = 0, topic: String, packetID: UInt16? = nil,
                       properties: [UInt8] = []) -> [UInt8] {
    rawPublish(version, flags: flags, topic: Array(topic.utf8), packetID: packetID, properties: properties)
}
