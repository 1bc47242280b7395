import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestSupport
import NIOCore
import XCTest

// What a test expects to receive on a packet-level connection, with short timeouts: the next
// packet, nothing, the close, and the broker's reaction to a malformed packet or protocol error.

extension XCTestCase {
    /// The next packet, or nil (with a failure) when none arrives in time or the connection closes.
    public func expectPacket(_ connection: PacketConnection, within seconds: Double = 5, _ what: String = "a packet",
                             file: StaticString = #filePath, line: UInt = #line) async -> MQTTPacket? {
        do {
            return try await connection.receive(timeout: .milliseconds(Int64(seconds * 1000)))
        } catch {
            XCTFail("expected \(what), got \(error)", file: file, line: line)
            return nil
        }
    }

    /// The next packet, which must be a PUBLISH.
    public func expectPublish(_ connection: PacketConnection, within seconds: Double = 5,
                              file: StaticString = #filePath, line: UInt = #line) async -> PublishPacket? {
        guard let packet = await expectPacket(connection, within: seconds, "PUBLISH", file: file, line: line) else { return nil }
        guard case .publish(let publish) = packet else {
            XCTFail("expected PUBLISH, got \(packet)", file: file, line: line)
            return nil
        }
        return publish
    }

    /// Asserts that nothing arrives for `seconds` and the connection stays open.
    public func expectNothing(_ connection: PacketConnection, for seconds: Double, _ why: String = "",
                              file: StaticString = #filePath, line: UInt = #line) async {
        do {
            let packet = try await connection.receive(timeout: .milliseconds(Int64(seconds * 1000)))
            XCTFail("expected nothing \(why), got \(packet)", file: file, line: line)
        } catch PacketConnection.Failure.timeout {
            // As expected.
        } catch {
            XCTFail("expected the connection to stay open \(why), got \(error)", file: file, line: line)
        }
    }

    /// Waits for the broker to close `connection`; returns what arrived before. Fails when it stays open.
    @discardableResult
    public func expectClose(_ connection: PacketConnection, within seconds: Double = 5,
                            file: StaticString = #filePath, line: UInt = #line) async -> [MQTTPacket] {
        var packets: [MQTTPacket] = []
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else {
                XCTFail("connection still open after \(seconds) s (received \(packets))", file: file, line: line)
                return packets
            }
            do {
                packets.append(try await connection.receive(timeout: .milliseconds(Int64(left * 1000) + 1)))
            } catch PacketConnection.Failure.closed {
                return packets
            } catch PacketConnection.Failure.timeout {
                continue
            } catch {
                XCTFail("unexpected error while waiting for close: \(error)", file: file, line: line)
                return packets
            }
        }
    }

    /// Asserts that the broker closes the connection after (optionally) a v5 DISCONNECT with `reason`;
    /// with `reason` nil, nothing at all may arrive before the close (the v3 behaviour).
    public func expectDisconnect(_ connection: PacketConnection, reason: ReasonCode?, within seconds: Double = 5, _ context: String = "",
                                 file: StaticString = #filePath, line: UInt = #line) async {
        let packets = await expectClose(connection, within: seconds, file: file, line: line)
        guard let reason else {
            XCTAssertEqual(packets, [], "no packet may precede the close \(context)", file: file, line: line)
            return
        }
        guard packets.count == 1, case .disconnect(let disconnect) = packets[0] else {
            XCTFail("expected exactly one DISCONNECT \(reason) before the close \(context), got \(packets)", file: file, line: line)
            return
        }
        XCTAssertEqual(disconnect.reasonCode, reason, "DISCONNECT reason \(context)", file: file, line: line)
    }

    /// The reaction to a malformed packet or a protocol error on a connection of `version`: a v5
    /// client gets DISCONNECT `v5Reason` then the close (with `v5Reason` nil, the close alone); a
    /// 3.1/3.1.1 client just the close.
    public func expectViolationClose(_ connection: PacketConnection, _ version: ProtocolVersion, v5Reason: ReasonCode?,
                                     within seconds: Double = 5, _ context: String = "",
                                     file: StaticString = #filePath, line: UInt = #line) async {
        await expectDisconnect(connection, reason: version == .v5 ? v5Reason : nil, within: seconds, context, file: file, line: line)
    }

    /// Connects a well-behaved client of `version` (with `properties`), sends `bytes`, and expects
    /// the broker's reaction to a violation (see `expectViolationClose`).
    public func expectRejectedAfterConnect(_ broker: TestBroker, _ version: ProtocolVersion, _ bytes: [UInt8], v5Reason: ReasonCode?,
                                           _ context: String, properties: Properties = .none, within seconds: Double = 5,
                                           file: StaticString = #filePath, line: UInt = #line) async throws {
        let client = try await connectClean(broker, "bad-\(UUID().uuidString.prefix(6))", version, properties: properties,
                                            file: file, line: line)
        try await client.send(bytes: bytes)
        await expectViolationClose(client, version, v5Reason: v5Reason, within: seconds, "\(context) (\(version))", file: file, line: line)
    }
}
