import Foundation
import XCTest
import MidgeBroker
@testable import MidgeConfig

/// docs/conformance.md's directive tables are checked, not claimed: every directive of Mosquitto
/// 2.0's mosquitto.conf(5) has a row, each row's outcome is what the parser does, and every test a
/// row names exists. The 2.1 table is checked the same way.
final class DirectiveTableTests: XCTestCase {
    /// The directives of Mosquitto 2.0.11's mosquitto.conf(5) (its `<term><option>` entries), and
    /// `plugin`/`plugin_opt_*`, which 2.0's reader also takes.
    static let mosquitto20Directives: [String] = [
        "acl_file", "address", "addresses", "allow_anonymous", "allow_duplicate_messages",
        "allow_zero_length_clientid", "auth_opt_*", "auth_plugin", "auth_plugin_deny_special_chars",
        "auto_id_prefix", "autosave_interval", "autosave_on_changes", "bind_address", "bind_interface",
        "bridge_alpn", "bridge_attempt_unsubscribe", "bridge_bind_address", "bridge_cafile",
        "bridge_capath", "bridge_certfile", "bridge_identity", "bridge_insecure", "bridge_keyfile",
        "bridge_max_packet_size", "bridge_outgoing_retain", "bridge_protocol_version", "bridge_psk",
        "bridge_require_ocsp", "bridge_tls_version", "cafile", "capath", "certfile", "check_retain_source",
        "ciphers", "ciphers_tls1.3", "cleansession", "clientid_prefixes", "connection", "connection_messages",
        "crlfile", "dhparamfile", "http_dir", "idle_timeout", "include_dir", "keepalive_interval", "keyfile",
        "listener", "local_cleansession", "local_clientid", "local_password", "local_username", "log_dest",
        "log_facility", "log_timestamp", "log_timestamp_format", "log_type", "max_connections",
        "max_inflight_bytes", "max_inflight_messages", "max_keepalive", "max_packet_size", "max_qos",
        "max_queued_bytes", "max_queued_messages", "max_topic_alias", "memory_limit", "message_size_limit",
        "mount_point", "notification_topic", "notifications", "notifications_local_only", "password_file",
        "per_listener_settings", "persistence", "persistence_file", "persistence_location",
        "persistent_client_expiration", "pid_file", "port", "protocol", "psk_file", "psk_hint",
        "queue_qos0_messages", "remote_clientid", "remote_password", "remote_username", "require_certificate",
        "restart_timeout", "retain_available", "round_robin", "set_tcp_nodelay", "socket_domain",
        "start_type", "sys_interval", "threshold", "tls_engine", "tls_engine_kpass_sha1", "tls_keyform",
        "tls_version", "topic", "try_private", "upgrade_outgoing_qos", "use_identity_as_username",
        "use_subject_as_username", "use_username_as_clientid", "user", "websockets_headers_size",
        "websockets_log_level", "plugin", "plugin_opt_*",
    ]

    struct Row {
        var name: String
        var outcome: String
        var tests: [String]
    }

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The rows of the table under `heading` in docs/conformance.md.
    static func rows(under heading: String) throws -> [Row] {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/conformance.md"), encoding: .utf8)
        guard let start = text.range(of: "\n" + heading + "\n") else {
            XCTFail("docs/conformance.md has no section \(heading)")
            return []
        }
        var rows: [Row] = []
        for line in text[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("## ") { break }
            guard line.hasPrefix("| `") else { continue }
            let cells = line.replacingOccurrences(of: "\\|", with: "/").split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 4 else { XCTFail("bad row: \(line)"); continue }
            let name = cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            let outcome = cells[2].hasPrefix("**") ? String(cells[2].dropFirst(2).prefix { $0 != "*" }) : ""
            let tests = cells[3].split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
                .filter { $0.contains(".test") }
            rows.append(Row(name: name, outcome: outcome, tests: tests))
        }
        return rows
    }

    /// Every `func testX` of every test file, as `Class.testX` (the class the file declares).
    static func existingTests() throws -> Set<String> {
        var found: Set<String> = []
        let tests = repositoryRoot.appendingPathComponent("Tests")
        guard let files = FileManager.default.enumerator(at: tests, includingPropertiesForKeys: nil) else { return [] }
        for case let url as URL in files where url.pathExtension == "swift" {
            let text = try String(contentsOf: url, encoding: .utf8)
            var classes: [String] = []
            var current: String?
            for line in text.split(separator: "\n") {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                for prefix in ["final class ", "class ", "extension "] where trimmed.hasPrefix(prefix) {
                    let name = trimmed.dropFirst(prefix.count).prefix { $0.isLetter || $0.isNumber || $0 == "_" }
                    if !name.isEmpty { current = String(name); classes.append(String(name)) }
                }
                if let current, let range = trimmed.range(of: "func test") {
                    let name = "test" + trimmed[range.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
                    found.insert("\(current).\(name)")
                }
            }
        }
        return found
    }

    /// A line that uses the directive with a plausible value (the outcome must not depend on it).
    static func sampleLine(_ name: String) -> String {
        let directive = name.hasSuffix("*") ? name.dropLast() + "sample" : Substring(name)
        return "\(directive) sample-value"
    }

    func checkTable(_ heading: String, mustList names: [String]) throws {
        let rows = try Self.rows(under: heading)
        XCTAssertFalse(rows.isEmpty)
        let listed = Set(rows.map(\.name))
        XCTAssertEqual(listed.count, rows.count, "a directive is listed twice")
        for name in names where !listed.contains(name) {
            XCTFail("\(heading): no row for `\(name)`")
        }
        let existing = try Self.existingTests()
        for row in rows {
            XCTAssertTrue(["honoured", "accepted", "refused"].contains(row.outcome),
                          "`\(row.name)`: the row must say honoured, accepted or refused, not '\(row.outcome)'")
            for test in row.tests {
                XCTAssertTrue(existing.contains(test), "`\(row.name)` names \(test), which does not exist")
            }
            let known = MosquittoConfReader.directives[row.name.hasSuffix("*") ? row.name.dropLast() + "sample" : row.name] != nil
            if row.outcome == "refused" {
                XCTAssertThrowsError(try ConfigFileParser.parse("listener 1883\n" + Self.sampleLine(row.name) + "\n", fileName: "t.conf")) { error in
                    let text = String(describing: error)
                    XCTAssertTrue(text.hasPrefix("t.conf:2: "), "`\(row.name)`: \(text)")
                    XCTAssertFalse(text.contains("Unknown configuration variable"), "`\(row.name)` is refused as unknown: \(text)")
                }
            } else {
                XCTAssertTrue(known, "`\(row.name)` is said to be \(row.outcome) but Midge has no handler for it")
                XCTAssertFalse(row.tests.isEmpty, "`\(row.name)` names no test")
            }
        }
    }

    func testEveryMosquitto21DirectiveHasARowThatMatchesTheParser() throws {
        try checkTable("## Mosquitto 2.1's new directives", mustList: MosquittoConfReader.mosquitto21Directives.keys.sorted())
        XCTAssertThrowsError(try ConfigFileParser.parse("global_max_clients 10\n", fileName: "t.conf")) { error in
            XCTAssertEqual(String(describing: error), "t.conf:1: 'global_max_clients' is a Mosquitto 2.1 option that Midge "
                           + "does not support yet (a broker-wide limit on client sessions).")
        }
    }

    func testEveryMosquitto20DirectiveHasARowThatMatchesTheParser() throws {
        try checkTable("## mosquitto.conf(5): every directive", mustList: Self.mosquitto20Directives)
    }
}
