import Foundation

/// The file of a `listener 0 /path/to/socket` Unix-domain socket listener.
enum UnixSocketFile {
    /// Mosquitto 2.0 leaves its socket at mode 0770: the broker's user and group may connect,
    /// others may not, whatever the umask. Connecting needs write permission on the file.
    static func grantGroupAccess(_ path: String) {
        _ = chmod(path, 0o770)
    }

    /// Removes the socket file at shutdown (only if it still is a socket: a file put there
    /// since is left alone).
    static func remove(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK else { return }
        _ = unlink(path)
    }
}
