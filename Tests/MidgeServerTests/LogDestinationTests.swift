import Foundation
import MQTTCodec
import MidgeBroker
import MidgeConfig
import MidgeServer
import MidgeTestSupport
import NIOCore
import XCTest

/// `log_dest syslog` (with `log_facility`), `log_dest topic`, `log_dest none` and the log
/// file's reopening, through the process's real outputs (`LogOutputs`): syslog datagrams are
/// read from a Unix datagram socket the test binds in place of /dev/log; topic lines arrive at
/// an MQTT subscriber of `$SYS/broker/log/#` over a real socket.
final class LogDestinationTests: XCTestCase {
    private func configuration(_ text: String) throws -> BrokerConfiguration {
        try ConfigFileParser.parse(text, fileName: "log.conf")
    }

    // MARK: syslog

    /// A bound datagram socket standing in for /dev/log.
    private final class DatagramReceiver {
        let path: String
        let fd: Int32

        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("midge-devlog-\(UUID().uuidString.prefix(8))").path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit {
            close(fd)
            unlink(path)
        }

        /// The next datagram, nil after 5 s.
        func receive() -> String? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            return count >= 0 ? String(decoding: buffer.prefix(count), as: UTF8.self) : nil
        }
    }

    /// `<PRI>Mmm dd hh:mm:ss midge[PID]: LINE`, as glibc's syslog(3) sends to /dev/log.
    private func parseSyslog(_ datagram: String?, file: StaticString = #filePath, line: UInt = #line) -> (priority: Int, message: String)? {
        guard let datagram else {
            XCTFail("no datagram", file: file, line: line)
            return nil
        }
        let regex = try! NSRegularExpression(pattern: #"^<(\d+)>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d midge\[(\d+)\]: (.*)$"#)
        guard let match = regex.firstMatch(in: datagram, range: NSRange(datagram.startIndex..., in: datagram)) else {
            XCTFail("not RFC 3164 as syslog(3) writes it: \(datagram.debugDescription)", file: file, line: line)
            return nil
        }
        let text = datagram as NSString
        XCTAssertEqual(Int32(text.substring(with: match.range(at: 2))), getpid(), "the pid is the process's", file: file, line: line)
        return (Int(text.substring(with: match.range(at: 1)))!, text.substring(with: match.range(at: 3)))
    }

    func testSyslogSendsOneDatagramPerLineWithTheFacilityOfLogFacilityAndMosquittosPriorities() throws {
        let receiver = try DatagramReceiver()
        let config = try configuration("log_dest syslog\nlog_facility 5\nlog_type all\nlog_timestamp false\n")
        XCTAssertEqual(config.logDestinations, [.syslog])
        let outputs = try LogOutputs(destinations: config.logDestinations, facility: config.logFacility, syslogPath: receiver.path)
        let log = BrokerLog(types: config.logTypes, timestamp: config.logTimestamp, sink: outputs)
        log.error("an error")
        log.warning("a warning")
        log.notice("a notice")
        log.info("some information")
        log.debug("a debug line")
        log.log(.subscribe, "client 1 a/b")
        log.log(.unsubscribe, "client a/b")
        // local5 is facility 21: 21 * 8 + severity (LOG_ERR 3, WARNING 4, NOTICE 5, INFO 6, DEBUG 7);
        // subscribe and unsubscribe lines are notices in Mosquitto.
        let expected = [(171, "an error"), (172, "a warning"), (173, "a notice"), (174, "some information"),
                        (175, "a debug line"), (173, "client 1 a/b"), (173, "client a/b")]
        for (priority, message) in expected {
            guard let got = parseSyslog(receiver.receive()) else { return }
            XCTAssertEqual(got.priority, priority, message)
            XCTAssertEqual(got.message, message)
        }
    }

    func testSyslogDefaultsToTheDaemonFacilityAndKeepsMosquittosTimestampInTheMessage() throws {
        let receiver = try DatagramReceiver()
        let config = try configuration("log_dest syslog\n")
        XCTAssertNil(config.logFacility)
        let outputs = try LogOutputs(destinations: config.logDestinations, facility: config.logFacility, syslogPath: receiver.path)
        let log = BrokerLog(types: config.logTypes, timestamp: config.logTimestamp, sink: outputs)
        let before = time(nil)
        log.notice("started")
        guard let got = parseSyslog(receiver.receive()) else { return }
        XCTAssertEqual(got.priority, 3 * 8 + 5, "daemon.notice")
        // Mosquitto hands syslog(3) its own formatted line, time stamp included.
        let parts = got.message.split(separator: ":", maxSplits: 1)
        XCTAssertEqual(parts.count, 2)
        XCTAssertGreaterThanOrEqual(Int(parts[0]) ?? 0, before)
        XCTAssertEqual(parts.last, " started")
    }

    func testSyslogWithoutALoggerDropsLinesAndCarriesOn() throws {
        let outputs = try LogOutputs(destinations: [.syslog, .stderr], syslogPath: "/nonexistent/dev-log")
        let log = BrokerLog(types: [.notice], sink: outputs)
        log.notice("nobody listens")
        outputs.drain(timeout: 2)
    }

    // MARK: none, file

    func testLogDestNoneWritesNothing() throws {
        let config = try configuration("log_dest stderr\nlog_dest none\n")
        XCTAssertEqual(config.logDestinations, [.none])
        let outputs = try LogOutputs(destinations: config.logDestinations)
        XCTAssertTrue(outputs.isEmpty, "no destination: the log formats nothing")
    }

    func testLogFileIsReopenedOnRequestSoARotatedFileStartsAnew() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("midge-logfile-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("midge.log").path
        let outputs = try LogOutputs(destinations: [.file(path)])
        XCTAssertEqual(outputs.createdFiles, [path], "created by this process (handed to `user` before the switch)")
        let log = BrokerLog(types: [.notice], timestamp: false, sink: outputs)
        log.notice("before rotation")
        outputs.drain(timeout: 5)
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        outputs.reopenFiles()
        log.notice("after rotation")
        outputs.drain(timeout: 5)
        XCTAssertEqual(try String(contentsOfFile: path + ".1", encoding: .utf8), "before rotation\n")
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "after rotation\n")
        let again = try LogOutputs(destinations: [.file(path)])
        XCTAssertEqual(again.createdFiles, [], "an existing file is appended to, not created")
    }

    // MARK: topic

    func testTopicDestinationPublishesLogLinesOnSysBrokerLogAtQoS2WithExpiry20() async throws {
        let config = try configuration("log_dest topic\nlog_type all\n")
        XCTAssertEqual(config.logDestinations, [.topic])
        let outputs = try LogOutputs(destinations: config.logDestinations)
        let log = BrokerLog(types: config.logTypes, timestamp: config.logTimestamp, sink: outputs)
        let broker = try TestBroker(log: log)
        defer { broker.shutdown() }
        outputs.attach(broker: broker.broker)

        let (watcher, _) = try await broker.connect("watcher", version: .v5)
        try await watcher.send(.subscribe(SubscribePacket(packetID: 1, subscriptions: [
            TopicSubscription(filter: "$SYS/broker/log/#", options: .init(qos: .exactlyOnce)),
        ])))
        var received: [PublishPacket] = []
        /// Reads until `done` holds for what arrived (answering QoS 2), 10 s at most.
        func collect(until done: ([PublishPacket]) -> Bool) async throws {
            let deadline = Date().addingTimeInterval(10)
            while !done(received) && Date() < deadline {
                guard let packet = try? await watcher.receive(timeout: .seconds(1)) else { continue }
                switch packet {
                case .publish(let publish):
                    received.append(publish)
                    if publish.qos == .exactlyOnce { try await watcher.send(.pubrec(PubAckPacket(packetID: publish.packetID))) }
                case .pubrel(let release):
                    try await watcher.send(.pubcomp(PubAckPacket(packetID: release.packetID)))
                default:
                    break
                }
            }
        }
        try await collect { $0.contains { $0.topic == "$SYS/broker/log/M/subscribe" } }

        let (other, _) = try await broker.connect("other-client", version: .v3_1_1)
        try await other.send(.subscribe(SubscribePacket(packetID: 1, subscriptions: [TopicSubscription(filter: "some/topic")])))
        try await collect { packets in
            packets.contains { $0.topic == "$SYS/broker/log/N" && $0.payload.text.contains("as other-client") }
                && packets.contains { $0.topic == "$SYS/broker/log/M/subscribe" && $0.payload.text.contains("other-client 0 some/topic") }
        }
        let connected = received.first { $0.topic == "$SYS/broker/log/N" && $0.payload.text.contains("as other-client") }
        XCTAssertNotNil(connected, "New client connected ... is a notice: \(received.map(\.topic))")
        if let connected {
            XCTAssertTrue(connected.payload.text.contains("New client connected from 127.0.0.1"), connected.payload.text)
            XCTAssertNotNil(Int(connected.payload.text.prefix { $0 != ":" }), "the line with its time stamp")
            XCTAssertEqual(connected.qos, .exactlyOnce, "Mosquitto queues log lines at QoS 2")
            XCTAssertFalse(connected.retain)
            let expiry = connected.properties.messageExpiryInterval
            XCTAssertNotNil(expiry)
            XCTAssertLessThanOrEqual(expiry ?? 99, 20, "expiry 20 s")
        }
        XCTAssertTrue(received.contains { $0.topic == "$SYS/broker/log/M/subscribe" && $0.payload.text.contains("other-client 0 some/topic") },
                      "\(received.map { "\($0.topic) \($0.payload.text)" })")
        XCTAssertFalse(received.contains { $0.topic == "$SYS/broker/log/D" }, "debug lines are never published")
        let allowed: Set<String> = ["$SYS/broker/log/E", "$SYS/broker/log/W", "$SYS/broker/log/N", "$SYS/broker/log/I",
                                    "$SYS/broker/log/M/subscribe", "$SYS/broker/log/M/unsubscribe"]
        XCTAssertTrue(received.allSatisfy { allowed.contains($0.topic) }, "\(received.map(\.topic))")
        outputs.attach(broker: nil)
    }
}
