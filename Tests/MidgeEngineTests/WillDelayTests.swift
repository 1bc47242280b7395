import MidgeBroker
import MidgeEngineHarness
import MQTTCodec
import NIOCore
import XCTest

/// v5 Will Delay Interval on the virtual clock: the will goes out when the delay has passed or
/// the session ends, whichever is first (spec 3.1.3.2.2; Mosquitto 2.0.11 makes a session of
/// expiry 0 wait for the delay), and not at all if a new connection for the client id opens in
/// time, whatever its Clean Start [MQTT-3.1.3-9] [MQTT-3.1.2-8]. Both are timers: exact to the
/// nanosecond here.
final class WillDelayTests: XCTestCase {
    var harness: EngineHarness!
    var watcher: HarnessClient!

    override func setUp() {
        harness = EngineHarness()
        watcher = harness.connect()
        watcher.connectAccepted("delay-watcher")
        watcher.subscribe("delayed/#", qos: .atLeastOnce)
    }

    override func tearDown() {
        watcher = nil
        harness = nil
    }

    private func delayedWill(_ name: String, delay: UInt32) -> Will {
        var will = Will(topic: "delayed/\(name)", payload: bytes(name))
        will.properties.willDelayInterval = delay
        return will
    }

    private func connect(_ id: String, will: Will? = nil, cleanStart: Bool = true, sessionExpiry seconds: UInt32? = nil) -> (HarnessClient, ConnAckPacket?) {
        let client = harness.connect()
        let ack = client.connectAccepted(id, cleanStart: cleanStart, will: will, properties: sessionExpiry(seconds))
        return (client, ack)
    }

    private func wills() -> [String] { watcher.receivedPublishes().map(\.payloadString) }

    func testWillPublishedAfterDelay() {
        let (client, _) = connect("after", will: delayedWill("after", delay: 1), sessionExpiry: 30)
        client.dropConnection()
        harness.advance(by: .milliseconds(999))
        XCTAssertEqual(wills(), [], "(will delay 1 s not over)")
        harness.advance(by: .milliseconds(1))
        let published = watcher.receivedPublishes()
        XCTAssertEqual(published.map(\.payloadString), ["after"], "the will must go out 1 s after the close")
        XCTAssertNil(published.first?.properties.willDelayInterval, "Will Delay Interval is not a PUBLISH property")
        // The session outlives the will.
        XCTAssertNotNil(harness.broker.session(clientID: "after"))
    }

    func testReconnectWithCleanStartZeroWithinDelayCancelsWill() {
        // [MQTT-3.1.3-9] A new connection to the session before the delay elapses: no will.
        let (client, _) = connect("back", will: delayedWill("back", delay: 1), sessionExpiry: 30)
        client.dropConnection()
        harness.advance(by: .milliseconds(200))
        let (again, connack) = connect("back", cleanStart: false, sessionExpiry: 30)
        XCTAssertEqual(connack?.sessionPresent, true)
        harness.advance(by: .seconds(60))
        XCTAssertEqual(wills(), [], "(will cancelled by reconnecting)")
        // The new connection has no will: closing it publishes nothing either.
        again.dropConnection()
        harness.advance(by: .seconds(60))
        XCTAssertEqual(wills(), [], "(reconnected client had no will)")
    }

    func testReconnectWithCleanStartOneWithinDelayCancelsWill() {
        // Clean Start 1 ends the old session, but the new connection for the client id opened before
        // the will was due: no will ([MQTT-3.1.2-8]; Mosquitto's 07-will-delay-recover).
        let (client, _) = connect("fresh", will: delayedWill("fresh", delay: 10), sessionExpiry: 30)
        client.dropConnection()
        harness.advance(by: .milliseconds(100))
        XCTAssertEqual(wills(), [])
        let (again, connack) = connect("fresh", cleanStart: true)
        XCTAssertEqual(connack?.sessionPresent, false)
        harness.advance(by: .seconds(20))
        XCTAssertEqual(wills(), [], "(will cancelled by the new connection)")
        again.disconnect()
    }

    func testWillPublishedWhenSessionExpiresBeforeDelay() {
        // [MQTT-3.1.2-8] Session Expiry 1 s < Will Delay 10 s: the will goes out when the session ends,
        // and a reconnect finds no session.
        let (client, _) = connect("short", will: delayedWill("short", delay: 10), sessionExpiry: 1)
        client.dropConnection()
        harness.advance(by: .milliseconds(999))
        XCTAssertEqual(wills(), [], "(session still alive)")
        XCTAssertNotNil(harness.broker.session(clientID: "short"))
        harness.advance(by: .milliseconds(1))
        XCTAssertEqual(wills(), ["short"], "must not wait for the 10 s will delay")
        XCTAssertNil(harness.broker.session(clientID: "short"))
        let (back, connack) = connect("short", cleanStart: false, sessionExpiry: 1)
        XCTAssertEqual(connack?.sessionPresent, false)
        back.disconnect()
        harness.advance(by: .seconds(20))
        XCTAssertEqual(wills(), [], "the will went out twice")
    }

    func testWillPublishedAtOnceWhenSessionEndsWithConnection() {
        // Session Expiry 0: the session ends as the connection closes, so the delayed will goes out
        // now ("whichever happens first", spec 3.1.3.2.2; Paho's test_will_delay). Mosquitto waits
        // for the delay (its 07-will-delay).
        let (client, _) = connect("now", will: delayedWill("now", delay: 10))
        client.dropConnection()
        XCTAssertEqual(wills(), ["now"])
        XCTAssertNil(harness.broker.session(clientID: "now"), "the session ended with its connection")
        harness.advance(by: .seconds(20))
        XCTAssertEqual(wills(), [], "the will went out twice")
    }

    func testDisconnectWithWillMessageHonoursDelay() {
        // DISCONNECT 0x04 asks for the will; its delay still applies.
        let (client, _) = connect("dw", will: delayedWill("dw", delay: 1), sessionExpiry: 30)
        client.disconnect(DisconnectPacket(reasonCode: .disconnectWithWillMessage))
        harness.advance(by: .milliseconds(999))
        XCTAssertEqual(wills(), [], "(delay not over)")
        harness.advance(by: .milliseconds(1))
        XCTAssertEqual(wills(), ["dw"])
    }

    func testDisconnectShorteningSessionExpiryReleasesDelayedWill() {
        // DISCONNECT 0x04 with Session Expiry 0: the session ends now, so the will goes out now.
        let (client, _) = connect("cut", will: delayedWill("cut", delay: 10), sessionExpiry: 30)
        client.disconnect(DisconnectPacket(reasonCode: .disconnectWithWillMessage, properties: sessionExpiry(0)))
        XCTAssertEqual(wills(), ["cut"])
    }
}
