import Foundation
import XCTest

/// Interop with the Eclipse Paho Python client (pip package paho-mqtt 2.x, run by the
/// `python3` on PATH, or $MIDGE_PYTHON) against mosquitto_pub / mosquitto_sub, through
/// a fresh broker per test, for MQTT 3.1.1 and MQTT 5.
///
/// The Python peers are small scripts embedded below and run with `python3 -u -c`.
/// They print one line per event ("CONNECTED session_present=0", "SUBSCRIBED 1",
/// "MSG|topic|qos|retain|payload|user-properties", "DONE") and have their own
/// timeouts (exit 3 after printing TIMEOUT), besides the harness's hard timeout.
final class PahoPythonInteropTests: InteropTestCase {

    // MARK: - Python peers

    /// Common Python code: argument parsing helpers and a connect-and-wait function.
    static let pythonPrelude = #"""
import sys, time, threading, os
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

_log_lock = threading.Lock()

def log(*parts):
    # one write per line, under a lock: callbacks run on paho's network thread
    line = " ".join(str(p) for p in parts) + "\n"
    with _log_lock:
        sys.stdout.write(line)
        sys.stdout.flush()

def make_client(version, client_id="", clean=True):
    if version == "5":
        return mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                           client_id=client_id, protocol=mqtt.MQTTv5)
    return mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                       client_id=client_id, protocol=mqtt.MQTTv311, clean_session=clean)

def connect(client, host, port, version, clean=True, session_expiry=None, timeout=10):
    connected = threading.Event()
    result = {}
    previous = client.on_connect
    def on_connect(c, userdata, flags, reason_code, properties):
        result["rc"] = reason_code
        result["session_present"] = int(flags.session_present)
        if not reason_code.is_failure:
            # logged here, on the network thread, so it precedes any message of the session
            log("CONNECTED session_present=%d" % result["session_present"])
        connected.set()
        if previous:
            previous(c, userdata, flags, reason_code, properties)
    client.on_connect = on_connect
    if version == "5":
        props = None
        if session_expiry is not None:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = session_expiry
        client.connect(host, port, keepalive=30, clean_start=clean, properties=props)
    else:
        client.connect(host, port, keepalive=30)
    client.loop_start()
    if not connected.wait(timeout):
        log("TIMEOUT waiting for CONNACK")
        os._exit(3)
    if result["rc"].is_failure:
        log("CONNECT FAILED", result["rc"])
        os._exit(4)
    return result
"""#

    /// publisher.py HOST PORT VERSION TOPIC QOS COUNT RETAIN PREFIX
    /// Publishes COUNT messages "PREFIX 1".."PREFIX COUNT", waits until each is
    /// acknowledged (PUBACK / PUBCOMP), disconnects cleanly.
    static let publisherScript = pythonPrelude + "\n" + #"""
host, port, version, topic, qos, count, retain, prefix = sys.argv[1:9]
client = make_client(version, client_id="paho-publisher")
connect(client, host, int(port), version)
infos = [client.publish(topic, "%s %d" % (prefix, i), qos=int(qos), retain=(retain == "1"))
         for i in range(1, int(count) + 1)]
for info in infos:
    info.wait_for_publish(timeout=10)
    if not info.is_published():
        log("TIMEOUT waiting for publish completion")
        os._exit(3)
client.disconnect()
client.loop_stop()
log("DONE")
"""#

    /// subscriber.py HOST PORT VERSION CLIENT_ID CLEAN SESSION_EXPIRY TOPIC QOS COUNT LISTEN TIMEOUT
    /// Connects (CLEAN 1/0; SESSION_EXPIRY "-" for none), subscribes to TOPIC at QOS unless
    /// TOPIC is "-", prints every message, and disconnects cleanly after COUNT messages,
    /// or after LISTEN seconds when COUNT is 0 (LISTEN 0: right after the SUBACK).
    /// Exits 3 if COUNT messages did not arrive within TIMEOUT seconds.
    static let subscriberScript = pythonPrelude + "\n" + #"""
(host, port, version, client_id, clean, session_expiry, topic, qos, count, listen, timeout) = sys.argv[1:12]
count = int(count)
done = threading.Event()
subscribed = threading.Event()
received = []
lock = threading.Lock()

def on_message(c, userdata, msg):
    props = ""
    if version == "5" and msg.properties is not None and hasattr(msg.properties, "UserProperty"):
        props = " ".join("%s=%s" % kv for kv in msg.properties.UserProperty)
    with lock:
        log("MSG|%s|%d|%d|%s|%s" % (msg.topic, msg.qos, int(msg.retain), msg.payload.decode("utf-8"), props))
        received.append(msg)
        if count and len(received) >= count:
            done.set()

def on_subscribe(c, userdata, mid, reason_code_list, properties):
    log("SUBSCRIBED " + " ".join(str(getattr(rc, "value", rc)) for rc in reason_code_list))
    subscribed.set()

client = make_client(version, client_id=client_id, clean=(clean == "1"))
client.on_message = on_message
client.on_subscribe = on_subscribe
connect(client, host, int(port), version, clean=(clean == "1"),
        session_expiry=None if session_expiry == "-" else int(session_expiry))
if topic != "-":
    client.subscribe(topic, qos=int(qos))
    if not subscribed.wait(10):
        log("TIMEOUT waiting for SUBACK")
        os._exit(3)
if count:
    if not done.wait(float(timeout)):
        log("TIMEOUT after %d messages" % len(received))
        os._exit(3)
else:
    time.sleep(float(listen))
client.disconnect()
client.loop_stop()
log("DONE")
"""#

    /// will.py HOST PORT VERSION WILL_TOPIC WILL_PAYLOAD WILL_QOS WILL_RETAIN MODE
    /// Connects with a will (MQTT 5: with a user property will-source=paho), then either
    /// waits to be killed (MODE "wait") or closes its socket without DISCONNECT and
    /// exits (MODE "close").
    static let willScript = pythonPrelude + "\n" + #"""
host, port, version, will_topic, will_payload, will_qos, will_retain, mode = sys.argv[1:9]
client = make_client(version, client_id="paho-will-" + version)
props = None
if version == "5":
    props = Properties(PacketTypes.WILLMESSAGE)
    props.UserProperty = ("will-source", "paho")
client.will_set(will_topic, will_payload, qos=int(will_qos), retain=(will_retain == "1"), properties=props)
connect(client, host, int(port), version)
if mode == "close":
    client.loop_stop()
    client._sock.close()   # no DISCONNECT packet: the broker must publish the will
    log("CLOSED")
    os._exit(0)
log("WAITING")
time.sleep(60)
log("NOT KILLED")
os._exit(5)
"""#

    // MARK: - Helpers

    private func pahoPublish(_ broker: BrokerProcess, version: String, topic: String, qos: Int, count: Int,
                             retain: Bool = false, prefix: String,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try runPython(Self.publisherScript,
                              [broker.host, String(broker.port), version, topic, String(qos), String(count), retain ? "1" : "0", prefix],
                              name: "paho-publisher", file: file, line: line)
        guard r.exitCode == 0, r.stdoutLines.last == "DONE" else {
            XCTFail("paho publisher failed:\n\(r)\n\(brokerLog(broker))", file: file, line: line)
            throw InteropError.startFailed("paho publisher")
        }
    }

    /// Starts the paho subscriber; waits for its SUBACK when it subscribes, or for CONNACK.
    private func startPahoSubscriber(_ broker: BrokerProcess, version: String, clientID: String = "", clean: Bool = true,
                                     sessionExpiry: Int? = nil, topic: String?, qos: Int = 0, count: Int,
                                     listen: Double = 0, timeout: Double = 15,
                                     file: StaticString = #filePath, line: UInt = #line) throws -> ManagedProcess {
        let p = try startPython(Self.subscriberScript,
                                [broker.host, String(broker.port), version, clientID, clean ? "1" : "0",
                                 sessionExpiry.map(String.init) ?? "-", topic ?? "-", String(qos), String(count),
                                 String(listen), String(timeout)],
                                name: "paho-subscriber")
        try waitForMarker(p, topic == nil ? "CONNECTED" : "SUBSCRIBED", timeout: 15, broker: broker, file: file, line: line)
        return p
    }

    /// "MSG|..." lines of a paho subscriber, without the prefix.
    private func pahoMessages(_ p: ManagedProcess) -> [String] {
        splitLines(p.stdout).filter { $0.hasPrefix("MSG|") }.map { String($0.dropFirst(4)) }
    }

    private func pahoLine(_ p: ManagedProcess, prefix: String) -> String? {
        splitLines(p.stdout).first { $0.hasPrefix(prefix) }
    }

    // MARK: - paho publisher -> mosquitto_sub

    func testPahoMQTT311QoS0PublishReachesMosquittoSub() throws { try assertPahoToMosquitto(version: "311", qos: 0) }
    func testPahoMQTT311QoS1PublishReachesMosquittoSub() throws { try assertPahoToMosquitto(version: "311", qos: 1) }
    func testPahoMQTT311QoS2PublishReachesMosquittoSub() throws { try assertPahoToMosquitto(version: "311", qos: 2) }
    func testPahoMQTT5QoS0PublishReachesMosquittoSub() throws { try assertPahoToMosquitto(version: "5", qos: 0) }
    func testPahoMQTT5QoS1PublishReachesMosquittoSub() throws { try assertPahoToMosquitto(version: "5", qos: 1) }
    func testPahoMQTT5QoS2PublishReachesMosquittoSub() throws { try assertPahoToMosquitto(version: "5", qos: 2) }

    /// paho publishes 5 messages at QoS n (waiting for each handshake to complete); a
    /// mosquitto_sub at QoS n (same protocol version) receives all 5 in order at QoS n.
    private func assertPahoToMosquitto(version: String, qos: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startBroker()
        let topic = "paho/v\(version)/qos\(qos)"
        let sub = try startMosquittoSub(broker, ["-V", version == "5" ? "mqttv5" : "mqttv311", "-q", String(qos), "-t", topic,
                                                 "-F", "%t|%q|%r|%p", "-C", "5"])
        try pahoPublish(broker, version: version, topic: topic, qos: qos, count: 5, prefix: "from paho", file: file, line: line)
        let r = waitForExit(sub.process, broker: broker, file: file, line: line)
        XCTAssertEqual(r.exitCode, 0, "\(r)", file: file, line: line)
        XCTAssertEqual(sub.messages, (1...5).map { "\(topic)|\(qos)|0|from paho \($0)" }, "\(r)\n\(brokerLog(broker))",
                       file: file, line: line)
    }

    // MARK: - mosquitto_pub -> paho subscriber

    func testMosquittoPubMQTT311QoS0ReachesPahoSubscriber() throws { try assertMosquittoToPaho(version: "311", qos: 0) }
    func testMosquittoPubMQTT311QoS1ReachesPahoSubscriber() throws { try assertMosquittoToPaho(version: "311", qos: 1) }
    func testMosquittoPubMQTT311QoS2ReachesPahoSubscriber() throws { try assertMosquittoToPaho(version: "311", qos: 2) }
    func testMosquittoPubMQTT5QoS0ReachesPahoSubscriber() throws { try assertMosquittoToPaho(version: "5", qos: 0) }
    func testMosquittoPubMQTT5QoS1ReachesPahoSubscriber() throws { try assertMosquittoToPaho(version: "5", qos: 1) }
    func testMosquittoPubMQTT5QoS2ReachesPahoSubscriber() throws { try assertMosquittoToPaho(version: "5", qos: 2) }

    /// A paho subscriber at QoS n (granted n in the SUBACK) receives 3 mosquitto_pub
    /// messages published at QoS n, in order, at QoS n, retain flag 0.
    private func assertMosquittoToPaho(version: String, qos: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startBroker()
        let topic = "paho/in/v\(version)/qos\(qos)"
        let sub = try startPahoSubscriber(broker, version: version, topic: topic, qos: qos, count: 3, file: file, line: line)
        XCTAssertEqual(pahoLine(sub, prefix: "SUBSCRIBED"), "SUBSCRIBED \(qos)", file: file, line: line)
        for i in 1...3 {
            try mosquittoPub(broker, ["-V", version == "5" ? "mqttv5" : "mqttv311", "-q", String(qos), "-t", topic, "-m", "to paho \(i)"],
                             file: file, line: line)
        }
        let r = waitForExit(sub, broker: broker, file: file, line: line)
        XCTAssertEqual(r.exitCode, 0, "\(r)", file: file, line: line)
        XCTAssertEqual(pahoMessages(sub), (1...3).map { "\(topic)|\(qos)|0|to paho \($0)|" }, "\(r)\n\(brokerLog(broker))",
                       file: file, line: line)
    }

    /// MQTT 5 user properties set by mosquitto_pub arrive at a paho v5 subscriber, in order.
    func testMosquittoPubMQTT5UserPropertiesReachPahoSubscriber() throws {
        let broker = try startBroker()
        let sub = try startPahoSubscriber(broker, version: "5", topic: "paho/props", qos: 1, count: 1)
        try mosquittoPub(broker, ["-V", "mqttv5", "-q", "1", "-t", "paho/props", "-m", "with props",
                                  "-D", "publish", "user-property", "a", "1", "-D", "publish", "user-property", "b", "2"])
        let r = waitForExit(sub, broker: broker)
        XCTAssertEqual(pahoMessages(sub), ["paho/props|1|0|with props|a=1 b=2"], "\(r)")
    }

    // MARK: - Retained

    func testPahoMQTT311RetainedPublishIsDeliveredToNewMosquittoSub() throws { try assertPahoRetained(version: "311") }
    func testPahoMQTT5RetainedPublishIsDeliveredToNewMosquittoSub() throws { try assertPahoRetained(version: "5") }

    /// paho publishes a retained QoS 1 message; a mosquitto_sub that subscribes afterwards
    /// gets it once with the retain flag set.
    private func assertPahoRetained(version: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startBroker()
        try pahoPublish(broker, version: version, topic: "paho/retained", qos: 1, count: 1, retain: true, prefix: "kept",
                        file: file, line: line)
        let sub = try startMosquittoSub(broker, ["-V", version == "5" ? "mqttv5" : "mqttv311", "-q", "1", "-t", "paho/#",
                                                 "-F", "%t|%q|%r|%p", "-C", "1"])
        let r = waitForExit(sub.process, broker: broker, file: file, line: line)
        XCTAssertEqual(sub.messages, ["paho/retained|1|1|kept 1"], "\(r)\n\(brokerLog(broker))", file: file, line: line)
    }

    func testMosquittoPubMQTT311RetainedIsDeliveredToNewPahoSubscriber() throws { try assertRetainedToPaho(version: "311") }
    func testMosquittoPubMQTT5RetainedIsDeliveredToNewPahoSubscriber() throws { try assertRetainedToPaho(version: "5") }

    /// mosquitto_pub -r, then a new paho subscriber sees the message with retain=1.
    private func assertRetainedToPaho(version: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startBroker()
        try mosquittoPub(broker, ["-V", version == "5" ? "mqttv5" : "mqttv311", "-q", "1", "-r", "-t", "paho/state", "-m", "on"],
                         file: file, line: line)
        let sub = try startPahoSubscriber(broker, version: version, topic: "paho/state", qos: 1, count: 1, file: file, line: line)
        let r = waitForExit(sub, broker: broker, file: file, line: line)
        XCTAssertEqual(r.exitCode, 0, "\(r)", file: file, line: line)
        XCTAssertEqual(pahoMessages(sub), ["paho/state|1|1|on|"], "\(r)\n\(brokerLog(broker))", file: file, line: line)
    }

    // MARK: - Wills

    /// paho MQTT 3.1.1 client with a will is killed (SIGKILL): mosquitto_sub receives the will.
    func testPahoMQTT311WillIsPublishedWhenProcessIsKilled() throws {
        let broker = try startBroker()
        let watcher = try startMosquittoSub(broker, ["-q", "1", "-t", "paho/will/#", "-F", "%t|%q|%r|%p", "-C", "1"], name: "watcher")
        let victim = try startPython(Self.willScript, [broker.host, String(broker.port), "311", "paho/will/311", "paho 311 gone", "1", "0", "wait"],
                                     name: "paho-will")
        try waitForMarker(victim, "WAITING", broker: broker)
        XCTAssertEqual(watcher.messages, [], "will published while the client was still connected")
        victim.kill(signal: SIGKILL)
        let r = waitForExit(watcher.process, broker: broker)
        XCTAssertEqual(watcher.messages, ["paho/will/311|1|0|paho 311 gone"], "\(r)\n\(brokerLog(broker))")
    }

    /// paho MQTT 5 client with a retained will (and a user property) closes its socket
    /// without DISCONNECT: a v5 mosquitto_sub receives the will with its user property,
    /// and it is retained for later subscribers.
    func testPahoMQTT5WillIsPublishedWhenSocketClosesWithoutDisconnect() throws {
        let broker = try startBroker()
        let watcher = try startMosquittoSub(broker, ["-V", "mqttv5", "-q", "1", "-t", "paho/will/#", "-F", "%t|%q|%P|%p", "-C", "1"],
                                            name: "watcher")
        let victim = try runPython(Self.willScript, [broker.host, String(broker.port), "5", "paho/will/5", "paho 5 gone", "1", "1", "close"],
                                   name: "paho-will")
        XCTAssertEqual(victim.exitCode, 0, "\(victim)")
        XCTAssertTrue(victim.stdout.contains("CLOSED"), "\(victim)")
        let r = waitForExit(watcher.process, broker: broker)
        XCTAssertEqual(watcher.messages, ["paho/will/5|1|will-source:paho|paho 5 gone"], "\(r)\n\(brokerLog(broker))")

        let late = try startMosquittoSub(broker, ["-V", "mqttv5", "-q", "1", "-t", "paho/will/5", "-F", "%r|%p", "-C", "1"], name: "late")
        let r2 = waitForExit(late.process, broker: broker)
        XCTAssertEqual(late.messages, ["1|paho 5 gone"], "\(r2)")
    }

    // MARK: - Persistent sessions

    /// MQTT 3.1.1, clean_session=False: the paho client subscribes at QoS 1 and disconnects;
    /// 3 QoS 1 messages are published while it is offline; it reconnects (same client id,
    /// no new SUBSCRIBE), the CONNACK says session present, and it receives all 3 in order.
    func testPahoMQTT311PersistentSessionReceivesMessagesPublishedWhileOffline() throws {
        try assertPersistentSession(version: "311", sessionExpiry: nil)
    }

    /// Same with MQTT 5: clean_start=False and Session Expiry Interval 300.
    func testPahoMQTT5PersistentSessionReceivesMessagesPublishedWhileOffline() throws {
        try assertPersistentSession(version: "5", sessionExpiry: 300)
    }

    private func assertPersistentSession(version: String, sessionExpiry: Int?,
                                         file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startBroker()
        let clientID = "paho-persistent-\(version)"
        let first = try startPahoSubscriber(broker, version: version, clientID: clientID, clean: false, sessionExpiry: sessionExpiry,
                                            topic: "paho/offline", qos: 1, count: 0, listen: 0, file: file, line: line)
        let r1 = waitForExit(first, broker: broker, file: file, line: line)
        XCTAssertEqual(r1.exitCode, 0, "\(r1)", file: file, line: line)
        XCTAssertEqual(pahoLine(first, prefix: "CONNECTED"), "CONNECTED session_present=0", "\(r1)", file: file, line: line)

        for i in 1...3 {
            try mosquittoPub(broker, ["-q", "1", "-t", "paho/offline", "-m", "queued \(i)"], file: file, line: line)
        }

        let second = try startPahoSubscriber(broker, version: version, clientID: clientID, clean: false, sessionExpiry: sessionExpiry,
                                             topic: nil, count: 3, file: file, line: line)
        let r2 = waitForExit(second, broker: broker, file: file, line: line)
        XCTAssertEqual(r2.exitCode, 0, "\(r2)\n\(brokerLog(broker))", file: file, line: line)
        XCTAssertEqual(pahoLine(second, prefix: "CONNECTED"), "CONNECTED session_present=1", "\(r2)", file: file, line: line)
        XCTAssertEqual(pahoMessages(second), (1...3).map { "paho/offline|1|0|queued \($0)|" }, "\(r2)\n\(brokerLog(broker))",
                       file: file, line: line)
    }

    /// MQTT 5 with clean_start=False but Session Expiry Interval 0 (the default): the
    /// session ends with the connection, so after reconnecting there is no session and
    /// none of the messages published meanwhile arrive (listened for 2 s).
    func testPahoMQTT5SessionWithZeroExpiryIsDiscardedOnDisconnect() throws {
        let broker = try startBroker()
        let clientID = "paho-ephemeral-5"
        let first = try startPahoSubscriber(broker, version: "5", clientID: clientID, clean: false, sessionExpiry: 0,
                                            topic: "paho/ephemeral", qos: 1, count: 0, listen: 0)
        XCTAssertEqual(waitForExit(first, broker: broker).exitCode, 0)
        try mosquittoPub(broker, ["-q", "1", "-t", "paho/ephemeral", "-m", "lost"])
        let second = try startPahoSubscriber(broker, version: "5", clientID: clientID, clean: false, sessionExpiry: 0,
                                             topic: nil, count: 0, listen: 2)
        let r = waitForExit(second, broker: broker)
        XCTAssertEqual(r.exitCode, 0, "\(r)")
        XCTAssertEqual(pahoLine(second, prefix: "CONNECTED"), "CONNECTED session_present=0", "\(r)")
        XCTAssertEqual(pahoMessages(second), [], "\(r)\n\(brokerLog(broker))")
    }
}
