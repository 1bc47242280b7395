import Foundation

extension SQLiteSessionStore {
    /// Renames a store that cannot be opened (and its `-wal` and `-shm` files) to
    /// `PATH.corrupt-YYYYMMDDHHMMSS` (local time), so that a new store can be made at `path`, and
    /// returns the new name. The files are kept for inspection, never deleted. A name already
    /// taken (two moves within a second) gets `-2`, `-3`, ... appended.
    public static func moveAside(path: String, now: Date = Date()) throws -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyyMMddHHmmss"
        let stamp = formatter.string(from: now)
        let files = FileManager.default
        var target = "\(path).corrupt-\(stamp)"
        var attempt = 1
        while ["", "-wal", "-shm"].contains(where: { files.fileExists(atPath: target + $0) }) {
            attempt += 1
            target = "\(path).corrupt-\(stamp)-\(attempt)"
        }
        guard files.fileExists(atPath: path) else {
            throw StoreError(path: path, message: "cannot move aside: no such file")
        }
        for suffix in ["", "-wal", "-shm"] where files.fileExists(atPath: path + suffix) {
            guard rename(path + suffix, target + suffix) == 0 else {
                let reason = String(cString: strerror(errno))
                throw StoreError(path: path + suffix, message: "cannot rename to \(target + suffix): \(reason)")
            }
        }
        return target
    }
}
