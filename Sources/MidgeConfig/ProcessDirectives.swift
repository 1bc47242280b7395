import MidgeBroker

// Directives about the broker process (mosquitto.conf(5), "General options"), read as Mosquitto
// 2.0.11's src/conf.c reads them:
//
// - `pid_file PATH`: the rest of the line. The process writes its id there at start-up (stopping
//   with "Error: Unable to write pid file." when it cannot) and removes the file at exit.
extension MosquittoConfReader {
    static let processDirectives: [String: DirectiveHandler] = [
        "pid_file": { r, line, _ in r.config.pidFile = try line.freeText() },
    ]
}
