import Foundation
import MQTTCodec

/// The result of reading a command line.
public enum ParseOutcome: Sendable {
    case success(ClientOptions)
    /// `--help`: print the usage on standard output.
    case help
    /// `--version`.
    case version
    /// Print `message` on standard error (not with `--quiet` when `quietable`), then the
    /// "Use '... --help' to see usage." line; exit 1.
    case failure(String, quietable: Bool)
}

/// Mosquitto's command-line grammar for mosquitto_pub, mosquitto_sub and mosquitto_rr
/// (client_shared.c / client_props.c of Mosquitto 2.0), hand-written because it does not fit
/// a declarative parser: `-h` is the host, `-D` takes three or four values, options repeat and
/// are checked one by one in order, with Mosquitto's exact error messages.
public enum OptionParser {
    /// Parses `arguments` (without the program name). Like Mosquitto's clients, the defaults
    /// file `$XDG_CONFIG_HOME/mosquitto_pub` (or `$HOME/.config/mosquitto_pub`; `_sub`, `_rr`)
    /// is read first when it exists, one option per line.
    public static func parse(_ arguments: [String], tool: ToolKind, environment: [String: String] = [:]) -> ParseOutcome {
        var options = ClientOptions(tool: tool)
        if let path = defaultsFile(for: tool, environment: environment),
           let data = FileManager.default.contents(atPath: path) {
            let text = String(decoding: data, as: UTF8.self)
            for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
                var line = Substring(rawLine)
                if line.first == "#" { continue }
                while line.last == "\r" || line.last == "\n" { line = line.dropLast() }
                let trimmed = line.drop { $0 == " " }
                guard !trimmed.isEmpty else { continue }
                var words: [String]
                if let space = trimmed.firstIndex(of: " ") {
                    words = [String(trimmed[..<space])]
                    let rest = trimmed[trimmed.index(after: space)...]
                    if !rest.isEmpty { words.append(String(rest)) }
                } else {
                    words = [String(trimmed)]
                }
                if let outcome = process(words, into: &options) { return outcome }
            }
        }
        if let outcome = process(arguments, into: &options) { return outcome }
        return finish(options)
    }

    static func defaultsFile(for tool: ToolKind, environment: [String: String]) -> String? {
        if let xdg = environment["XDG_CONFIG_HOME"] { return "\(xdg)/\(tool.mosquittoName)" }
        if let home = environment["HOME"] { return "\(home)/.config/\(tool.mosquittoName)" }
        return nil
    }

    // MARK: - One option at a time (client_config_line_proc)

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    static func process(_ args: [String], into cfg: inout ClientOptions) -> ParseOutcome? {
        let tool = cfg.tool
        var i = 0
        func fail(_ text: String) -> ParseOutcome { .failure(text, quietable: false) }
        func unknown() -> ParseOutcome { fail("Error: Unknown option '\(args[i])'.\n") }
        /// The value after the option, or nil when it is the last argument.
        func value() -> String? { i == args.count - 1 ? nil : args[i + 1] }

        while i < args.count {
            let arg = args[i]
            switch arg {
            case "-A":
                guard let v = value() else { return fail("Error: -A argument given but no address specified.\n\n") }
                cfg.bindAddress = v
                i += 1
            case "--cafile", "--capath", "--cert", "--key", "--ciphers", "--tls-version", "--insecure", "--tls-use-os-certs":
                if let failure = parseTLSOption(args, &i, into: &cfg) { return failure }
            case "--keyform", "--tls-alpn", "--tls-engine", "--tls-engine-kpass-sha1", "--psk", "--psk-identity":
                return fail("Error: TLS support not available (\(arg)).\n\n")
            case "--proxy":
                return fail("Error: SOCKS5 proxy support not available (--proxy).\n\n")
            case "-C":
                guard tool == .sub else { return unknown() }
                guard let v = value() else { return fail("Error: -C argument given but no count specified.\n\n") }
                cfg.messageCount = cAtoi(v)
                if cfg.messageCount < 1 { return fail("Error: Invalid message count \"\(cfg.messageCount)\".\n\n") }
                i += 1
            case "-c", "--disable-clean-session":
                cfg.cleanSession = false
            case "-d", "--debug":
                cfg.debug = true
            case "-D", "--property":
                i += 1
                if let failure = parseProperty(args, &i, into: &cfg) { return failure }
                cfg.protocolVersion = .v5
            case "-e":
                guard tool == .rr else { return unknown() }
                guard let v = value() else { return fail("Error: -e argument given but no response topic specified.\n\n") }
                if !validateUTF8(v) { return fail("Error: Malformed UTF-8 in -e argument.\n\n") }
                if !pubTopicCheck(v) { return fail("Error: Invalid response topic '\(v)', does it contain '+' or '#'?\n") }
                cfg.responseTopic = v
                i += 1
            case "-E":
                guard tool == .sub else { return unknown() }
                cfg.exitAfterSubscribe = true
            case "-f", "--file":
                guard tool != .sub else { return unknown() }
                if cfg.publishMode != .none { return fail("Error: Only one type of message can be sent at once.\n\n") }
                guard let v = value() else { return fail("Error: -f argument given but no file specified.\n\n") }
                cfg.publishMode = .file
                cfg.file = v
                i += 1
            case "-F":
                guard tool != .pub else { return unknown() }
                guard let v = value() else { return fail("Error: -F argument given but no format specified.\n\n") }
                if let error = MessageFormatter.checkFormat(v) { return fail(error) }
                cfg.format = v
                i += 1
            case "--help":
                return .help
            case "-h", "--host":
                guard let v = value() else { return fail("Error: -h argument given but no host specified.\n\n") }
                cfg.host = v
                i += 1
            case "-i", "--id":
                if cfg.idPrefix != nil { return fail("Error: -i and -I argument cannot be used together.\n\n") }
                guard let v = value() else { return fail("Error: -i argument given but no id specified.\n\n") }
                cfg.id = v
                i += 1
            case "-I", "--id-prefix":
                if cfg.id != nil { return fail("Error: -i and -I argument cannot be used together.\n\n") }
                guard let v = value() else { return fail("Error: -I argument given but no id prefix specified.\n\n") }
                cfg.idPrefix = v
                i += 1
            case "-k", "--keepalive":
                guard let v = value() else { return fail("Error: -k argument given but no keepalive specified.\n\n") }
                cfg.keepAlive = cAtoi(v)
                if cfg.keepAlive < 5 || cfg.keepAlive > 65535 {
                    return fail("Error: Invalid keepalive given, it must be between 5 and 65535 inclusive.\n\n")
                }
                i += 1
            case "-L", "--url":
                guard let v = value() else { return fail("Error: -L argument given but no URL specified.\n\n") }
                if let failure = parseURL(v, into: &cfg) { return failure }
                i += 1
            case "-l", "--stdin-line":
                guard tool == .pub else { return unknown() }
                if cfg.publishMode != .none { return fail("Error: Only one type of message can be sent at once.\n\n") }
                cfg.publishMode = .stdinLine
            case "-m", "--message":
                guard tool != .sub else { return unknown() }
                if cfg.publishMode != .none { return fail("Error: Only one type of message can be sent at once.\n\n") }
                guard let v = value() else { return fail("Error: -m argument given but no message specified.\n\n") }
                let bytes = Array(v.utf8)
                if bytes.count > 268_435_455 { return fail("Error: Message length must be less than 268435455 bytes.\n\n") }
                cfg.message = bytes
                cfg.publishMode = .command
                i += 1
            case "-M":
                guard let v = value() else { return fail("Error: -M argument given but max_inflight not specified.\n\n") }
                let n = cAtoi(v)
                if n < 1 { return fail("Error: Maximum inflight messages must be greater than 0.\n\n") }
                cfg.maxInflight = n
                i += 1
            case "--nodelay":
                cfg.tcpNoDelay = true
            case "-n", "--null-message":
                guard tool != .sub else { return unknown() }
                if cfg.publishMode != .none { return fail("Error: Only one type of message can be sent at once.\n\n") }
                cfg.publishMode = .null
            case "-N":
                guard tool != .pub else { return unknown() }
                cfg.endOfLine = false
            case "-p", "--port":
                guard let v = value() else { return fail("Error: -p argument given but no port specified.\n\n") }
                let port = cAtoi(v)
                if port < 0 || port > 65535 { return fail("Error: Invalid port given: \(port)\n") }
                cfg.port = port
                i += 1
            case "--pretty":
                guard tool != .pub else { return unknown() }
                cfg.pretty = true
            case "-P", "--pw":
                guard let v = value() else { return fail("Error: -P argument given but no password specified.\n\n") }
                cfg.password = v
                i += 1
            case "-q", "--qos":
                guard let v = value() else { return fail("Error: -q argument given but no QoS specified.\n\n") }
                let qos = cAtoi(v)
                guard (0...2).contains(qos), let level = QoS(rawValue: UInt8(qos)) else { return fail("Error: Invalid QoS given: \(qos)\n") }
                cfg.qos = level
                i += 1
            case "--quiet":
                cfg.quiet = true
            case "-r", "--retain":
                guard tool == .pub else { return unknown() }
                cfg.retain = true
            case "-R":
                guard tool != .pub else { return unknown() }
                cfg.noRetain = true
            case "--random-filter":
                guard tool == .sub else { return unknown() }
                guard let v = value() else { return fail("Error: --random-filter argument given but no chance specified.\n\n") }
                cfg.randomFilter = Int(10.0 * cAtof(v))
                if cfg.randomFilter > 10000 || cfg.randomFilter < 1 {
                    return fail("Error: --random-filter chance must be between 0.1-100.0\n\n")
                }
                i += 1
            case "--remove-retained":
                guard tool == .sub else { return unknown() }
                cfg.removeRetained = true
            case "--repeat":
                guard tool == .pub else { return unknown() }
                guard let v = value() else { return fail("Error: --repeat argument given but no count specified.\n\n") }
                cfg.repeatCount = cAtoi(v)
                if cfg.repeatCount < 1 { return fail("Error: --repeat argument must be >0.\n\n") }
                i += 1
            case "--repeat-delay":
                guard tool == .pub else { return unknown() }
                guard let v = value() else { return fail("Error: --repeat-delay argument given but no time specified.\n\n") }
                let delay = cAtof(v)
                if delay < 0 { return fail("Error: --repeat-delay argument must be >=0.0.\n\n") }
                cfg.repeatDelay = delay
                i += 1
            case "--retain-as-published":
                guard tool != .pub else { return unknown() }
                cfg.retainAsPublished = true
            case "--retained-only":
                guard tool == .sub else { return unknown() }
                cfg.retainedOnly = true
            case "-s", "--stdin-file":
                guard tool != .sub else { return unknown() }
                if cfg.publishMode != .none { return fail("Error: Only one type of message can be sent at once.\n\n") }
                cfg.publishMode = .stdinFile
            case "-t", "--topic":
                guard let v = value() else { return fail("Error: -t argument given but no topic specified.\n\n") }
                if let failure = addTopic(v, argument: "-t", into: &cfg) { return failure }
                i += 1
            case "-T", "--filter-out":
                guard tool == .sub else { return unknown() }
                guard let v = value() else { return fail("Error: -T argument given but no topic filter specified.\n\n") }
                if !validateUTF8(v) { return fail("Error: Malformed UTF-8 in -T argument.\n\n") }
                if !subTopicCheck(v) { return fail("Error: Invalid filter topic '\(v)', are all '+' and '#' wildcards correct?\n") }
                cfg.filterOuts.append(v)
                i += 1
            case "-U", "--unsubscribe":
                guard tool == .sub else { return unknown() }
                guard let v = value() else { return fail("Error: -U argument given but no unsubscribe topic specified.\n\n") }
                if !validateUTF8(v) { return fail("Error: Malformed UTF-8 in -U argument.\n\n") }
                if !subTopicCheck(v) { return fail("Error: Invalid unsubscribe topic '\(v)', are all '+' and '#' wildcards correct?\n") }
                cfg.unsubscribeTopics.append(v)
                i += 1
            case "-u", "--username":
                guard let v = value() else { return fail("Error: -u argument given but no username specified.\n\n") }
                cfg.username = v
                i += 1
            case "--unix":
                guard let v = value() else { return fail("Error: --unix argument given but no socket path specified.\n\n") }
                cfg.unixSocket = v
                cfg.host = v
                cfg.port = 0
                i += 1
            case "-V", "--protocol-version":
                guard let v = value() else { return fail("Error: --protocol-version argument given but no version specified.\n\n") }
                switch v {
                case "mqttv31", "31": cfg.protocolVersion = .v3_1
                case "mqttv311", "311": cfg.protocolVersion = .v3_1_1
                case "mqttv5", "5": cfg.protocolVersion = .v5
                default: return fail("Error: Invalid protocol version argument given.\n\n")
                }
                i += 1
            case "-v", "--verbose":
                guard tool != .pub else { return unknown() }
                cfg.verbose = true
            case "--version":
                return .version
            case "-W":
                guard tool != .pub else { return unknown() }
                guard let v = value() else { return fail("Error: -W argument given but no timeout specified.\n\n") }
                let seconds = cAtoi(v)
                if seconds < 1 { return fail("Error: Invalid timeout \"\(seconds)\".\n\n") }
                cfg.timeout = seconds
                i += 1
            case "--will-payload":
                guard let v = value() else { return fail("Error: --will-payload argument given but no will payload specified.\n\n") }
                cfg.willPayload = v
                i += 1
            case "--will-qos":
                guard let v = value() else { return fail("Error: --will-qos argument given but no will QoS specified.\n\n") }
                let qos = cAtoi(v)
                guard (0...2).contains(qos), let level = QoS(rawValue: UInt8(qos)) else { return fail("Error: Invalid will QoS \(qos).\n\n") }
                cfg.willQoS = level
                i += 1
            case "--will-retain":
                cfg.willRetain = true
            case "--will-topic":
                guard let v = value() else { return fail("Error: --will-topic argument given but no will topic specified.\n\n") }
                if !validateUTF8(v) { return fail("Error: Malformed UTF-8 in --will-topic argument.\n\n") }
                if !pubTopicCheck(v) { return fail("Error: Invalid will topic '\(v)', does it contain '+' or '#'?\n") }
                cfg.willTopic = v
                i += 1
            case "-x":
                guard let v = value() else { return fail("Error: -x argument given but no session expiry interval specified.\n\n") }
                if v == "∞" {
                    cfg.sessionExpiryInterval = Int64(UInt32.max)
                } else {
                    guard let number = cStrtol(v) else { return fail("Error: session-expiry-interval not a number.\n\n") }
                    if number > Int64(UInt32.max) || number < -1 { return fail("Error: session-expiry-interval out of range.\n\n") }
                    cfg.sessionExpiryInterval = number == -1 ? Int64(UInt32.max) : number
                }
                i += 1
            default:
                return unknown()
            }
            i += 1
        }
        return nil
    }

    /// `cfg_add_topic`: the publish topic for pub / rr, one more filter for sub.
    static func addTopic(_ topic: String, argument: String, into cfg: inout ClientOptions) -> ParseOutcome? {
        if !validateUTF8(topic) { return .failure("Error: Malformed UTF-8 in \(argument) argument.\n\n", quietable: false) }
        if cfg.tool == .sub {
            if !subTopicCheck(topic) {
                return .failure("Error: Invalid subscription topic '\(topic)', are all '+' and '#' wildcards correct?\n", quietable: false)
            }
            cfg.topics.append(topic)
        } else {
            if !pubTopicCheck(topic) {
                return .failure("Error: Invalid publish topic '\(topic)', does it contain '+' or '#'?\n", quietable: false)
            }
            cfg.topic = topic
        }
        return nil
    }

    /// `-L mqtt://[username[:password]@]host[:port]/topic`.
    static func parseURL(_ url: String, into cfg: inout ClientOptions) -> ParseOutcome? {
        do {
            if let webSocket = try WebSocketURL.parse(url) {
                webSocket.apply(to: &cfg)
                return nil
            }
        } catch {
            return .failure((error as? WebSocketURL.OptionError)?.message ?? "\(error)", quietable: false)
        }
        var rest: Substring
        if url.lowercased().hasPrefix("mqtt://") {
            rest = url.dropFirst(7)
            cfg.port = 1883
        } else if url.lowercased().hasPrefix("mqtts://") {
            // As Mosquitto's clients: port 8883, the system's CA certificates.
            rest = url.dropFirst(8)
            cfg.port = 8883
            cfg.tls.useOSCertificates = true
        } else {
            return .failure("Error: unsupported URL scheme.\n\n", quietable: false)
        }
        guard let slash = rest.firstIndex(of: "/") else {
            return .failure("Error: Invalid URL for -L argument specified - topic missing.\n", quietable: false)
        }
        let topic = String(rest[rest.index(after: slash)...])
        rest = rest[..<slash]
        if let failure = addTopic(topic, argument: "-L topic", into: &cfg) { return failure }
        if let at = rest.firstIndex(of: "@") {
            let credentials = rest[..<at]
            if let colon = credentials.firstIndex(of: ":") {
                cfg.password = String(credentials[credentials.index(after: colon)...])
                cfg.username = String(credentials[..<colon])
            } else {
                cfg.username = String(credentials)
            }
            rest = rest[rest.index(after: at)...]
        }
        if let colon = rest.firstIndex(of: ":") {
            cfg.port = cAtoi(String(rest[rest.index(after: colon)...]))
            rest = rest[..<colon]
        }
        cfg.host = String(rest)
        return nil
    }

    // MARK: - -D COMMAND NAME VALUE (client_props.c)

    static func parseProperty(_ args: [String], _ index: inout Int, into cfg: inout ClientOptions) -> ParseOutcome? {
        func fail(_ text: String) -> ParseOutcome { .failure(text, quietable: false) }
        let notEnough = "Error: --property argument given but not enough arguments specified.\n\n"
        if index + 2 > args.count - 1 { return fail(notEnough) }
        let commandName = args[index]
        let lowered = commandName.lowercased()
        let knownCommands = ["connect", "connack", "publish", "puback", "pubrec", "pubrel", "pubcomp", "subscribe",
                             "unsubscribe", "disconnect", "auth", "will"]
        guard knownCommands.contains(lowered) else { return fail("Error: Invalid command given in --property argument.\n\n") }
        let propertyName = args[index + 1]
        guard let info = propertyInfo(propertyName) else {
            return fail("Error: Invalid property name given in --property argument.\n\n")
        }
        if !propertyAllowed(info.identifier, in: lowered) {
            return fail("Error: \(propertyName) property not allowed for \(commandName) in --property argument.\n\n")
        }
        var key: String?
        let rawValue: String
        if info.identifier == .userProperty {
            if index + 3 > args.count - 1 { return fail(notEnough) }
            key = args[index + 2]
            rawValue = args[index + 3]
            index += 3
        } else {
            rawValue = args[index + 2]
            index += 2
        }
        let notSupported = "Error: \(propertyName) property not supported for \(commandName) in --property argument.\n\n"
        let command: PropertyCommand
        switch lowered {
        case "connect": command = .connect
        case "publish":
            if info.identifier == .topicAlias { cfg.haveTopicAlias = true }
            if info.identifier == .subscriptionIdentifier { return fail(notSupported) }
            command = .publish
        case "subscribe":
            if info.identifier != .subscriptionIdentifier && info.identifier != .userProperty { return fail(notSupported) }
            command = .subscribe
        case "unsubscribe": command = .unsubscribe
        case "disconnect": command = .disconnect
        case "will": command = .will
        default: return fail(notSupported)
        }
        let value: PropertyValue
        func outOfRange(_ n: Int64) -> ParseOutcome {
            fail("Error: Property value (\(n)) out of range for property \(propertyName).\n\n")
        }
        switch info.type {
        case .byte:
            let n = cAtol(rawValue)
            guard (0...Int64(UInt8.max)).contains(n) else { return outOfRange(n) }
            value = .byte(UInt8(n))
        case .int16:
            let n = cAtol(rawValue)
            guard (0...Int64(UInt16.max)).contains(n) else { return outOfRange(n) }
            value = .int16(UInt16(n))
        case .int32:
            let n = cAtol(rawValue)
            guard (0...Int64(UInt32.max)).contains(n) else { return outOfRange(n) }
            value = .int32(UInt32(n))
        case .varint:
            let n = cAtol(rawValue)
            guard (0...Int64(UInt32.max)).contains(n) else { return outOfRange(n) }
            value = .varint(UInt32(n))
        case .binary:
            let bytes = Array(rawValue.utf8)
            if bytes.count > Int(UInt16.max) { return fail("Error: Property value too long for property \(propertyName).\n\n") }
            value = .binary(bytes)
        case .string:
            value = .string(rawValue)
        case .pair:
            value = .pair(key ?? "", rawValue)
        }
        cfg.properties[command, default: []].append(PropertyEntry(identifier: info.identifier, value: value))
        return nil
    }

    enum PropertyType { case byte, int16, int32, varint, binary, string, pair }

    /// `mosquitto_string_to_property_info`: property names as Mosquitto spells them (any case).
    static func propertyInfo(_ name: String) -> (identifier: PropertyIdentifier, type: PropertyType)? {
        switch name.lowercased() {
        case "payload-format-indicator": return (.payloadFormatIndicator, .byte)
        case "message-expiry-interval": return (.messageExpiryInterval, .int32)
        case "content-type": return (.contentType, .string)
        case "response-topic": return (.responseTopic, .string)
        case "correlation-data": return (.correlationData, .binary)
        case "subscription-identifier": return (.subscriptionIdentifier, .varint)
        case "session-expiry-interval": return (.sessionExpiryInterval, .int32)
        case "assigned-client-identifier": return (.assignedClientIdentifier, .string)
        case "server-keep-alive": return (.serverKeepAlive, .int16)
        case "authentication-method": return (.authenticationMethod, .string)
        case "authentication-data": return (.authenticationData, .binary)
        case "request-problem-information": return (.requestProblemInformation, .byte)
        case "will-delay-interval": return (.willDelayInterval, .int32)
        case "request-response-information": return (.requestResponseInformation, .byte)
        case "response-information": return (.responseInformation, .string)
        case "server-reference": return (.serverReference, .string)
        case "reason-string": return (.reasonString, .string)
        case "receive-maximum": return (.receiveMaximum, .int16)
        case "topic-alias-maximum": return (.topicAliasMaximum, .int16)
        case "topic-alias": return (.topicAlias, .int16)
        case "maximum-qos": return (.maximumQoS, .byte)
        case "retain-available": return (.retainAvailable, .byte)
        case "user-property": return (.userProperty, .pair)
        case "maximum-packet-size": return (.maximumPacketSize, .int32)
        case "wildcard-subscription-available": return (.wildcardSubscriptionAvailable, .byte)
        case "subscription-identifier-available": return (.subscriptionIdentifierAvailable, .byte)
        case "shared-subscription-available": return (.sharedSubscriptionAvailable, .byte)
        default: return nil
        }
    }

    /// `mosquitto_property_check_command`.
    static func propertyAllowed(_ identifier: PropertyIdentifier, in command: String) -> Bool {
        switch identifier {
        case .payloadFormatIndicator, .messageExpiryInterval, .contentType, .responseTopic, .correlationData:
            return command == "publish" || command == "will"
        case .subscriptionIdentifier:
            return command == "publish" || command == "subscribe"
        case .sessionExpiryInterval:
            return command == "connect" || command == "connack" || command == "disconnect"
        case .authenticationMethod, .authenticationData:
            return command == "connect" || command == "connack" || command == "auth"
        case .assignedClientIdentifier, .serverKeepAlive, .responseInformation, .maximumQoS, .retainAvailable,
             .wildcardSubscriptionAvailable, .subscriptionIdentifierAvailable, .sharedSubscriptionAvailable:
            return command == "connack"
        case .willDelayInterval:
            return command == "will"
        case .requestProblemInformation, .requestResponseInformation:
            return command == "connect"
        case .serverReference:
            return command == "connack" || command == "disconnect"
        case .reasonString:
            return !["connect", "publish", "subscribe", "unsubscribe"].contains(command)
        case .receiveMaximum, .topicAliasMaximum, .maximumPacketSize:
            return command == "connect" || command == "connack"
        case .topicAlias:
            return command == "publish"
        case .userProperty:
            return true
        }
    }

    // MARK: - After all options (client_config_load)

    static func finish(_ options: ClientOptions) -> ParseOutcome {
        var cfg = options
        func fail(_ text: String, quietable: Bool = false) -> ParseOutcome { .failure(text, quietable: quietable) }
        if cfg.willPayload != nil && cfg.willTopic == nil { return fail("Error: Will payload given, but no will topic given.\n") }
        if cfg.willRetain && cfg.willTopic == nil { return fail("Error: Will retain given, but no will topic given.\n") }
        if cfg.protocolVersion == .v5 {
            if !cfg.cleanSession && cfg.sessionExpiryInterval == -1 {
                // -c without -x: a session that never expires.
                cfg.sessionExpiryInterval = Int64(UInt32.max)
            }
            if cfg.sessionExpiryInterval > 0 {
                if cfg.sessionExpiryInterval == Int64(UInt32.max) && (cfg.idPrefix != nil || cfg.id == nil) {
                    return fail("Error: You must provide a client id if you are using an infinite session expiry interval.\n")
                }
                cfg.properties[.connect, default: []].append(
                    PropertyEntry(identifier: .sessionExpiryInterval, value: .int32(UInt32(cfg.sessionExpiryInterval))))
            }
        } else if !cfg.cleanSession && (cfg.idPrefix != nil || cfg.id == nil) {
            return fail("Error: You must provide a client id if you are using the -c option.\n")
        }
        if cfg.tool == .sub && cfg.topics.isEmpty { return fail("Error: You must specify a topic to subscribe to.\n") }
        if let failure = checkTLSOptions(cfg) { return failure }
        if cfg.host == nil { cfg.host = "localhost" }
        for command in PropertyCommand.allCases {
            if let problem = checkAll(cfg.properties[command] ?? [], command: command) {
                return fail("Error in \(command.errorName) properties: \(problem)\n", quietable: true)
            }
        }
        return .success(cfg)
    }

    /// `mosquitto_property_check_all`: legal values, allowed in the packet, no duplicates.
    static func checkAll(_ entries: [PropertyEntry], command: PropertyCommand) -> String? {
        let protocolError = "A network protocol error occurred when communicating with the broker."
        for (index, entry) in entries.enumerated() {
            switch (entry.identifier, entry.value) {
            case (.requestProblemInformation, .byte(let v)), (.requestResponseInformation, .byte(let v)), (.maximumQoS, .byte(let v)),
                 (.retainAvailable, .byte(let v)), (.wildcardSubscriptionAvailable, .byte(let v)),
                 (.subscriptionIdentifierAvailable, .byte(let v)), (.sharedSubscriptionAvailable, .byte(let v)):
                if v > 1 { return protocolError }
            case (.maximumPacketSize, .int32(let v)):
                if v == 0 { return protocolError }
            case (.receiveMaximum, .int16(let v)), (.topicAlias, .int16(let v)):
                if v == 0 { return protocolError }
            default: break
            }
            if !propertyAllowed(entry.identifier, in: command.rawValue) { return protocolError }
            if entry.identifier != .userProperty && entries[(index + 1)...].contains(where: { $0.identifier == entry.identifier }) {
                return "Duplicate property in property list"
            }
        }
        return nil
    }
}

// MARK: - C library number parsing, as Mosquitto's clients use it

/// `atoi`: leading blanks, a sign, digits; anything else ends the number (0 when none).
func cAtoi(_ text: String) -> Int {
    let n = cAtol(text)
    return Int(truncatingIfNeeded: Int32(truncatingIfNeeded: n))
}

/// `atol` (64-bit long).
func cAtol(_ text: String) -> Int64 {
    var bytes = Substring(text).utf8.drop { $0 == 0x20 || (0x09...0x0D).contains($0) }
    var negative = false
    if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
        negative = first == UInt8(ascii: "-")
        bytes = bytes.dropFirst()
    }
    var value: Int64 = 0
    for byte in bytes {
        guard (0x30...0x39).contains(byte) else { break }
        let (m, o1) = value.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(Int64(byte - 0x30))
        if o1 || o2 { return negative ? Int64.min : Int64.max }
        value = a
    }
    return negative ? -value : value
}

/// `atof`.
func cAtof(_ text: String) -> Double {
    text.withCString { strtod($0, nil) }
}

/// `strtol(text, &end, 0)` that must consume the whole text; nil when it does not.
func cStrtol(_ text: String) -> Int64? {
    text.withCString { start -> Int64? in
        var end: UnsafeMutablePointer<CChar>?
        let value = strtol(start, &end, 0)
        guard let end, end != UnsafeMutablePointer(mutating: start), end.pointee == 0 else { return nil }
        return Int64(value)
    }
}

/// `mosquitto_validate_utf8`: well formed, no surrogates, no non-characters, no control characters.
func validateUTF8(_ text: String) -> Bool {
    let bytes = Array(text.utf8)
    if bytes.count > 65536 { return false }
    var i = 0
    while i < bytes.count {
        let byte = bytes[i]
        var codepoint: UInt32
        let length: Int
        if byte == 0 { return false }
        if byte <= 0x7F {
            length = 1; codepoint = UInt32(byte)
        } else if byte & 0xE0 == 0xC0 {
            if byte == 0xC0 || byte == 0xC1 { return false }
            length = 2; codepoint = UInt32(byte & 0x1F)
        } else if byte & 0xF0 == 0xE0 {
            length = 3; codepoint = UInt32(byte & 0x0F)
        } else if byte & 0xF8 == 0xF0 {
            if byte > 0xF4 { return false }
            length = 4; codepoint = UInt32(byte & 0x07)
        } else {
            return false
        }
        if i + length > bytes.count { return false }
        for j in 1..<length {
            let next = bytes[i + j]
            if next & 0xC0 != 0x80 { return false }
            codepoint = (codepoint << 6) | UInt32(next & 0x3F)
        }
        if (0xD800...0xDFFF).contains(codepoint) { return false }
        if length == 3 && codepoint < 0x0800 { return false }
        if length == 4 && (codepoint < 0x10000 || codepoint > 0x10FFFF) { return false }
        if (0xFDD0...0xFDEF).contains(codepoint) { return false }
        if codepoint & 0xFFFF == 0xFFFE || codepoint & 0xFFFF == 0xFFFF { return false }
        if codepoint <= 0x1F || (0x7F...0x9F).contains(codepoint) { return false }
        i += length
    }
    return true
}

/// `mosquitto_pub_topic_check`: no wildcard characters (an empty topic passes here).
func pubTopicCheck(_ topic: String) -> Bool {
    !topic.utf8.contains { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") } && topic.utf8.count <= 65535
}

/// `mosquitto_sub_topic_check`: `+` and `#` only as whole levels, `#` only last.
func subTopicCheck(_ filter: String) -> Bool {
    let bytes = Array(filter.utf8)
    if bytes.count > 65535 { return false }
    let slash = UInt8(ascii: "/")
    for (index, byte) in bytes.enumerated() {
        let previous: UInt8? = index > 0 ? bytes[index - 1] : nil
        let next: UInt8? = index + 1 < bytes.count ? bytes[index + 1] : nil
        if byte == UInt8(ascii: "+") {
            if (previous != nil && previous != slash) || (next != nil && next != slash) { return false }
        } else if byte == UInt8(ascii: "#") {
            if (previous != nil && previous != slash) || next != nil { return false }
        }
    }
    return true
}
