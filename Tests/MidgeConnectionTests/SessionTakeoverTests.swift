import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// A second connection with a connected client's id takes the session over: the old connection is
/// closed (v5: DISCONNECT 0x8E), its will published as Mosquitto does (v5: only when the session
/// ends with the takeover; 3.1.1: always), and with Clean Start 0 the session (subscriptions,
/// inflight and queued messages) continues on the new connection, whichever event loops they are on.
final class SessionTakeoverTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws {
        broker = try startBroker { $0.maxInflightMessages = 1 }
    }

    func testTakeoverClosesOldConnection() async throws {
        // [MQTT-3.1.4-3] [3.1.1:MQTT-3.1.4-2] The existing connection is closed; a v5 client first
        // gets DISCONNECT 0x8E (Session taken over).
        for oldVersion in [ProtocolVersion.v3_1, .v3_1_1, .v5] {
            for newVersion in [ProtocolVersion.v3_1_1, .v5] {
                let id = "dup-\(oldVersion.rawValue)-\(newVersion.rawValue)"
                let (old, _) = try await connectAccepted(broker, id, version: oldVersion)
                let (new, _) = try await connectAccepted(broker, id, version: newVersion)
                await expectDisconnect(old, reason: oldVersion == .v5 ? .sessionTakenOver : nil, "old \(oldVersion) taken over by \(newVersion)")
                XCTAssertTrue(new.isActive, "the new connection stays")
                try await subscribe(new, "dup/t")
                try await disconnect(new)
            }
        }
        XCTAssertEqual(broker.broker.connectedClientCount, 0)
    }

    func testTakeoverPublishesOldConnectionsWill() async throws {
        // 3.1.1: the old connection closes without DISCONNECT, so its will is published
        // [3.1.1:MQTT-3.1.2-8] (Mosquitto drops it when both sessions persist: Midge keeps the spec).
        // v5: the will (delay 0) goes out when the session ends with the takeover (Clean Start 1);
        // with Clean Start 0 the new connection for the client id opened before the will was due
        // and the session goes on, so there is none ([MQTT-3.1.2-8], as Mosquitto).
        let (watcher, _) = try await connectAccepted(broker, "tw-watch")
        try await subscribe(watcher, "tw/+")
        for version in [ProtocolVersion.v3_1_1, .v5] {
            for cleanStart in [true, false] {
                let id = "tw-\(version.rawValue)-\(cleanStart)"
                let will = Will(topic: "tw/\(id)", payload: ByteBuffer(text: "will of \(id)"), qos: .atLeastOnce)
                let (old, _) = try await connectAccepted(broker, id, version: version, cleanStart: false, will: will,
                                                         sessionExpiry: version == .v5 ? 60 : nil)
                let (new, _) = try await connectAccepted(broker, id, version: version, cleanStart: cleanStart,
                                                         sessionExpiry: version == .v5 ? 60 : nil)
                await expectClose(old)
                if version == .v5 && !cleanStart {
                    await expectNothing(watcher, for: 0.3, "(v5 takeover of a continuing session: no will)")
                    try await disconnect(new)
                    continue
                }
                guard let published = await expectPublish(watcher) else { return }
                XCTAssertEqual(published.topic, "tw/\(id)")
                XCTAssertEqual(published.payload.text, "will of \(id)")
                try await acknowledge(published, on: watcher)
                // The new connection has no will: its normal DISCONNECT publishes nothing.
                try await disconnect(new)
                await expectNothing(watcher, for: 0.2, "(the new connection's DISCONNECT)")
            }
        }
    }

    func testTakeoverCancelsDelayedWill() async throws {
        // [MQTT-3.1.3-9] A new connection for the session before the Will Delay Interval elapses:
        // the will is not sent, whatever its Clean Start ([MQTT-3.1.2-8]: "a new Network Connection
        // for the ClientID is opened before the Will Delay Interval has elapsed"; Mosquitto's
        // will_delay__remove), even when Clean Start 1 ends the session.
        let (watcher, _) = try await connectAccepted(broker, "twd-watch")
        try await subscribe(watcher, "twd/+")
        var will = Will(topic: "twd/keep", payload: ByteBuffer(text: "delayed"))
        will.properties.willDelayInterval = 1
        let (old, _) = try await connectAccepted(broker, "twd-keep", will: will, sessionExpiry: 60)
        let (new, connack) = try await connectAccepted(broker, "twd-keep", cleanStart: false, sessionExpiry: 60)
        XCTAssertTrue(connack.sessionPresent)
        await expectDisconnect(old, reason: .sessionTakenOver)

        will.topic = "twd/end"
        let (old2, _) = try await connectAccepted(broker, "twd-end", will: will, sessionExpiry: 60)
        let (new2, _) = try await connectAccepted(broker, "twd-end", cleanStart: true, sessionExpiry: 60)
        await expectDisconnect(old2, reason: .sessionTakenOver)

        await expectNothing(watcher, for: 1.6, "(the delayed wills of the resumed and the ended session)")
        try await disconnect(new)
        try await disconnect(new2)
    }

    func testSessionContinuesAcrossRepeatedTakeoversOnBothEventLoops() async throws {
        // With Clean Start 0 the new connection gets the old one's session: subscriptions, the
        // unacknowledged QoS 1 message (resent with DUP [MQTT-4.4.0-1] [3.1.1:MQTT-4.4.0-1]) and those queued behind it.
        // Several takeovers in a row put old and new connections on different event loops.
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let id = "roam-\(version.rawValue)"
            let topic = "roam/\(version.rawValue)"
            // Receive Maximum 1 (v5) / max_inflight_messages 1 (v3): one message in flight, the rest queued.
            var connectProperties = Properties()
            if version == .v5 {
                connectProperties.sessionExpiryInterval = 60
                connectProperties.receiveMaximum = 1
            }
            var (current, _) = try await connectAccepted(broker, id, version: version, cleanStart: false, properties: connectProperties)
            try await subscribe(current, topic)
            let (publisher, _) = try await connectAccepted(broker, "roam-pub-\(version.rawValue)")
            var loops: Set<Int> = []
            for round in 0..<6 {
                if let session = broker.broker.session(clientID: id) { loops.insert(session.loopIndex) }
                // Three messages: the first goes out and stays unacknowledged, two queue behind it.
                for index in 0..<3 {
                    try await publish(publisher, topic, "r\(round)-m\(index)", qos: .atLeastOnce, packetID: UInt16(index + 1))
                }
                guard let first = await expectPublish(current) else { return }
                XCTAssertEqual(first.payload.text, "r\(round)-m0")
                XCTAssertFalse(first.dup)
                await expectNothing(current, for: 0.1, "(window of 1 is full)")

                let (next, connack) = try await connectAccepted(broker, id, version: version, cleanStart: false,
                                                                properties: connectProperties)
                XCTAssertTrue(connack.sessionPresent, "round \(round): session must continue")
                await expectDisconnect(current, reason: version == .v5 ? .sessionTakenOver : nil, "round \(round)")

                // The inflight message again, with DUP and its packet id, then the queued ones.
                var received: [String] = []
                while received.count < 3 {
                    guard let message = await expectPublish(next) else { return }
                    if received.isEmpty {
                        XCTAssertTrue(message.dup, "round \(round): resent inflight message must have DUP")
                        XCTAssertEqual(message.packetID, first.packetID)
                    }
                    received.append(message.payload.text)
                    try await acknowledge(message, on: next)
                }
                XCTAssertEqual(received, ["r\(round)-m0", "r\(round)-m1", "r\(round)-m2"], "round \(round)")
                current = next
            }
            if let session = broker.broker.session(clientID: id) { loops.insert(session.loopIndex) }
            XCTAssertEqual(loops.count, 2, "takeovers should have moved the session between both event loops")
            // Still subscribed after all that.
            try await publish(publisher, topic, "final", qos: .atLeastOnce)
            guard let final = await expectPublish(current) else { return }
            XCTAssertEqual(final.payload.text, "final")
            try await acknowledge(final, on: current)
            try await disconnect(current)
            try await disconnect(publisher)
        }
    }

    func testTakeoverWithCleanStartOneStartsFreshSession() async throws {
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let id = "fresh-\(version.rawValue)"
            let (old, _) = try await connectAccepted(broker, id, version: version, cleanStart: false,
                                                     sessionExpiry: version == .v5 ? 60 : nil)
            try await subscribe(old, "fresh/\(version.rawValue)")
            let (new, connack) = try await connectAccepted(broker, id, version: version, cleanStart: true)
            XCTAssertFalse(connack.sessionPresent, "Clean Start 1: no session present [MQTT-3.2.2-2] [3.1.1:MQTT-3.2.2-1]")
            await expectClose(old)
            let (publisher, _) = try await connectAccepted(broker, "fresh-pub-\(version.rawValue)")
            try await publish(publisher, "fresh/\(version.rawValue)", "old subscription", qos: .atLeastOnce)
            await expectNothing(new, for: 0.3, "(old session's subscription was discarded)")
            try await disconnect(new)
            try await disconnect(publisher)
        }
    }

    func testRapidTakeoversLeaveOneLiveConnection() async throws {
        // Many connections for one id in quick succession (on alternating loops): each new one closes
        // its predecessor; at the end exactly one is connected and it works.
        var connections: [PacketConnection] = []
        for _ in 0..<10 {
            let (connection, _) = try await connectAccepted(broker, "rapid", cleanStart: false, sessionExpiry: 60)
            connections.append(connection)
        }
        for connection in connections.dropLast() { await expectClose(connection) }
        let last = connections.last!
        XCTAssertTrue(last.isActive)
        await eventually(within: 2, "exactly one connected client") { broker.broker.connectedClientCount == 1 }
        try await subscribe(last, "rapid/t")
        try await last.send(.publish(PublishPacket(topic: "rapid/t", payload: ByteBuffer(text: "me"))))
        guard let echo = await expectPublish(last) else { return }
        XCTAssertEqual(echo.payload.text, "me")
        try await disconnect(last)
    }

    func testTakeoverOfSessionEndingWithItsConnectionStartsFresh() async throws {
        // The old connection's session lasts only as long as that connection (3.1.1 Clean Session 1
        // [3.1.1:MQTT-3.1.2-6]; v5 Session Expiry 0 [MQTT-3.1.2-23]): taking it over ends it, so even Clean Start 0 gets no
        // session (Session Present 0) and none of its subscriptions.
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let id = "ephemeral-\(version.rawValue)"
            let topic = "ephemeral/\(version.rawValue)"
            let (old, _) = try await connectAccepted(broker, id, version: version, cleanStart: true)
            try await subscribe(old, topic)
            let (new, connack) = try await connectAccepted(broker, id, version: version, cleanStart: false,
                                                           sessionExpiry: version == .v5 ? 60 : nil)
            XCTAssertFalse(connack.sessionPresent, "\(version): the old connection's session ended with it")
            await expectClose(old)
            let (publisher, _) = try await connectAccepted(broker, "ephemeral-pub-\(version.rawValue)")
            try await publish(publisher, topic, "to the ended session", qos: .atLeastOnce)
            await expectNothing(new, for: 0.3, "(subscription of the ended session)")
            try await disconnect(new)
            try await disconnect(publisher)
        }
    }

    func testRefusedConnectionDoesNotTakeOver() async throws {
        // Only an accepted CONNECT takes a client id over: a refused one leaves the live connection alone.
        let guarded = try startBroker(users: ["owner": "pw"])
        let (live, _) = try await connectAccepted(guarded, "guarded", username: "owner", password: "pw")
        let (intruder, connack) = try await guarded.connect("guarded")
        XCTAssertEqual(connack.reasonCode, .notAuthorized)
        await expectClose(intruder)
        await expectNothing(live, for: 0.2, "(a refused CONNECT must not disconnect the owner)")
        try await subscribe(live, "guarded/t")
        try await disconnect(live)
    }
}
