import Foundation
import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestSupport
import NIOCore
import XCTest

// Brokers and connected clients for end-to-end tests: a broker per test, clients whose CONNECT
// must be accepted, and a check that the broker still serves after whatever a test did to it.

extension XCTestCase {
    /// A broker on a free port, shut down when the test ends.
    public func startBroker(allowAnonymous: Bool = true, _ configure: (inout BrokerConfiguration) -> Void = { _ in }) throws -> TestBroker {
        let broker = try TestBroker(configure, allowAnonymous: allowAnonymous)
        addTeardownBlock { broker.shutdown() }
        return broker
    }

    /// A broker with `allow_anonymous false` and a password file holding `users` (name → password),
    /// so that a client must log in (as in Mosquitto, a user name alone never does).
    public func startBroker(users: [String: String], _ configure: (inout BrokerConfiguration) -> Void = { _ in }) throws -> TestBroker {
        let directory = NSTemporaryDirectory() + "midge-users-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        var file = PasswordFile()
        for (user, password) in users.sorted(by: { $0.key < $1.key }) { file.set(user, .make(password: password, iterations: 1)) }
        let path = directory + "/passwords"
        try file.text.write(toFile: path, atomically: true, encoding: .utf8)
        return try startBroker(allowAnonymous: false) { configuration in
            configuration.security.passwordFile = path
            configure(&configuration)
        }
    }

    /// Connects and fails unless the CONNACK accepts the connection.
    public func connectAccepted(_ broker: TestBroker, _ clientID: String, version: ProtocolVersion = .v5, cleanStart: Bool = true,
                                keepAlive: UInt16 = 60, will: Will? = nil, username: String? = nil, password: String? = nil,
                                sessionExpiry: UInt32? = nil, properties: Properties = .none,
                                file: StaticString = #filePath, line: UInt = #line) async throws -> (PacketConnection, ConnAckPacket) {
        var properties = properties
        if let sessionExpiry { properties.sessionExpiryInterval = sessionExpiry }
        let (connection, connack) = try await broker.connect(clientID, version: version, cleanStart: cleanStart, keepAlive: keepAlive,
                                                             will: will, username: username, password: password.map { Array($0.utf8) },
                                                             properties: properties)
        XCTAssertEqual(connack.reasonCode, .success, "CONNACK for \(clientID) (\(version))", file: file, line: line)
        return (connection, connack)
    }

    /// A client with a clean session whose CONNECT was accepted.
    public func connectClean(_ broker: TestBroker, _ clientID: String, _ version: ProtocolVersion, properties: Properties = .none,
                             file: StaticString = #filePath, line: UInt = #line) async throws -> PacketConnection {
        try await connectAccepted(broker, clientID, version: version, properties: properties, file: file, line: line).0
    }

    /// Connects a session that outlives its connection: 3.1.1 with Clean Session 0; 5.0 with a
    /// Session Expiry Interval of 300 s (unless `properties` set one) and Clean Start 1 for the
    /// first connection (`resume` false) or 0 to resume. Returns the connection and the CONNACK's
    /// Session Present flag.
    public func connectPersistent(_ broker: TestBroker, _ clientID: String, _ version: ProtocolVersion, resume: Bool,
                                  properties: Properties = .none,
                                  file: StaticString = #filePath, line: UInt = #line) async throws -> (PacketConnection, Bool) {
        var properties = properties
        if version == .v5 && properties.sessionExpiryInterval == nil { properties.sessionExpiryInterval = 300 }
        let cleanStart = version == .v5 ? !resume : false
        let (connection, connack) = try await connectAccepted(broker, clientID, version: version, cleanStart: cleanStart,
                                                              properties: properties, file: file, line: line)
        return (connection, connack.sessionPresent)
    }

    /// A fresh v5 client can still connect, subscribe and get its own QoS 1 message back: the broker
    /// survived whatever the test did to it.
    public func assertBrokerServes(_ broker: TestBroker, _ context: String = "",
                                   file: StaticString = #filePath, line: UInt = #line) async throws {
        let id = "alive-\(UUID().uuidString.prefix(8))"
        let (probe, connack) = try await broker.connect(id)
        XCTAssertEqual(connack.reasonCode, .success, "broker refused a fresh client \(context)", file: file, line: line)
        try await subscribe(probe, "alive/\(id)", qos: .atLeastOnce, file: file, line: line)
        try await probe.send(.publish(PublishPacket(topic: "alive/\(id)", payload: ByteBuffer(text: "ok"), qos: .atLeastOnce, packetID: 9)))
        var sawPublish = false, sawAck = false
        for _ in 0..<2 {
            guard let packet = await expectPacket(probe, within: 3, "PUBLISH/PUBACK from a healthy broker \(context)", file: file, line: line) else { break }
            switch packet {
            case .publish(let publish):
                XCTAssertEqual(publish.payload.text, "ok", file: file, line: line)
                sawPublish = true
                try await probe.send(.puback(PubAckPacket(packetID: publish.packetID)))
            case .puback: sawAck = true
            default: XCTFail("unexpected \(packet) \(context)", file: file, line: line)
            }
        }
        XCTAssertTrue(sawPublish && sawAck, "broker did not serve a fresh client \(context)", file: file, line: line)
        await probe.close()
    }

    /// Polls `condition` every 20 ms until true or `seconds` pass.
    public func eventually(within seconds: Double = 3, _ what: String, file: StaticString = #filePath, line: UInt = #line,
                           _ condition: () -> Bool) async {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        XCTAssertTrue(condition(), what, file: file, line: line)
    }
}
