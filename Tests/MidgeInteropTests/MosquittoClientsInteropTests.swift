import Foundation
import XCTest

/// Interop with Eclipse Mosquitto's command line clients (Debian package
/// mosquitto-clients): mosquitto_pub -> broker -> mosquitto_sub.
///
/// Every test starts its own broker. Subscribers run with `-d` and the test waits for
/// their SUBACK before publishing; `-C N` makes them exit after N messages, `-W S`
/// bounds the tests that prove that nothing arrives.
final class MosquittoClientsInteropTests: InteropTestCase {

    // MARK: - Publish/subscribe round trips per protocol version and QoS

    func testMQTT311QoS0RoundTripDeliversPayloadsInOrder() throws { try assertRoundTrip(version: "mqttv311", qos: 0) }
    func testMQTT311QoS1RoundTripDeliversPayloadsInOrder() throws { try assertRoundTrip(version: "mqttv311", qos: 1) }
    func testMQTT311QoS2RoundTripDeliversPayloadsInOrder() throws { try assertRoundTrip(version: "mqttv311", qos: 2) }
    func testMQTT5QoS0RoundTripDeliversPayloadsInOrder() throws { try assertRoundTrip(version: "mqttv5", qos: 0) }
    func testMQTT5QoS1RoundTripDeliversPayloadsInOrder() throws { try assertRoundTrip(version: "mqttv5", qos: 1) }
    func testMQTT5QoS2RoundTripDeliversPayloadsInOrder() throws { try assertRoundTrip(version: "mqttv5", qos: 2) }
    func testMQTT31QoS1RoundTripDeliversPayloadsInOrder() throws { try assertRoundTrip(version: "mqttv31", qos: 1) }

    /// Subscriber and publisher both at `qos`: three separate mosquitto_pub runs, the
    /// subscriber (-v -C 3) must print exactly "topic payload" for each, in order, at
    /// that QoS, and both sides must see the QoS handshake (PUBACK / PUBREC-PUBREL-PUBCOMP).
    private func assertRoundTrip(version: String, qos: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startBroker()
        let topic = "interop/\(version)/qos\(qos)"
        let sub = try startMosquittoSub(broker, ["-V", version, "-q", String(qos), "-t", topic, "-v", "-C", "3"])
        XCTAssertEqual(sub.grantedQoS, [qos], "granted QoS in SUBACK:\n\(sub.process.stdout)", file: file, line: line)

        var pubOutputs: [String] = []
        for i in 1...3 {
            let r = try mosquittoPub(broker, ["-V", version, "-q", String(qos), "-t", topic, "-m", "\(version) qos\(qos) message \(i)", "-d"],
                                     file: file, line: line)
            pubOutputs.append(r.stdout)
        }
        let result = waitForExit(sub.process, broker: broker, file: file, line: line)
        XCTAssertEqual(result.exitCode, 0, "\(result)", file: file, line: line)
        XCTAssertEqual(sub.messages, (1...3).map { "\(topic) \(version) qos\(qos) message \($0)" },
                       "subscriber output:\n\(result)\n\(brokerLog(broker))", file: file, line: line)

        // The QoS the messages were delivered with, from the -d lines: "received PUBLISH (d0, q1, r0, m1, ...".
        let received = sub.debugLines.filter { $0.contains("received PUBLISH") }
        XCTAssertEqual(received.count, 3, "\(sub.debugLines)", file: file, line: line)
        XCTAssertTrue(received.allSatisfy { $0.contains("(d0, q\(qos), r0,") }, "\(received)", file: file, line: line)
        let subDebug = sub.debugLines.joined(separator: "\n")
        let pubDebug = pubOutputs.joined(separator: "\n")
        switch qos {
        case 1:
            XCTAssertEqual(countOccurrences(of: "sending PUBACK", in: subDebug), 3, subDebug, file: file, line: line)
            XCTAssertEqual(countOccurrences(of: "received PUBACK", in: pubDebug), 3, pubDebug, file: file, line: line)
        case 2:
            XCTAssertEqual(countOccurrences(of: "received PUBREL", in: subDebug), 3, subDebug, file: file, line: line)
            XCTAssertEqual(countOccurrences(of: "received PUBREC", in: pubDebug), 3, pubDebug, file: file, line: line)
            XCTAssertEqual(countOccurrences(of: "received PUBCOMP", in: pubDebug), 3, pubDebug, file: file, line: line)
        default:
            XCTAssertFalse(subDebug.contains("PUBACK") || subDebug.contains("PUBREC"), subDebug, file: file, line: line)
        }
    }

    // MARK: - QoS downgrade

    func testMQTT311DeliveredQoSIsMinimumOfPublishAndSubscriptionQoS() throws { try assertQoSDowngrade(version: "mqttv311") }
    func testMQTT5DeliveredQoSIsMinimumOfPublishAndSubscriptionQoS() throws { try assertQoSDowngrade(version: "mqttv5") }

    /// Three subscribers (QoS 0, 1, 2) on one topic, messages published at QoS 0, 1, 2:
    /// each is delivered at min(publish QoS, subscription QoS).
    private func assertQoSDowngrade(version: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startBroker()
        let topic = "interop/downgrade"
        let subs = try (0...2).map { q in
            try startMosquittoSub(broker, ["-V", version, "-q", String(q), "-t", topic, "-F", "%q %p", "-C", "3"], name: "sub-q\(q)")
        }
        for q in 0...2 {
            try mosquittoPub(broker, ["-V", version, "-q", String(q), "-t", topic, "-m", "published-at-\(q)"], file: file, line: line)
        }
        for (subQoS, sub) in subs.enumerated() {
            let r = waitForExit(sub.process, broker: broker, file: file, line: line)
            XCTAssertEqual(r.exitCode, 0, "\(r)", file: file, line: line)
            let expected = (0...2).map { pubQoS in "\(min(pubQoS, subQoS)) published-at-\(pubQoS)" }
            XCTAssertEqual(sub.messages, expected, "subscriber at QoS \(subQoS):\n\(r)", file: file, line: line)
        }
    }

    // MARK: - Burst from stdin

    func testMQTT311BurstOf100StdinLinesArrivesInOrderAtQoS1() throws { try assertBurst(version: "mqttv311") }
    func testMQTT5BurstOf100StdinLinesArrivesInOrderAtQoS1() throws { try assertBurst(version: "mqttv5") }

    /// `mosquitto_pub -l` sends each stdin line as a message on one connection: 100
    /// QoS 1 messages must all arrive, in order, exactly once.
    private func assertBurst(version: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startBroker()
        let topic = "interop/burst"
        let lines = (1...100).map { String(format: "burst line %03d", $0) }
        let sub = try startMosquittoSub(broker, ["-V", version, "-q", "1", "-t", topic, "-v", "-C", "100"])
        try mosquittoPub(broker, ["-V", version, "-q", "1", "-t", topic, "-l"], stdin: lines.joined(separator: "\n") + "\n",
                         file: file, line: line)
        let r = waitForExit(sub.process, timeout: 30, broker: broker, file: file, line: line)
        XCTAssertEqual(r.exitCode, 0, "\(r)", file: file, line: line)
        XCTAssertEqual(sub.messages, lines.map { "\(topic) \($0)" }, "\(r)\n\(brokerLog(broker))", file: file, line: line)
    }

    // MARK: - Retained messages

    func testMQTT311RetainedMessageIsDeliveredToNewSubscriberWithRetainFlag() throws { try assertRetainedDelivered(version: "mqttv311") }
    func testMQTT5RetainedMessageIsDeliveredToNewSubscriberWithRetainFlag() throws { try assertRetainedDelivered(version: "mqttv5") }

    /// Publish -r at QoS 1, then a new subscriber gets it once, retain flag set, at QoS 1.
    private func assertRetainedDelivered(version: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startBroker()
        try mosquittoPub(broker, ["-V", version, "-q", "1", "-r", "-t", "interop/retained", "-m", "retained payload"], file: file, line: line)
        let sub = try startMosquittoSub(broker, ["-V", version, "-q", "1", "-t", "interop/#", "-F", "%r|%q|%t|%p", "-C", "1"])
        let r = waitForExit(sub.process, broker: broker, file: file, line: line)
        XCTAssertEqual(r.exitCode, 0, "\(r)", file: file, line: line)
        XCTAssertEqual(sub.messages, ["1|1|interop/retained|retained payload"], "\(r)\n\(brokerLog(broker))", file: file, line: line)
        XCTAssertTrue(sub.debugLines.contains { $0.contains("received PUBLISH (d0, q1, r1,") }, "\(sub.debugLines)", file: file, line: line)
    }

    /// A second retained publish replaces the first: a new subscriber sees only the newest
    /// (collected for 2 s with -W 2, so a stale extra copy would be seen too).
    func testRetainedMessageIsReplacedByNewerRetainedPublish() throws {
        let broker = try startBroker()
        try mosquittoPub(broker, ["-r", "-q", "1", "-t", "interop/replace", "-m", "first"])
        try mosquittoPub(broker, ["-r", "-q", "1", "-t", "interop/replace", "-m", "second"])
        let sub = try startMosquittoSub(broker, ["-q", "1", "-t", "interop/replace", "-F", "%r|%p", "-W", "2"])
        let r = waitForExit(sub.process, broker: broker)
        XCTAssertEqual(r.exitCode, 27, "mosquitto_sub -W ends with 27 (timed out):\n\(r)")
        XCTAssertEqual(sub.messages, ["1|second"], "\(r)\n\(brokerLog(broker))")
    }

    /// `mosquitto_pub -r -n` (empty retained payload) clears the retained message: an
    /// existing subscriber receives the empty message (retain flag 0, 0 bytes) and a
    /// later subscriber receives nothing within 2 s.
    func testEmptyRetainedPublishClearsRetainedMessage() throws {
        let broker = try startBroker()
        let topic = "interop/clear"
        try mosquittoPub(broker, ["-r", "-q", "1", "-t", topic, "-m", "to be cleared"])
        let before = try startMosquittoSub(broker, ["-q", "1", "-t", topic, "-F", "%r|%l|%p", "-C", "2"], name: "sub-before")
        XCTAssertTrue(before.process.waitForOutput(timeout: 10) { MosquittoSub.messageLines($0).count >= 1 },
                      "retained message not delivered before clearing:\n\(before.process.result())")
        try mosquittoPub(broker, ["-r", "-q", "1", "-t", topic, "-n"])
        let r1 = waitForExit(before.process, broker: broker)
        XCTAssertEqual(before.messages, ["1|13|to be cleared", "0|0|"], "\(r1)\n\(brokerLog(broker))")

        let after = try startMosquittoSub(broker, ["-q", "1", "-t", topic, "-v", "-W", "2"], name: "sub-after")
        let r2 = waitForExit(after.process, broker: broker)
        XCTAssertEqual(r2.exitCode, 27, "\(r2)")
        XCTAssertEqual(after.messages, [], "retained message still delivered after clearing:\n\(r2)\n\(brokerLog(broker))")
    }

    /// A retained publish forwarded to an already-subscribed client has the retain flag
    /// cleared (3.1.1 [3.1.1:MQTT-3.3.1-9], 5.0 [MQTT-3.3.1-12]); an MQTT 5 subscription with Retain As Published keeps it.
    func testLiveDeliveryOfRetainedPublishClearsRetainFlagUnlessRetainAsPublished() throws {
        let broker = try startBroker()
        let topic = "interop/live-retain"
        let v311 = try startMosquittoSub(broker, ["-V", "mqttv311", "-t", topic, "-F", "%r|%p", "-C", "1"], name: "sub-311")
        let v5 = try startMosquittoSub(broker, ["-V", "mqttv5", "-t", topic, "-F", "%r|%p", "-C", "1"], name: "sub-5")
        let v5rap = try startMosquittoSub(broker, ["-V", "mqttv5", "--retain-as-published", "-t", topic, "-F", "%r|%p", "-C", "1"],
                                          name: "sub-5-rap")
        try mosquittoPub(broker, ["-r", "-t", topic, "-m", "live"])
        for (sub, expected) in [(v311, "0|live"), (v5, "0|live"), (v5rap, "1|live")] {
            let r = waitForExit(sub.process, broker: broker)
            XCTAssertEqual(sub.messages, [expected], "\(sub.process.name):\n\(r)")
        }
    }

    // MARK: - Wills

    func testMQTT311WillIsPublishedWhenClientIsKilled() throws { try assertWillOnKill(version: "mqttv311") }
    func testMQTT5WillIsPublishedWhenClientIsKilled() throws { try assertWillOnKill(version: "mqttv5") }

    /// A mosquitto_sub with a will (QoS 1) is killed with SIGKILL (no DISCONNECT): a watcher
    /// receives the will message with its topic, QoS and payload.
    private func assertWillOnKill(version: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startBroker()
        let watcher = try startMosquittoSub(broker, ["-V", version, "-q", "1", "-t", "interop/will/#", "-F", "%t|%q|%r|%p", "-C", "1"],
                                            name: "watcher")
        let victim = try startMosquittoSub(broker, ["-V", version, "-t", "interop/victim", "--will-topic", "interop/will/victim",
                                                    "--will-payload", "victim died", "--will-qos", "1"], name: "victim")
        victim.process.kill(signal: SIGKILL)
        XCTAssertTrue(victim.process.waitForExit(timeout: 5))
        let r = waitForExit(watcher.process, broker: broker, file: file, line: line)
        XCTAssertEqual(r.exitCode, 0, "\(r)", file: file, line: line)
        XCTAssertEqual(watcher.messages, ["interop/will/victim|1|0|victim died"], "\(r)\n\(brokerLog(broker))", file: file, line: line)
    }

    /// A will with --will-retain becomes the retained message of its topic: a subscriber
    /// that arrives after the will was published gets it with the retain flag set.
    func testRetainedWillIsStoredWhenClientIsKilled() throws {
        let broker = try startBroker()
        let watcher = try startMosquittoSub(broker, ["-q", "1", "-t", "interop/will/state", "-v", "-C", "1"], name: "watcher")
        let victim = try startMosquittoSub(broker, ["-t", "interop/victim", "--will-topic", "interop/will/state",
                                                    "--will-payload", "offline", "--will-qos", "1", "--will-retain"], name: "victim")
        victim.process.kill(signal: SIGKILL)
        let r1 = waitForExit(watcher.process, broker: broker)
        XCTAssertEqual(watcher.messages, ["interop/will/state offline"], "\(r1)")

        let late = try startMosquittoSub(broker, ["-q", "1", "-t", "interop/will/state", "-F", "%r|%q|%t|%p", "-C", "1"], name: "late")
        let r2 = waitForExit(late.process, broker: broker)
        XCTAssertEqual(late.messages, ["1|1|interop/will/state|offline"], "\(r2)\n\(brokerLog(broker))")
    }

    func testMQTT311NoWillWhenClientDisconnectsNormally() throws { try assertNoWillOnNormalDisconnect(version: "mqttv311") }
    func testMQTT5NoWillWhenClientDisconnectsNormally() throws { try assertNoWillOnNormalDisconnect(version: "mqttv5") }

    /// A mosquitto_sub with a will and -C 1 receives one message and exits normally (sends
    /// DISCONNECT): its will must not be published. The watcher must then see only a
    /// marker published afterwards, and nothing else for another second.
    private func assertNoWillOnNormalDisconnect(version: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startBroker()
        let watcher = try startMosquittoSub(broker, ["-V", version, "-q", "1", "-t", "interop/will/#", "-v"], name: "watcher")
        let leaver = try startMosquittoSub(broker, ["-V", version, "-t", "interop/leaver", "-C", "1", "--will-topic", "interop/will/leaver",
                                                    "--will-payload", "must not be sent", "--will-qos", "1"], name: "leaver")
        try mosquittoPub(broker, ["-V", version, "-t", "interop/leaver", "-m", "goodbye"], file: file, line: line)
        let r = waitForExit(leaver.process, broker: broker, file: file, line: line)
        XCTAssertEqual(r.exitCode, 0, "leaver should exit normally after one message:\n\(r)", file: file, line: line)
        XCTAssertEqual(leaver.messages, ["goodbye"], file: file, line: line)

        try mosquittoPub(broker, ["-V", version, "-q", "1", "-t", "interop/will/marker", "-m", "marker"], file: file, line: line)
        XCTAssertTrue(watcher.process.waitForOutput(timeout: 10) { $0.contains("interop/will/marker marker") },
                      "marker not received:\n\(watcher.process.result())", file: file, line: line)
        // Observation window for a late (wrong) will.
        Thread.sleep(forTimeInterval: 1)
        XCTAssertEqual(watcher.messages, ["interop/will/marker marker"], "\(watcher.process.result())\n\(brokerLog(broker))",
                       file: file, line: line)
    }

    // MARK: - MQTT 5 properties

    /// User properties (two, order kept), content type, response topic, correlation data and
    /// payload format indicator set by mosquitto_pub reach a v5 mosquitto_sub unchanged.
    func testMQTT5PublishPropertiesArePassedThroughToSubscriber() throws {
        let broker = try startBroker()
        let topic = "interop/v5/properties"
        let sub = try startMosquittoSub(broker, ["-V", "mqttv5", "-q", "1", "-t", topic, "-F", "%P|%C|%R|%D|%F|%t|%p", "-C", "1"])
        try mosquittoPub(broker, ["-V", "mqttv5", "-q", "1", "-t", topic, "-m", "{\"ok\":true}",
                                  "-D", "publish", "user-property", "first-key", "first value",
                                  "-D", "publish", "user-property", "second-key", "second value",
                                  "-D", "publish", "content-type", "application/json",
                                  "-D", "publish", "response-topic", "interop/v5/reply",
                                  "-D", "publish", "correlation-data", "corr-1234",
                                  "-D", "publish", "payload-format-indicator", "1"])
        let r = waitForExit(sub.process, broker: broker)
        XCTAssertEqual(r.exitCode, 0, "\(r)")
        XCTAssertEqual(sub.messages,
                       ["first-key:first value second-key:second value|application/json|interop/v5/reply|corr-1234|1|\(topic)|{\"ok\":true}"],
                       "\(r)\n\(brokerLog(broker))")
    }

    /// A message without properties is delivered without any (no stray properties added).
    func testMQTT5MessageWithoutPropertiesHasNoneOnDelivery() throws {
        let broker = try startBroker()
        let sub = try startMosquittoSub(broker, ["-V", "mqttv5", "-t", "interop/plain", "-F", "[%P][%C][%R][%D][%F][%E]%p", "-C", "1"])
        try mosquittoPub(broker, ["-V", "mqttv5", "-t", "interop/plain", "-m", "plain"])
        let r = waitForExit(sub.process, broker: broker)
        XCTAssertEqual(sub.messages, ["[][][][][][]plain"], "\(r)")
    }

    /// A retained message with message-expiry-interval 1 is gone 2 s later (a new subscriber
    /// gets nothing from it within 2 s), while one with interval 60 is still delivered with
    /// its remaining expiry interval (decremented by the time it waited, so 55...60).
    func testMQTT5RetainedMessageExpires() throws {
        let broker = try startBroker()
        try mosquittoPub(broker, ["-V", "mqttv5", "-q", "1", "-r", "-t", "interop/expiry/short", "-m", "short-lived",
                                  "-D", "publish", "message-expiry-interval", "1"])
        try mosquittoPub(broker, ["-V", "mqttv5", "-q", "1", "-r", "-t", "interop/expiry/long", "-m", "long-lived",
                                  "-D", "publish", "message-expiry-interval", "60"])
        Thread.sleep(forTimeInterval: 2.2)
        let sub = try startMosquittoSub(broker, ["-V", "mqttv5", "-q", "1", "-t", "interop/expiry/#", "-F", "%t|%E|%p", "-W", "2"])
        let r = waitForExit(sub.process, broker: broker)
        XCTAssertEqual(r.exitCode, 27, "\(r)")
        let messages = sub.messages
        XCTAssertEqual(messages.count, 1, "expected only the long-lived message:\n\(r)\n\(brokerLog(broker))")
        let fields = messages.first?.split(separator: "|", omittingEmptySubsequences: false).map(String.init) ?? []
        XCTAssertEqual(fields.count, 3, "\(messages)")
        if fields.count == 3 {
            XCTAssertEqual(fields[0], "interop/expiry/long")
            XCTAssertEqual(fields[2], "long-lived")
            let remaining = Int(fields[1]) ?? -1
            XCTAssertTrue((55...60).contains(remaining), "remaining message expiry interval \(fields[1]) not in 55...60")
        }
    }

    // MARK: - Mixed protocol versions, wildcards

    /// Messages cross protocol versions: v5 -> v3.1.1, v3.1.1 -> v5, v3.1 -> v5 and v5 -> v3.1.
    func testMessagesCrossProtocolVersions() throws {
        let broker = try startBroker()
        let sub311 = try startMosquittoSub(broker, ["-V", "mqttv311", "-q", "1", "-t", "interop/cross/to311", "-v", "-C", "1"], name: "sub-311")
        let sub5 = try startMosquittoSub(broker, ["-V", "mqttv5", "-q", "1", "-t", "interop/cross/to5", "-v", "-C", "2"], name: "sub-5")
        let sub31 = try startMosquittoSub(broker, ["-V", "mqttv31", "-q", "1", "-t", "interop/cross/to31", "-v", "-C", "1"], name: "sub-31")
        try mosquittoPub(broker, ["-V", "mqttv5", "-q", "1", "-t", "interop/cross/to311", "-m", "from v5",
                                  "-D", "publish", "user-property", "k", "v"])
        try mosquittoPub(broker, ["-V", "mqttv311", "-q", "1", "-t", "interop/cross/to5", "-m", "from v311"])
        try mosquittoPub(broker, ["-V", "mqttv31", "-q", "1", "-t", "interop/cross/to5", "-m", "from v31"])
        try mosquittoPub(broker, ["-V", "mqttv5", "-q", "1", "-t", "interop/cross/to31", "-m", "from v5 to v31"])
        for (sub, expected) in [(sub311, ["interop/cross/to311 from v5"]),
                                (sub5, ["interop/cross/to5 from v311", "interop/cross/to5 from v31"]),
                                (sub31, ["interop/cross/to31 from v5 to v31"])] {
            let r = waitForExit(sub.process, broker: broker)
            XCTAssertEqual(sub.messages, expected, "\(sub.process.name):\n\(r)")
        }
    }

    /// `+` and `#` filters match as specified; `#` also matches the parent level; a
    /// message matching two filters of the same client is delivered (Mosquitto: once).
    func testWildcardSubscriptionsMatchTopics() throws {
        let broker = try startBroker()
        let plus = try startMosquittoSub(broker, ["-q", "1", "-t", "sport/+/player", "-v"], name: "sub-plus")
        let hash = try startMosquittoSub(broker, ["-q", "1", "-t", "sport/tennis/#", "-v"], name: "sub-hash")
        let published = ["sport/tennis/player", "sport/golf/player", "sport/tennis", "sport/tennis/player/score", "other/tennis/player"]
        for topic in published {
            try mosquittoPub(broker, ["-q", "1", "-t", topic, "-m", "to \(topic)"])
        }
        try mosquittoPub(broker, ["-q", "1", "-t", "sport/x/player", "-m", "end"])
        try mosquittoPub(broker, ["-q", "1", "-t", "sport/tennis/end", "-m", "end"])
        XCTAssertTrue(plus.process.waitForOutput(timeout: 10) { $0.contains("sport/x/player end") }, plus.process.stdout)
        XCTAssertTrue(hash.process.waitForOutput(timeout: 10) { $0.contains("sport/tennis/end end") }, hash.process.stdout)
        XCTAssertEqual(plus.messages, ["sport/tennis/player to sport/tennis/player", "sport/golf/player to sport/golf/player",
                                       "sport/x/player end"])
        XCTAssertEqual(hash.messages, ["sport/tennis/player to sport/tennis/player", "sport/tennis to sport/tennis",
                                       "sport/tennis/player/score to sport/tennis/player/score", "sport/tennis/end end"])
    }

    // MARK: - Broker configuration

    /// The broker can be started with `-c FILE` using a Mosquitto `listener` line.
    func testBrokerStartedFromConfigFileListenerServesClients() throws {
        let broker = try startBroker(config: """
            listener {PORT} 127.0.0.1
            allow_anonymous true
            """)
        let sub = try startMosquittoSub(broker, ["-q", "1", "-t", "interop/config", "-v", "-C", "1"])
        try mosquittoPub(broker, ["-q", "1", "-t", "interop/config", "-m", "configured"])
        let r = waitForExit(sub.process, broker: broker)
        XCTAssertEqual(sub.messages, ["interop/config configured"], "\(r)\n\(brokerLog(broker))")
    }

    /// With `-v` the broker still serves clients (and logs something for them).
    func testVerboseBrokerServesClientsAndLogs() throws {
        let broker = try startBroker(arguments: ["-v"])
        let sub = try startMosquittoSub(broker, ["-q", "2", "-t", "interop/verbose", "-v", "-C", "1"])
        try mosquittoPub(broker, ["-q", "2", "-t", "interop/verbose", "-m", "verbose"])
        let r = waitForExit(sub.process, broker: broker)
        XCTAssertEqual(sub.messages, ["interop/verbose verbose"], "\(r)")
        XCTAssertFalse(broker.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "verbose broker printed nothing")
    }

    func testMQTT311ACLFileDenyFiltersTheDelivery() throws {
        try assertACLFileDeny(version: "mqttv311", refusesSubscriptions: false)
        try assertACLFileDeny(version: "mqttv311", refusesSubscriptions: true)
    }
    func testMQTT5ACLFileDenyFiltersTheDelivery() throws {
        try assertACLFileDeny(version: "mqttv5", refusesSubscriptions: false)
        try assertACLFileDeny(version: "mqttv5", refusesSubscriptions: true)
    }

    /// `topic deny test/nosubscribe` in an `acl_file`: as in Mosquitto 2.0 (whose acl_file code
    /// skips the SUBSCRIBE check), the subscription is granted and the ACL only filters delivery:
    /// no message on the denied topic arrives. With Midge's `acl_refuses_subscriptions true` the
    /// subscription is refused (SUBACK 0x80 for that filter, the other granted), as the Paho
    /// suite's test_subscribe_failure expects.
    private func assertACLFileDeny(version: String, refusesSubscriptions: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let config = Self.aclConfig + (refusesSubscriptions ? "\nacl_refuses_subscriptions true\n" : "")
        let broker = try startBroker(config: config, extraFiles: ["acl": Self.aclFile])
        let sub = try startMosquittoSub(broker, ["-V", version, "-q", "2", "-t", "test/nosubscribe", "-t", "test/allowed", "-v", "-C", "1"])
        XCTAssertEqual(sub.grantedQoS, [refusesSubscriptions ? 128 : 2, 2], "\(sub.process.stdout)\n\(brokerLog(broker))", file: file, line: line)
        try mosquittoPub(broker, ["-V", version, "-q", "1", "-t", "test/nosubscribe", "-m", "denied"], file: file, line: line)
        try mosquittoPub(broker, ["-V", version, "-q", "1", "-t", "test/allowed", "-m", "allowed"], file: file, line: line)
        let r = waitForExit(sub.process, broker: broker, file: file, line: line)
        XCTAssertEqual(sub.messages, ["test/allowed allowed"], "\(r)", file: file, line: line)
    }

    /// Mosquitto config: anonymous clients may do anything except read test/nosubscribe.
    static let aclConfig = """
        listener {PORT} 127.0.0.1
        allow_anonymous true
        acl_file {DIR}/acl
        """
    static let aclFile = """
        topic readwrite #
        topic deny test/nosubscribe
        """

    private func countOccurrences(of needle: String, in haystack: String) -> Int {
        haystack.components(separatedBy: needle).count - 1
    }
}
