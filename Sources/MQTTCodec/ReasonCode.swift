/// An MQTT 5.0 reason code (spec 2.4). Several codes share a value (0x00 is Success, Normal
/// disconnection and Granted QoS 0), so this is a struct over the byte rather than an enum.
public struct ReasonCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let success = ReasonCode(rawValue: 0x00)
    public static let normalDisconnection = ReasonCode(rawValue: 0x00)
    public static let grantedQoS0 = ReasonCode(rawValue: 0x00)
    public static let grantedQoS1 = ReasonCode(rawValue: 0x01)
    public static let grantedQoS2 = ReasonCode(rawValue: 0x02)
    public static let disconnectWithWillMessage = ReasonCode(rawValue: 0x04)
    public static let noMatchingSubscribers = ReasonCode(rawValue: 0x10)
    public static let noSubscriptionExisted = ReasonCode(rawValue: 0x11)
    public static let continueAuthentication = ReasonCode(rawValue: 0x18)
    public static let reAuthenticate = ReasonCode(rawValue: 0x19)
    public static let unspecifiedError = ReasonCode(rawValue: 0x80)
    public static let malformedPacket = ReasonCode(rawValue: 0x81)
    public static let protocolError = ReasonCode(rawValue: 0x82)
    public static let implementationSpecificError = ReasonCode(rawValue: 0x83)
    public static let unsupportedProtocolVersion = ReasonCode(rawValue: 0x84)
    public static let clientIdentifierNotValid = ReasonCode(rawValue: 0x85)
    public static let badUserNameOrPassword = ReasonCode(rawValue: 0x86)
    public static let notAuthorized = ReasonCode(rawValue: 0x87)
    public static let serverUnavailable = ReasonCode(rawValue: 0x88)
    public static let serverBusy = ReasonCode(rawValue: 0x89)
    public static let banned = ReasonCode(rawValue: 0x8A)
    public static let serverShuttingDown = ReasonCode(rawValue: 0x8B)
    public static let badAuthenticationMethod = ReasonCode(rawValue: 0x8C)
    public static let keepAliveTimeout = ReasonCode(rawValue: 0x8D)
    public static let sessionTakenOver = ReasonCode(rawValue: 0x8E)
    public static let topicFilterInvalid = ReasonCode(rawValue: 0x8F)
    public static let topicNameInvalid = ReasonCode(rawValue: 0x90)
    public static let packetIdentifierInUse = ReasonCode(rawValue: 0x91)
    public static let packetIdentifierNotFound = ReasonCode(rawValue: 0x92)
    public static let receiveMaximumExceeded = ReasonCode(rawValue: 0x93)
    public static let topicAliasInvalid = ReasonCode(rawValue: 0x94)
    public static let packetTooLarge = ReasonCode(rawValue: 0x95)
    public static let messageRateTooHigh = ReasonCode(rawValue: 0x96)
    public static let quotaExceeded = ReasonCode(rawValue: 0x97)
    public static let administrativeAction = ReasonCode(rawValue: 0x98)
    public static let payloadFormatInvalid = ReasonCode(rawValue: 0x99)
    public static let retainNotSupported = ReasonCode(rawValue: 0x9A)
    public static let qosNotSupported = ReasonCode(rawValue: 0x9B)
    public static let useAnotherServer = ReasonCode(rawValue: 0x9C)
    public static let serverMoved = ReasonCode(rawValue: 0x9D)
    public static let sharedSubscriptionsNotSupported = ReasonCode(rawValue: 0x9E)
    public static let connectionRateExceeded = ReasonCode(rawValue: 0x9F)
    public static let maximumConnectTime = ReasonCode(rawValue: 0xA0)
    public static let subscriptionIdentifiersNotSupported = ReasonCode(rawValue: 0xA1)
    public static let wildcardSubscriptionsNotSupported = ReasonCode(rawValue: 0xA2)

    /// True for codes below 0x80 (success-class codes).
    public var isSuccess: Bool { rawValue < 0x80 }

    public var description: String {
        let name: String
        switch rawValue {
        case 0x00: name = "Success"
        case 0x01: name = "Granted QoS 1"
        case 0x02: name = "Granted QoS 2"
        case 0x04: name = "Disconnect with Will Message"
        case 0x10: name = "No matching subscribers"
        case 0x11: name = "No subscription existed"
        case 0x18: name = "Continue authentication"
        case 0x19: name = "Re-authenticate"
        case 0x80: name = "Unspecified error"
        case 0x81: name = "Malformed Packet"
        case 0x82: name = "Protocol Error"
        case 0x83: name = "Implementation specific error"
        case 0x84: name = "Unsupported Protocol Version"
        case 0x85: name = "Client Identifier not valid"
        case 0x86: name = "Bad User Name or Password"
        case 0x87: name = "Not authorized"
        case 0x88: name = "Server unavailable"
        case 0x89: name = "Server busy"
        case 0x8A: name = "Banned"
        case 0x8B: name = "Server shutting down"
        case 0x8C: name = "Bad authentication method"
        case 0x8D: name = "Keep Alive timeout"
        case 0x8E: name = "Session taken over"
        case 0x8F: name = "Topic Filter invalid"
        case 0x90: name = "Topic Name invalid"
        case 0x91: name = "Packet Identifier in use"
        case 0x92: name = "Packet Identifier not found"
        case 0x93: name = "Receive Maximum exceeded"
        case 0x94: name = "Topic Alias invalid"
        case 0x95: name = "Packet too large"
        case 0x96: name = "Message rate too high"
        case 0x97: name = "Quota exceeded"
        case 0x98: name = "Administrative action"
        case 0x99: name = "Payload format invalid"
        case 0x9A: name = "Retain not supported"
        case 0x9B: name = "QoS not supported"
        case 0x9C: name = "Use another server"
        case 0x9D: name = "Server moved"
        case 0x9E: name = "Shared Subscriptions not supported"
        case 0x9F: name = "Connection rate exceeded"
        case 0xA0: name = "Maximum connect time"
        case 0xA1: name = "Subscription Identifiers not supported"
        case 0xA2: name = "Wildcard Subscriptions not supported"
        default: name = "Unknown reason"
        }
        return "\(name) (0x\(String(rawValue, radix: 16, uppercase: true)))"
    }
}

/// MQTT 3.1 / 3.1.1 CONNACK return codes (3.1.1 section 3.2.2.3).
public enum ConnectReturnCode: UInt8, Sendable {
    case accepted = 0
    case unacceptableProtocolVersion = 1
    case identifierRejected = 2
    case serverUnavailable = 3
    case badUsernameOrPassword = 4
    case notAuthorized = 5

    /// The v3 code closest to a v5 reason code, for answering a v3 client with the same decision.
    public init(_ reason: ReasonCode) {
        switch reason {
        case .success: self = .accepted
        case .unsupportedProtocolVersion: self = .unacceptableProtocolVersion
        case .clientIdentifierNotValid: self = .identifierRejected
        case .badUserNameOrPassword, .badAuthenticationMethod: self = .badUsernameOrPassword
        case .notAuthorized, .banned: self = .notAuthorized
        default: self = .serverUnavailable
        }
    }
}
