import MidgeBroker

// Logging directives: where log lines go (`log_dest`), which ones (`log_type`), and their time
// stamps. `log_dest` and `log_type` lines add up; `none` clears what came before.
extension MosquittoConfReader {
    static let loggingDirectives: [String: DirectiveHandler] = [
        "log_dest": { r, line, _ in
            try r.logging.parseDestination(line)
            if line.values.first == "dlt" {
                // Mosquitto built without DLT (Debian's) takes the value and logs nothing there.
                r.warn(line, "log_dest dlt: Midge has no DLT (Diagnostic Log and Trace) output; nothing is logged there.")
            }
        },
        "log_type": { r, line, _ in
            if try r.logging.parseType(line) == .ignoredInternal {
                // Accepted by Mosquitto (internal debugging); Midge has no such messages.
                r.warn(line, "log_type internal is accepted but has no effect.")
            }
        },
        "log_timestamp": { r, line, _ in r.config.logTimestamp = try line.bool() },
        "log_timestamp_format": { r, line, _ in
            let value = try line.freeText()
            if r.config.logTimestampFormat != nil {
                throw line.error("Duplicate log_timestamp_format value in configuration.")
            }
            r.config.logTimestampFormat = value
        },
        "log_facility": { r, line, _ in
            // `log_dest syslog`'s facility: local0...local7 (default daemon). The last line wins,
            // as in Mosquitto.
            r.config.logFacility = try line.int(in: 0...7)
        },
    ]
}

/// What the `log_dest` and `log_type` lines have said so far (nil: nothing, keep the defaults).
struct LoggingState {
    var types: Set<LogType>?
    var destinations: [LogDestination]?
    var fileSeen = false

    enum TypeOutcome { case applied, ignoredInternal }

    mutating func parseDestination(_ line: MosquittoConfLine) throws {
        let values = line.values
        guard let kind = values.first else { throw line.error("Missing value for log_dest.") }
        var dests = destinations ?? []
        let dest: LogDestination
        switch kind {
        case "file":
            if fileSeen { throw line.error("Duplicate \"log_dest file\" value (only one log file may be configured).") }
            let path = line.rest(after: 1)
            if path.isEmpty { throw line.error("Missing file name for \"log_dest file\".") }
            fileSeen = true
            dest = .file(path)
        case "none":
            if values.count > 1 { throw line.error("Unexpected extra value \"\(values[1])\" for log_dest (it takes a single value).") }
            destinations = []
            return
        case "stdout", "stderr", "syslog", "topic", "dlt":
            if values.count > 1 { throw line.error("Unexpected extra value \"\(values[1])\" for log_dest (it takes a single value).") }
            switch kind {
            case "stdout": dest = .stdout
            case "stderr": dest = .stderr
            case "syslog": dest = .syslog
            case "topic": dest = .topic
            default: dest = .dlt
            }
        default:
            throw line.error("Invalid value for log_dest: \"\(kind)\" (expected stdout, stderr, syslog, topic, dlt, file PATH or none).")
        }
        if !dests.contains(dest) { dests.append(dest) }
        destinations = dests
    }

    mutating func parseType(_ line: MosquittoConfLine) throws -> TypeOutcome {
        let value = try line.single()
        var outcome = TypeOutcome.applied
        var set = types ?? []
        switch value {
        case "none":
            set = []
        case "all":
            set = Set(LogType.allCases).subtracting([.none])
        case "internal":
            outcome = .ignoredInternal
        default:
            guard let type = LogType(rawValue: value) else {
                throw line.error("Invalid value for log_type: \"\(value)\" (expected debug, error, warning, notice, "
                                 + "information, subscribe, unsubscribe, websockets, none or all).")
            }
            set.insert(type)
        }
        types = set
        return outcome
    }

    /// An empty list (after `none`) becomes `[.none]`; nothing said keeps the defaults.
    func finish(into result: inout BrokerConfiguration) {
        if let types {
            result.logTypes = types.isEmpty ? [.none] : types
        }
        if let destinations {
            result.logDestinations = destinations.isEmpty ? [.none] : destinations
        }
    }
}
