import Foundation
import XCTest

/// `midge pub` / `midge sub` / `midge rr` as real processes, across implementations:
/// midge pub -> Debian's mosquitto broker -> mosquitto_sub, mosquitto_pub -> midge broker ->
/// midge sub, and Python paho-mqtt <-> midge sub / midge pub, in MQTT 3.1.1 and 5, at every QoS,
/// with retained messages and wills; plus 1000 lines piped into `midge pub -l -q 1`.
final class MidgeToolsInteropTests: InteropTestCase {
    // MARK: - Helpers

    private func target(_ broker: BrokerProcess) -> [String] { ["-h", broker.host, "-p", String(broker.port)] }

    /// Runs `midge pub -h HOST -p PORT ARGS` and expects exit 0.
    @discardableResult
    private func midgePub(_ broker: BrokerProcess, _ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let result = try ClientProcess.run(try midge(), ["pub"] + target(broker) + args, timeout: peerTimeout,
                                           directory: workDir, name: "midge-pub", file: file, line: line)
        if result.exitCode != 0 {
            XCTFail("midge pub failed:\n\(result)\n\(brokerLog(broker))", file: file, line: line)
            throw InteropError.startFailed("midge pub exited with \(result.exitCode)")
        }
        return result
    }

    /// Starts `midge sub -d -h HOST -p PORT ARGS` and waits for its "Subscribed (mid: N)" line.
    private func startMidgeSub(_ broker: BrokerProcess, _ args: [String], name: String = "midge-sub",
                               file: StaticString = #filePath, line: UInt = #line) throws -> ManagedProcess {
        let p = try ClientProcess.start(try midge(), ["sub", "-d"] + target(broker) + args, directory: workDir, name: name)
        try waitForMarker(p, "Subscribed (mid:", broker: broker, file: file, line: line)
        return p
    }

    /// The message lines of a `-d` subscriber (debug lines dropped).
    private func messages(_ p: ManagedProcess) -> [String] { MosquittoSub.messageLines(p.stdout) }

    // MARK: - midge pub -> mosquitto -> mosquitto_sub

    func testMidgePubToMosquittoBrokerToMosquittoSubMQTT311() throws { try assertMidgePubThroughMosquitto(version: "mqttv311") }
    func testMidgePubToMosquittoBrokerToMosquittoSubMQTT5() throws { try assertMidgePubThroughMosquitto(version: "mqttv5") }

    private func assertMidgePubThroughMosquitto(version: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startMosquitto()
        let topic = "tools/\(version)"
        let sub = try startMosquittoSub(broker, ["-V", version, "-q", "2", "-t", "\(topic)/#", "-F", "%q %r %t %p", "-C", "4"])
        for qos in 0...2 {
            let r = try midgePub(broker, ["-V", version, "-q", String(qos), "-t", "\(topic)/q\(qos)", "-m", "payload \(qos)", "-d"],
                                 file: file, line: line)
            let handshake = ["", "received PUBACK (Mid: 1, RC:0)", "received PUBCOMP (Mid: 1, RC:0)"][qos]
            XCTAssertTrue(handshake.isEmpty || r.stdout.contains(handshake), r.stdout, file: file, line: line)
            XCTAssertTrue(r.stdout.contains("sending PUBLISH (d0, q\(qos), r0, m1, '\(topic)/q\(qos)', ... (9 bytes))"), r.stdout,
                          file: file, line: line)
        }
        try midgePub(broker, ["-V", version, "-q", "1", "-t", "\(topic)/kept", "-m", "retained", "-r"], file: file, line: line)
        let result = waitForExit(sub.process, broker: broker, file: file, line: line)
        XCTAssertEqual(result.exitCode, 0, "\(result)", file: file, line: line)
        XCTAssertEqual(sub.messages, ["0 0 \(topic)/q0 payload 0", "1 0 \(topic)/q1 payload 1", "2 0 \(topic)/q2 payload 2",
                                      "1 0 \(topic)/kept retained"], file: file, line: line)

        // A new subscriber gets the retained message with the retain flag.
        let late = try startMosquittoSub(broker, ["-V", version, "-t", "\(topic)/kept", "-F", "%r %p", "-C", "1"], name: "late")
        _ = waitForExit(late.process, broker: broker, file: file, line: line)
        XCTAssertEqual(late.messages, ["1 retained"], file: file, line: line)
    }

    func testMidgeUserPropertiesReachMosquittoSub() throws {
        let broker = try startMosquitto()
        let sub = try startMosquittoSub(broker, ["-V", "mqttv5", "-t", "props", "-F", "%P %C %p", "-C", "1"])
        try midgePub(broker, ["-t", "props", "-m", "body", "-D", "publish", "user-property", "origin", "midge",
                              "-D", "publish", "content-type", "text/plain"])
        _ = waitForExit(sub.process, broker: broker)
        XCTAssertEqual(sub.messages, ["origin:midge text/plain body"])
    }

    func testMidgeSubWillIsPublishedByMosquittoWhenKilled() throws {
        let broker = try startMosquitto()
        let watcher = try startMosquittoSub(broker, ["-t", "wills/#", "-v", "-C", "1"])
        let doomed = try startMidgeSub(broker, ["-t", "whatever", "--will-topic", "wills/midge", "--will-payload", "midge died",
                                                "--will-qos", "1"], name: "doomed")
        doomed.kill(signal: SIGKILL)
        _ = doomed.waitForExit(timeout: 5)
        let result = waitForExit(watcher.process, broker: broker)
        XCTAssertEqual(result.exitCode, 0, "\(result)")
        XCTAssertEqual(watcher.messages, ["wills/midge midge died"])
    }

    // MARK: - mosquitto_pub -> midge broker -> midge sub

    func testMosquittoPubToMidgeBrokerToMidgeSubMQTT311() throws { try assertMosquittoPubThroughMidge(version: "mqttv311") }
    func testMosquittoPubToMidgeBrokerToMidgeSubMQTT5() throws { try assertMosquittoPubThroughMidge(version: "mqttv5") }

    private func assertMosquittoPubThroughMidge(version: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startBroker()
        let topic = "tools/\(version)"
        try mosquittoPub(broker, ["-V", version, "-q", "1", "-t", "\(topic)/kept", "-m", "old news", "-r"], file: file, line: line)
        let sub = try startMidgeSub(broker, ["-V", version, "-q", "2", "-t", "\(topic)/#", "-F", "%q %r %t %p", "-C", "4"],
                                    file: file, line: line)
        for qos in 0...2 {
            try mosquittoPub(broker, ["-V", version, "-q", String(qos), "-t", "\(topic)/q\(qos)", "-m", "payload \(qos)"], file: file, line: line)
        }
        let result = waitForExit(sub, broker: broker, file: file, line: line)
        XCTAssertEqual(result.exitCode, 0, "\(result)", file: file, line: line)
        XCTAssertEqual(messages(sub), ["1 1 \(topic)/kept old news", "0 0 \(topic)/q0 payload 0", "1 0 \(topic)/q1 payload 1",
                                       "2 0 \(topic)/q2 payload 2"], "\(result)", file: file, line: line)
        let debug = splitLines(sub.stdout).filter(MosquittoSub.isDebugLine)
        XCTAssertTrue(debug.contains { $0.contains("sending PUBACK (m") }, "\(debug)", file: file, line: line)
        XCTAssertTrue(debug.contains { $0.contains("sending PUBREC (m") }, "\(debug)", file: file, line: line)
        XCTAssertTrue(debug.last?.hasSuffix("sending DISCONNECT") ?? false, "\(debug)", file: file, line: line)
    }

    /// `midge --threads N` (Midge only): on one event loop and on three the broker routes
    /// between connections as usual (with 3 loops the clients land on different loops);
    /// `--threads 0` is refused before anything is opened.
    func testBrokerThreadsOption() throws {
        for threads in ["1", "3"] {
            let broker = try startBroker(arguments: ["--threads", threads])
            let sub = try startMidgeSub(broker, ["-t", "threads/#", "-q", "1", "-C", "3", "-F", "%t %p"])
            for index in 1...3 { try midgePub(broker, ["-q", "1", "-t", "threads/\(index)", "-m", "m\(index)"]) }
            let result = waitForExit(sub, broker: broker)
            XCTAssertEqual(result.exitCode, 0, "\(result)")
            XCTAssertEqual(messages(sub), ["threads/1 m1", "threads/2 m2", "threads/3 m3"], "--threads \(threads)")
        }
        let refused = try ClientProcess.run(try midge(), ["--threads", "0", "-p", "29699"], timeout: peerTimeout,
                                            directory: workDir, name: "midge-threads-0")
        XCTAssertNotEqual(refused.exitCode, 0, "\(refused)")
        XCTAssertTrue(refused.stderr.contains("--threads"), "\(refused)")
    }

    func testMosquittoSubWillIsDeliveredToMidgeSubThroughMidge() throws {
        let broker = try startBroker()
        let watcher = try startMidgeSub(broker, ["-t", "wills/#", "-v", "-C", "1", "-q", "1"])
        let doomed = try startMosquittoSub(broker, ["-t", "whatever", "--will-topic", "wills/mosquitto", "--will-payload", "gone",
                                                    "--will-qos", "1"], name: "doomed")
        doomed.process.kill(signal: SIGKILL)
        let result = waitForExit(watcher, broker: broker)
        XCTAssertEqual(result.exitCode, 0, "\(result)")
        XCTAssertEqual(messages(watcher), ["wills/mosquitto gone"])
    }

    // MARK: - paho-mqtt <-> midge

    func testPahoPublisherToMidgeSubMQTT311() throws { try assertPahoToMidgeSub(version: "311") }
    func testPahoPublisherToMidgeSubMQTT5() throws { try assertPahoToMidgeSub(version: "5") }

    private func assertPahoToMidgeSub(version: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startBroker()
        let mqttVersion = version == "5" ? "mqttv5" : "mqttv311"
        let sub = try startMidgeSub(broker, ["-V", mqttVersion, "-q", "2", "-t", "paho/#", "-F", "%q %t %p", "-C", "6"],
                                    file: file, line: line)
        for qos in [1, 2] {
            let r = try runPython(PahoPythonInteropTests.publisherScript,
                                  [broker.host, String(broker.port), version, "paho/q\(qos)", String(qos), "3", "0", "paho \(qos)"],
                                  name: "paho-publisher", file: file, line: line)
            XCTAssertEqual(r.stdoutLines.last, "DONE", "\(r)", file: file, line: line)
        }
        let result = waitForExit(sub, broker: broker, file: file, line: line)
        XCTAssertEqual(result.exitCode, 0, "\(result)", file: file, line: line)
        XCTAssertEqual(messages(sub), [1, 2].flatMap { qos in (1...3).map { "\(qos) paho/q\(qos) paho \(qos) \($0)" } },
                       file: file, line: line)
    }

    func testMidgePubToPahoSubscriberMQTT311() throws { try assertMidgePubToPaho(version: "311") }
    func testMidgePubToPahoSubscriberMQTT5() throws { try assertMidgePubToPaho(version: "5") }

    private func assertMidgePubToPaho(version: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let broker = try startBroker()
        let paho = try startPython(PahoPythonInteropTests.subscriberScript,
                                   [broker.host, String(broker.port), version, "", "1", "-", "to-paho/#", "2", "4", "0", "15"],
                                   name: "paho-subscriber")
        try waitForMarker(paho, "SUBSCRIBED", broker: broker, file: file, line: line)
        let mqttVersion = version == "5" ? "mqttv5" : "mqttv311"
        for qos in 0...2 {
            try midgePub(broker, ["-V", mqttVersion, "-q", String(qos), "-t", "to-paho/q\(qos)", "-m", "midge \(qos)"], file: file, line: line)
        }
        var last = ["-V", mqttVersion, "-q", "1", "-t", "to-paho/props", "-m", "with properties"]
        if version == "5" { last += ["-D", "publish", "user-property", "k", "v"] }
        try midgePub(broker, last, file: file, line: line)
        let result = waitForExit(paho, broker: broker, file: file, line: line)
        XCTAssertEqual(result.exitCode, 0, "\(result)", file: file, line: line)
        let received = splitLines(paho.stdout).filter { $0.hasPrefix("MSG|") }.map { String($0.dropFirst(4)) }
        XCTAssertEqual(received, ["to-paho/q0|0|0|midge 0|", "to-paho/q1|1|0|midge 1|", "to-paho/q2|2|0|midge 2|",
                                  "to-paho/props|1|0|with properties|\(version == "5" ? "k=v" : "")"], "\(result)", file: file, line: line)
    }

    func testMidgeRRWithAPahoResponderThroughMosquitto() throws {
        let broker = try startMosquitto()
        let responder = try startPython(Self.responderScript, [broker.host, String(broker.port)], name: "paho-responder")
        try waitForMarker(responder, "SUBSCRIBED", broker: broker)
        let result = try ClientProcess.run(try midge(), ["rr"] + target(broker) + ["-t", "service/req", "-e", "service/resp", "-m", "ping",
                                                                                 "-D", "publish", "correlation-data", "abc-1", "-F", "%t %p %D"],
                                           timeout: peerTimeout, directory: workDir, name: "midge-rr")
        XCTAssertEqual(result.exitCode, 0, "\(result)\n\(responder.stdout)")
        XCTAssertEqual(result.stdout, "service/resp pong ping abc-1\n")
    }

    /// responder.py HOST PORT: answers each request on service/req with "pong PAYLOAD" on its
    /// Response Topic, echoing the Correlation Data (MQTT 5).
    static let responderScript = PahoPythonInteropTests.pythonPrelude + "\n" + #"""
host, port = sys.argv[1:3]
client = make_client("5", client_id="paho-responder")
def on_message(c, userdata, msg):
    props = Properties(PacketTypes.PUBLISH)
    if hasattr(msg.properties, "CorrelationData"):
        props.CorrelationData = msg.properties.CorrelationData
    c.publish(msg.properties.ResponseTopic, "pong " + msg.payload.decode("utf-8"), qos=1, properties=props)
def on_subscribe(c, userdata, mid, reason_code_list, properties):
    log("SUBSCRIBED")
client.on_message = on_message
client.on_subscribe = on_subscribe
connect(client, host, int(port), "5")
client.subscribe("service/req", qos=1)
time.sleep(30)
os._exit(0)
"""#

    // MARK: - midge pub -l | midge sub over real pipes

    func testThousandLinesPipedIntoMidgePubReachMidgeSubInOrder() throws {
        let broker = try startBroker()
        let sub = try startMidgeSub(broker, ["-q", "1", "-t", "lines", "-C", "1000"])
        let midge = try self.midge()
        let script = "seq 1 1000 | '\(midge)' pub -h \(broker.host) -p \(broker.port) -t lines -l -q 1"
        let publisher = try ClientProcess.run("/bin/sh", ["-c", script], timeout: peerTimeout, directory: workDir, name: "midge-pub-l")
        XCTAssertEqual(publisher.exitCode, 0, "\(publisher)")
        let result = waitForExit(sub, broker: broker)
        XCTAssertEqual(result.exitCode, 0, "\(result)")
        let lines = messages(sub)
        XCTAssertEqual(lines.count, 1000)
        XCTAssertEqual(lines, (1...1000).map(String.init), "every line exactly once, in order")
    }

    func testMidgeSubFlushesEachMessageIntoAPipe() throws {
        let broker = try startBroker()
        let midge = try self.midge()
        // stdout is a pipe to cat: every line must come out at once, while midge sub keeps running
        // (-W bounds it, so no process outlives the test).
        let command = "'\(midge)' sub -d -h \(broker.host) -p \(broker.port) -t flush -v -C 1 -W 10 | cat"
        let pipeline = try ClientProcess.start("/bin/sh", ["-c", command], directory: workDir, name: "midge-sub-pipe")
        try waitForMarker(pipeline, "Subscribed (mid:", broker: broker)
        XCTAssertTrue(pipeline.isRunning, "the SUBACK line came through the pipe while midge sub waits for its message")
        try midgePub(broker, ["-t", "flush", "-m", "through the pipe"])
        let result = waitForExit(pipeline, broker: broker)
        XCTAssertEqual(result.exitCode, 0, "\(result)")
        XCTAssertEqual(MosquittoSub.messageLines(result.stdout), ["flush through the pipe"])
    }

    // MARK: - Exit codes of the real processes

    func testExitCodesOfRealProcesses() throws {
        let broker = try startBroker()
        let midge = try self.midge()
        let timeout = try ClientProcess.run(midge, ["sub"] + target(broker) + ["-t", "silence", "-W", "1"], timeout: peerTimeout,
                                            directory: workDir)
        XCTAssertEqual(timeout.exitCode, 27, "\(timeout)")
        XCTAssertEqual(timeout.stderr, "Timed out\n")
        let badQoS = try ClientProcess.run(midge, ["pub", "-h", "localhost", "-t", "x", "-m", "y", "-q", "3"], timeout: peerTimeout,
                                           directory: workDir)
        XCTAssertEqual(badQoS.exitCode, 1)
        XCTAssertEqual(badQoS.stderr, "Error: Invalid QoS given: 3\n\nUse 'midge pub --help' to see usage.\n")
        let help = try ClientProcess.run(midge, ["pub", "--help"], timeout: peerTimeout, directory: workDir)
        XCTAssertEqual(help.exitCode, 1, "like mosquitto_pub --help")
        XCTAssertTrue(help.stdout.contains("Usage: midge pub {[-h host]"), help.stdout)
        let refused = try ClientProcess.run(midge, ["pub", "-h", broker.host, "-p", String(try BrokerProcess.freeLoopbackPort()),
                                                    "-t", "x", "-m", "y"], timeout: peerTimeout, directory: workDir)
        XCTAssertEqual(refused.exitCode, 1)
        XCTAssertEqual(refused.stderr, "Error: Connection refused\n")

        let running = try startMidgeSub(broker, ["-t", "forever"])
        running.kill(signal: SIGTERM)
        let stopped = waitForExit(running, broker: broker)
        XCTAssertEqual(stopped.exitCode, 0, "SIGTERM: DISCONNECT and exit 0, as mosquitto_sub does\n\(stopped)")
        XCTAssertTrue(splitLines(stopped.stdout).last?.hasSuffix("sending DISCONNECT") ?? false, stopped.stdout)
    }
}
