import Foundation
import MidgeClient
import MQTTCodec
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Mosquitto's error codes (mosquitto.h), used as exit codes as its clients do.
enum MosquittoError: Int32 {
    case success = 0
    case noMemory = 1
    case protocolError = 2
    case invalid = 3
    case noConnection = 4
    case connectionRefused = 5
    case connectionLost = 7
    case unknown = 13
    case errno = 14
    case lookup = 15
    case timeout = 27

    /// `mosquitto_strerror`.
    var text: String {
        switch self {
        case .success: return "No error."
        case .noMemory: return "Out of memory."
        case .protocolError: return "A network protocol error occurred when communicating with the broker."
        case .invalid: return "Invalid function arguments provided."
        case .noConnection: return "The client is not currently connected."
        case .connectionRefused: return "The connection was refused."
        case .connectionLost: return "The connection was lost."
        case .unknown, .errno: return "Unknown error."
        case .lookup: return "Lookup error."
        case .timeout: return "Timed out"
        }
    }
}

/// `mosquitto_connack_string`: v3 CONNACK return codes.
func connackString(_ code: UInt8) -> String {
    switch code {
    case 0: return "Connection Accepted."
    case 1: return "Connection Refused: unacceptable protocol version."
    case 2: return "Connection Refused: identifier rejected."
    case 3: return "Connection Refused: broker unavailable."
    case 4: return "Connection Refused: bad user name or password."
    case 5: return "Connection Refused: not authorised."
    default: return "Connection Refused: unknown reason."
    }
}

/// `mosquitto_reason_string`: v5 reason codes, Mosquitto's wording.
func reasonString(_ code: UInt8) -> String {
    switch code {
    case 0x00: return "Success"
    case 0x01: return "Granted QoS 1"
    case 0x02: return "Granted QoS 2"
    case 0x04: return "Disconnect with Will Message"
    case 0x10: return "No matching subscribers"
    case 0x11: return "No subscription existed"
    case 0x18: return "Continue authentication"
    case 0x19: return "Re-authenticate"
    case 0x80: return "Unspecified error"
    case 0x81: return "Malformed Packet"
    case 0x82: return "Protocol Error"
    case 0x83: return "Implementation specific error"
    case 0x84: return "Unsupported Protocol Version"
    case 0x85: return "Client Identifier not valid"
    case 0x86: return "Bad User Name or Password"
    case 0x87: return "Not authorized"
    case 0x88: return "Server unavailable"
    case 0x89: return "Server busy"
    case 0x8A: return "Banned"
    case 0x8B: return "Server shutting down"
    case 0x8C: return "Bad authentication method"
    case 0x8D: return "Keep Alive timeout"
    case 0x8E: return "Session taken over"
    case 0x8F: return "Topic Filter invalid"
    case 0x90: return "Topic Name invalid"
    case 0x91: return "Packet Identifier in use"
    case 0x92: return "Packet Identifier not found"
    case 0x93: return "Receive Maximum exceeded"
    case 0x94: return "Topic Alias invalid"
    case 0x95: return "Packet too large"
    case 0x96: return "Message rate too high"
    case 0x97: return "Quota exceeded"
    case 0x98: return "Administrative action"
    case 0x99: return "Payload format invalid"
    case 0x9A: return "Retain not supported"
    case 0x9B: return "QoS not supported"
    case 0x9C: return "Use another server"
    case 0x9D: return "Server moved"
    case 0x9E: return "Shared Subscriptions not supported"
    case 0x9F: return "Connection rate exceeded"
    case 0xA0: return "Maximum connect time"
    case 0xA1: return "Subscription identifiers not supported"
    case 0xA2: return "Wildcard Subscriptions not supported"
    default: return "Unknown reason"
    }
}

/// Prints what libmosquitto's log callback prints with `-d` ("Client ID sending CONNECT", ...)
/// and remembers what the tools need from the packets (the SUBSCRIBE packet identifier).
final class PacketTracer: @unchecked Sendable {
    private let lock = NIOLock()
    private let output: ToolOutput
    private let enabled: Bool
    private let version: ProtocolVersion
    private var clientID: String?
    private var lastMid = 0
    private var lastSubscribeMid: UInt16 = 0

    init(output: ToolOutput, enabled: Bool, version: ProtocolVersion, clientID: String?) {
        self.output = output; self.enabled = enabled; self.version = version; self.clientID = clientID
    }

    var subscribeMid: UInt16 { lock.withLock { lastSubscribeMid } }

    /// For the tools' own lines ("Subscribed (mid: 1): 0").
    func print(_ line: String) { output.write(line + "\n") }

    func observe(_ direction: PacketDirection, _ packet: MQTTPacket) {
        let lines: [String] = lock.withLock {
            if case .connack(let connack) = packet, let assigned = connack.properties.assignedClientIdentifier { clientID = assigned }
            if case .subscribe(let subscribe) = packet { lastSubscribeMid = subscribe.packetID }
            guard enabled else {
                if case .publish(let publish) = packet, direction == .sent { lastMid = publish.qos == .atMostOnce ? lastMid + 1 : Int(publish.packetID) }
                return []
            }
            let client = "Client \(clientID ?? "(null)")"
            switch (direction, packet) {
            case (.sent, .connect): return ["\(client) sending CONNECT"]
            case (.received, .connack(let connack)):
                let code = version == .v5 ? connack.reasonCode.rawValue : (connack.returnCode ?? ConnectReturnCode(connack.reasonCode)).rawValue
                return ["\(client) received CONNACK (\(code))"]
            case (.sent, .publish(let publish)):
                if publish.qos == .atMostOnce {
                    lastMid = lastMid >= 65535 ? 1 : lastMid + 1
                } else {
                    lastMid = Int(publish.packetID)
                }
                return ["\(client) sending PUBLISH (d\(publish.dup ? 1 : 0), q\(publish.qos.rawValue), r\(publish.retain ? 1 : 0), m\(lastMid), '\(publish.topic)', ... (\(publish.payload.readableBytes) bytes))"]
            case (.received, .publish(let publish)):
                return ["\(client) received PUBLISH (d\(publish.dup ? 1 : 0), q\(publish.qos.rawValue), r\(publish.retain ? 1 : 0), m\(publish.packetID), '\(publish.topic)', ... (\(publish.payload.readableBytes) bytes))"]
            case (.sent, .puback(let ack)): return ["\(client) sending PUBACK (m\(ack.packetID), rc\(ack.reasonCode.rawValue))"]
            case (.sent, .pubrec(let ack)): return ["\(client) sending PUBREC (m\(ack.packetID), rc\(ack.reasonCode.rawValue))"]
            case (.sent, .pubrel(let ack)): return ["\(client) sending PUBREL (m\(ack.packetID))"]
            case (.sent, .pubcomp(let ack)): return ["\(client) sending PUBCOMP (m\(ack.packetID))"]
            case (.received, .puback(let ack)): return ["\(client) received PUBACK (Mid: \(ack.packetID), RC:\(ack.reasonCode.rawValue))"]
            case (.received, .pubcomp(let ack)): return ["\(client) received PUBCOMP (Mid: \(ack.packetID), RC:\(ack.reasonCode.rawValue))"]
            case (.received, .pubrec(let ack)): return ["\(client) received PUBREC (Mid: \(ack.packetID))"]
            case (.received, .pubrel(let ack)): return ["\(client) received PUBREL (Mid: \(ack.packetID))"]
            case (.sent, .subscribe(let subscribe)):
                lastMid = Int(subscribe.packetID)
                return subscribe.subscriptions.map { subscription in
                    let options = version == .v5 ? subscriptionOptionsByte(subscription.options) & 0xFC : 0
                    return "\(client) sending SUBSCRIBE (Mid: \(subscribe.packetID), Topic: \(subscription.filter), QoS: \(subscription.options.qos.rawValue), Options: 0x\(String(format: "%02x", options)))"
                }
            case (.received, .suback): return ["\(client) received SUBACK"]
            case (.sent, .unsubscribe(let unsubscribe)):
                lastMid = Int(unsubscribe.packetID)
                return unsubscribe.filters.map { "\(client) sending UNSUBSCRIBE (Mid: \(unsubscribe.packetID), Topic: \($0))" }
            case (.received, .unsuback): return ["\(client) received UNSUBACK"]
            case (.sent, .pingreq): return ["\(client) sending PINGREQ"]
            case (.received, .pingresp): return ["\(client) received PINGRESP"]
            case (.sent, .disconnect): return ["\(client) sending DISCONNECT"]
            case (.received, .disconnect(let disconnect)): return ["Received DISCONNECT (\(disconnect.reasonCode.rawValue))"]
            case (.received, .auth): return ["\(client) received AUTH"]
            default: return []
            }
        }
        if !lines.isEmpty { output.write(lines.map { $0 + "\n" }.joined()) }
    }
}

func subscriptionOptionsByte(_ options: SubscriptionOptions) -> UInt8 {
    options.qos.rawValue | (options.noLocal ? 0x04 : 0) | (options.retainAsPublished ? 0x08 : 0) | (options.retainHandling.rawValue << 4)
}

/// Remembers why the transport could not connect, to word the error as Mosquitto does.
final class ConnectFailure: @unchecked Sendable {
    private let lock = NIOLock()
    private var error: Error?
    func record(_ error: Error) { lock.withLock { self.error = error } }
    var recorded: Error? { lock.withLock { error } }
}

/// One connection as the options describe it.
struct ConnectionPlan {
    let options: ClientOptions
    let io: ToolIO
    let clientID: String

    init(options: ClientOptions, io: ToolIO) {
        self.options = options
        self.io = io
        if let id = options.id {
            clientID = id
        } else if let prefix = options.idPrefix {
            clientID = "\(prefix)\(io.processID)"
        } else if options.protocolVersion == .v3_1 {
            // MQTT 3.1 needs a client id: libmosquitto makes one up.
            let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
            clientID = "mosq-" + String((0..<18).map { _ in alphabet.randomElement()! })
        } else {
            clientID = ""
        }
    }

    /// Mosquitto's clients: 8883 when TLS is on, else 1883.
    var port: Int { options.port ?? (options.usesTLS ? 8883 : 1883) }

    /// A new client (and the tracer watching it).
    func makeClient(receiveMaximum: Int) -> (MQTTClient, PacketTracer, ConnectFailure) {
        let tracer = PacketTracer(output: io.stdout, enabled: options.debug, version: options.protocolVersion,
                                  clientID: clientID.isEmpty ? nil : clientID)
        let failure = ConnectFailure()
        var connectProperties = options.typedProperties(.connect)
        if options.protocolVersion == .v5 && connectProperties.receiveMaximum == nil {
            connectProperties.receiveMaximum = UInt16(receiveMaximum)
        }
        var will: Will?
        if let topic = options.willTopic {
            will = Will(topic: topic, payload: ByteBuffer(string: options.willPayload ?? ""), qos: options.willQoS,
                        retain: options.willRetain, properties: options.typedProperties(.will))
        }
        let configuration = MQTTClient.Configuration(
            host: options.host ?? "localhost", port: port, version: options.protocolVersion, clientID: clientID,
            cleanStart: options.cleanSession, keepAlive: UInt16(options.keepAlive), sessionExpiryInterval: nil,
            username: options.username, password: options.password.map { Array($0.utf8) }, will: will,
            connectProperties: connectProperties, timeout: .seconds(Int64(max(10, options.keepAlive))),
            reconnect: nil, useTopicAliases: false, transport: transport(recording: failure),
            packetObserver: { direction, packet in tracer.observe(direction, packet) })
        return (MQTTClient(configuration: configuration), tracer, failure)
    }

    /// TCP (optionally bound to `-A ADDRESS`) or `--unix PATH`, recording the connect error.
    private func transport(recording failure: ConnectFailure) -> MQTTTransport {
        if let path = options.webSocketPath {
            return .webSocket(path: path, tls: options.usesTLS ? options.tls : nil, onFailure: { failure.record($0) })
        }
        let unixPath = options.unixSocket
        let bindAddress = options.bindAddress
        let tls = options.usesTLS ? Result { try TLSClientSetup(options.tls) } : nil  // TLSOptionParsing.swift
        return MQTTTransport { host, port, eventLoop, handler in
            if case .failure(let error)? = tls {
                failure.record(error)
                return eventLoop.makeFailedFuture(error)
            }
            var bootstrap = ClientBootstrap(group: eventLoop)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    if case .success(let setup)? = tls {
                        do {
                            try setup.addHandlers(to: channel, host: host, onFailure: { failure.record($0) })
                        } catch {
                            return channel.eventLoop.makeFailedFuture(error)
                        }
                    }
                    return channel.pipeline.addHandler(handler)
                }
            let future: EventLoopFuture<Channel>
            if let unixPath {
                future = bootstrap.connect(unixDomainSocketPath: unixPath)
            } else {
                bootstrap = bootstrap.channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                if let bindAddress {
                    do {
                        bootstrap = bootstrap.bind(to: try SocketAddress.makeAddressResolvingHost(bindAddress, port: 0))
                    } catch {
                        failure.record(error)
                        return eventLoop.makeFailedFuture(error)
                    }
                }
                future = bootstrap.connect(host: host, port: port)
            }
            return future.flatMapErrorThrowing { error in
                failure.record(error)
                throw error
            }
        }
    }

    /// The line Mosquitto prints when the TCP connection cannot be made.
    static func describeUnreachable(_ error: Error?) -> String {
        func errnoText(_ io: IOError) -> String { "Error: \(String(cString: strerror(io.errnoCode)))\n" }
        switch error {
        case let connect as NIOConnectionError:
            if let first = connect.connectionErrors.first {
                if let io = first.error as? IOError { return errnoText(io) }
                if case ChannelError.connectTimeout = first.error { return "Error: Connection timed out\n" }
                return "Error: \(first.error)\n"
            }
            return "Unable to connect (Lookup error.).\n"
        case let io as IOError:
            return errnoText(io)
        case let channelError as ChannelError:
            if case .connectTimeout = channelError { return "Error: Connection timed out\n" }
            return "Error: \(channelError)\n"
        case .some(let other):
            return "Error: \(other)\n"
        case .none:
            return "Error: Connection refused\n"
        }
    }
}

/// How CONNECT ended, for the tools.
enum ConnectOutcome {
    case connected
    /// The broker refused: Mosquitto's "Connection error: ..." line and the exit code (the
    /// CONNACK return code / reason code).
    case refused(code: UInt8)
    /// No connection: the message and exit code 1.
    case unreachable(String)
    case failed(String)
}

func connect(_ client: MQTTClient, failure: ConnectFailure, version: ProtocolVersion) async -> ConnectOutcome {
    do {
        try await client.connect()
        return .connected
    } catch MQTTClientError.connectionRefused(let reason, _) {
        let code = version == .v5 ? reason.rawValue : ConnectReturnCode(reason).rawValue
        return .refused(code: code)
    } catch MQTTClientError.unreachable {
        return .unreachable(ConnectionPlan.describeUnreachable(failure.recorded))
    } catch MQTTClientError.timeout {
        return .failed("Error: \(MosquittoError.protocolError.text)\n")
    } catch {
        if let recorded = failure.recorded { return .unreachable(ConnectionPlan.describeUnreachable(recorded)) }
        return .failed("Error: \(MosquittoError.connectionLost.text)\n")
    }
}

/// "Connection error: ..." as pub and sub word it.
func connectionErrorLine(code: UInt8, version: ProtocolVersion) -> String {
    if version == .v5 {
        if code == ReasonCode.unsupportedProtocolVersion.rawValue {
            return "Connection error: \(reasonString(code)). Try connecting to an MQTT v5 broker, or use MQTT v3.x mode.\n"
        }
        return "Connection error: \(reasonString(code))\n"
    }
    return "Connection error: \(connackString(code))\n"
}
