import Foundation
import XCTest
import MidgeBroker
@testable import MidgeConfig

final class ConfigFileParserTests: XCTestCase {

    // MARK: - Helpers

    private var tempDirs: [String] = []

    override func tearDown() {
        for dir in tempDirs { try? FileManager.default.removeItem(atPath: dir) }
        tempDirs = []
        super.tearDown()
    }

    /// A fresh temporary directory, removed in tearDown.
    private func makeTempDir() throws -> String {
        let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("midge-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        tempDirs.append(dir)
        return dir
    }

    @discardableResult
    private func write(_ text: String, to path: String) throws -> String {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func parse(_ text: String, file: String = "test.conf") throws -> BrokerConfiguration {
        try ConfigFileParser.parse(text, fileName: file)
    }

    /// Asserts that parsing fails at `line` of `file`, with a message containing `contains`.
    private func assertError(_ text: String, line: Int, file: String = "test.conf", contains: String? = nil,
                             _ message: String = "", sourceFile: StaticString = #filePath, sourceLine: UInt = #line) {
        do {
            let config = try ConfigFileParser.parse(text, fileName: file)
            XCTFail("expected an error at \(file):\(line) for \(text.debugDescription), got \(config) \(message)",
                    file: sourceFile, line: sourceLine)
        } catch let error as ConfigError {
            XCTAssertEqual(error.file, file, "\(text.debugDescription): \(error)", file: sourceFile, line: sourceLine)
            XCTAssertEqual(error.line, line, "\(text.debugDescription): \(error)", file: sourceFile, line: sourceLine)
            if let contains = contains {
                XCTAssertTrue(error.message.contains(contains),
                              "\(text.debugDescription) \(message): message \"\(error.message)\" should contain \"\(contains)\"",
                              file: sourceFile, line: sourceLine)
            }
            XCTAssertTrue(error.description.hasPrefix("\(file):\(line): "), file: sourceFile, line: sourceLine)
        } catch {
            XCTFail("unexpected error type \(error)", file: sourceFile, line: sourceLine)
        }
    }

    /// One error row: the configuration text, the line its error names, and a part of the message
    /// (nil: any message). Each row is checked as `assertError` does, its text named in failures.
    typealias ErrorRow = (text: String, line: Int, contains: String?)

    private func assertErrors(_ rows: [ErrorRow], file: String = "test.conf",
                              sourceFile: StaticString = #filePath, sourceLine: UInt = #line) {
        for (index, row) in rows.enumerated() {
            assertError(row.text, line: row.line, file: file, contains: row.contains, "(row \(index + 1))",
                        sourceFile: sourceFile, sourceLine: sourceLine)
        }
    }

    /// Value rows: each text parses and gives `expected` at `keyPath`; a failure names the row's text.
    private func assertValues<T: Equatable>(_ keyPath: KeyPath<BrokerConfiguration, T>, _ rows: [(text: String, expected: T)],
                                            sourceFile: StaticString = #filePath, sourceLine: UInt = #line) {
        for row in rows {
            guard let config = assertParses(row.text, sourceFile: sourceFile, sourceLine: sourceLine) else { continue }
            XCTAssertEqual(config[keyPath: keyPath], row.expected, "\(row.text.debugDescription)", file: sourceFile, line: sourceLine)
        }
    }

    private func assertParses(_ text: String, sourceFile: StaticString = #filePath, sourceLine: UInt = #line) -> BrokerConfiguration? {
        do {
            return try parse(text)
        } catch {
            XCTFail("\(text.debugDescription) should parse, got \(error)", file: sourceFile, line: sourceLine)
            return nil
        }
    }

    // MARK: - Defaults and syntax

    func testEmptyFileGivesDefaults() throws {
        let config = try parse("")
        XCTAssertEqual(config, BrokerConfiguration.defaults)
        XCTAssertEqual(config.listeners, [])
        XCTAssertFalse(config.perListenerSettings)
        XCTAssertEqual(config.security, SecuritySettings(allowAnonymous: nil, allowZeroLengthClientID: true, autoIDPrefix: "auto-"))
        XCTAssertEqual(config.maxKeepalive, 65535)
        XCTAssertEqual(config.maxPacketSize, 0)
        XCTAssertEqual(config.messageSizeLimit, 0)
        XCTAssertEqual(config.maxInflightMessages, 20)
        XCTAssertEqual(config.maxInflightBytes, 0)
        XCTAssertEqual(config.maxQueuedMessages, 1000)
        XCTAssertEqual(config.maxQueuedBytes, 0)
        XCTAssertFalse(config.queueQoS0Messages)
        XCTAssertTrue(config.retainAvailable)
        XCTAssertNil(config.persistentClientExpiration)
        XCTAssertFalse(config.upgradeOutgoingQoS)
        XCTAssertFalse(config.checkRetainSource)
        XCTAssertFalse(config.persistence)
        XCTAssertEqual(config.persistenceFile, "mosquitto.db")
        XCTAssertNil(config.persistenceLocation)
        XCTAssertEqual(config.autosaveInterval, 1800)
        XCTAssertFalse(config.autosaveOnChanges)
        XCTAssertFalse(config.persistenceFsync)
        XCTAssertEqual(config.logTypes, [.error, .warning, .notice, .information])
        XCTAssertEqual(config.logDestinations, [.stderr])
        XCTAssertTrue(config.logTimestamp)
        XCTAssertNil(config.logTimestampFormat)
        XCTAssertTrue(config.connectionMessages)
        XCTAssertFalse(config.setTCPNoDelay)
        XCTAssertEqual(config.maxTopicAlias, 10)
        XCTAssertEqual(config.warnings, [])
    }

    func testCommentsBlankLinesAndWhitespace() throws {
        let text = "# a comment\n\n   \n\t\n   # indented comment\n\t# tab comment\n"
            + "  max_queued_messages   55  \n"          // leading/trailing spaces, several separators
            + "max_inflight_messages\t7\t\n"            // tabs
            + "retain_available false\r\n"             // CRLF
            + "queue_qos0_messages true\r"             // CR at end of file
        let config = try parse(text)
        XCTAssertEqual(config.maxQueuedMessages, 55)
        XCTAssertEqual(config.maxInflightMessages, 7)
        XCTAssertFalse(config.retainAvailable)
        XCTAssertTrue(config.queueQoS0Messages)
    }

    func testTrailingCommentAfterSingleValue() throws {
        let config = try parse("max_queued_messages 10 # ten\nlistener 1883 # all interfaces\nlistener 1884 127.0.0.1 #local\n")
        XCTAssertEqual(config.maxQueuedMessages, 10)
        XCTAssertEqual(config.listeners.map(\.port), [1883, 1884])
        XCTAssertNil(config.listeners[0].bindAddress)
        XCTAssertEqual(config.listeners[1].bindAddress, "127.0.0.1")
    }

    func testLineNumbersCountCommentsAndBlankLines() {
        assertError("# c\n\nlistener 1883\n\n  \nbogus_option 1\n", line: 6, contains: "Unknown configuration variable \"bogus_option\"")
        assertError("a\r\nb\r\n", line: 1)
    }

    func testErrorDescriptionFormat() {
        let error = ConfigError(file: "/etc/mosquitto/mosquitto.conf", line: 12, message: "Something is wrong.")
        XCTAssertEqual(error.description, "/etc/mosquitto/mosquitto.conf:12: Something is wrong.")
        XCTAssertEqual("\(error)", "/etc/mosquitto/mosquitto.conf:12: Something is wrong.")
    }

    func testMalformedUTF8IsRejected() throws {
        let dir = try makeTempDir()
        let path = (dir as NSString).appendingPathComponent("bad.conf")
        var bytes = Array("# comment \u{e9}\n".utf8)
        bytes += [0x23, 0xFF, 0x0A]                              // invalid UTF-8 in a comment is fine
        bytes += Array("auto_id_prefix ab".utf8) + [0xC3, 0x28, 0x0A]  // but not in a value
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        XCTAssertThrowsError(try ConfigFileParser.parse(contentsOf: path)) { error in
            XCTAssertEqual(error as? ConfigError, ConfigError(file: path, line: 3, message: "Malformed UTF-8 in configuration."))
        }
    }

    func testPasswordAndACLFilesGlobalAndPerListener() throws {
        let global = try ConfigFileParser.parse("password_file /etc/m/pw\nacl_file /etc/m/acl\nlistener 1883\n", fileName: "g.conf")
        XCTAssertEqual(global.security.passwordFile, "/etc/m/pw")
        XCTAssertEqual(global.security.aclFile, "/etc/m/acl")
        let perListener = try ConfigFileParser.parse(
            "per_listener_settings true\nlistener 1883\npassword_file /a\nlistener 1884\nacl_file /b\n", fileName: "p.conf")
        XCTAssertEqual(perListener.listeners.map(\.security.passwordFile), ["/a", nil])
        XCTAssertEqual(perListener.listeners.map(\.security.aclFile), [nil, "/b"])
        XCTAssertEqual(perListener.security.passwordFile, nil)
    }

    func testConnectTimeoutDirective() throws {
        XCTAssertEqual(try ConfigFileParser.parse("", fileName: "d.conf").connectTimeout, 15)
        XCTAssertEqual(try ConfigFileParser.parse("connect_timeout 0\n", fileName: "d.conf").connectTimeout, 0)
        XCTAssertEqual(try ConfigFileParser.parse("connect_timeout 30\n", fileName: "d.conf").connectTimeout, 30)
        assertError("connect_timeout -1", line: 1, contains: "connect_timeout")
        assertError("connect_timeout soon", line: 1, contains: "connect_timeout")
    }

    func testBruteForceDirectives() throws {
        let defaults = try ConfigFileParser.parse("", fileName: "d.conf")
        XCTAssertEqual([defaults.authFailureLimit, defaults.authFailureWindow, defaults.authBanTime, defaults.connectionRateLimit], [10, 60, 60, 0])
        let set = try ConfigFileParser.parse("auth_failure_limit 3\nauth_failure_window 10\nauth_ban_time 5\nconnection_rate_limit 20\n", fileName: "b.conf")
        XCTAssertEqual([set.authFailureLimit, set.authFailureWindow, set.authBanTime, set.connectionRateLimit], [3, 10, 5, 20])
        assertError("auth_failure_limit -1", line: 1, contains: "auth_failure_limit")
        assertError("auth_ban_time 0", line: 1, contains: "auth_ban_time")
        XCTAssertFalse(defaults.aclRefusesSubscriptions)
        XCTAssertTrue(try ConfigFileParser.parse("acl_refuses_subscriptions true\n", fileName: "s.conf").aclRefusesSubscriptions)
    }

    func testUnknownDirective() {
        assertErrors([
            ("foo_bar 1", 1, "Unknown configuration variable \"foo_bar\"."),
            ("listener 1883\nallow_anonymus true\n", 2, "\"allow_anonymus\""),
            // Removed in Mosquitto 2.0 (Mosquitto 2.0.11 says: Unknown configuration variable "store_clean_interval".)
            ("store_clean_interval 10", 1, "Unknown configuration variable"),
            // Directive names are case sensitive.
            ("Port 1883", 1, "Unknown configuration variable \"Port\"."),
        ])
    }

    func testNotSupportedYetDirectives() {
        let names = ["auth_plugin", "plugin",
                     "connection", "address", "addresses", "topic", "remote_clientid", "remote_username",
                     "remote_password", "clientid", "username", "password", "local_clientid", "local_username",
                     "local_password", "bridge_cafile", "bridge_capath", "bridge_certfile", "bridge_keyfile",
                     "bridge_insecure", "bridge_identity", "bridge_psk", "bridge_tls_version", "bridge_alpn",
                     "bridge_attempt_unsubscribe", "bridge_bind_address", "bridge_max_packet_size",
                     "bridge_outgoing_retain", "bridge_protocol_version", "bridge_require_ocsp",
                     "cleansession", "local_cleansession", "keepalive_interval", "notifications",
                     "notifications_local_only", "notification_topic", "round_robin", "start_type",
                     "try_private", "restart_timeout", "idle_timeout", "threshold",
                     "auth_opt_db_host", "plugin_opt_config_file"]
        // The list above is the whole refused list (bridges and the rest), plus prefixes.
        XCTAssertEqual(Set(names).subtracting(["auth_opt_db_host", "plugin_opt_config_file"]), ConfigFileParser.notSupportedYet)
        XCTAssertTrue(ConfigFileParser.notSupportedYet.isDisjoint(with: MosquittoConfReader.directives.keys),
                      "a directive with a handler is no longer refused")
        for name in names {
            assertError("listener 1883\n\(name) some value\n", line: 2, contains: "directive '\(name)' is not supported yet")
            // Also with no value at all.
            assertError("\(name)\n", line: 1, contains: "directive '\(name)' is not supported yet")
        }
        XCTAssertThrowsError(try parse("\n\nauth_plugin /usr/lib/x.so")) { error in
            XCTAssertEqual("\(error)", "test.conf:3: directive 'auth_plugin' is not supported yet")
        }
    }

    // MARK: - Listeners

    func testListenerForms() throws {
        let config = try parse("listener 1883\nlistener 8883 0.0.0.0\nlistener 1884 ::1\nlistener 1885 localhost\nlistener 0 /tmp/mqtt.sock\n")
        XCTAssertEqual(config.listeners.count, 5)
        XCTAssertEqual(config.listeners[0], ListenerConfiguration(port: 1883, source: ConfigSource(file: "test.conf", line: 1)))
        XCTAssertEqual(config.listeners[1].port, 8883)
        XCTAssertEqual(config.listeners[1].bindAddress, "0.0.0.0")
        XCTAssertEqual(config.listeners[2].bindAddress, "::1")
        XCTAssertEqual(config.listeners[3].bindAddress, "localhost")
        XCTAssertEqual(config.listeners[4].port, 0)
        XCTAssertEqual(config.listeners[4].unixSocketPath, "/tmp/mqtt.sock")
        XCTAssertNil(config.listeners[4].bindAddress)
        XCTAssertEqual(config.listeners[4].source, ConfigSource(file: "test.conf", line: 5))
        for l in config.listeners {
            XCTAssertEqual(l.maxConnections, -1)
            XCTAssertEqual(l.protocolName, "mqtt")
            XCTAssertNil(l.socketDomain)
            XCTAssertNil(l.bindInterface)
            XCTAssertEqual(l.maxTopicAlias, 10)
            XCTAssertEqual(l.security, SecuritySettings())
        }
        XCTAssertEqual(config.listeners.map(\.port), [1883, 8883, 1884, 1885, 0])
        XCTAssertEqual(config.listeners[0].port, 1883)
        XCTAssertEqual(try parse("listener 65535").listeners[0].port, 65535)
        XCTAssertEqual(try parse("listener 1").listeners[0].port, 1)
    }

    func testListenerErrors() {
        assertErrors([
            ("listener", 1, "Missing port for listener"),
            ("listener # comment", 1, "Missing port"),
            ("listener 70000", 1, "Invalid listener port 70000"),
            ("listener 65536", 1, "Invalid listener port"),
            ("listener -1", 1, "Invalid listener port -1"),
            ("listener abc", 1, "Invalid value for listener: \"abc\" (expected an integer)."),
            ("listener 18x83", 1, "expected an integer"),
            ("listener 0", 1, "A listener with port 0 must provide a Unix socket path."),
            ("listener 1883 127.0.0.1 extra", 1, "Unexpected extra value \"extra\""),
            ("listener 0 /tmp/a.sock extra", 1, "Unexpected extra value"),
        ])
    }

    func testListenerOptionsApplyToMostRecentListener() throws {
        let config = try parse("""
            listener 1883
            max_connections 100
            socket_domain ipv4
            listener 8080 127.0.0.1
            protocol websockets
            bind_interface lo
            max_topic_alias 0
            socket_domain ipv6
            max_connections -5
            listener 1884
            protocol mqtt
            max_topic_alias 65535
            """)
        XCTAssertEqual(config.listeners.count, 3)
        let a = config.listeners[0], b = config.listeners[1], c = config.listeners[2]
        XCTAssertEqual(a.maxConnections, 100)
        XCTAssertEqual(a.socketDomain, .ipv4)
        XCTAssertEqual(a.protocolName, "mqtt")
        XCTAssertNil(a.bindInterface)
        XCTAssertEqual(a.maxTopicAlias, 10)
        XCTAssertEqual(b.port, 8080)
        XCTAssertEqual(b.bindAddress, "127.0.0.1")
        XCTAssertEqual(b.protocolName, "websockets")
        XCTAssertEqual(b.bindInterface, "lo")
        XCTAssertEqual(b.maxTopicAlias, 0)
        XCTAssertEqual(b.socketDomain, .ipv6)
        XCTAssertEqual(b.maxConnections, -1, "negative max_connections means unlimited")
        XCTAssertEqual(b.source, ConfigSource(file: "test.conf", line: 4))
        XCTAssertEqual(c.protocolName, "mqtt")
        XCTAssertEqual(c.maxTopicAlias, 65535)
        XCTAssertEqual(c.maxConnections, -1)
    }

    func testListenerOptionErrors() {
        assertErrors([
            ("listener 1883\nmax_connections", 2, "Missing value for max_connections."),
            ("listener 1883\nmax_connections abc", 2, "expected an integer"),
            ("listener 1883\nmax_connections 10 20", 2, "Unexpected extra value \"20\""),
            ("listener 1883\nmax_connections 99999999999", 2, "out of range"),
            ("listener 1883\nsocket_domain ipv5", 2, "Invalid value for socket_domain: \"ipv5\""),
            ("listener 1883\nsocket_domain", 2, "Missing value"),
            ("listener 1883\nsocket_domain ipv4 ipv6", 2, "Unexpected extra value"),
            ("listener 1883\nprotocol foo", 2, "Invalid value for protocol: \"foo\""),
            ("listener 1883\nprotocol mqttsn", 2, "Invalid value for protocol"),
            ("listener 1883\nprotocol", 2, "Missing value for protocol."),
            ("listener 1883\nprotocol mqtt websockets", 2, "Unexpected extra value"),
            ("listener 1883\nbind_interface", 2, "Missing value for bind_interface."),
            ("listener 1883\nbind_interface eth0 eth1", 2, "Unexpected extra value"),
            ("listener 1883\nbind_interface eth0\nbind_interface eth1", 3, "Duplicate bind_interface"),
            ("listener 1883\nmax_topic_alias 65536", 2, "Invalid max_topic_alias value 65536"),
            ("listener 1883\nmax_topic_alias -1", 2, "Invalid max_topic_alias value -1"),
            ("listener 1883\nmax_topic_alias x", 2, "expected an integer"),
            ("listener 1883\nmax_topic_alias", 2, "Missing value"),
            ("listener 1883\nmax_topic_alias 1 2", 2, "Unexpected extra value"),
            ("mount_point a/\nlistener 1883", 1, "You must create a listener before using the mount_point option"),
            ("listener 1883\nmount_point a/+/", 2, "Invalid mount_point 'a/+/'. Does it contain a wildcard character?"),
            ("listener 1883\nmount_point #", 2, "Invalid mount_point"),
            ("listener 1883\nmount_point", 2, "Missing value for mount_point."),
            ("listener 1883\nmax_qos 3", 2, "max_qos must be between 0 and 2 inclusive."),
            ("listener 1883\nmaximum_qos -1", 2, "max_qos must be between 0 and 2 inclusive."),
            ("listener 1883\nmax_qos one", 2, "expected an integer"),
            ("listener 1883\nuse_username_as_clientid yes", 2, "expected true or false"),
            ("listener 1883\nhttp_dir", 2, "Missing value for http_dir."),
        ])
    }

    func testListenerOptionsOfThisIssue() throws {
        // mount_point (rest of the line), max_qos and its synonym maximum_qos, use_username_as_clientid
        // and http_dir: options of the current listener, defaults 2 / false / nil.
        let config = try parse("listener 1883\nmount_point tenant/a/\nmax_qos 1\nuse_username_as_clientid true\n"
                               + "listener 8080\nprotocol websockets\nhttp_dir /srv/www\nmaximum_qos 0\nlistener 1884\n")
        XCTAssertEqual(config.listeners.map(\.mountPoint), ["tenant/a/", nil, nil])
        XCTAssertEqual(config.listeners.map(\.maxQoS), [1, 0, 2])
        XCTAssertEqual(config.listeners.map(\.useUsernameAsClientID), [true, false, false])
        XCTAssertEqual(config.listeners.map(\.httpDir), [nil, "/srv/www", nil])
        XCTAssertEqual(config.listeners[1].httpDirSource, ConfigSource(file: "test.conf", line: 7))
        XCTAssertTrue(config.warnings.isEmpty, "\(config.warnings)")
        // Before any listener line they configure the default listener, which they create (as in Mosquitto).
        for option in ["max_qos 1", "use_username_as_clientid true"] {
            let withDefault = try parse(option + "\nlistener 1884\n")
            XCTAssertEqual(withDefault.listeners.map(\.port), [1884, 1883], option)
        }
        XCTAssertEqual(try parse("listener 1884\nlistener 1885\nmax_qos 1\n").listeners.map(\.maxQoS), [2, 1])
        // http_dir on an MQTT listener: a warning (Mosquitto ignores it silently).
        let plain = try parse("listener 1883\nhttp_dir /srv/www\n")
        XCTAssertEqual(plain.warnings, ["test.conf:2: http_dir has no effect on a listener without 'protocol websockets'."])
    }

    func testBrokerWideOptionsOfThisIssue() throws {
        assertValues(\.clientIDPrefixes, [("", nil), ("clientid_prefixes secure-", "secure-"), ("clientid_prefixes a b", "a b")])
        assertValues(\.memoryLimit, [("", 0), ("memory_limit 1048576", 1_048_576), ("memory_limit 0", 0)])
        assertValues(\.websocketsHeadersSize, [("", 0), ("websockets_headers_size 4096", 4096)])
        assertValues(\.websocketsLogLevel, [("", 0), ("websockets_log_level 255", 255)])
        assertValues(\.sysInterval, [("", 10), ("sys_interval 0", 0), ("sys_interval 60", 60)])
        assertErrors([
            ("memory_limit -1", 1, "Invalid memory_limit value (-1)."),
            ("memory_limit lots", 1, "Invalid memory_limit value (lots)."),
            ("websockets_headers_size 65536", 1, "Websockets headers size must be between 0 and 65535 inclusive."),
            ("websockets_log_level x", 1, "expected an integer"),
            ("sys_interval 65536", 1, "Invalid sys_interval value (65536)."),
            ("sys_interval -1", 1, "Invalid sys_interval value (-1)."),
            ("clientid_prefixes", 1, "Missing value for clientid_prefixes."),
            // Mosquitto's meaning: an option of the auth_plugin before it.
            ("auth_plugin_deny_special_chars false", 1, "An auth_plugin_deny_special_chars option exists in the config file without an auth_plugin."),
        ])
        // Deprecated: a warning, as Mosquitto's notice; sys_interval: Midge has no $SYS tree yet.
        XCTAssertEqual(try parse("clientid_prefixes x-").warnings,
                       ["test.conf:1: The 'clientid_prefixes' option is now deprecated and will be removed in a future version."])
        XCTAssertEqual(try parse("sys_interval 30").warnings,
                       ["test.conf:1: sys_interval 30 is kept, but Midge publishes no $SYS tree yet (a later version will)."])
        XCTAssertEqual(try parse("sys_interval 0").warnings, [])
    }

    func testBrokerWideMaxTopicAliasIsTheLastOneThatConfiguredAnExistingListener() throws {
        XCTAssertEqual(try parse("listener 1883").maxTopicAlias, 10)
        XCTAssertEqual(try parse("listener 1883\nmax_topic_alias 5").maxTopicAlias, 5)
        let two = try parse("listener 1\nmax_topic_alias 5\nlistener 2\nmax_topic_alias 7\nlistener 3\n")
        XCTAssertEqual(two.maxTopicAlias, 7)
        XCTAssertEqual(two.listeners.map(\.maxTopicAlias), [5, 7, 10])
        XCTAssertEqual(two.listeners.map { two.maxTopicAlias(for: $0) }, [5, 7, 10])
        // Applied to the default listener, which is not created: no effect.
        XCTAssertEqual(try parse("max_topic_alias 3\nlistener 1883\n").maxTopicAlias, 10)
        XCTAssertEqual(try parse("max_topic_alias 3").maxTopicAlias, 10)
        // Applied to the default listener, which is created.
        XCTAssertEqual(try parse("max_topic_alias 3\nport 1884\nlistener 1883\nmax_topic_alias 4\n").maxTopicAlias, 4)
        let dir = try makeTempDir()
        try write("max_topic_alias 3\nport 1884\n", to: dir + "/a.conf")
        let config = try parse("listener 1883\nmax_topic_alias 4\ninclude_dir \(dir)\n")
        XCTAssertEqual(config.listeners.map(\.maxTopicAlias), [4, 3])
        XCTAssertEqual(config.maxTopicAlias, 3)
    }

    func testBindInterfaceMayBeRepeatedOnDifferentListeners() throws {
        let config = try parse("listener 1883\nbind_interface eth0\nlistener 1884\nbind_interface eth1\n")
        XCTAssertEqual(config.listeners.map(\.bindInterface), ["eth0", "eth1"])
    }

    // MARK: - Default listener (deprecated port / bind_address)

    func testPortCreatesDefaultListener() throws {
        let config = try parse("port 1884\n")
        XCTAssertEqual(config.listeners, [ListenerConfiguration(port: 1884, source: ConfigSource(file: "test.conf", line: 1))])
        XCTAssertTrue(config.warnings.contains { $0.hasPrefix("test.conf:1: ") && $0.contains("deprecated") })
    }

    func testPortErrors() {
        // Mosquitto 2.0.11: "Error: Invalid port value (0)."
        assertErrors([
            ("port 0", 1, "Invalid port value 0"),
            ("port 65536", 1, "Invalid port value 65536"),
            ("port -1", 1, "Invalid port value"),
            // Mosquitto reads "abc" as 0 and reports "Invalid port value (0)."
            ("port abc", 1, "Invalid value for port: \"abc\" (expected an integer)."),
            ("port", 1, "Missing value for port."),
            // Mosquitto ignores extra words; Midge rejects them.
            ("port 1883 extra", 1, "Unexpected extra value \"extra\" for port"),
            ("port 1883 1884", 1, "Unexpected extra value \"1884\""),
        ])
    }

    func testPortRepeatedLastOneWinsWithWarning() throws {
        let config = try parse("port 1884\nport 1885\n")
        XCTAssertEqual(config.listeners.map(\.port), [1885])
        XCTAssertEqual(config.listeners[0].source.line, 2)
        XCTAssertTrue(config.warnings.contains { $0.hasPrefix("test.conf:2: ") && $0.contains("multiple times") })
    }

    func testBindAddressCreatesDefaultListenerOn1883() throws {
        let config = try parse("bind_address 127.0.0.1\n")
        XCTAssertEqual(config.listeners.count, 1)
        XCTAssertEqual(config.listeners[0].port, 1883)
        XCTAssertEqual(config.listeners[0].bindAddress, "127.0.0.1")
        XCTAssertEqual(config.listeners[0].source.line, 1)
        XCTAssertTrue(config.warnings.contains { $0.contains("bind_address") && $0.contains("deprecated") })
    }

    func testBindAddressAndPortAlwaysConfigureTheDefaultListenerAndComeLast() throws {
        // bind_address/port are not per-listener: after a `listener` line they still configure the
        // default listener, which Mosquitto appends after the explicit listeners.
        let config = try parse("listener 1883\nbind_address 127.0.0.1\nport 1884\nlistener 1885\n")
        XCTAssertEqual(config.listeners.map(\.port), [1883, 1885, 1884])
        XCTAssertNil(config.listeners[0].bindAddress)
        XCTAssertEqual(config.listeners[2].bindAddress, "127.0.0.1")
        XCTAssertEqual(config.listeners[2].source.line, 3, "default listener source is the port line")
    }

    func testBindAddressErrors() {
        // Mosquitto 2.0.11: "Error: Duplicate default listener bind_address value in configuration."
        assertError("bind_address 127.0.0.1\nbind_address 127.0.0.1", line: 2, contains: "Duplicate bind_address")
        assertError("bind_address", line: 1, contains: "Missing value for bind_address.")
        XCTAssertEqual(try? parse("bind_address 127.0.0.1 # local").listeners.first?.bindAddress, "127.0.0.1")
        assertError("bind_address 127.0.0.1 ::1", line: 1, contains: "Unexpected extra value \"::1\"")
    }

    func testListenerOptionsBeforeAnyListenerGoToTheDefaultListener() throws {
        let config = try parse("max_connections 10\nsocket_domain ipv4\nbind_interface lo\nmax_topic_alias 3\nport 1884\nlistener 1883\nmax_connections 20\n")
        XCTAssertEqual(config.listeners.count, 2)
        XCTAssertEqual(config.listeners[0].port, 1883)
        XCTAssertEqual(config.listeners[0].maxConnections, 20)
        XCTAssertNil(config.listeners[0].socketDomain)
        let def = config.listeners[1]
        XCTAssertEqual(def.port, 1884)
        XCTAssertEqual(def.maxConnections, 10)
        XCTAssertEqual(def.socketDomain, .ipv4)
        XCTAssertEqual(def.bindInterface, "lo")
        XCTAssertEqual(def.maxTopicAlias, 3)
        XCTAssertEqual(def.source, ConfigSource(file: "test.conf", line: 5))
    }

    func testListenerOptionBeforeListenerCreatesDefaultListenerOn1883LikeMosquitto() throws {
        // Checked with mosquitto 2.0.11: "max_connections 10 / listener 28010" listens on 28010 and 1883.
        let config = try parse("max_connections 10\nlistener 28010\n")
        XCTAssertEqual(config.listeners.map(\.port), [28010, 1883])
        XCTAssertEqual(config.listeners[1].maxConnections, 10)
        XCTAssertNil(config.listeners[1].bindAddress)
        XCTAssertEqual(config.listeners[1].source, ConfigSource(file: "test.conf", line: 1))

        for option in ["socket_domain ipv6", "protocol websockets", "bind_interface lo"] {
            XCTAssertEqual(try parse("\(option)\nlistener 28010\n").listeners.map(\.port), [28010, 1883], option)
        }
    }

    func testListenerOptionsThatDoNotCreateTheDefaultListener() throws {
        // Mosquitto only creates the default listener for options that change it from its defaults.
        for option in ["max_connections -1", "protocol mqtt", "max_topic_alias 5"] {
            let config = try parse("\(option)\nlistener 28010\n")
            XCTAssertEqual(config.listeners.map(\.port), [28010], option)
            XCTAssertTrue(config.warnings.contains { $0.hasPrefix("test.conf:1: ") && $0.contains("has no effect") }, option)
        }
    }

    func testLocalOnlyModeIgnoresListenerOptions() throws {
        // No listener/port/bind_address: Mosquitto >= 2.0.12 listens on loopback only.
        let config = try parse("max_connections 10\nsocket_domain ipv4\n")
        XCTAssertEqual(config.listeners, [])
        XCTAssertEqual(config.warnings.count, 1)
        XCTAssertTrue(config.warnings[0].hasPrefix("test.conf:1: 'max_connections'"))
        XCTAssertTrue(config.warnings[0].contains("local-only"))
    }

    // MARK: - Security and per_listener_settings

    func testGlobalSecuritySettings() throws {
        let config = try parse("allow_anonymous true\nallow_zero_length_clientid false\nauto_id_prefix midge-\nlistener 1883\nlistener 1884\n")
        XCTAssertFalse(config.perListenerSettings)
        XCTAssertEqual(config.security, SecuritySettings(allowAnonymous: true, allowZeroLengthClientID: false, autoIDPrefix: "midge-"))
        for l in config.listeners {
            XCTAssertEqual(l.security, SecuritySettings())
            XCTAssertEqual(config.security(for: l), config.security)
        }
    }

    func testSecurityOptionsAfterListenerAreStillGlobalWithoutPerListenerSettings() throws {
        let config = try parse("listener 1883\nallow_anonymous true\nlistener 1884\nallow_anonymous false\n")
        XCTAssertEqual(config.security.allowAnonymous, false)
        XCTAssertEqual(config.listeners[0].security.allowAnonymous, nil)
        XCTAssertEqual(config.security(for: config.listeners[0]).allowAnonymous, false)
    }

    func testPerListenerSettings() throws {
        let config = try parse("""
            per_listener_settings true
            listener 1883
            allow_anonymous true
            auto_id_prefix one-
            listener 1884
            allow_anonymous false
            allow_zero_length_clientid false
            listener 1885
            """)
        XCTAssertTrue(config.perListenerSettings)
        XCTAssertEqual(config.security, SecuritySettings(), "global settings untouched")
        XCTAssertEqual(config.listeners[0].security, SecuritySettings(allowAnonymous: true, allowZeroLengthClientID: true, autoIDPrefix: "one-"))
        XCTAssertEqual(config.listeners[1].security, SecuritySettings(allowAnonymous: false, allowZeroLengthClientID: false, autoIDPrefix: "auto-"))
        XCTAssertEqual(config.listeners[2].security, SecuritySettings())
        XCTAssertEqual(config.security(for: config.listeners[0]).allowAnonymous, true)
        XCTAssertEqual(config.security(for: config.listeners[1]).allowAnonymous, false)
        XCTAssertNil(config.security(for: config.listeners[2]).allowAnonymous)
    }

    func testPerListenerSettingsMayFollowListenersIfNoSecurityOptionCameBefore() throws {
        let config = try parse("listener 1883\nper_listener_settings true\nallow_anonymous true\nlistener 1884\n")
        XCTAssertTrue(config.perListenerSettings)
        XCTAssertEqual(config.listeners[0].security.allowAnonymous, true)
        XCTAssertNil(config.listeners[1].security.allowAnonymous)
        XCTAssertNil(config.security.allowAnonymous)
    }

    func testPerListenerSettingsMustComeBeforeSecurityOptions() {
        // Mosquitto 2.0.11: "Error: per_listener_settings must be set before any other security settings."
        assertErrors([
            ("allow_anonymous true\nper_listener_settings true", 2, "per_listener_settings must be set before any other security settings"),
            ("listener 1883\nallow_zero_length_clientid true\nper_listener_settings true", 3, "per_listener_settings must be set before"),
            ("auto_id_prefix x\nper_listener_settings true", 2, "per_listener_settings must be set before"),
            ("check_retain_source true\nper_listener_settings true", 2, "per_listener_settings must be set before"),
        ])
    }

    func testPerListenerSettingsFalseAfterSecurityOptionsIsAccepted() throws {
        let config = try parse("allow_anonymous true\nper_listener_settings false\n")
        XCTAssertFalse(config.perListenerSettings)
        XCTAssertEqual(config.security.allowAnonymous, true)
    }

    func testPerListenerSettingsSwitchedOffLaterUsesGlobalSettings() throws {
        // Processed in file order like Mosquitto: the first allow_anonymous went to listener 1883,
        // the second to the global settings, and the final per_listener_settings value decides.
        let config = try parse("per_listener_settings true\nlistener 1883\nallow_anonymous true\nper_listener_settings false\nallow_anonymous false\n")
        XCTAssertFalse(config.perListenerSettings)
        XCTAssertEqual(config.listeners[0].security.allowAnonymous, true)
        XCTAssertEqual(config.security.allowAnonymous, false)
        XCTAssertEqual(config.security(for: config.listeners[0]).allowAnonymous, false)
    }

    func testPerListenerSecurityBeforeAnyListenerAppliesToDefaultListener() throws {
        let config = try parse("per_listener_settings true\nallow_anonymous true\nauto_id_prefix d-\nport 1884\nlistener 1883\nallow_anonymous false\n")
        XCTAssertEqual(config.listeners.map(\.port), [1883, 1884])
        XCTAssertEqual(config.listeners[1].security, SecuritySettings(allowAnonymous: true, allowZeroLengthClientID: true, autoIDPrefix: "d-"))
        XCTAssertEqual(config.listeners[0].security.allowAnonymous, false)
        XCTAssertNil(config.security.allowAnonymous)
    }

    func testPerListenerSecurityBeforeAnyListenerIsLostWithoutDefaultListener() throws {
        // Mosquitto applies it to the default listener, which is not created: no effect.
        let config = try parse("per_listener_settings true\nallow_anonymous true\nlistener 1883\n")
        XCTAssertEqual(config.listeners.map(\.port), [1883])
        XCTAssertNil(config.listeners[0].security.allowAnonymous)
        XCTAssertTrue(config.warnings.contains { $0.hasPrefix("test.conf:2: 'allow_anonymous'") })
    }

    func testPerListenerZeroLengthClientIDFalseBeforeListenerCreatesDefaultListener() throws {
        // Checked with mosquitto 2.0.11: this listens on 28033 and on 1883.
        let config = try parse("per_listener_settings true\nallow_zero_length_clientid false\nlistener 28033\n")
        XCTAssertEqual(config.listeners.map(\.port), [28033, 1883])
        XCTAssertFalse(config.listeners[1].security.allowZeroLengthClientID)
        XCTAssertTrue(config.listeners[0].security.allowZeroLengthClientID)
    }

    func testSecurityOptionErrors() {
        // Mosquitto 2.0.11: "Error: Invalid allow_anonymous value (maybe)."
        assertErrors([
            ("allow_anonymous maybe", 1, "Invalid value for allow_anonymous: \"maybe\" (expected true or false)."),
            ("allow_anonymous", 1, "Missing value for allow_anonymous."),
            ("allow_anonymous true false", 1, "Unexpected extra value \"false\""),
            ("allow_anonymous TRUE", 1, "expected true or false"),
            ("allow_zero_length_clientid yes", 1, "Invalid value for allow_zero_length_clientid"),
            ("per_listener_settings on", 1, "Invalid value for per_listener_settings"),
            ("per_listener_settings", 1, "Missing value"),
            // Mosquitto 2.0.11: "Error: Empty auto_id_prefix value in configuration."
            ("auto_id_prefix", 1, "Missing value for auto_id_prefix."),
            ("auto_id_prefix    ", 1, "Missing value for auto_id_prefix."),
            ("auto_id_prefix a\nauto_id_prefix b", 2, "Duplicate auto_id_prefix"),
            ("per_listener_settings true\nlistener 1\nauto_id_prefix a\nauto_id_prefix b", 4, "Duplicate auto_id_prefix"),
        ])
    }

    func testAutoIDPrefixTakesRestOfLineAndMayRepeatPerListener() throws {
        XCTAssertEqual(try parse("auto_id_prefix   my prefix-  \n").security.autoIDPrefix, "my prefix-")
        let config = try parse("per_listener_settings true\nlistener 1\nauto_id_prefix a-\nlistener 2\nauto_id_prefix b-\n")
        XCTAssertEqual(config.listeners.map(\.security.autoIDPrefix), ["a-", "b-"])
    }

    func testBooleansAcceptOneAndZeroLikeMosquitto() throws {
        // Mosquitto's conf__parse_bool accepts "true"/"1" and "false"/"0".
        XCTAssertEqual(try parse("allow_anonymous 1").security.allowAnonymous, true)
        XCTAssertEqual(try parse("allow_anonymous 0").security.allowAnonymous, false)
        XCTAssertEqual(try parse("allow_anonymous false").security.allowAnonymous, false)
    }

    // MARK: - Global options

    func testBooleanOptions() throws {
        typealias KP = WritableKeyPath<BrokerConfiguration, Bool>
        let options: [(String, KP)] = [
            ("queue_qos0_messages", \.queueQoS0Messages),
            ("retain_available", \.retainAvailable),
            ("upgrade_outgoing_qos", \.upgradeOutgoingQoS),
            ("check_retain_source", \.checkRetainSource),
            ("log_timestamp", \.logTimestamp),
            ("connection_messages", \.connectionMessages),
            ("set_tcp_nodelay", \.setTCPNoDelay),
            ("per_listener_settings", \.perListenerSettings),
            ("persistence", \.persistence),
            ("retained_persistence", \.persistence),
            ("autosave_on_changes", \.autosaveOnChanges),
            ("persistence_fsync", \.persistenceFsync),
        ]
        for (name, keyPath) in options {
            XCTAssertEqual(try parse("\(name) true")[keyPath: keyPath], true, name)
            XCTAssertEqual(try parse("\(name) false")[keyPath: keyPath], false, name)
            XCTAssertEqual(try parse("\(name) 1")[keyPath: keyPath], true, name)
            XCTAssertEqual(try parse("\(name) 0 # comment")[keyPath: keyPath], false, name)
            assertErrors([
                ("\(name) yes", 1, "Invalid value for \(name): \"yes\" (expected true or false)."),
                ("\(name) True", 1, "expected true or false"),
                ("\n\(name)", 2, "Missing value for \(name)."),
                ("\(name) true false", 1, "Unexpected extra value \"false\" for \(name)"),
            ])
        }
    }

    func testMaxKeepalive() throws {
        assertValues(\.maxKeepalive, [
            ("max_keepalive 0", 0),
            ("max_keepalive 60", 60),
            ("max_keepalive 65535", 65535),
        ])
        // Mosquitto: "Error: Invalid max_keepalive value (70000)."
        assertErrors([
            ("max_keepalive 65536", 1, "Invalid max_keepalive value 65536 (must be between 0 and 65535)."),
            ("max_keepalive -1", 1, "Invalid max_keepalive value -1"),
            ("max_keepalive ten", 1, "expected an integer"),
            ("max_keepalive 1.5", 1, "expected an integer"),
            ("max_keepalive", 1, "Missing value"),
            ("max_keepalive 1 2", 1, "Unexpected extra value"),
        ])
    }

    func testMaxPacketSize() throws {
        XCTAssertEqual(try parse("max_packet_size 20").maxPacketSize, 20)
        XCTAssertEqual(try parse("max_packet_size 268435460").maxPacketSize, 268435460)
        // Mosquitto: "Error: Invalid max_packet_size value (10)." (and also for 0)
        assertErrors([
            ("max_packet_size 19", 1, "Invalid max_packet_size value 19 (must be at least 20 bytes)."),
            ("max_packet_size 0", 1, "Invalid max_packet_size value 0"),
            ("max_packet_size -5", 1, "Invalid max_packet_size value"),
            ("max_packet_size 2147483648", 1, "out of range"),
            ("max_packet_size big", 1, "expected an integer"),
            ("max_packet_size", 1, "Missing value"),
            ("max_packet_size 100 200", 1, "Unexpected extra value"),
        ])
    }

    func testMessageSizeLimit() throws {
        let config = try parse("message_size_limit 1024")
        XCTAssertEqual(config.messageSizeLimit, 1024)
        XCTAssertTrue(config.warnings.contains { $0.contains("max_packet_size") })
        XCTAssertEqual(try parse("message_size_limit 0").messageSizeLimit, 0)
        XCTAssertEqual(try parse("message_size_limit 268435455").messageSizeLimit, 268435455)
        // Mosquitto: "Error: Invalid message_size_limit value (300000000)." and (4294967295) for -1.
        assertErrors([
            ("message_size_limit 268435456", 1, "Invalid message_size_limit value 268435456"),
            ("message_size_limit -1", 1, "Invalid message_size_limit value -1"),
            ("message_size_limit x", 1, "expected an integer"),
            ("message_size_limit", 1, "Missing value"),
            ("message_size_limit 1 2", 1, "Unexpected extra value"),
        ])
    }

    func testMaxInflightMessages() throws {
        assertValues(\.maxInflightMessages, [
            ("max_inflight_messages 0", 0),
            ("max_inflight_messages 1", 1),
            ("max_inflight_messages 65534", 65534),
            ("max_inflight_messages 65535", 0), // Mosquitto treats 65535 as unlimited
            ("max_inflight_messages -3", 0), // negative means unlimited
        ])
        // Mosquitto: "Error: max_inflight_messages must be <= 65535."
        assertErrors([
            ("max_inflight_messages 65536", 1, "must be at most 65535"),
            ("max_inflight_messages many", 1, "expected an integer"),
            ("max_inflight_messages", 1, "Missing value"),
            ("max_inflight_messages 1 2", 1, "Unexpected extra value"),
        ])
    }

    func testByteAndQueueLimitsClampNegativeToZero() throws {
        typealias KP = KeyPath<BrokerConfiguration, Int>
        let options: [(String, KP)] = [
            ("max_inflight_bytes", \.maxInflightBytes),
            ("max_queued_messages", \.maxQueuedMessages),
            ("max_queued_bytes", \.maxQueuedBytes),
        ]
        for (name, keyPath) in options {
            XCTAssertEqual(try parse("\(name) 12345")[keyPath: keyPath], 12345, name)
            XCTAssertEqual(try parse("\(name) 0")[keyPath: keyPath], 0, name)
            XCTAssertEqual(try parse("\(name) -1")[keyPath: keyPath], 0, name)
            XCTAssertEqual(try parse("\(name) +7")[keyPath: keyPath], 7, name)
            XCTAssertEqual(try parse("\(name) 2147483647")[keyPath: keyPath], 2147483647, name)
            assertErrors([
                ("\(name) 2147483648", 1, "out of range"),
                ("\(name) 99999999999999999999999", 1, "out of range"),
                ("\(name) 1k", 1, "Invalid value for \(name): \"1k\" (expected an integer)."),
                ("\(name) -", 1, "expected an integer"),
                ("\(name)", 1, "Missing value for \(name)."),
                ("\(name) 1 2", 1, "Unexpected extra value"),
            ])
        }
    }

    func testPersistentClientExpirationUnits() throws {
        assertValues(\.persistentClientExpiration, [
            ("persistent_client_expiration 2h", 7200),
            ("persistent_client_expiration 1d", 86400),
            ("persistent_client_expiration 14d", 14 * 86400),
            ("persistent_client_expiration 1w", 7 * 86400),
            ("persistent_client_expiration 2m", 2 * 30 * 86400), // m = month of 30 days
            ("persistent_client_expiration 1y", 365 * 86400),
        ])
    }

    func testPersistentClientExpirationErrors() {
        // Mosquitto: "Error: Invalid persistent_client_expiration duration in configuration."
        for bad in ["5x", "0d", "3600", "d", "-1d", "1.5d", "2H", "h2", "1s", "99999999999d"] {
            assertError("persistent_client_expiration \(bad)", line: 1, contains: "Invalid persistent_client_expiration value \"\(bad)\"")
        }
        assertError("persistent_client_expiration", line: 1, contains: "Missing value")
        assertError("persistent_client_expiration 1d 2d", line: 1, contains: "Unexpected extra value")
    }

    func testDeprecatedAndObsoleteOptions() throws {
        let config = try parse("allow_duplicate_messages true\nretry_interval 20\nretry_interval\n")
        XCTAssertEqual(config.warnings.count, 3)
        XCTAssertTrue(config.warnings[0].hasPrefix("test.conf:1: "))
        XCTAssertTrue(config.warnings[1].hasPrefix("test.conf:2: ") && config.warnings[1].contains("retry_interval"))
        XCTAssertEqual(try parse("allow_duplicate_messages false").warnings,
                       ["test.conf:1: The 'allow_duplicate_messages' option is now deprecated and will be removed in a future version."])
        XCTAssertTrue(config.warnings[0].hasSuffix("Midge sends one copy of a message to a client whatever its overlapping subscriptions (as with false)."))
        assertError("allow_duplicate_messages maybe", line: 1, contains: "expected true or false")
    }

    // MARK: - Persistence

    func testRetainedPersistenceIsAnObsoleteSynonymOfPersistence() throws {
        let config = try parse("\nretained_persistence true\n")
        XCTAssertTrue(config.persistence)
        XCTAssertEqual(config.warnings, ["test.conf:2: The 'retained_persistence' option is obsolete; use 'persistence' instead."])
        XCTAssertEqual(try parse("persistence true").warnings, [])
        // The last line wins, whichever name it uses.
        XCTAssertFalse(try parse("persistence true\nretained_persistence false").persistence)
        XCTAssertTrue(try parse("retained_persistence false\npersistence true").persistence)
    }

    func testPersistenceFileAndLocation() throws {
        typealias Row = (text: String, file: String, location: String?, database: String, store: String)
        let rows: [Row] = [
            ("", "mosquitto.db", nil, "mosquitto.db", "mosquitto.db.midge"),
            ("persistence_file broker.db", "broker.db", nil, "broker.db", "broker.db.midge"),
            ("persistence_file /var/lib/mosquitto/broker.db", "/var/lib/mosquitto/broker.db", nil,
             "/var/lib/mosquitto/broker.db", "/var/lib/mosquitto/broker.db.midge"),
            // The rest of the line, spaces included; a trailing comment is part of it (as in Mosquitto).
            ("persistence_file   my broker.db  ", "my broker.db", nil, "my broker.db", "my broker.db.midge"),
            ("persistence_file a.db # old", "a.db # old", nil, "a.db # old", "a.db # old.midge"),
            // Mosquitto 2.0.3 and later join location and file with '/': with or without one at the end.
            ("persistence_location /var/lib/mosquitto/", "mosquitto.db", "/var/lib/mosquitto/",
             "/var/lib/mosquitto/mosquitto.db", "/var/lib/mosquitto/mosquitto.db.midge"),
            ("persistence_location /var/lib/mosquitto", "mosquitto.db", "/var/lib/mosquitto/",
             "/var/lib/mosquitto/mosquitto.db", "/var/lib/mosquitto/mosquitto.db.midge"),
            ("persistence_location data\npersistence_file m.db", "m.db", "data/", "data/m.db", "data/m.db.midge"),
            ("persistence_file sub/m.db\npersistence_location /srv", "sub/m.db", "/srv/", "/srv/sub/m.db", "/srv/sub/m.db.midge"),
            ("persistence_location /", "mosquitto.db", "/", "/mosquitto.db", "/mosquitto.db.midge"),
        ]
        for row in rows {
            guard let config = assertParses(row.text) else { continue }
            XCTAssertEqual(config.persistenceFile, row.file, row.text.debugDescription)
            XCTAssertEqual(config.persistenceLocation, row.location, row.text.debugDescription)
            XCTAssertEqual(config.mosquittoDatabasePath, row.database, row.text.debugDescription)
            XCTAssertEqual(config.importedStorePath, row.store, row.text.debugDescription)
        }
        // Mosquitto: "Error: Empty persistence_file value in configuration.", "Duplicate ... value".
        assertErrors([
            ("persistence_file", 1, "Missing value for persistence_file."),
            ("persistence_file    ", 1, "Missing value for persistence_file."),
            ("persistence_location\t", 1, "Missing value for persistence_location."),
            ("persistence_file a.db\npersistence_file b.db", 2, "Duplicate persistence_file value in configuration."),
            ("persistence_location /a/\n\npersistence_location /a/", 3, "Duplicate persistence_location value in configuration."),
        ])
    }

    func testAutosaveInterval() throws {
        // Mosquitto: any integer; a negative one means 0.
        assertValues(\.autosaveInterval, [
            ("autosave_interval 0", 0),
            ("autosave_interval 60", 60),
            ("autosave_interval 2147483647", 2147483647),
            ("autosave_interval -5", 0),
            ("autosave_interval 10\nautosave_interval 20", 20),
        ])
        assertErrors([
            ("autosave_interval", 1, "Missing value for autosave_interval."),
            ("autosave_interval ten", 1, "Invalid value for autosave_interval: \"ten\" (expected an integer)."),
            ("autosave_interval 2147483648", 1, "out of range"),
            ("autosave_interval 1 2", 1, "Unexpected extra value"),
        ])
    }

    func testPersistenceDirectivesAreBrokerWideAndAllowedInIncludedFiles() throws {
        let dir = try makeTempDir()
        let conf = (dir as NSString).appendingPathComponent("conf.d")
        try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
        try write("persistence true\npersistence_location /srv/midge\n", to: (conf as NSString).appendingPathComponent("p.conf"))
        let main = try write("listener 1883\npersistence_fsync true\ninclude_dir \(conf)\n",
                             to: (dir as NSString).appendingPathComponent("main.conf"))
        let config = try ConfigFileParser.parse(contentsOf: main)
        XCTAssertTrue(config.persistence)
        XCTAssertTrue(config.persistenceFsync)
        XCTAssertEqual(config.mosquittoDatabasePath, "/srv/midge/mosquitto.db")
        // A second location in the main file after the include is a duplicate, named at its line.
        try write("include_dir \(conf)\npersistence_location /other/\n", to: main)
        XCTAssertThrowsError(try ConfigFileParser.parse(contentsOf: main)) { error in
            XCTAssertEqual("\(error)", "\(main):2: Duplicate persistence_location value in configuration.")
        }
    }

    // MARK: - Logging

    func testLogDest() throws {
        XCTAssertEqual(try parse("log_dest stdout").logDestinations, [.stdout])
        XCTAssertEqual(try parse("log_dest syslog\nlog_dest topic\nlog_dest dlt\nlog_dest stderr\n").logDestinations,
                       [.syslog, .topic, .dlt, .stderr])
        XCTAssertTrue(try parse("log_dest dlt\n").warnings.contains { $0.contains("no DLT") }, "dlt is taken, not silently")
        XCTAssertEqual(try parse("log_dest stdout\nlog_dest stdout\n").logDestinations, [.stdout])
        XCTAssertEqual(try parse("log_dest file /var/log/mosquitto/mosquitto.log").logDestinations,
                       [.file("/var/log/mosquitto/mosquitto.log")])
        XCTAssertEqual(try parse("log_dest file   /var/log/my logs/m.log  \nlog_dest stdout").logDestinations,
                       [.file("/var/log/my logs/m.log"), .stdout])
        assertValues(\.logDestinations, [
            ("log_dest none", [.none]),
            ("log_dest stdout\nlog_dest none", [.none]),
            ("log_dest none\nlog_dest topic", [.topic]),
            ("log_dest stdout # console", [.stdout]),
        ])
    }

    func testLogDestErrors() {
        // Mosquitto: "Error: Invalid log_dest value (bogus)."
        assertErrors([
            ("log_dest bogus", 1, "Invalid value for log_dest: \"bogus\""),
            ("log_dest", 1, "Missing value for log_dest."),
            ("log_dest stdout stderr", 1, "Unexpected extra value \"stderr\""),
            ("log_dest none stdout", 1, "Unexpected extra value"),
            // Mosquitto: "Error: Empty "log_dest file" value in configuration."
            ("log_dest file", 1, "Missing file name for \"log_dest file\"."),
            ("log_dest file   ", 1, "Missing file name"),
            // Mosquitto: "Error: Duplicate "log_dest file" value."
            ("log_dest file /a\nlog_dest file /b", 2, "Duplicate \"log_dest file\""),
            ("log_dest file /a\nlog_dest none\nlog_dest file /b", 3, "Duplicate"),
            ("log_dest STDOUT", 1, "Invalid value for log_dest"),
        ])
    }

    func testLogType() throws {
        XCTAssertEqual(try parse("log_type error").logTypes, [.error])
        XCTAssertEqual(try parse("log_type error\nlog_type warning\nlog_type subscribe\nlog_type unsubscribe\nlog_type websockets\nlog_type debug\nlog_type notice\nlog_type information\n").logTypes,
                       [.error, .warning, .subscribe, .unsubscribe, .websockets, .debug, .notice, .information])
        assertValues(\.logTypes, [
            ("log_type none", [.none]),
            ("log_type debug\nlog_type none", [.none]),
            ("log_type none\nlog_type error", [.error]),
        ])
        let all = try parse("log_type all").logTypes
        XCTAssertTrue(all.contains(.all))
        XCTAssertTrue(all.contains(.debug))
        XCTAssertFalse(all.contains(.none))
        XCTAssertEqual(all, Set(LogType.allCases).subtracting([.none]))
        XCTAssertEqual(try parse("log_type all\nlog_type debug").logTypes, all)
        let internalOnly = try parse("log_type internal")
        XCTAssertEqual(internalOnly.logTypes, [.none])
        XCTAssertEqual(internalOnly.warnings.count, 1)
    }

    func testLogTypeErrors() {
        // Mosquitto: "Error: Invalid log_type value (bogus)."
        assertErrors([
            ("log_type bogus", 1, "Invalid value for log_type: \"bogus\""),
            ("log_type", 1, "Missing value for log_type."),
            ("log_type error warning", 1, "Unexpected extra value \"warning\""),
            ("log_type Error", 1, "Invalid value for log_type"),
        ])
    }

    func testLogTimestampFormat() throws {
        XCTAssertEqual(try parse("log_timestamp_format %Y-%m-%dT%H:%M:%S").logTimestampFormat, "%Y-%m-%dT%H:%M:%S")
        XCTAssertEqual(try parse("log_timestamp_format  %Y-%m-%d %H:%M:%S  ").logTimestampFormat, "%Y-%m-%d %H:%M:%S")
        assertError("log_timestamp_format", line: 1, contains: "Missing value for log_timestamp_format.")
        // Mosquitto: "Error: Duplicate log_timestamp_format value in configuration."
        assertError("log_timestamp_format %s\nlog_timestamp_format %s", line: 2, contains: "Duplicate log_timestamp_format")
    }

    func testLogFacility() throws {
        for n in 0...7 { XCTAssertEqual(assertParses("log_facility \(n)")?.logFacility, n) }
        XCTAssertNil(try parse("log_dest syslog").logFacility, "nil: daemon")
        XCTAssertEqual(try parse("log_facility 2\nlog_facility 5").logFacility, 5, "the last line wins")
        // Mosquitto: "Error: Invalid log_facility value (9)."
        assertErrors([
            ("log_facility 8", 1, "Invalid log_facility value 8"),
            ("log_facility -1", 1, "Invalid log_facility value"),
            ("log_facility local5", 1, "expected an integer"),
            ("log_facility", 1, "Missing value"),
            ("log_facility 1 2", 1, "Unexpected extra value"),
        ])
    }

    // MARK: - include_dir

    func testIncludeDirOrderingFollowsMosquitto() throws {
        let dir = try makeTempDir()
        let conf = (dir as NSString).appendingPathComponent("conf.d")
        try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
        // The example of mosquitto.conf(5): loaded as 00, 01, A, a, B, b.
        for (i, name) in ["b.conf", "A.conf", "01.conf", "a.conf", "B.conf", "00.conf"].enumerated() {
            try write("listener \(2000 + i)\n", to: (conf as NSString).appendingPathComponent(name))
        }
        // Not loaded: wrong suffix, ".conf" alone (Mosquitto requires more than 5 characters), backups.
        try write("bogus\n", to: (conf as NSString).appendingPathComponent("readme.txt"))
        try write("bogus\n", to: (conf as NSString).appendingPathComponent(".conf"))
        try write("bogus\n", to: (conf as NSString).appendingPathComponent("x.conf.bak"))
        try write("bogus\n", to: (conf as NSString).appendingPathComponent("x.CONF"))
        let main = try write("max_queued_messages 5\ninclude_dir \(conf)\nmax_queued_messages 6\n",
                             to: (dir as NSString).appendingPathComponent("mosquitto.conf"))
        let config = try ConfigFileParser.parse(contentsOf: main)
        // 00.conf=2005, 01.conf=2002, A.conf=2001, a.conf=2003, B.conf=2004, b.conf=2000
        XCTAssertEqual(config.listeners.map(\.port), [2005, 2002, 2001, 2003, 2004, 2000])
        XCTAssertEqual(config.listeners[0].source, ConfigSource(file: conf + "/00.conf", line: 1))
        XCTAssertEqual(config.maxQueuedMessages, 6)
    }

    func testIncludeOrderComparator() {
        let names = ["b.conf", "A.conf", "01.conf", "a.conf", "B.conf", "00.conf", "_x.conf", "Z.conf", "ab.conf", "a.conf.conf"]
        XCTAssertEqual(names.sorted(by: ConfigFileParser.mosquittoIncludeOrder),
                       ["00.conf", "01.conf", "A.conf", "a.conf", "a.conf.conf", "ab.conf", "B.conf", "b.conf", "Z.conf", "_x.conf"])
    }

    func testMultipleIncludeDirsAreProcessedInOrder() throws {
        let dir = try makeTempDir()
        let one = (dir as NSString).appendingPathComponent("one.d"), two = (dir as NSString).appendingPathComponent("two.d")
        for d in [one, two] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try write("listener 1002\n", to: one + "/B.conf")
        try write("listener 1003\n", to: one + "/C.conf")
        try write("listener 2001\n", to: two + "/A.conf")
        try write("listener 2004\n", to: two + "/D.conf")
        let config = try parse("include_dir \(one)\ninclude_dir \(two)/\n")
        XCTAssertEqual(config.listeners.map(\.port), [1002, 1003, 2001, 2004])
        XCTAssertEqual(config.listeners[2].source.file, two + "/A.conf")
    }

    func testErrorInIncludedFileNamesThatFileAndLine() throws {
        let dir = try makeTempDir()
        try write("listener 1883\n", to: dir + "/a.conf")
        try write("# comment\n\nlistener 1884\nmax_connections lots\n", to: dir + "/b.conf")
        try write("listener 1885\n", to: dir + "/c.conf")
        let main = try write("# main\ninclude_dir \(dir)\n", to: try makeTempDir() + "/main.conf")
        XCTAssertThrowsError(try ConfigFileParser.parse(contentsOf: main)) { error in
            let e = error as? ConfigError
            XCTAssertEqual(e?.file, dir + "/b.conf")
            XCTAssertEqual(e?.line, 4)
            XCTAssertEqual(e?.description, "\(dir)/b.conf:4: Invalid value for max_connections: \"lots\" (expected an integer).")
        }
    }

    func testMissingIncludeDirIsAnErrorAtTheIncludeLine() {
        // Mosquitto: "Error: Unable to open include_dir '/nonexistent'."
        assertError("listener 1883\ninclude_dir /nonexistent/midge/conf.d\n", line: 2, contains: "Unable to open include_dir '/nonexistent/midge/conf.d'.")
        assertError("include_dir", line: 1, contains: "Missing value for include_dir.")
    }

    func testIncludeDirThatIsAFile() throws {
        let dir = try makeTempDir()
        let file = try write("listener 1883\n", to: dir + "/file.conf")
        assertError("\ninclude_dir \(file)\n", line: 2, contains: "Unable to open include_dir")
    }

    func testIncludedDirectoryNamedConfIsAnErrorAtTheIncludeLine() throws {
        let dir = try makeTempDir()
        try FileManager.default.createDirectory(atPath: dir + "/sub.conf", withIntermediateDirectories: true)
        assertError("listener 1883\ninclude_dir \(dir)\n", line: 2, contains: "is a directory")
    }

    func testEmptyIncludeDirIsFine() throws {
        let dir = try makeTempDir()
        XCTAssertEqual(try parse("include_dir \(dir)\n"), BrokerConfiguration.defaults)
    }

    func testIncludeDirInIncludedFileIsIgnored() throws {
        let dir = try makeTempDir(), nested = try makeTempDir()
        try write("listener 9999\n", to: nested + "/n.conf")
        try write("listener 1883\ninclude_dir \(nested)\ninclude_dir /nonexistent\n", to: dir + "/a.conf")
        let config = try parse("include_dir \(dir)\n")
        XCTAssertEqual(config.listeners.map(\.port), [1883])
        XCTAssertEqual(config.warnings.count, 2)
        XCTAssertTrue(config.warnings[0].hasPrefix(dir + "/a.conf:2: "))
    }

    func testEachFileStartsWithTheDefaultListenerAsCurrent() throws {
        // Checked with mosquitto 2.0.11: main "listener 28030 / include_dir D" with D/a.conf
        // "max_connections 5" listens on 28030 *and* on 1883 (the default listener).
        let dir = try makeTempDir()
        try write("max_connections 5\nlistener 1884\nmax_connections 6\n", to: dir + "/a.conf")
        let config = try parse("listener 1883\ninclude_dir \(dir)\nmax_connections 7\n")
        XCTAssertEqual(config.listeners.map(\.port), [1883, 1884, 1883])
        XCTAssertEqual(config.listeners.map(\.maxConnections), [7, 6, 5])
        XCTAssertEqual(config.listeners[2].source, ConfigSource(file: dir + "/a.conf", line: 1))
    }

    func testIncludedFilesShareSecurityOrderingState() throws {
        let dir = try makeTempDir()
        try write("per_listener_settings true\n", to: dir + "/z.conf")
        XCTAssertThrowsError(try parse("allow_anonymous true\ninclude_dir \(dir)\n")) { error in
            XCTAssertEqual((error as? ConfigError)?.file, dir + "/z.conf")
            XCTAssertEqual((error as? ConfigError)?.line, 1)
        }
    }

    func testRelativeIncludeDirIsRelativeToCurrentDirectory() throws {
        let dir = try makeTempDir()
        try FileManager.default.createDirectory(atPath: dir + "/conf.d", withIntermediateDirectories: true)
        try write("listener 4242\n", to: dir + "/conf.d/x.conf")
        let saved = FileManager.default.currentDirectoryPath
        defer { _ = FileManager.default.changeCurrentDirectoryPath(saved) }
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(dir))
        let config = try parse("include_dir conf.d\n")
        XCTAssertEqual(config.listeners.map(\.port), [4242])
        XCTAssertEqual(config.listeners[0].source.file, "conf.d/x.conf")
    }

    // MARK: - Files

    func testParseContentsOfMissingFileOrDirectory() throws {
        XCTAssertThrowsError(try ConfigFileParser.parse(contentsOf: "/nonexistent/mosquitto.conf")) { error in
            XCTAssertEqual(error as? ConfigError,
                           ConfigError(file: "/nonexistent/mosquitto.conf", line: 0, message: "Unable to open config file /nonexistent/mosquitto.conf."))
        }
        let dir = try makeTempDir()
        XCTAssertThrowsError(try ConfigFileParser.parse(contentsOf: dir)) { error in
            XCTAssertTrue((error as? ConfigError)?.message.contains("is a directory") ?? false)
        }
    }

    func testParseContentsOfUsesThePathInErrors() throws {
        let dir = try makeTempDir()
        let path = try write("listener 1883\nlistener 1884 a b\n", to: dir + "/m.conf")
        XCTAssertThrowsError(try ConfigFileParser.parse(contentsOf: path)) { error in
            XCTAssertEqual((error as? ConfigError)?.description, "\(path):2: Unexpected extra value \"b\" for listener (expected: listener PORT [BIND_ADDRESS|UNIX_SOCKET_PATH]).")
        }
    }

    // MARK: - Realistic files

    /// /etc/mosquitto/mosquitto.conf as shipped by Debian's mosquitto 2.0.11 package.
    static let debianMosquittoConf = """
        # Place your local configuration in /etc/mosquitto/conf.d/
        #
        # A full description of the configuration file is at
        # /usr/share/doc/mosquitto/examples/mosquitto.conf.example

        pid_file /run/mosquitto/mosquitto.pid

        persistence true
        persistence_location /var/lib/mosquitto/

        log_dest file /var/log/mosquitto/mosquitto.log

        include_dir /etc/mosquitto/conf.d

        """

    func testPidFile() throws {
        XCTAssertNil(try ConfigFileParser.parse("", fileName: "t.conf").pidFile)
        XCTAssertEqual(try ConfigFileParser.parse("pid_file /run/my broker.pid\n", fileName: "t.conf").pidFile, "/run/my broker.pid")
        assertError("listener 1883\npid_file\n", line: 2, contains: "Missing value for pid_file")
        // Mosquitto (conf__parse_string): "Error: Duplicate pid_file value in configuration."
        assertError("pid_file /a\npid_file /b\n", line: 2, contains: "Duplicate pid_file value")
    }

    func testUser() throws {
        XCTAssertNil(try ConfigFileParser.parse("", fileName: "t.conf").user, "nil: mosquitto, as Mosquitto")
        XCTAssertEqual(try ConfigFileParser.parse("user nobody\n", fileName: "t.conf").user, "nobody")
        XCTAssertEqual(try ConfigFileParser.parse("listener 1883\nuser  my user \n", fileName: "t.conf").user, "my user")
        assertError("user\n", line: 1, contains: "Missing value for user")
        assertError("user a\nuser b\n", line: 2, contains: "Duplicate user value")
    }

    func testDebianDefaultConfigurationIsAcceptedUnchanged() throws {
        let dir = try makeTempDir()
        let confd = dir + "/conf.d"
        try FileManager.default.createDirectory(atPath: confd, withIntermediateDirectories: true)
        try write("# Place your local configuration in /etc/mosquitto/conf.d/\n", to: confd + "/README")
        let text = Self.debianMosquittoConf.replacingOccurrences(of: "/etc/mosquitto/conf.d", with: confd)
        let path = try write(text, to: dir + "/mosquitto.conf")
        let config = try ConfigFileParser.parse(contentsOf: path)
        XCTAssertEqual(config.pidFile, "/run/mosquitto/mosquitto.pid")
        XCTAssertEqual(config.logDestinations, [.file("/var/log/mosquitto/mosquitto.log")])
        XCTAssertEqual(config.listeners, [])
        XCTAssertTrue(config.persistence)
        XCTAssertEqual(config.mosquittoDatabasePath, "/var/lib/mosquitto/mosquitto.db")
        XCTAssertEqual(config.importedStorePath, "/var/lib/mosquitto/mosquitto.db.midge")
    }

    func testDebianConfigurationAsInstalledIfPresent() throws {
        // When Debian's mosquitto package is installed, its real file is read unchanged.
        let path = "/etc/mosquitto/mosquitto.conf"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), text == Self.debianMosquittoConf else {
            throw XCTSkip("Debian's unmodified \(path) is not installed")
        }
        let config = try ConfigFileParser.parse(contentsOf: path)
        XCTAssertEqual(config.pidFile, "/run/mosquitto/mosquitto.pid")
        XCTAssertTrue(config.persistence)
        XCTAssertEqual(config.importedStorePath, "/var/lib/mosquitto/mosquitto.db.midge")
    }

    func testRealisticFullConfiguration() throws {
        let dir = try makeTempDir()
        try FileManager.default.createDirectory(atPath: dir + "/conf.d", withIntermediateDirectories: true)
        try write("""
            # Websockets for the dashboard
            listener 9001 127.0.0.1
            protocol websockets
            max_connections 50
            allow_anonymous true
            """, to: dir + "/conf.d/20-websockets.conf")
        try write("""
            listener 0 /run/midge/midge.sock
            allow_anonymous true
            auto_id_prefix local-
            """, to: dir + "/conf.d/10-unix.conf")
        let main = try write("""
            # =================================================================
            # General configuration
            # =================================================================
            per_listener_settings true

            max_keepalive 120
            max_packet_size 1048576
            message_size_limit 0
            max_inflight_messages 10
            max_inflight_bytes 0
            max_queued_messages 5000
            max_queued_bytes 10485760
            queue_qos0_messages true
            retain_available true
            persistent_client_expiration 14d
            upgrade_outgoing_qos false
            check_retain_source true
            set_tcp_nodelay true
            connection_messages false

            # Logging
            log_dest stdout
            log_dest topic
            log_type error
            log_type warning
            log_type notice
            log_type information
            log_type subscribe
            log_timestamp true
            log_timestamp_format %Y-%m-%dT%H:%M:%S

            # Listeners
            listener 1883
            socket_domain ipv4
            max_connections 1000
            allow_anonymous false
            allow_zero_length_clientid false
            max_topic_alias 20

            listener 1884 ::1
            socket_domain ipv6
            bind_interface lo
            allow_anonymous true

            include_dir \(dir)/conf.d
            """, to: dir + "/mosquitto.conf")
        let config = try ConfigFileParser.parse(contentsOf: main)
        var expected = BrokerConfiguration.defaults
        expected.perListenerSettings = true
        expected.maxKeepalive = 120
        expected.maxPacketSize = 1048576
        expected.maxInflightMessages = 10
        expected.maxQueuedMessages = 5000
        expected.maxQueuedBytes = 10485760
        expected.queueQoS0Messages = true
        expected.persistentClientExpiration = 14 * 86400
        expected.checkRetainSource = true
        expected.setTCPNoDelay = true
        expected.connectionMessages = false
        expected.logDestinations = [.stdout, .topic]
        expected.logTypes = [.error, .warning, .notice, .information, .subscribe]
        expected.logTimestampFormat = "%Y-%m-%dT%H:%M:%S"
        expected.maxTopicAlias = 20
        expected.listeners = [
            ListenerConfiguration(port: 1883, socketDomain: .ipv4, maxConnections: 1000, maxTopicAlias: 20,
                                  security: SecuritySettings(allowAnonymous: false, allowZeroLengthClientID: false),
                                  source: ConfigSource(file: main, line: 33)),
            ListenerConfiguration(port: 1884, bindAddress: "::1", bindInterface: "lo", socketDomain: .ipv6,
                                  security: SecuritySettings(allowAnonymous: true),
                                  source: ConfigSource(file: main, line: 40)),
            ListenerConfiguration(port: 0, unixSocketPath: "/run/midge/midge.sock",
                                  security: SecuritySettings(allowAnonymous: true, autoIDPrefix: "local-"),
                                  source: ConfigSource(file: dir + "/conf.d/10-unix.conf", line: 1)),
            ListenerConfiguration(port: 9001, bindAddress: "127.0.0.1", maxConnections: 50, protocolName: "websockets",
                                  security: SecuritySettings(allowAnonymous: true),
                                  source: ConfigSource(file: dir + "/conf.d/20-websockets.conf", line: 2)),
        ]
        expected.warnings = ["\(main):8: It is recommended to replace 'message_size_limit' with 'max_packet_size'."]
        XCTAssertEqual(config, expected)
        XCTAssertEqual(config.security(for: config.listeners[0]).allowAnonymous, false)
        XCTAssertEqual(config.security(for: config.listeners[2]).autoIDPrefix, "local-")
    }

    // MARK: - Lines that Debian's mosquitto 2.0.11 rejects

    /// Each of these makes `mosquitto -c file` (Debian 2.0.11) exit with "Error found at file:N."; the
    /// comment gives its message. Midge must reject them at the same line.
    func testLinesMosquittoRejectsAreRejected() {
        let cases: [(String, Int)] = [
            ("port 0", 1),                                          // Error: Invalid port value (0).
            ("port abc", 1),                                        // Error: Invalid port value (0).
            ("listener 70000", 1),                                  // Error: Invalid port value (70000).
            ("listener 0", 1),                                      // Error: A listener with port 0 must provide a Unix socket path.
            ("listener", 1),                                        // Error: Empty listener value in configuration.
            ("max_packet_size 10", 1),                              // Error: Invalid max_packet_size value (10).
            ("max_packet_size 0", 1),                               // Error: Invalid max_packet_size value (0).
            ("message_size_limit 300000000", 1),                    // Error: Invalid message_size_limit value (300000000).
            ("message_size_limit -1", 1),                           // Error: Invalid message_size_limit value (4294967295).
            ("persistent_client_expiration 5x", 1),                 // Error: Invalid persistent_client_expiration duration in configuration.
            ("persistent_client_expiration 0d", 1),                 // (same)
            ("persistent_client_expiration 3600", 1),               // (same)
            ("log_dest bogus", 1),                                  // Error: Invalid log_dest value (bogus).
            ("log_type bogus", 1),                                  // Error: Invalid log_type value (bogus).
            ("socket_domain ipv5", 1),                              // Error: Invalid socket_domain value "ipv5" in configuration.
            ("protocol foo", 1),                                    // Error: Invalid protocol value (foo).
            ("max_keepalive 70000", 1),                             // Error: Invalid max_keepalive value (70000).
            ("foo_bar 1", 1),                                       // Error: Unknown configuration variable "foo_bar".
            ("store_clean_interval 10", 1),                         // Error: Unknown configuration variable "store_clean_interval".
            ("allow_anonymous maybe", 1),                           // Error: Invalid allow_anonymous value (maybe).
            ("connection_messages yes", 1),                         // Error: Invalid connection_messages value (yes).
            ("allow_anonymous true\nper_listener_settings true", 2), // Error: per_listener_settings must be set before any other security settings.
            ("check_retain_source true\nper_listener_settings true", 2), // (same)
            ("include_dir /nonexistent", 1),                        // Error: Unable to open include_dir '/nonexistent'.
            ("max_inflight_messages 70000", 1),                     // Error: max_inflight_messages must be <= 65535.
            ("log_facility 9", 1),                                  // Error: Invalid log_facility value (9).
            ("auto_id_prefix", 1),                                  // Error: Empty auto_id_prefix value in configuration.
            ("listener 1883\nbind_interface lo\nbind_interface lo", 3), // Error: Duplicate bind_interface value in configuration.
            ("log_dest file", 1),                                   // Error: Empty "log_dest file" value in configuration.
            ("log_dest file /tmp/a\nlog_dest file /tmp/b", 2),      // Error: Duplicate "log_dest file" value.
            ("log_timestamp_format %s\nlog_timestamp_format %s", 2), // Error: Duplicate log_timestamp_format value in configuration.
            ("max_topic_alias 70000", 1),                           // Error: Invalid max_topic_alias value in configuration.
            ("bind_address 127.0.0.1\nbind_address 127.0.0.1", 2),  // Error: Duplicate default listener bind_address value in configuration.
            ("  # indented comment\nlistener\t1883", 2),            // Mosquitto: Unknown configuration variable "#" at line 1 (Midge: comment);
                                                                    // "listener\t1883" unknown for Mosquitto, a listener for Midge. Check a real error:
        ]
        for (text, line) in cases.dropLast() {
            assertError(text, line: line, contains: nil, text)
        }
        // Midge accepts indented comments and tab separators (Mosquitto rejects both).
        XCTAssertEqual(try parse(cases.last!.0).listeners.map(\.port), [1883])
    }
}
