import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeTestSupport
import NIOCore
import XCTest

/// The protocol versions every message-flow test runs against.
public let messagingVersions: [ProtocolVersion] = [.v3_1_1, .v5]

extension QoS {
    /// The three QoS levels, lowest first.
    public static let all: [QoS] = [.atMostOnce, .atLeastOnce, .exactlyOnce]
}

/// Base class: one in-process broker per test, shut down afterwards. Tests that need another
/// configuration call `restartBroker`.
open class MessagingTestCase: XCTestCase {
    public var broker: TestBroker!

    open override func setUpWithError() throws {
        broker = try TestBroker()
    }

    open override func tearDown() {
        broker?.shutdown()
        broker = nil
    }

    /// Replaces the default broker with one configured by `configure`.
    public func restartBroker(threads: Int = 2, _ configure: (inout BrokerConfiguration) -> Void) throws {
        broker?.shutdown()
        broker = try TestBroker(configure, threads: threads)
    }

    /// Connects with a clean session and checks the CONNACK succeeded.
    public func connect(_ clientID: String, _ version: ProtocolVersion, properties: Properties = .none,
                        file: StaticString = #filePath, line: UInt = #line) async throws -> PacketConnection {
        try await connectClean(broker, clientID, version, properties: properties, file: file, line: line)
    }

    /// Connects a session that outlives its connection (see `connectPersistent(_:_:_:resume:)`)
    /// to this test's broker.
    public func connectPersistent(_ clientID: String, _ version: ProtocolVersion, resume: Bool, properties: Properties = .none,
                                  file: StaticString = #filePath, line: UInt = #line) async throws -> (PacketConnection, Bool) {
        try await connectPersistent(broker, clientID, version, resume: resume, properties: properties, file: file, line: line)
    }
}
