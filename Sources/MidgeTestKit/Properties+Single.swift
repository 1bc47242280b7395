import MQTTCodec

// v5 property sets holding a single property, for CONNECT and PUBLISH packets in tests.

/// Properties with only a Session Expiry Interval (CONNECT, DISCONNECT).
public func sessionExpiry(_ seconds: UInt32) -> Properties {
    var properties = Properties()
    properties.sessionExpiryInterval = seconds
    return properties
}

extension Properties {
    /// Properties with only a Receive Maximum (CONNECT).
    public static func with(receiveMaximum value: UInt16) -> Properties {
        var properties = Properties()
        properties.receiveMaximum = value
        return properties
    }

    /// Properties with only a Message Expiry Interval (PUBLISH).
    public static func with(messageExpiry seconds: UInt32) -> Properties {
        var properties = Properties()
        properties.messageExpiryInterval = seconds
        return properties
    }

    /// Properties with only a Topic Alias (PUBLISH).
    public static func with(topicAlias value: UInt16) -> Properties {
        var properties = Properties()
        properties.topicAlias = value
        return properties
    }
}
