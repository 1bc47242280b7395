import Foundation
import MQTTCodec
import NIOCore
import XCTest

// A real mosquitto.db for the import tests: Debian's Mosquitto 2.0 is started with
// `persistence true` in a scratch folder, raw MQTT clients (MQTTCodec over a blocking socket, so
// that a test controls every acknowledgement) leave sessions, subscriptions, queued and in-flight
// messages and retained messages in it, and SIGTERM makes it write its database and exit.

struct MosquittoFixtureError: Error, CustomStringConvertible {
    var description: String
}

/// What the scenario left in the database, for the tests to compare with.
struct MosquittoGeneratedDatabase {
    /// The database file Mosquitto wrote.
    var path: String
    /// Wall-clock seconds around the scenario: a time Mosquitto stored is between them.
    var startedAt: Int64
    var finishedAt: Int64
    /// Packet id the inbound client used for the QoS 2 PUBLISH it never released.
    var inboundPacketID: UInt16
}

enum MosquittoFixture {
    static let installHint = "Debian's Mosquitto 2.0 is needed: DEBIAN_FRONTEND=noninteractive apt-get install -y mosquitto "
        + "(scripts/test.sh installs it)"

    private static let lock = NSLock()
    private static var cached: Result<MosquittoGeneratedDatabase, Error>?

    /// The database of the scenario, made once per test run.
    static func database() throws -> MosquittoGeneratedDatabase {
        lock.lock()
        defer { lock.unlock() }
        if cached == nil { cached = Result { try generate() } }
        return try cached!.get()
    }

    static func mosquittoBinary() throws -> String {
        for candidate in ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/bin/mosquitto"]
            where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        throw MosquittoFixtureError(description: "mosquitto not found. \(installHint)")
    }

    /// A folder anyone may write: Mosquitto started as root without `user root` would write
    /// as user `mosquitto`.
    static func scratchFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("midge-mosquitto-db-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        guard chmod(url.path, 0o777) == 0 else { throw MosquittoFixtureError(description: "chmod \(url.path) failed") }
        return url
    }

    private static func generate() throws -> MosquittoGeneratedDatabase {
        let binary = try mosquittoBinary()
        let folder = try scratchFolder()
        let broker = try MosquittoBroker(binary: binary, folder: folder)
        var stopped = false
        defer { if !stopped { broker.kill() } }
        let startedAt = Int64(Date().timeIntervalSince1970)
        let port = broker.port

        // Retained messages, MQTT 3.1.1 and 5 (with properties).
        let pub311 = try RawMQTTClient(port: port, connect: ConnectPacket(protocolVersion: .v3_1_1, clientID: "pub311"))
        try pub311.publish(topic: "ret/v3", payload: "hello v3", qos: .atLeastOnce, retain: true)
        try pub311.disconnect()

        var retainedProperties = Properties()
        retainedProperties.contentType = "text/plain"
        retainedProperties.userProperties = [UserProperty("k", "v"), UserProperty("k", "w")]
        retainedProperties.messageExpiryInterval = 3600
        retainedProperties.payloadFormatIndicator = 1
        retainedProperties.responseTopic = "reply/here"
        retainedProperties.correlationData = ByteBuffer(bytes: [1, 2, 3])
        let pub5 = try RawMQTTClient(port: port, connect: ConnectPacket(protocolVersion: .v5, clientID: "pub5"))
        try pub5.publish(topic: "ret/v5", payload: "hello v5", qos: .exactlyOnce, retain: true, properties: retainedProperties)
        try pub5.publish(topic: "ret/binary", payload: [0, 255, 0x80, 10], qos: .atMostOnce, retain: true)
        try pub5.disconnect()

        // A 3.1.1 session (clean session 0) subscribed at QoS 1 and 2, then offline.
        // Every session has a username: Mosquitto 2.0.11 gives a client without one the previous
        // client's (see MosquittoDatabaseChunks.readClient), which would make the test depend on
        // its hash order.
        let durable311 = try RawMQTTClient(port: port, connect: ConnectPacket(
            protocolVersion: .v3_1_1, cleanStart: false, clientID: "durable311", username: "bob"))
        try durable311.subscribe([TopicSubscription(filter: "q1/#", options: SubscriptionOptions(qos: .atLeastOnce)),
                                  TopicSubscription(filter: "q2/#", options: SubscriptionOptions(qos: .exactlyOnce))])
        try durable311.disconnect()

        // A v5 session with an expiry interval, a subscription identifier and options.
        var sessionExpiry = Properties()
        sessionExpiry.sessionExpiryInterval = 3600
        let durable5 = try RawMQTTClient(port: port, connect: ConnectPacket(
            protocolVersion: .v5, cleanStart: false, clientID: "durable5", username: "alice", properties: sessionExpiry))
        var subscriptionID = Properties()
        subscriptionID.subscriptionIdentifiers = [42]
        try durable5.subscribe([TopicSubscription(filter: "v5/#", options: SubscriptionOptions(
            qos: .exactlyOnce, noLocal: true, retainAsPublished: true, retainHandling: .sendOnNewSubscribe))],
                               properties: subscriptionID)
        try durable5.disconnect()

        // A shared subscription of a v5 session.
        var shortExpiry = Properties()
        shortExpiry.sessionExpiryInterval = 600
        let shared5 = try RawMQTTClient(port: port, connect: ConnectPacket(
            protocolVersion: .v5, cleanStart: false, clientID: "shared5", username: "carol", properties: shortExpiry))
        try shared5.subscribe([TopicSubscription(filter: "$share/g/shared/t", options: SubscriptionOptions(qos: .atLeastOnce))])
        try shared5.disconnect()

        // A v5 session with messages in flight: a QoS 1 PUBLISH not acknowledged, a QoS 2 one
        // PUBREC'd (Mosquitto then waits for PUBCOMP).
        let inflight5 = try RawMQTTClient(port: port, connect: ConnectPacket(
            protocolVersion: .v5, cleanStart: false, clientID: "inflight5", username: "dave", properties: sessionExpiry))
        var inflightID = Properties()
        inflightID.subscriptionIdentifiers = [7]
        try inflight5.subscribe([TopicSubscription(filter: "inflight/#", options: SubscriptionOptions(qos: .exactlyOnce))],
                                properties: inflightID)
        let publisher = try RawMQTTClient(port: port, connect: ConnectPacket(protocolVersion: .v5, clientID: "publisher"))
        try publisher.publish(topic: "inflight/one", payload: "unacked", qos: .atLeastOnce)
        try publisher.publish(topic: "inflight/two", payload: "pubrec'd", qos: .exactlyOnce)
        for _ in 0..<2 {
            guard case .publish(let publish) = try inflight5.receive() else { throw MosquittoFixtureError(description: "inflight5: no PUBLISH") }
            if publish.qos == .exactlyOnce {
                try inflight5.send(.pubrec(PubAckPacket(packetID: publish.packetID)))
                guard case .pubrel = try inflight5.receive() else { throw MosquittoFixtureError(description: "inflight5: no PUBREL") }
            }
        }
        try inflight5.disconnect()

        // An inbound QoS 2 PUBLISH, PUBREC'd by Mosquitto, never released.
        let inboundPacketID: UInt16 = 77
        let inbound311 = try RawMQTTClient(port: port, connect: ConnectPacket(
            protocolVersion: .v3_1_1, cleanStart: false, clientID: "inbound311", username: "erin"))
        try inbound311.send(.publish(PublishPacket(topic: "in/held", payload: ByteBuffer(string: "held"), qos: .exactlyOnce,
                                                   packetID: inboundPacketID)))
        guard case .pubrec = try inbound311.receive() else { throw MosquittoFixtureError(description: "inbound311: no PUBREC") }
        try inbound311.disconnect()

        // Messages for the offline sessions: queued.
        try publisher.publish(topic: "q1/a", payload: "m1", qos: .atLeastOnce)
        try publisher.publish(topic: "q2/b", payload: "m2", qos: .exactlyOnce)
        try publisher.publish(topic: "q1/zero", payload: "m0", qos: .atMostOnce)
        var userProperty = Properties()
        userProperty.userProperties = [UserProperty("a", "b")]
        try publisher.publish(topic: "v5/c", payload: "m3", qos: .exactlyOnce, retain: true, properties: userProperty)
        try publisher.publish(topic: "shared/t", payload: "m4", qos: .atLeastOnce)
        try publisher.disconnect()

        try broker.stop()
        stopped = true
        let finishedAt = Int64(Date().timeIntervalSince1970) + 1
        let path = folder.appendingPathComponent("mosquitto.db").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw MosquittoFixtureError(description: "Mosquitto wrote no \(path)\n--- mosquitto's log ---\n\(broker.log)")
        }
        return MosquittoGeneratedDatabase(path: path, startedAt: startedAt, finishedAt: finishedAt, inboundPacketID: inboundPacketID)
    }
}

/// Mosquitto with `persistence true` on a free loopback port, writing into `folder`.
final class MosquittoBroker {
    let process = Process()
    let port: Int
    let folder: URL
    private let logURL: URL

    init(binary: String, folder: URL) throws {
        self.folder = folder
        port = try Self.freePort()
        logURL = folder.appendingPathComponent("mosquitto.log")
        // `user root`: Mosquitto 2.0 started as root then keeps root instead of switching to
        // user `mosquitto` (it only warns); ignored when not started as root.
        let config = """
            listener \(port) 127.0.0.1
            allow_anonymous true
            persistence true
            persistence_location \(folder.path)/
            user root
            log_dest stderr
            """
        let configURL = folder.appendingPathComponent("mosquitto.conf")
        try config.write(to: configURL, atomically: true, encoding: .utf8)
        _ = chmod(configURL.path, 0o644)
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-c", configURL.path]
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if (try? RawSocket(port: port)) != nil { return }
            guard process.isRunning else { break }
            usleep(50_000)
        }
        kill()
        throw MosquittoFixtureError(description: "Mosquitto did not start on port \(port)\n--- its log ---\n\(self.log)")
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// SIGTERM, as a service manager stops it: Mosquitto saves its database and exits.
    func stop() throws {
        process.terminate()
        let deadline = Date().addingTimeInterval(15)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        guard !process.isRunning else {
            kill()
            throw MosquittoFixtureError(description: "Mosquitto did not exit within 15 s of SIGTERM\n--- its log ---\n\(log)")
        }
        guard process.terminationStatus == 0 else {
            throw MosquittoFixtureError(description: "Mosquitto exited with \(process.terminationStatus)\n--- its log ---\n\(log)")
        }
    }

    func kill() {
        guard process.isRunning else { return }
        _ = Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// A loopback port nothing listens on: bind port 0, read the port given, close.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MosquittoFixtureError(description: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw MosquittoFixtureError(description: "bind to a free port failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A blocking TCP connection to 127.0.0.1 (5 s receive timeout).
struct RawSocket {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MosquittoFixtureError(description: "socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else {
            close(fd)
            throw MosquittoFixtureError(description: "connect to 127.0.0.1:\(port) failed")
        }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }
}

/// Just enough of an MQTT client to drive Mosquitto packet by packet.
final class RawMQTTClient {
    private let socket: RawSocket
    private var decoder: PacketDecoder
    private var inbox = ByteBuffer()
    private let version: ProtocolVersion
    private let name: String
    private var nextPacketID: UInt16 = 1

    init(port: Int, connect: ConnectPacket) throws {
        socket = try RawSocket(port: port)
        version = connect.protocolVersion
        name = connect.clientID
        decoder = PacketDecoder(protocolVersion: connect.protocolVersion)
        try send(.connect(connect))
        guard case .connack(let connack) = try receive(), connack.reasonCode == .success else {
            throw MosquittoFixtureError(description: "\(name): connection refused")
        }
    }

    deinit { close(socket.fd) }

    func send(_ packet: MQTTPacket) throws {
        let buffer = PacketEncoder.encode(packet, version: version)
        let bytes = Array(buffer.readableBytesView)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(socket.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw MosquittoFixtureError(description: "\(name): send failed") }
            sent += count
        }
    }

    func receive() throws -> MQTTPacket {
        while true {
            if let packet = try decoder.decode(from: &inbox) { return packet }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { recv(socket.fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw MosquittoFixtureError(description: "\(name): connection closed or 5 s without a packet") }
            inbox.writeBytes(chunk[0..<count])
        }
    }

    private func packetID() -> UInt16 {
        defer { nextPacketID += 1 }
        return nextPacketID
    }

    func subscribe(_ subscriptions: [TopicSubscription], properties: Properties = .none) throws {
        try send(.subscribe(SubscribePacket(packetID: packetID(), subscriptions: subscriptions, properties: properties)))
        guard case .suback(let suback) = try receive(), suback.reasonCodes.allSatisfy({ $0.rawValue < 0x80 }) else {
            throw MosquittoFixtureError(description: "\(name): subscription refused")
        }
    }

    /// Publishes and completes the QoS flow, so that Mosquitto has routed the message when it returns.
    func publish(topic: String, payload: String, qos: QoS, retain: Bool = false, properties: Properties = .none) throws {
        try publish(topic: topic, payload: Array(payload.utf8), qos: qos, retain: retain, properties: properties)
    }

    func publish(topic: String, payload: [UInt8], qos: QoS, retain: Bool = false, properties: Properties = .none) throws {
        let id = qos == .atMostOnce ? 0 : packetID()
        try send(.publish(PublishPacket(topic: topic, payload: ByteBuffer(bytes: payload), qos: qos, retain: retain,
                                        packetID: id, properties: properties)))
        switch qos {
        case .atMostOnce:
            // Nothing comes back: a PINGREQ round trip shows Mosquitto has handled the PUBLISH.
            try send(.pingreq)
            guard case .pingresp = try receive() else { throw MosquittoFixtureError(description: "\(name): no PINGRESP") }
        case .atLeastOnce:
            guard case .puback = try receive() else { throw MosquittoFixtureError(description: "\(name): no PUBACK") }
        case .exactlyOnce:
            guard case .pubrec = try receive() else { throw MosquittoFixtureError(description: "\(name): no PUBREC") }
            try send(.pubrel(PubAckPacket(packetID: id)))
            guard case .pubcomp = try receive() else { throw MosquittoFixtureError(description: "\(name): no PUBCOMP") }
        }
    }

    /// DISCONNECT, then waits until Mosquitto has closed the connection (it has then handled
    /// the disconnection).
    func disconnect() throws {
        try send(.disconnect(DisconnectPacket()))
        var byte: UInt8 = 0
        while recv(socket.fd, &byte, 1, 0) > 0 {}
    }
}
