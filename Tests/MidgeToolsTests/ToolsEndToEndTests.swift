import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestSupport
@testable import MidgeTools
import NIOCore
import XCTest

/// `midge pub`, `midge sub` and `midge rr` run in-process (`run(arguments:)`) against a Midge
/// broker on loopback.
final class ToolsEndToEndTests: XCTestCase {
    var broker: TestBroker!

    override func setUpWithError() throws { broker = try TestBroker() }
    override func tearDown() { broker.shutdown() }

    // MARK: - Round trips

    func testRoundTripEveryQoSInBothVersions() async throws {
        for version in ["311", "5"] {
            let sub = try await startSub(broker, ["-V", version, "-t", "rt\(version)/#", "-q", "2", "-C", "3", "-F", "%t %p q%q"])
            for qos in 0...2 {
                await pub(broker, ["-V", version, "-t", "rt\(version)/\(qos)", "-m", "m\(qos)", "-q", "\(qos)"])
            }
            let result = await sub.finish()
            XCTAssertEqual(result.code, 0, "\(result)")
            XCTAssertEqual(result.stdout, "rt\(version)/0 m0 q0\nrt\(version)/1 m1 q1\nrt\(version)/2 m2 q2\n", "MQTT \(version)")
            XCTAssertEqual(result.stderr, "")
        }
    }

    func testSubscriptionQoSDowngradesDelivery() async throws {
        let sub = try await startSub(broker, ["-t", "down", "-q", "1", "-C", "1", "-F", "%q"])
        await pub(broker, ["-t", "down", "-m", "x", "-q", "2"])
        let result = await sub.finish()
        XCTAssertEqual(result.stdout, "1\n")
    }

    func testVerboseNullMessageNoNewlineAndFilterOut() async throws {
        let sub = try await startSub(broker, ["-t", "v/#", "-v", "-T", "v/skip", "-C", "2"])
        await pub(broker, ["-t", "v/skip", "-m", "hidden"])
        await pub(broker, ["-t", "v/a", "-n"])
        await pub(broker, ["-t", "v/b", "-m", "shown"])
        let result = await sub.finish()
        XCTAssertEqual(result.stdout, "v/a (null)\nv/b shown\n")

        let raw = try await startSub(broker, ["-t", "n", "-N", "-C", "2"])
        await pub(broker, ["-t", "n", "-m", "ab"])
        await pub(broker, ["-t", "n", "-m", "cd"])
        let joined = await raw.finish()
        XCTAssertEqual(joined.stdout, "abcd")
    }

    func testMessageSources() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("midge-pub-\(UUID().uuidString)")
        try Data("from a file\nwith two lines".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let sub = try await startSub(broker, ["-t", "src", "-C", "4", "-F", "[%p]"])
        await pub(broker, ["-t", "src", "-f", file.path])
        await pub(broker, ["-t", "src", "-s"], stdin: .text("all of\nstdin\n"))
        await pub(broker, ["-t", "src", "-n"])
        await pub(broker, ["-t", "src", "-m", "done"])
        let result = await sub.finish()
        XCTAssertEqual(result.stdout, "[from a file\nwith two lines]\n[all of\nstdin\n]\n[]\n[done]\n")

        let missing = await pub(broker, ["-t", "src", "-f", "/nonexistent/file"], expect: 1)
        XCTAssertEqual(missing.stderr, "Error: Unable to open file \"/nonexistent/file\".\nError loading input file \"/nonexistent/file\".\n")
        let empty = await pub(broker, ["-t", "src", "-s"], stdin: .empty, expect: 1)
        XCTAssertEqual(empty.stderr, "Error: Zero length input.\nError loading input from stdin.\n")
    }

    func testRepeat() async throws {
        let sub = try await startSub(broker, ["-t", "rep", "-C", "3", "-q", "1"])
        let started = Date()
        await pub(broker, ["-t", "rep", "-m", "again", "-q", "1", "--repeat", "3", "--repeat-delay", "0.1"])
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.2, "two delays between three publishes")
        let result = await sub.finish()
        XCTAssertEqual(result.stdout, "again\nagain\nagain\n")
    }

    // MARK: - -l: one message per line, as lines arrive

    func testLinesArePublishedAsTheyArrive() async throws {
        let sub = try await startSub(broker, ["-t", "lines", "-q", "1", "-C", "4"])
        let (chunks, feed) = AsyncStream.makeStream(of: [UInt8].self)
        let io = ToolIO.capture(stdin: .stream(chunks))
        let args = ["-h", "127.0.0.1", "-p", String(broker.port), "-t", "lines", "-l", "-q", "1"]
        let publisher = Task { await MidgePub(io: io).run(arguments: args) }
        feed.yield(Array("one\n".utf8))
        let first = await sub.waitForOutput { $0 == "one\n" }
        XCTAssertTrue(first, "the first line is published before more input comes")
        feed.yield(Array("two\nthr".utf8))
        let second = await sub.waitForOutput { $0 == "one\ntwo\n" }
        XCTAssertTrue(second)
        feed.yield(Array("ee\n\n".utf8))
        feed.finish()
        let code = await valueWithTimeout(publisher, timeout: 10, onTimeout: { io.interrupt() })
        XCTAssertEqual(code, 0, io.stderr.text)
        let result = await sub.finish()
        XCTAssertEqual(result.stdout, "one\ntwo\nthree\n", "an empty line is an empty message, which sub does not print")
    }

    func testManyLinesInOrderAtQoS1And2() async throws {
        for qos in ["1", "2"] {
            let count = 500
            let sub = try await startSub(broker, ["-t", "many\(qos)", "-q", qos, "-C", "\(count)"])
            let input = (1...count).map { "line \($0)\n" }.joined()
            await pub(broker, ["-t", "many\(qos)", "-l", "-q", qos], stdin: .text(input))
            let result = await sub.finish(timeout: 20)
            XCTAssertEqual(result.code, 0)
            XCTAssertEqual(result.stdout, input, "every line, in order, at QoS \(qos)")
        }
    }

    // MARK: - Retained messages

    func testRetainedAndNoStaleRetained() async throws {
        await pub(broker, ["-t", "ret/a", "-m", "kept", "-r", "-q", "1"])
        let sub = try await startSub(broker, ["-t", "ret/#", "-C", "1", "-F", "%r %t %p"])
        let result = await sub.finish()
        XCTAssertEqual(result.stdout, "1 ret/a kept\n")

        for version in ["311", "5"] {
            let fresh = try await startSub(broker, ["-V", version, "-t", "ret/#", "-R", "-C", "1", "-v"])
            await pub(broker, ["-t", "ret/b", "-m", "fresh"])
            let only = await fresh.finish()
            XCTAssertEqual(only.stdout, "ret/b fresh\n", "-R skips the retained message (MQTT \(version))")
        }
    }

    func testRetainedOnly() async throws {
        await pub(broker, ["-t", "ro/1", "-m", "first", "-r"])
        await pub(broker, ["-t", "ro/2", "-m", "second", "-r"])
        let sub = try await startSub(broker, ["-t", "ro/#", "--retained-only", "-v"])
        let both = await sub.waitForOutput { $0.split(separator: "\n").count == 2 }
        XCTAssertTrue(both)
        await pub(broker, ["-t", "ro/3", "-m", "not retained"])
        let result = await sub.finish()
        XCTAssertEqual(result.code, 0)
        XCTAssertEqual(Set(result.stdout.split(separator: "\n")), ["ro/1 first", "ro/2 second"])
        let contradiction = await run(.sub, ["-p", "1", "-t", "x", "-R", "--retained-only"])
        XCTAssertEqual(contradiction.code, 1)
        XCTAssertEqual(contradiction.stderr, "\nError: Combining '-R' and '--retained-only' makes no sense.\n")
    }

    func testRemoveRetained() async throws {
        await pub(broker, ["-t", "rm/1", "-m", "a", "-r"])
        await pub(broker, ["-t", "rm/2", "-m", "b", "-r"])
        let sub = try await startSub(broker, ["-t", "rm/#", "--remove-retained", "-C", "2", "-v"])
        let result = await sub.finish()
        XCTAssertEqual(Set(result.stdout.split(separator: "\n")), ["rm/1 a", "rm/2 b"])
        let after = await run(.sub, ["-h", "127.0.0.1", "-p", String(broker.port), "-t", "rm/#", "-W", "1"])
        XCTAssertEqual(after.code, 27)
        XCTAssertEqual(after.stdout, "", "the retained messages are gone")
    }

    // MARK: - Ending: -C, -W, -E, interrupt

    func testTimeoutExitCode() async throws {
        let started = Date()
        let result = await run(.sub, ["-h", "127.0.0.1", "-p", String(broker.port), "-t", "quiet", "-W", "1"])
        XCTAssertEqual(result.code, 27, "mosquitto_sub's MOSQ_ERR_TIMEOUT")
        XCTAssertEqual(result.stderr, "Timed out\n")
        XCTAssertEqual(result.stdout, "")
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)

        let quiet = await run(.sub, ["-h", "127.0.0.1", "-p", String(broker.port), "-t", "quiet", "-W", "1", "--quiet"])
        XCTAssertEqual(quiet.code, 27)
        XCTAssertEqual(quiet.stderr, "")
    }

    func testExitAfterSubscribeAndInterrupt() async throws {
        let result = await run(.sub, ["-h", "127.0.0.1", "-p", String(broker.port), "-t", "e", "-E"])
        XCTAssertEqual(result.code, 0)
        XCTAssertEqual(result.stdout, "")
        let sub = try await startSub(broker, ["-t", "e"])
        let stopped = await sub.interrupt()
        XCTAssertEqual(stopped.code, 0, "SIGINT ends mosquitto_sub with 0")
    }

    func testUnsubscribeFromAPersistentSession() async throws {
        let first = await run(.sub, ["-h", "127.0.0.1", "-p", String(broker.port), "-c", "-i", "unsub-me", "-q", "1", "-t", "u/a", "-E"])
        XCTAssertEqual(first.code, 0, "\(first)")
        let sub = try await startSub(broker, ["-c", "-i", "unsub-me", "-q", "1", "-t", "u/b", "-U", "u/a", "-C", "1", "-v"])
        await pub(broker, ["-t", "u/a", "-m", "one", "-q", "1"])
        await pub(broker, ["-t", "u/b", "-m", "two", "-q", "1"])
        let result = await sub.finish()
        XCTAssertEqual(result.stdout, "u/b two\n", "-U removed the session's u/a subscription")
    }

    func testPersistentSessionsKeepMessagesBothVersions() async throws {
        for version in ["311", "5"] {
            let id = "keeper-\(version)"
            let setup = await run(.sub, ["-h", "127.0.0.1", "-p", String(broker.port), "-V", version, "-c", "-i", id, "-q", "1",
                                         "-x", "60", "-t", "keep\(version)/#", "-E"])
            XCTAssertEqual(setup.code, 0, "\(setup)")
            await pub(broker, ["-V", version, "-t", "keep\(version)/x", "-m", "queued", "-q", "1"])
            let sub = try await startSub(broker, ["-V", version, "-c", "-i", id, "-q", "1", "-x", "60", "-t", "keep\(version)/#", "-C", "1", "-v"])
            let result = await sub.finish()
            XCTAssertEqual(result.stdout, "keep\(version)/x queued\n", "MQTT \(version)")
        }
    }

    // MARK: - MQTT v5 properties

    func testUserPropertiesAndOtherPublishProperties() async throws {
        let sub = try await startSub(broker, ["-V", "5", "-t", "props", "-C", "1", "-F", "%P|%C|%R|%D|%F|%p"])
        await pub(broker, ["-t", "props", "-m", "x", "-D", "publish", "user-property", "k", "v", "-D", "publish", "user-property", "k2", "v2",
                           "-D", "publish", "content-type", "text/plain", "-D", "publish", "response-topic", "back",
                           "-D", "publish", "correlation-data", "c1", "-D", "publish", "payload-format-indicator", "1"])
        let result = await sub.finish()
        XCTAssertEqual(result.stdout, "k:v k2:v2|text/plain|back|c1|1|x\n")
    }

    func testJSONOutput() async throws {
        let sub = try await startSub(broker, ["-V", "5", "-t", "json", "-C", "1", "-q", "1", "-F", "%J"])
        await pub(broker, ["-t", "json", "-m", #"{"v": [1, 2.50]}"#, "-q", "1", "-D", "publish", "user-property", "k", "v"])
        let result = await sub.finish()
        let line = result.stdout
        XCTAssertTrue(line.hasPrefix(#"{"tst":""#), line)
        XCTAssertTrue(line.hasSuffix(#","topic":"json","qos":1,"retain":0,"payloadlen":16,"mid":1,"properties":{"user-properties":{"k":"v"}},"payload":{"v":[1,2.5]}}"# + "\n"), line)
    }

    // MARK: - Wills

    func testWillWhenTheConnectionIsTakenOver() async throws {
        let watcher = try await startSub(broker, ["-t", "will/#", "-C", "1", "-v", "-q", "1"])
        let doomed = try await startSub(broker, ["-i", "doomed", "-t", "irrelevant", "--will-topic", "will/doomed",
                                                 "--will-payload", "gone", "--will-qos", "1"])
        // Another connection with the same client id: the broker drops the first one without a
        // DISCONNECT from it, so its will goes out.
        let intruder = MQTTClient(configuration: .init(host: "127.0.0.1", port: broker.port, clientID: "doomed"))
        try await intruder.connect()
        let result = await watcher.finish()
        XCTAssertEqual(result.stdout, "will/doomed gone\n")
        await intruder.disconnect()
        _ = await doomed.interrupt()
    }

    func testV5TimeoutSendsTheWillLikeMosquitto() async throws {
        let watcher = try await startSub(broker, ["-t", "will5/#", "-C", "1", "-F", "%t %p %r"])
        let result = await run(.sub, ["-h", "127.0.0.1", "-p", String(broker.port), "-V", "5", "-t", "nothing", "-W", "1",
                                      "--will-topic", "will5/t", "--will-payload", "bye", "--will-retain"])
        XCTAssertEqual(result.code, 27)
        let seen = await watcher.finish()
        XCTAssertEqual(seen.stdout, "will5/t bye 0\n", "DISCONNECT 0x04 (with will), as mosquitto_sub sends on -W / SIGINT")
        let retained = await run(.sub, ["-h", "127.0.0.1", "-p", String(broker.port), "-t", "will5/t", "-C", "1", "-F", "%r %p"])
        XCTAssertEqual(retained.stdout, "1 bye\n", "--will-retain")
    }

    func testNoWillAfterACleanDisconnect() async throws {
        let watcher = try await startSub(broker, ["-t", "calm/#", "-W", "1"])
        await pub(broker, ["-t", "elsewhere", "-m", "x", "--will-topic", "calm/will", "--will-payload", "should not appear"])
        let result = await watcher.finish()
        XCTAssertEqual(result.code, 27)
        XCTAssertEqual(result.stdout, "")
    }

    // MARK: - rr

    func testRequestResponse() async throws {
        let responder = MQTTClient(configuration: .init(host: "127.0.0.1", port: broker.port, version: .v5, clientID: "responder"))
        try await responder.connect()
        try await responder.subscribe(to: "service/request", qos: .atLeastOnce)
        let serving = Task {
            for try await request in responder.messages {
                var properties = Properties()
                properties.correlationData = request.properties.correlationData
                try await responder.publish(request.properties.responseTopic ?? "missing", payload: "pong:" + request.payloadString,
                                            qos: .atLeastOnce, properties: properties)
            }
        }
        let result = await run(.rr, ["-h", "127.0.0.1", "-p", String(broker.port), "-t", "service/request", "-e", "service/reply",
                                     "-m", "ping", "-q", "1", "-D", "publish", "correlation-data", "id-42", "-F", "%t %p %D"])
        XCTAssertEqual(result.code, 0, "\(result)")
        XCTAssertEqual(result.stdout, "service/reply pong:ping id-42\n")
        await responder.disconnect()
        serving.cancel()

        let nobody = await run(.rr, ["-h", "127.0.0.1", "-p", String(broker.port), "-t", "void", "-e", "void/reply", "-m", "x", "-W", "1"])
        XCTAssertEqual(nobody.code, 27)
        XCTAssertEqual(nobody.stderr, "Timed out\n")
        let incomplete = await run(.rr, ["-t", "a", "-m", "x"])
        XCTAssertEqual(incomplete.code, 1)
        XCTAssertEqual(incomplete.stderr, "Error: All of topic, message, and response topic must be supplied.\n\nUse 'midge rr --help' to see usage.\n")
    }

    // MARK: - Errors and -d

    func testConnectionErrors() async throws {
        let closed = try TestBroker()
        let port = closed.port
        closed.shutdown()
        let unreachable = await run(.pub, ["-h", "127.0.0.1", "-p", String(port), "-t", "a", "-m", "b"])
        XCTAssertEqual(unreachable.code, 1)
        XCTAssertEqual(unreachable.stderr, "Error: Connection refused\n")
        let subUnreachable = await run(.sub, ["-h", "127.0.0.1", "-p", String(port), "-t", "a"])
        XCTAssertEqual(subUnreachable.code, 1)
        XCTAssertEqual(subUnreachable.stderr, "Error: Connection refused\n")

        let refusing = try TestBroker(allowAnonymous: false)
        defer { refusing.shutdown() }
        let base = ["-h", "127.0.0.1", "-p", String(refusing.port)]
        let v3 = await run(.pub, base + ["-t", "a", "-m", "b"])
        XCTAssertEqual(v3.code, 5)
        XCTAssertEqual(v3.stderr, "Connection error: Connection Refused: not authorised.\nError: The connection was refused.\n")
        let v5 = await run(.pub, base + ["-t", "a", "-m", "b", "-V", "5"])
        XCTAssertEqual(v5.code, 135)
        XCTAssertEqual(v5.stderr, "Connection error: Not authorized\nError: A network protocol error occurred when communicating with the broker.\n")
        let sub3 = await run(.sub, base + ["-t", "a"])
        XCTAssertEqual(sub3.code, 5)
        XCTAssertEqual(sub3.stderr, "Connection error: Connection Refused: not authorised.\n")
        let sub5 = await run(.sub, base + ["-t", "a", "-V", "mqttv5"])
        XCTAssertEqual(sub5.code, 135)
        XCTAssertEqual(sub5.stderr, "Connection error: Not authorized\n")
        let rr = await run(.rr, base + ["-t", "a", "-e", "b", "-m", "c"])
        XCTAssertEqual(rr.code, 135)
        XCTAssertEqual(rr.stderr, "Connection error: Not authorized\n")
        let quiet = await run(.pub, base + ["-t", "a", "-m", "b", "--quiet"])
        XCTAssertEqual(quiet.code, 5)
        XCTAssertEqual(quiet.stderr, "")
    }

    func testUsageErrors() async {
        let qos = await run(.pub, ["-t", "a", "-m", "b", "-q", "3"])
        XCTAssertEqual(qos.code, 1)
        XCTAssertEqual(qos.stderr, "Error: Invalid QoS given: 3\n\nUse 'midge pub --help' to see usage.\n")
        let topic = await run(.pub, ["-t", "a/#", "-m", "b"])
        XCTAssertEqual(topic.stderr, "Error: Invalid publish topic 'a/#', does it contain '+' or '#'?\n\nUse 'midge pub --help' to see usage.\n")
        let nothing = await run(.pub, ["-t", "a"])
        XCTAssertEqual(nothing.code, 1)
        XCTAssertEqual(nothing.stderr, "Error: Both topic and message must be supplied.\n")
        XCTAssertTrue(nothing.stdout.hasPrefix("midge pub is a simple mqtt client"), "the usage follows on standard output")
        let help = await run(.sub, ["--help"])
        XCTAssertEqual(help.code, 1, "mosquitto_sub --help exits with 1")
        XCTAssertTrue(help.stdout.contains("Usage: midge sub {[-h host]"))
        let version = await run(.rr, ["--version"])
        XCTAssertEqual(version.stdout, "midge rr version 0.1.0 (MidgeClient).\n")
        let noTopic = await run(.sub, ["-v"])
        XCTAssertEqual(noTopic.stderr, "Error: You must specify a topic to subscribe to.\n\nUse 'midge sub --help' to see usage.\n")
    }

    func testDebugTraces() async throws {
        let sub = try await startSub(broker, ["-d", "-i", "tracer-sub", "-t", "trace", "-q", "2", "-C", "1"])
        let published = await pub(broker, ["-d", "-i", "tracer", "-t", "trace", "-m", "hello", "-q", "1"])
        XCTAssertEqual(published.stdout, """
            Client tracer sending CONNECT
            Client tracer received CONNACK (0)
            Client tracer sending PUBLISH (d0, q1, r0, m1, 'trace', ... (5 bytes))
            Client tracer received PUBACK (Mid: 1, RC:0)
            Client tracer sending DISCONNECT

            """)
        let result = await sub.finish()
        // The message line comes after "received PUBLISH"; before or after the PUBACK line
        // depends on timing (mosquitto_sub prints it after).
        var lines = result.stdout.split(separator: "\n").map(String.init)
        let message = try XCTUnwrap(lines.firstIndex(of: "hello"), result.stdout)
        XCTAssertGreaterThan(message, try XCTUnwrap(lines.firstIndex { $0.contains("received PUBLISH") }))
        lines.remove(at: message)
        XCTAssertEqual(lines, [
            "Client tracer-sub sending CONNECT",
            "Client tracer-sub received CONNACK (0)",
            "Client tracer-sub sending SUBSCRIBE (Mid: 1, Topic: trace, QoS: 2, Options: 0x00)",
            "Client tracer-sub received SUBACK",
            "Subscribed (mid: 1): 2",
            "Client tracer-sub received PUBLISH (d0, q1, r0, m1, 'trace', ... (5 bytes))",
            "Client tracer-sub sending PUBACK (m1, rc0)",
            "Client tracer-sub sending DISCONNECT",
        ])

        let v5 = await pub(broker, ["-d", "-V", "5", "-t", "trace", "-n", "-q", "2"])
        let v5Lines = v5.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(v5Lines.first, "Client (null) sending CONNECT", "no id yet: (null), as libmosquitto prints it")
        XCTAssertEqual(v5Lines.count, 7, v5.stdout)
        XCTAssertTrue(v5Lines[1].hasPrefix("Client auto-") && v5Lines[1].hasSuffix(" received CONNACK (0)"), "the assigned id from then on")
        XCTAssertTrue(v5Lines[2].hasSuffix(" sending PUBLISH (d0, q2, r0, m1, 'trace', ... (0 bytes))"))
        XCTAssertTrue(v5Lines[3].hasSuffix(" received PUBREC (Mid: 1)"))
        XCTAssertTrue(v5Lines[4].hasSuffix(" sending PUBREL (m1)"))
        XCTAssertTrue(v5Lines[5].hasSuffix(" received PUBCOMP (Mid: 1, RC:0)"))
        XCTAssertTrue(v5Lines[6].hasSuffix(" sending DISCONNECT"))
    }

    func testURLOption() async throws {
        let sub = try await startSub(broker, ["-t", "url/topic", "-C", "1", "-v"])
        await pub(broker, ["-L", "mqtt://127.0.0.1:\(broker.port)/url/topic", "-m", "via url"])
        let result = await sub.finish()
        XCTAssertEqual(result.stdout, "url/topic via url\n")
    }
}
