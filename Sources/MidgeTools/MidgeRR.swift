import Foundation
import MidgeClient
import MQTTCodec
import NIOConcurrencyHelpers
import NIOCore

/// `midge rr`: mosquitto_rr. Subscribes to the response topic (`-e`), publishes the request to
/// `-t` with the v5 Response Topic property (and any `-D publish ...` such as correlation-data),
/// prints the first response as `sub` would, and exits.
///
/// Exit codes: 0 after a response; 27 when `-W` seconds passed first ("Timed out"); 1 for a
/// usage error or an unreachable broker; the CONNACK code when the broker refuses.
public struct MidgeRR: Sendable {
    public let io: ToolIO

    public init(io: ToolIO) { self.io = io }

    public func run(arguments: [String]) async -> Int32 {
        var options: ClientOptions
        switch parseOrExit(arguments, tool: .rr, io: io) {
        case .success(let parsed): options = parsed
        case .failure(let status): return status.code
        }
        let report = Reporter(io: io, quiet: options.quiet)
        guard let topic = options.topic, options.publishMode != .none, let responseTopic = options.responseTopic else {
            report.always("Error: All of topic, message, and response topic must be supplied.\n")
            report.always("\nUse 'midge rr --help' to see usage.\n")
            return 1
        }
        if options.properties[.publish, default: []].contains(where: { $0.identifier == .responseTopic }) {
            report.error("Error in PUBLISH properties: Duplicate response topic.\n")
            return 1
        }
        options.properties[.publish, default: []].append(PropertyEntry(identifier: .responseTopic, value: .string(responseTopic)))

        var payload = options.message ?? []
        if options.publishMode == .stdinFile {
            var all: [UInt8] = []
            while let chunk = await io.stdin.read() { all += chunk }
            if all.isEmpty {
                report.error("Error: Zero length input.\n")
                report.error("Error loading input from stdin.\n")
                return 1
            }
            payload = all
        } else if options.publishMode == .file, let file = options.file {
            guard let data = FileManager.default.contents(atPath: file) else {
                report.error("Error: Unable to open file \"\(file)\".\n")
                report.error("Error loading input file \"\(file)\".\n")
                return 1
            }
            payload = Array(data)
        }

        let deadline = options.timeout > 0 ? Date().addingTimeInterval(TimeInterval(options.timeout)) : nil
        let plan = ConnectionPlan(options: options, io: io)
        let (client, _, failure) = plan.makeClient(receiveMaximum: 1)
        let work = Task { () -> Int32 in
            switch await connect(client, failure: failure, version: options.protocolVersion) {
            case .connected: break
            case .refused(let code):
                if code == ReasonCode.unsupportedProtocolVersion.rawValue {
                    report.error("Connection error: \(reasonString(code)). midge rr only supports connecting to an MQTT v5 broker\n")
                } else {
                    report.error("Connection error: \(reasonString(code))\n")
                }
                return Int32(code)
            case .unreachable(let text), .failed(let text):
                report.error(text)
                return 1
            }
            var responses = client.messages.makeAsyncIterator()
            do {
                let codes = try await client.subscribe([TopicSubscription(filter: responseTopic, options: SubscriptionOptions(qos: options.qos))],
                                                       properties: options.typedProperties(.subscribe))
                if let code = codes.first, code.rawValue >= 128 {
                    report.error("\(reasonString(code.rawValue))\n")
                    await client.disconnect(properties: options.typedProperties(.disconnect))
                    return 0
                }
                let properties = options.protocolVersion == .v5 ? options.typedProperties(.publish) : .none
                try await client.publish(topic, payload: ByteBuffer(bytes: payload), qos: options.qos, retain: false, properties: properties)
                guard let response = try await responses.next() else { return 0 }
                let (output, errors) = MessageFormatter(options: options).render(response)
                for error in errors { report.error(error) }
                io.stdout.write(output)
            } catch {
                report.error("Error: \(MosquittoError.connectionLost.text)\n")
                return MosquittoError.connectionLost.rawValue
            }
            await client.disconnect(properties: options.typedProperties(.disconnect))
            return 0
        }
        guard let deadline else { return await work.value }
        // -W: give up after that long, as mosquitto_rr's alarm does.
        let timedOut = NIOLockedValueBox(false)
        let timer = Task {
            let remaining = deadline.timeIntervalSinceNow
            if remaining > 0 { try? await Task.sleep(nanoseconds: UInt64(remaining * 1_000_000_000)) }
            guard !Task.isCancelled else { return }
            timedOut.withLockedValue { $0 = true }
            await client.disconnect(reason: options.protocolVersion == .v5 ? .disconnectWithWillMessage : .normalDisconnection,
                                    properties: options.typedProperties(.disconnect))
        }
        let code = await work.value
        timer.cancel()
        if timedOut.withLockedValue({ $0 }) {
            report.error("Timed out\n")
            return MosquittoError.timeout.rawValue
        }
        return code
    }
}
