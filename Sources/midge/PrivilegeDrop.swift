import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `user` (mosquitto.conf(5)): a broker started as root becomes an ordinary user. Mosquitto
/// 2.0.11's `drop_privileges` (src/mosquitto.c) decides who; Midge switches later than
/// Mosquitto, once the listeners are open and every file is read or open (configuration,
/// password and ACL files, TLS keys, the store, the log file, the pid file), so a key only root
/// may read and a port below 1024 work too. Files Midge created as root and writes or removes
/// later are handed to the user first (`handOver`), as if the user had created them.
struct PrivilegeDrop {
    /// The account switched to (its name for initgroups).
    let name: String
    let uid: uid_t
    let gid: gid_t

    enum Plan {
        /// Not started as root: `user` has no effect.
        case notRoot
        /// Root and `user root`: stays root (Mosquitto then warns).
        case stayRoot
        case drop(PrivilegeDrop, warning: String?)
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Who to become, decided before anything is opened (an unknown user stops start-up at
    /// once, as in Mosquitto). `configured` nil means "mosquitto", which falls back to "nobody"
    /// when the system has no such user; any other unknown user is an error.
    static func plan(user configured: String?, euid: uid_t = geteuid()) throws -> Plan {
        guard euid == 0 else { return .notRoot }
        let user = configured ?? "mosquitto"
        if user == "root" { return .stayRoot }
        if let found = lookup(user) { return .drop(found, warning: nil) }
        guard user == "mosquitto" else {
            throw Failure(description: "Error: Unable to drop privileges to '\(user)' because this user does not exist.")
        }
        guard let nobody = lookup("nobody") else {
            throw Failure(description: "Error: Unable to drop privileges to 'nobody'.")
        }
        return .drop(nobody, warning: "Warning: Unable to drop privileges to '\(user)' because this user does not exist. Trying 'nobody' instead.")
    }

    static func lookup(_ name: String) -> PrivilegeDrop? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return PrivilegeDrop(name: String(cString: entry.pw_name), uid: entry.pw_uid, gid: entry.pw_gid)
    }

    /// Gives `path` to the user (and its primary group) when root owns it; a missing file is
    /// skipped. For files Midge created as root before the switch and still writes, re-opens
    /// or removes afterwards.
    func handOver(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_uid == 0 else { return }
        _ = lchown(path, uid, gid)
    }

    /// initgroups, setgid, setuid, in that order (Mosquitto's). glibc applies each to every
    /// thread of the process, so event loops started before the switch run as the user too.
    func apply() throws {
        if initgroups(name, gid) != 0 {
            throw Failure(description: "Error setting groups whilst dropping privileges: \(String(cString: strerror(errno))).")
        }
        if setgid(gid) != 0 {
            throw Failure(description: "Error setting gid whilst dropping privileges: \(String(cString: strerror(errno))).")
        }
        if setuid(uid) != 0 {
            throw Failure(description: "Error setting uid whilst dropping privileges: \(String(cString: strerror(errno))).")
        }
    }

    /// Mosquitto's warning when the process is still root (or group root) afterwards.
    static var stillRootWarning: String? {
        geteuid() == 0 || getegid() == 0 ? "Warning: Midge should not be run as root/administrator." : nil
    }
}
