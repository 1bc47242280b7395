import NIOCore

/// Encodes MQTT control packets for a given protocol version.
public enum PacketEncoder {
    /// Appends `packet`, encoded for `version`, to `buffer`.
    public static func encode(_ packet: MQTTPacket, version: ProtocolVersion, into buffer: inout ByteBuffer) {
        let v5 = version == .v5
        switch packet {
        case .connect(let connect):
            encodeConnect(connect, into: &buffer)
        case .connack(let connack):
            let properties = v5 ? connack.properties.encodedLengthWithPrefix : 0
            writeFixedHeader(0x20, remaining: 2 + properties, into: &buffer)
            buffer.writeInteger(UInt8(connack.sessionPresent ? 1 : 0))
            if v5 {
                buffer.writeInteger(connack.reasonCode.rawValue)
                connack.properties.writeConnAckOrder(to: &buffer)
            } else {
                buffer.writeInteger((connack.returnCode ?? ConnectReturnCode(connack.reasonCode)).rawValue)
            }
        case .publish(let publish):
            encodePublish(publish, version: version, into: &buffer)
        case .puback(let ack): encodeAck(0x40, ack, v5: v5, into: &buffer)
        case .pubrec(let ack): encodeAck(0x50, ack, v5: v5, into: &buffer)
        case .pubrel(let ack): encodeAck(0x62, ack, v5: v5, into: &buffer)
        case .pubcomp(let ack): encodeAck(0x70, ack, v5: v5, into: &buffer)
        case .subscribe(let subscribe):
            var remaining = 2 + (v5 ? subscribe.properties.encodedLengthWithPrefix : 0)
            for s in subscribe.subscriptions { remaining += s.filter.mqttEncodedLength + 1 }
            writeFixedHeader(0x82, remaining: remaining, into: &buffer)
            buffer.writeInteger(subscribe.packetID)
            if v5 { subscribe.properties.write(to: &buffer) }
            for s in subscribe.subscriptions {
                buffer.writeMQTTString(s.filter)
                buffer.writeInteger(v5 ? s.options.byte : s.options.qos.rawValue)
            }
        case .suback(let suback):
            let remaining = 2 + (v5 ? suback.properties.encodedLengthWithPrefix : 0) + suback.reasonCodes.count
            writeFixedHeader(0x90, remaining: remaining, into: &buffer)
            buffer.writeInteger(suback.packetID)
            if v5 { suback.properties.write(to: &buffer) }
            for code in suback.reasonCodes {
                // 3.1.1 knows only 0x00-0x02 and 0x80 (Failure) [MQTT-3.9.3-2].
                buffer.writeInteger(v5 || code.rawValue <= 2 ? code.rawValue : 0x80)
            }
        case .unsubscribe(let unsubscribe):
            var remaining = 2 + (v5 ? unsubscribe.properties.encodedLengthWithPrefix : 0)
            for f in unsubscribe.filters { remaining += f.mqttEncodedLength }
            writeFixedHeader(0xA2, remaining: remaining, into: &buffer)
            buffer.writeInteger(unsubscribe.packetID)
            if v5 { unsubscribe.properties.write(to: &buffer) }
            for f in unsubscribe.filters { buffer.writeMQTTString(f) }
        case .unsuback(let unsuback):
            if v5 {
                writeFixedHeader(0xB0, remaining: 2 + unsuback.properties.encodedLengthWithPrefix + unsuback.reasonCodes.count, into: &buffer)
                buffer.writeInteger(unsuback.packetID)
                unsuback.properties.write(to: &buffer)
                for code in unsuback.reasonCodes { buffer.writeInteger(code.rawValue) }
            } else {
                writeFixedHeader(0xB0, remaining: 2, into: &buffer)
                buffer.writeInteger(unsuback.packetID)
            }
        case .pingreq:
            buffer.writeInteger(UInt16(0xC000))
        case .pingresp:
            buffer.writeInteger(UInt16(0xD000))
        case .disconnect(let disconnect):
            encodeReasonAndProperties(0xE0, disconnect.reasonCode, disconnect.properties, v5: v5, into: &buffer)
        case .auth(let auth):
            encodeReasonAndProperties(0xF0, auth.reasonCode, auth.properties, v5: true, into: &buffer)
        }
    }

    /// Convenience: the encoded bytes of one packet in a new buffer.
    public static func encode(_ packet: MQTTPacket, version: ProtocolVersion, allocator: ByteBufferAllocator = .init()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64)
        encode(packet, version: version, into: &buffer)
        return buffer
    }

    @inlinable
    public static func writeFixedHeader(_ first: UInt8, remaining: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(first)
        buffer.writeVariableByteInteger(remaining)
    }

    /// The size of the whole PUBLISH packet `publish` would encode to for `version`.
    public static func publishPacketSize(_ publish: PublishPacket, version: ProtocolVersion) -> Int {
        let remaining = publishRemainingLength(publish, version: version)
        return 1 + ByteBuffer.variableByteIntegerLength(remaining) + remaining
    }

    static func publishRemainingLength(_ publish: PublishPacket, version: ProtocolVersion) -> Int {
        publish.topic.mqttEncodedLength + (publish.qos == .atMostOnce ? 0 : 2)
            + (version == .v5 ? publish.properties.encodedLengthWithPrefix : 0) + publish.payload.readableBytes
    }

    public static func encodePublish(_ publish: PublishPacket, version: ProtocolVersion, into buffer: inout ByteBuffer) {
        let first: UInt8 = 0x30 | (publish.dup ? 0x08 : 0) | (publish.qos.rawValue << 1) | (publish.retain ? 0x01 : 0)
        writeFixedHeader(first, remaining: publishRemainingLength(publish, version: version), into: &buffer)
        buffer.writeMQTTString(publish.topic)
        if publish.qos != .atMostOnce { buffer.writeInteger(publish.packetID) }
        if version == .v5 { publish.properties.write(to: &buffer) }
        var payload = publish.payload
        buffer.writeBuffer(&payload)
    }

    static func encodeConnect(_ connect: ConnectPacket, into buffer: inout ByteBuffer) {
        let version = connect.protocolVersion
        let v5 = version == .v5
        var remaining = version.protocolName.mqttEncodedLength + 1 + 1 + 2
        if v5 { remaining += connect.properties.encodedLengthWithPrefix }
        remaining += connect.clientID.mqttEncodedLength
        if let will = connect.will {
            if v5 { remaining += will.properties.encodedLengthWithPrefix }
            remaining += will.topic.mqttEncodedLength + 2 + will.payload.readableBytes
        }
        if let username = connect.username { remaining += username.mqttEncodedLength }
        if let password = connect.password { remaining += 2 + password.readableBytes }
        writeFixedHeader(0x10, remaining: remaining, into: &buffer)
        buffer.writeMQTTString(version.protocolName)
        buffer.writeInteger(version.rawValue)
        var flags: UInt8 = connect.cleanStart ? 0x02 : 0
        if let will = connect.will {
            flags |= 0x04 | (will.qos.rawValue << 3) | (will.retain ? 0x20 : 0)
        }
        if connect.password != nil { flags |= 0x40 }
        if connect.username != nil { flags |= 0x80 }
        buffer.writeInteger(flags)
        buffer.writeInteger(connect.keepAlive)
        if v5 { connect.properties.write(to: &buffer) }
        buffer.writeMQTTString(connect.clientID)
        if let will = connect.will {
            if v5 { will.properties.write(to: &buffer) }
            buffer.writeMQTTString(will.topic)
            buffer.writeMQTTBinary(will.payload)
        }
        if let username = connect.username { buffer.writeMQTTString(username) }
        if let password = connect.password { buffer.writeMQTTBinary(password) }
    }

    static func encodeAck(_ first: UInt8, _ ack: PubAckPacket, v5: Bool, into buffer: inout ByteBuffer) {
        guard v5 && !ack.properties.isEmpty else {
            encodeAck(first, packetID: ack.packetID, reason: ack.reasonCode, v5: v5, into: &buffer)
            return
        }
        writeFixedHeader(first, remaining: 3 + ack.properties.encodedLengthWithPrefix, into: &buffer)
        buffer.writeInteger(ack.packetID)
        buffer.writeInteger(ack.reasonCode.rawValue)
        ack.properties.write(to: &buffer)
    }

    /// PUBACK (0x40), PUBREC (0x50), PUBREL (0x62) or PUBCOMP (0x70) without properties, in one
    /// or two integer writes (the broker's per-message acknowledgements). The reason code is left
    /// out when it is Success in v5 (spec 3.4.2.1) and always in 3.1.1.
    @inlinable
    public static func encodeAck(_ first: UInt8, packetID: UInt16, reason: ReasonCode, v5: Bool, into buffer: inout ByteBuffer) {
        if !v5 || reason == .success {
            buffer.writeInteger(UInt32(first) << 24 | 2 << 16 | UInt32(packetID))
        } else {
            buffer.writeInteger(UInt32(first) << 24 | 3 << 16 | UInt32(packetID))
            buffer.writeInteger(reason.rawValue)
        }
    }

    static func encodeReasonAndProperties(_ first: UInt8, _ reason: ReasonCode, _ properties: Properties, v5: Bool, into buffer: inout ByteBuffer) {
        if !v5 || (reason == .success && properties.isEmpty) {
            writeFixedHeader(first, remaining: 0, into: &buffer)
        } else if properties.isEmpty {
            writeFixedHeader(first, remaining: 1, into: &buffer)
            buffer.writeInteger(reason.rawValue)
        } else {
            writeFixedHeader(first, remaining: 1 + properties.encodedLengthWithPrefix, into: &buffer)
            buffer.writeInteger(reason.rawValue)
            properties.write(to: &buffer)
        }
    }
}
