import MidgeBroker

// Persistence directives (mosquitto.conf(5), "General options"), read as Mosquitto 2.0.11's
// src/conf.c reads them, all broker-wide:
//
// - `persistence` BOOL, and `retained_persistence` BOOL, its obsolete synonym (Mosquitto still
//   accepts it silently; Midge warns).
// - `persistence_file NAME` and `persistence_location PATH`: the rest of the line; empty is an
//   error, and so is a second line of either ("Duplicate ... value", as in Mosquitto). The
//   database is LOCATION/NAME: Mosquitto before 2.0.3 simply prepended the location to the file
//   name, so configuration files conventionally end it with '/'; since 2.0.3 Mosquitto inserts
//   the '/' itself. Midge stores the location ending with '/' (adding it when missing), so
//   `BrokerConfiguration.mosquittoDatabasePath` (location + file) names the file Mosquitto 2.0.11
//   opens, with or without the trailing '/'.
// - `autosave_interval SECONDS` (an integer; negative means 0, as in Mosquitto) and
//   `autosave_on_changes BOOL`: read for compatibility only; Midge writes every change as it
//   happens (group commit), so there is no snapshot to schedule.
// - `persistence_fsync BOOL`, Midge's own: fsync every group commit (power-loss safety).
extension MosquittoConfReader {
    static let persistenceDirectives: [String: DirectiveHandler] = [
        "persistence": { r, line, _ in r.config.persistence = try line.bool() },
        "retained_persistence": { r, line, _ in
            r.config.persistence = try line.bool()
            r.warn(line, "The 'retained_persistence' option is obsolete; use 'persistence' instead.")
        },
        "persistence_file": { r, line, _ in r.config.persistenceFile = try r.persistenceText(line) },
        "persistence_location": { r, line, _ in
            let location = try r.persistenceText(line)
            r.config.persistenceLocation = location.hasSuffix("/") ? location : location + "/"
        },
        "autosave_interval": { r, line, _ in r.config.autosaveInterval = max(0, try line.int()) },
        "autosave_on_changes": { r, line, _ in r.config.autosaveOnChanges = try line.bool() },
        "persistence_fsync": { r, line, _ in r.config.persistenceFsync = try line.bool() },
    ]

    /// `persistence_file` or `persistence_location`: the rest of the line, once per configuration.
    mutating func persistenceText(_ line: MosquittoConfLine) throws -> String {
        let value = try line.freeText()
        let name = line.directive
        if persistencePathsSeen.contains(name) { throw line.error("Duplicate \(name) value in configuration.") }
        persistencePathsSeen.insert(name)
        return value
    }
}
