import Foundation
import MidgeTestSupport
import XCTest

/// MQTT over WebSocket (`protocol websockets`) against the `midge` binary: Python paho-mqtt
/// with `transport="websockets"` and `midge sub`/`midge pub -L ws://…` exchange messages with
/// TCP clients (mosquitto_pub/mosquitto_sub) through one broker, QoS 0/1/2, MQTT 3.1.1 and 5.
final class WebSocketInteropTests: InteropTestCase {
    /// The WebSocket listener's port of the broker started by `startWebSocketBroker`.
    private var wsPort = 0

    /// A broker with a plain MQTT listener on {PORT} and a WebSocket listener on `wsPort`
    /// (wss when `certificates` are given).
    private func startWebSocketBroker(certificates: TLSTestCertificates? = nil) throws -> BrokerProcess {
        wsPort = try BrokerProcess.freeLoopbackPort()
        let tls = certificates.map { "certfile \($0.serverCert)\nkeyfile \($0.serverKey)\n" } ?? ""
        let broker = try startBroker(arguments: ["-v"], config: """
            listener \(wsPort) 127.0.0.1
            protocol websockets
            \(tls)allow_anonymous true
            listener {PORT} 127.0.0.1
            allow_anonymous true
            """)
        try waitUntil("the WebSocket listener accepts connections") { BrokerProcess.canConnect(port: self.wsPort) }
        XCTAssertTrue(broker.output.contains("Opening websockets listen socket on port \(wsPort)."), broker.output)
        return broker
    }

    private func waitUntil(_ what: String, timeout: TimeInterval = 10, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            if Date() > deadline { throw InteropError.timeout(what) }
            usleep(20_000)
        }
    }

    /// paho over WebSocket: subscribes to `in/#` at QoS 2, prints SUBSCRIBED, then for each of
    /// the `count` messages it receives prints "MSG|topic|qos|payload" and publishes
    /// "echo <payload>" to `back/<n>` at the message's QoS; prints DONE when every publish completed.
    static let pahoWebSocketEcho = PahoPythonInteropTests.pythonPrelude + "\n" + #"""
host, port, version, topic, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
ca_file = sys.argv[6] if len(sys.argv) > 6 else None
if version == "5":
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="paho-ws-" + version,
                         protocol=mqtt.MQTTv5, transport="websockets")
else:
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="paho-ws-" + version,
                         protocol=mqtt.MQTTv311, transport="websockets")
client.ws_set_options(path="/mqtt")
if ca_file:
    client.tls_set(ca_certs=ca_file)  # wss
subscribed = threading.Event()
received = []
lock = threading.Lock()
all_in = threading.Event()
def on_subscribe(c, userdata, mid, reason_codes, properties):
    log("SUBSCRIBED", " ".join(str(int(getattr(r, "value", r))) for r in reason_codes))
    subscribed.set()
def on_message(c, userdata, msg):
    log("MSG|%s|%d|%s" % (msg.topic, msg.qos, msg.payload.decode()))
    with lock:
        received.append(msg)
        if len(received) == count:
            all_in.set()
client.on_subscribe = on_subscribe
client.on_message = on_message
client.loop_start()
connect(client, host, port, version)
client.subscribe(topic + "/in/#", qos=2)
if not subscribed.wait(10):
    log("TIMEOUT subscribe"); sys.exit(3)
if not all_in.wait(20):
    log("TIMEOUT messages"); sys.exit(3)
infos = []
for n, msg in enumerate(received):
    infos.append(client.publish(topic + "/back/%d" % n, ("echo " + msg.payload.decode()).encode(), qos=msg.qos))
for info in infos:
    info.wait_for_publish(10)
client.disconnect()
client.loop_stop()
log("DONE")
"""#

    func testPahoOverWebSocketExchangesWithTCPClientsMQTT311() throws { try assertPahoExchange(pahoVersion: "3", mosquittoVersion: "mqttv311") }
    func testPahoOverWebSocketExchangesWithTCPClientsMQTT5() throws { try assertPahoExchange(pahoVersion: "5", mosquittoVersion: "mqttv5") }

    private func assertPahoExchange(pahoVersion: String, mosquittoVersion: String,
                                    file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startWebSocketBroker()
        let topic = "ws-\(mosquittoVersion)"
        let back = try startMosquittoSub(broker, ["-V", mosquittoVersion, "-q", "2", "-t", "\(topic)/back/#", "-F", "%q %t %p", "-C", "3"])
        let paho = try startPython(Self.pahoWebSocketEcho, [broker.host, String(wsPort), pahoVersion, topic, "3"], name: "paho-ws")
        try waitForMarker(paho, "SUBSCRIBED", broker: broker, file: file, line: line)
        XCTAssertTrue(paho.stdout.contains("SUBSCRIBED 2"), paho.stdout, file: file, line: line)
        for qos in 0...2 {
            try mosquittoPub(broker, ["-V", mosquittoVersion, "-q", String(qos), "-t", "\(topic)/in/q\(qos)", "-m", "tcp \(qos)"],
                             file: file, line: line)
        }
        let pahoResult = waitForExit(paho, broker: broker, file: file, line: line)
        XCTAssertEqual(pahoResult.exitCode, 0, "\(pahoResult)\n\(brokerLog(broker))", file: file, line: line)
        let received = pahoResult.stdoutLines.filter { $0.hasPrefix("MSG|") }
        XCTAssertEqual(received, (0...2).map { "MSG|\(topic)/in/q\($0)|\($0)|tcp \($0)" }, file: file, line: line)
        XCTAssertTrue(pahoResult.stdout.contains("DONE"), "\(pahoResult)", file: file, line: line)
        let subResult = waitForExit(back.process, broker: broker, file: file, line: line)
        XCTAssertEqual(subResult.exitCode, 0, "\(subResult)", file: file, line: line)
        XCTAssertEqual(back.messages, (0...2).map { "\($0) \(topic)/back/\($0) echo tcp \($0)" }, file: file, line: line)
        XCTAssertTrue(broker.output.contains("New client connected from 127.0.0.1"), brokerLog(broker), file: file, line: line)
    }

    // MARK: - midge sub / midge pub -L ws://

    func testMidgeToolsOverWebSocketMQTT311() throws { try assertMidgeTools(version: "mqttv311") }
    func testMidgeToolsOverWebSocketMQTT5() throws { try assertMidgeTools(version: "mqttv5") }

    private func assertMidgeTools(version: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startWebSocketBroker()
        let midge = try BrokerProcess.locateMidge()
        let url = "ws://\(broker.host):\(wsPort)/mqtt"
        let topic = "tools-ws-\(version)"

        // TCP publisher -> midge sub over WebSocket.
        let sub = try ClientProcess.start(midge, ["sub", "-d", "-L", url, "-V", version, "-q", "2", "-t", "\(topic)/#",
                                                  "-F", "%q %t %p", "-C", "3"], directory: workDir, name: "midge-sub-ws")
        try waitForMarker(sub, "Subscribed (mid:", broker: broker, file: file, line: line)
        for qos in 0...2 {
            try mosquittoPub(broker, ["-V", version, "-q", String(qos), "-t", "\(topic)/q\(qos)", "-m", "to ws \(qos)"], file: file, line: line)
        }
        let subResult = waitForExit(sub, broker: broker, file: file, line: line)
        XCTAssertEqual(subResult.exitCode, 0, "\(subResult)", file: file, line: line)
        XCTAssertEqual(MosquittoSub.messageLines(subResult.stdout), (0...2).map { "\($0) \(topic)/q\($0) to ws \($0)" },
                       file: file, line: line)

        // midge pub over WebSocket -> TCP subscriber.
        let tcpSub = try startMosquittoSub(broker, ["-V", version, "-q", "2", "-t", "\(topic)/back/#", "-F", "%q %t %p", "-C", "3"])
        for qos in 0...2 {
            let r = try ClientProcess.run(midge, ["pub", "-d", "-L", url, "-V", version, "-q", String(qos), "-t", "\(topic)/back/\(qos)",
                                                  "-m", "from ws \(qos)"], timeout: peerTimeout, directory: workDir, name: "midge-pub-ws",
                                          file: file, line: line)
            XCTAssertEqual(r.exitCode, 0, "\(r)\n\(brokerLog(broker))", file: file, line: line)
            let handshake = ["", "received PUBACK", "received PUBCOMP"][qos]
            XCTAssertTrue(handshake.isEmpty || r.stdout.contains(handshake), r.stdout, file: file, line: line)
        }
        let tcpResult = waitForExit(tcpSub.process, broker: broker, file: file, line: line)
        XCTAssertEqual(tcpResult.exitCode, 0, "\(tcpResult)", file: file, line: line)
        XCTAssertEqual(tcpSub.messages, (0...2).map { "\($0) \(topic)/back/\($0) from ws \($0)" }, file: file, line: line)
    }

    func testMidgePubToThePlainPortOverWebSocketFailsCleanly() throws {
        let broker = try startWebSocketBroker()
        let r = try ClientProcess.run(try BrokerProcess.locateMidge(),
                                      ["pub", "-L", "ws://\(broker.host):\(broker.port)/", "-t", "x", "-m", "y"],
                                      timeout: peerTimeout, directory: workDir, name: "midge-pub-wrong-port")
        XCTAssertEqual(r.exitCode, 1, "\(r)")
        XCTAssertTrue(r.stderr.contains("WebSocket"), "\(r)")
    }

    // MARK: - wss

    func testPahoAndMidgeSubOverWSSExchangeWithTCPClients() throws {
        let certificates = TLSTestCertificates.shared
        let broker = try startWebSocketBroker(certificates: certificates)
        let topic = "wss"

        // paho over wss <-> mosquitto_pub / mosquitto_sub over TCP, MQTT 5.
        let back = try startMosquittoSub(broker, ["-V", "mqttv5", "-q", "2", "-t", "\(topic)/back/#", "-F", "%q %t %p", "-C", "3"])
        let paho = try startPython(Self.pahoWebSocketEcho, ["localhost", String(wsPort), "5", topic, "3", certificates.caFile], name: "paho-wss")
        try waitForMarker(paho, "SUBSCRIBED", broker: broker)
        for qos in 0...2 {
            try mosquittoPub(broker, ["-V", "mqttv5", "-q", String(qos), "-t", "\(topic)/in/q\(qos)", "-m", "tcp \(qos)"])
        }
        let pahoResult = waitForExit(paho, broker: broker)
        XCTAssertEqual(pahoResult.exitCode, 0, "\(pahoResult)\n\(brokerLog(broker))")
        XCTAssertEqual(pahoResult.stdoutLines.filter { $0.hasPrefix("MSG|") }, (0...2).map { "MSG|\(topic)/in/q\($0)|\($0)|tcp \($0)" })
        let backResult = waitForExit(back.process, broker: broker)
        XCTAssertEqual(backResult.exitCode, 0, "\(backResult)")
        XCTAssertEqual(back.messages, (0...2).map { "\($0) \(topic)/back/\($0) echo tcp \($0)" })

        // midge sub -L wss:// <- mosquitto_pub over TCP, MQTT 3.1.1.
        let midge = try BrokerProcess.locateMidge()
        let sub = try ClientProcess.start(midge, ["sub", "-d", "-L", "wss://localhost:\(wsPort)/mqtt", "--cafile", certificates.caFile,
                                                  "-q", "1", "-t", "\(topic)/tools", "-F", "%q %t %p", "-C", "1"],
                                          directory: workDir, name: "midge-sub-wss")
        try waitForMarker(sub, "Subscribed (mid:", broker: broker)
        try mosquittoPub(broker, ["-q", "1", "-t", "\(topic)/tools", "-m", "over wss"])
        let subResult = waitForExit(sub, broker: broker)
        XCTAssertEqual(subResult.exitCode, 0, "\(subResult)")
        XCTAssertEqual(MosquittoSub.messageLines(subResult.stdout), ["1 \(topic)/tools over wss"])
    }
}
