import MidgeClient
import MQTTCodec
import NIOCore

/// Which program an option line is parsed for: options not meant for it are "unknown", exactly
/// as in Mosquitto's shared client_shared.c parser.
public enum ToolKind: Sendable {
    case pub, sub, rr

    /// `midge pub`, `midge sub`, `midge rr`.
    var displayName: String {
        switch self {
        case .pub: return "midge pub"
        case .sub: return "midge sub"
        case .rr: return "midge rr"
        }
    }

    /// The Mosquitto program whose defaults file is honoured.
    var mosquittoName: String {
        switch self {
        case .pub: return "mosquitto_pub"
        case .sub: return "mosquitto_sub"
        case .rr: return "mosquitto_rr"
        }
    }
}

/// How `pub` / `rr` get their message.
public enum PublishMode: Sendable, Equatable {
    case none
    /// -m
    case command
    /// -l
    case stdinLine
    /// -s
    case stdinFile
    /// -f
    case file
    /// -n
    case null
}

/// A v5 property given with `-D COMMAND NAME VALUE`.
public enum PropertyCommand: String, Sendable, CaseIterable {
    case connect, publish, subscribe, unsubscribe, disconnect, will

    var errorName: String {
        switch self {
        case .connect: return "CONNECT"
        case .publish: return "PUBLISH"
        case .subscribe: return "SUBSCRIBE"
        case .unsubscribe: return "UNSUBSCRIBE"
        case .disconnect: return "DISCONNECT"
        case .will: return "Will"
        }
    }
}

public enum PropertyValue: Sendable, Equatable {
    case byte(UInt8)
    case int16(UInt16)
    case int32(UInt32)
    case varint(UInt32)
    case binary([UInt8])
    case string(String)
    case pair(String, String)
}

public struct PropertyEntry: Sendable, Equatable {
    public var identifier: PropertyIdentifier
    public var value: PropertyValue
}

/// Everything the options say: Mosquitto's `struct mosq_config`.
public struct ClientOptions: Sendable {
    public var tool: ToolKind
    public var id: String?
    public var idPrefix: String?
    public var protocolVersion: ProtocolVersion
    public var keepAlive = 60
    public var host: String?
    /// nil: the default (1883).
    public var port: Int?
    /// `--unix PATH`.
    public var unixSocket: String?
    /// `-L ws://…` or `wss://…` (WebSocketURL.swift): MQTT over WebSocket, with this HTTP path.
    public var webSocketPath: String?
    /// `--cafile`, `--cert`, ... (TLSOptionParsing.swift); TLS is used when `usesTLS`.
    public var tls = TLSClientOptions()
    public var qos: QoS = .atMostOnce
    public var retain = false
    public var publishMode: PublishMode = .none
    public var file: String?
    public var message: [UInt8]?
    /// pub / rr: the topic to publish to.
    public var topic: String?
    public var bindAddress: String?
    public var repeatCount = 1
    /// Seconds.
    public var repeatDelay: Double = 0
    public var debug = false
    public var quiet = false
    public var maxInflight = 20
    public var username: String?
    public var password: String?
    public var willTopic: String?
    public var willPayload: String?
    public var willQoS: QoS = .atMostOnce
    public var willRetain = false
    public var cleanSession = true
    /// sub: the filters to subscribe to.
    public var topics: [String] = []
    public var exitAfterSubscribe = false
    public var noRetain = false
    public var retainedOnly = false
    public var removeRetained = false
    public var filterOuts: [String] = []
    public var unsubscribeTopics: [String] = []
    public var verbose = false
    public var endOfLine = true
    public var messageCount = 0
    public var format: String?
    public var pretty = false
    /// -W seconds (0: none).
    public var timeout = 0
    public var retainAsPublished = false
    /// -1: not given.
    public var sessionExpiryInterval: Int64 = -1
    /// Per ten thousand.
    public var randomFilter = 10000
    public var tcpNoDelay = false
    public var haveTopicAlias = false
    /// rr: -e.
    public var responseTopic: String?
    public var properties: [PropertyCommand: [PropertyEntry]] = [:]

    public init(tool: ToolKind) {
        self.tool = tool
        protocolVersion = tool == .rr ? .v5 : .v3_1_1
        if tool == .rr { messageCount = 1 }
    }

    /// The typed properties of `command` (v5 only; empty otherwise).
    public func typedProperties(_ command: PropertyCommand) -> Properties {
        guard protocolVersion == .v5 else { return .none }
        var result = Properties()
        for entry in properties[command] ?? [] { result.apply(entry) }
        return result
    }
}

extension Properties {
    mutating func apply(_ entry: PropertyEntry) {
        switch (entry.identifier, entry.value) {
        case (.payloadFormatIndicator, .byte(let v)): payloadFormatIndicator = v
        case (.messageExpiryInterval, .int32(let v)): messageExpiryInterval = v
        case (.contentType, .string(let v)): contentType = v
        case (.responseTopic, .string(let v)): responseTopic = v
        case (.correlationData, .binary(let v)): correlationData = ByteBuffer(bytes: v)
        case (.subscriptionIdentifier, .varint(let v)): subscriptionIdentifiers.append(Int(v))
        case (.sessionExpiryInterval, .int32(let v)): sessionExpiryInterval = v
        case (.assignedClientIdentifier, .string(let v)): assignedClientIdentifier = v
        case (.serverKeepAlive, .int16(let v)): serverKeepAlive = v
        case (.authenticationMethod, .string(let v)): authenticationMethod = v
        case (.authenticationData, .binary(let v)): authenticationData = ByteBuffer(bytes: v)
        case (.requestProblemInformation, .byte(let v)): requestProblemInformation = v
        case (.willDelayInterval, .int32(let v)): willDelayInterval = v
        case (.requestResponseInformation, .byte(let v)): requestResponseInformation = v
        case (.responseInformation, .string(let v)): responseInformation = v
        case (.serverReference, .string(let v)): serverReference = v
        case (.reasonString, .string(let v)): reasonString = v
        case (.receiveMaximum, .int16(let v)): receiveMaximum = v
        case (.topicAliasMaximum, .int16(let v)): topicAliasMaximum = v
        case (.topicAlias, .int16(let v)): topicAlias = v
        case (.maximumQoS, .byte(let v)): maximumQoS = v
        case (.retainAvailable, .byte(let v)): retainAvailable = v
        case (.userProperty, .pair(let k, let v)): userProperties.append(UserProperty(k, v))
        case (.maximumPacketSize, .int32(let v)): maximumPacketSize = v
        case (.wildcardSubscriptionAvailable, .byte(let v)): wildcardSubscriptionAvailable = v
        case (.subscriptionIdentifierAvailable, .byte(let v)): subscriptionIdentifierAvailable = v
        case (.sharedSubscriptionAvailable, .byte(let v)): sharedSubscriptionAvailable = v
        default: break
        }
    }
}

