import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// v5 Will Delay Interval: the will goes out when the delay has passed or the session ends,
/// whichever is first, and not at all if the client reconnects to the session in time [MQTT-3.1.3-9].
final class WillDelayTests: XCTestCase {
    var broker: TestBroker!
    var watcher: PacketConnection!

    override func setUp() async throws {
        broker = try startBroker()
        (watcher, _) = try await connectAccepted(broker, "delay-watcher")
        try await subscribe(watcher, "delayed/#")
    }

    private func delayedWill(_ name: String, delay: UInt32) -> Will {
        var will = Will(topic: "delayed/\(name)", payload: ByteBuffer(text: name))
        will.properties.willDelayInterval = delay
        return will
    }

    func testWillPublishedAfterDelay() async throws {
        let (client, _) = try await connectAccepted(broker, "after", will: delayedWill("after", delay: 1), sessionExpiry: 30)
        let closedAt = Date()
        await client.close()
        await expectNothing(watcher, for: 0.7, "(will delay 1 s not over)")
        guard let will = await expectPublish(watcher, within: 2) else { return }
        XCTAssertEqual(will.payload.text, "after")
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(closedAt), 0.9)
        XCTAssertNil(will.properties.willDelayInterval, "Will Delay Interval is not a PUBLISH property")
        // The session outlives the will.
        XCTAssertNotNil(broker.broker.session(clientID: "after"))
    }

    func testReconnectWithCleanStartZeroWithinDelayCancelsWill() async throws {
        // [MQTT-3.1.3-9] A new connection to the session before the delay elapses: no will.
        let (client, _) = try await connectAccepted(broker, "back", will: delayedWill("back", delay: 1), sessionExpiry: 30)
        await client.close()
        try await Task.sleep(nanoseconds: 200_000_000)
        let (again, connack) = try await connectAccepted(broker, "back", cleanStart: false, sessionExpiry: 30)
        XCTAssertTrue(connack.sessionPresent)
        await expectNothing(watcher, for: 1.5, "(will cancelled by reconnecting)")
        // The new connection has no will: closing it publishes nothing either.
        await again.close()
        await expectNothing(watcher, for: 0.3, "(reconnected client had no will)")
    }

    func testReconnectWithCleanStartOneWithinDelayPublishesWillAtOnce() async throws {
        // Clean Start 1 ends the old session, and a session's end releases its delayed will (spec 3.1.2.5).
        let (client, _) = try await connectAccepted(broker, "fresh", will: delayedWill("fresh", delay: 10), sessionExpiry: 30)
        await client.close()
        try await Task.sleep(nanoseconds: 100_000_000)
        let (again, connack) = try await connectAccepted(broker, "fresh", cleanStart: true)
        XCTAssertFalse(connack.sessionPresent)
        guard let will = await expectPublish(watcher, within: 1) else { return }
        XCTAssertEqual(will.payload.text, "fresh")
        try await disconnect(again)
    }

    func testWillPublishedWhenSessionExpiresBeforeDelay() async throws {
        // [MQTT-3.1.2-8] Session Expiry 1 s < Will Delay 10 s: the will goes out when the session ends.
        let (client, _) = try await connectAccepted(broker, "short", will: delayedWill("short", delay: 10), sessionExpiry: 1)
        let closedAt = Date()
        await client.close()
        await expectNothing(watcher, for: 0.6, "(session still alive)")
        guard let will = await expectPublish(watcher, within: 2) else { return }
        XCTAssertEqual(will.payload.text, "short")
        let elapsed = Date().timeIntervalSince(closedAt)
        XCTAssertGreaterThanOrEqual(elapsed, 0.9)
        XCTAssertLessThan(elapsed, 3, "must not wait for the 10 s will delay")
        XCTAssertNil(broker.broker.session(clientID: "short"))
    }

    func testWillPublishedAtOnceWhenSessionEndsWithConnection() async throws {
        // Session Expiry 0: the session ends as the connection closes, so the delayed will goes out now.
        let (client, _) = try await connectAccepted(broker, "now", will: delayedWill("now", delay: 10))
        await client.close()
        guard let will = await expectPublish(watcher, within: 1) else { return }
        XCTAssertEqual(will.payload.text, "now")
    }

    func testDisconnectWithWillMessageHonoursDelay() async throws {
        // DISCONNECT 0x04 asks for the will; its delay still applies, and reconnecting cancels it.
        let (client, _) = try await connectAccepted(broker, "dw", will: delayedWill("dw", delay: 1), sessionExpiry: 30)
        try await disconnect(client, DisconnectPacket(reasonCode: .disconnectWithWillMessage))
        await expectNothing(watcher, for: 0.6, "(delay not over)")
        guard let will = await expectPublish(watcher, within: 2) else { return }
        XCTAssertEqual(will.payload.text, "dw")
    }

    func testDisconnectShorteningSessionExpiryReleasesDelayedWill() async throws {
        // DISCONNECT 0x04 with Session Expiry 0: the session ends now, so the will goes out now.
        let (client, _) = try await connectAccepted(broker, "cut", will: delayedWill("cut", delay: 10), sessionExpiry: 30)
        try await disconnect(client, DisconnectPacket(reasonCode: .disconnectWithWillMessage, properties: sessionExpiry(0)))
        guard let will = await expectPublish(watcher, within: 1) else { return }
        XCTAssertEqual(will.payload.text, "cut")
    }
}
