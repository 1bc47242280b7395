import MidgeBroker

// Directives about the broker process (mosquitto.conf(5), "General options"), read as Mosquitto
// 2.0.11's src/conf.c reads them (both are conf__parse_string values there: the rest of the
// line, and a second line is "Duplicate NAME value in configuration."):
//
// - `pid_file PATH`: the process writes its id there at start-up (stopping with "Error: Unable
//   to write pid file." when it cannot) and removes the file at exit.
// - `user NAME`: started as root, the process becomes NAME (its primary group and its
//   supplementary groups) once its listeners and files are open; without the directive
//   "mosquitto", or "nobody" when there is no user mosquitto. Ignored when not started as root.
//   The switch itself is the `midge` command's (BrokerCommand, PrivilegeDrop).
extension MosquittoConfReader {
    static let processDirectives: [String: DirectiveHandler] = [
        "pid_file": { r, line, _ in
            let value = try line.freeText()
            if r.config.pidFile != nil { throw line.error("Duplicate pid_file value in configuration.") }
            r.config.pidFile = value
        },
        "user": { r, line, _ in
            let value = try line.freeText()
            if r.config.user != nil { throw line.error("Duplicate user value in configuration.") }
            r.config.user = value
        },
    ]
}
