import Dispatch
import Foundation
import MidgeBroker

/// Opening persistence at start-up, before any listener. Midge keeps its store (SQLite) where
/// Mosquitto keeps its database: the file `persistence_file` names in `persistence_location`
/// (scripts, backups and Mosquitto's own tests look for that file). When that file is a database
/// Mosquitto wrote, Midge imports it once into `FILE.midge` and goes on there, leaving Mosquitto's
/// file as it was (so going back to Mosquitto finds it untouched).
///
/// A store or Mosquitto database that cannot be read stops start-up with the file, the offset
/// when known, and what is wrong. With `moveAsideBadStore` (`midge --move-aside-bad-store`) a bad
/// store is renamed instead and Midge starts with an empty one; Mosquitto's file is never changed.
public enum PersistenceStartup {
    /// Where the store of `configuration` is, and the Mosquitto database to import into it first (if any).
    public static func locate(_ configuration: BrokerConfiguration) -> (store: String, importing: String?) {
        let path = configuration.mosquittoDatabasePath
        let imported = configuration.importedStorePath
        if FileManager.default.fileExists(atPath: imported) { return (imported, nil) }
        if MosquittoDatabase.isMosquittoDatabase(path: path) { return (imported, path) }
        return (path, nil)
    }

    public static func open(_ configuration: BrokerConfiguration, moveAsideBadStore: Bool = false,
                            log: BrokerLog) throws -> (store: SessionStore, state: PersistedState) {
        let (storePath, mosquittoPath) = locate(configuration)
        let writeLog: @Sendable (String) -> Void = { line in log.error(line) }
        let existed = FileManager.default.fileExists(atPath: storePath)
        var store: SQLiteSessionStore
        do {
            store = try SQLiteSessionStore(path: storePath, fsync: configuration.persistenceFsync, log: writeLog)
        } catch let error as StoreError where moveAsideBadStore && existed {
            let moved = try SQLiteSessionStore.moveAside(path: storePath)
            log.warning("Warning: \(error); moved aside to \(moved), starting with an empty store.")
            store = try SQLiteSessionStore(path: storePath, fsync: configuration.persistenceFsync, log: writeLog)
        }
        if let mosquittoPath {
            let imported: PersistedState
            do {
                imported = try MosquittoDatabase.read(path: mosquittoPath)
            } catch {
                store.close()
                try? FileManager.default.removeItem(atPath: storePath)
                throw error
            }
            let done = DispatchSemaphore(value: 0)
            store.commit(imported.changes) { done.signal() }
            done.wait()
            log.notice("Imported \(mosquittoPath) into \(storePath): \(imported.sessions.count) sessions, "
                       + "\(imported.subscriptions.count) subscriptions, \(imported.deliveries.count) queued or in-flight messages, "
                       + "\(imported.retained.count) retained messages (Mosquitto's file is left as it was).")
        }
        let state: PersistedState
        do {
            state = try store.load()
        } catch let error as StoreError where moveAsideBadStore {
            store.close()
            let moved = try SQLiteSessionStore.moveAside(path: storePath)
            log.warning("Warning: \(error); moved aside to \(moved), starting with an empty store.")
            store = try SQLiteSessionStore(path: storePath, fsync: configuration.persistenceFsync, log: writeLog)
            return (store, PersistedState())
        }
        log.notice("Restoring from \(storePath): \(state.sessions.count) sessions, \(state.deliveries.count) queued or in-flight messages, "
                   + "\(state.retained.count) retained messages.")
        return (store, state)
    }
}
