import Foundation
import MQTTCodec
import MidgeBroker
import MidgeClient
import MidgeServer
import MidgeTestSupport
import NIOCore
import XCTest

/// `listener 0 /path/to/socket`: the socket file's life (mode, stale file, removal at shutdown)
/// and MQTT over it.
final class UnixSocketListenerTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("midge-unix-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func startBroker(_ path: String) throws -> TestBroker {
        try TestBroker({ config in
            var security = config.security
            security.allowAnonymous = true
            config.listeners = [
                ListenerConfiguration(port: 0, bindAddress: "127.0.0.1", security: security),
                ListenerConfiguration(port: 0, unixSocketPath: path, security: security),
            ]
            config.perListenerSettings = true
        })
    }

    private func mode(_ path: String) -> mode_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode
    }

    func testSocketFileIsCreatedGroupAccessibleAndRemovedAtShutdown() throws {
        let path = directory + "/broker.sock"
        let broker = try startBroker(path)
        let created = try XCTUnwrap(mode(path), "no socket file")
        XCTAssertEqual(created & S_IFMT, S_IFSOCK)
        XCTAssertEqual(created & 0o777, 0o770, "Mosquitto's mode: owner and group may connect")
        broker.shutdown()
        XCTAssertNil(mode(path), "the socket file outlived the broker")
    }

    func testStaleSocketFileIsReplaced() throws {
        // A broker that crashed leaves its socket file behind: the next one binds over it.
        let path = directory + "/stale.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0)
        close(fd)
        XCTAssertEqual(mode(path).map { $0 & S_IFMT }, S_IFSOCK)
        let broker = try startBroker(path)
        defer { broker.shutdown() }
        XCTAssertEqual(mode(path).map { $0 & 0o777 }, 0o770)
    }

    func testRegularFileInTheWayIsNotDeleted() throws {
        let path = directory + "/not-a-socket"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("keep me".utf8)))
        XCTAssertThrowsError(try startBroker(path))
        XCTAssertEqual(FileManager.default.contents(atPath: path), Data("keep me".utf8))
    }

    func testMQTTOverTheUnixSocket() async throws {
        let path = directory + "/mqtt.sock"
        let broker = try startBroker(path)
        defer { broker.shutdown() }
        let subscriber = MQTTClient(configuration: .init(version: .v5, clientID: "unix-sub", transport: .unixSocket(path: path)))
        let publisher = MQTTClient(configuration: .init(host: "127.0.0.1", port: broker.port, version: .v3_1_1, clientID: "tcp-pub"))
        try await subscriber.connect()
        try await publisher.connect()
        _ = try await subscriber.subscribe(to: "unix/#", qos: .exactlyOnce)
        _ = try await publisher.publish("unix/1", payload: "through the socket file", qos: .exactlyOnce)
        var iterator = subscriber.messages.makeAsyncIterator()
        let message = try await iterator.next()
        XCTAssertEqual(message?.payloadString, "through the socket file")
        XCTAssertEqual(message?.qos, .exactlyOnce)
        await publisher.disconnect()
        await subscriber.disconnect()
    }
}
