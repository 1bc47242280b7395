import MidgeBroker

// Persistence directives (mosquitto.conf(5), "General options": persistence, autosave).
//
// Not implemented yet. When persistence comes, its handlers go in `persistenceDirectives` (a
// name found there is read, whatever `pendingPersistenceDirectives` says) and their names leave
// the pending list; until then every name below is refused with "directive 'NAME' is not
// supported yet".
extension MosquittoConfReader {
    static let persistenceDirectives: [String: DirectiveHandler] = [:]

    static let pendingPersistenceDirectives: Set<String> = [
        "persistence", "retained_persistence", "persistence_file", "persistence_location",
        "autosave_interval", "autosave_on_changes",
    ]
}
