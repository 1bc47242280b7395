import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MidgeBroker

/// Mosquitto's own database (`mosquitto.db`, written with `persistence true`), read as Midge's
/// persisted state: so that Midge started on a Mosquitto installation keeps its retained
/// messages, its persistent sessions with their subscriptions, and the messages queued for them.
///
/// Reads database formats 6 (Mosquitto 1.6.x after 1.6.0 and 2.0) and 5 (early Mosquitto 1.6);
/// older formats are refused with a message saying how to convert them. A damaged file is a
/// `StoreError` with the byte offset where it went wrong. See docs/persistence.md for what maps
/// to what and what is left behind.
public enum MosquittoDatabase {
    /// The file read: its state and what in it could not be carried over.
    public struct Import: Sendable {
        public var state: PersistedState
        /// 5 or 6.
        public var formatVersion: Int
        /// Whether Mosquitto wrote the file at its shutdown (false: an autosave), nil without a CFG chunk.
        public var writtenAtShutdown: Bool?
        /// What the file holds that Midge's state cannot, one line per kind with its count
        /// (e.g. "2 QoS 0 messages queued for sessions"); empty when everything was carried over.
        public var dropped: [String]
    }

    /// Whether the file at `path` starts with Mosquitto's magic bytes (false when it cannot be read).
    public static func isMosquittoDatabase(path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: MosquittoDatabaseParser.magic.count)) ?? Data()
        return Array(head) == MosquittoDatabaseParser.magic
    }

    public static func read(path: String) throws -> PersistedState {
        try readImport(path: path).state
    }

    public static func readImport(path: String) throws -> Import {
        try readImport(bytes: try readFile(path), path: path)
    }

    /// The file's bytes read (`path` names it in errors).
    static func readImport(bytes: [UInt8], path: String) throws -> Import {
        // Mosquitto starts with nothing from an empty file ("Persistence file is empty").
        guard !bytes.isEmpty else {
            return Import(state: PersistedState(), formatVersion: 6, writtenAtShutdown: nil, dropped: [])
        }
        return try bytes.withUnsafeBytes { raw in
            let contents = try MosquittoDatabaseParser.parse(raw, path: path)
            return try MosquittoDatabaseMapping.map(contents, path: path)
        }
    }

    private static func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw StoreError(path: path, message: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw StoreError(path: path, message: "cannot stat: \(String(cString: strerror(errno)))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw StoreError(path: path, message: "not a regular file") }
        let size = Int(info.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        var filled = 0
        while filled < size {
            let count = bytes.withUnsafeMutableBytes { buffer in
                systemRead(fd, buffer.baseAddress! + filled, size - filled)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw StoreError(path: path, offset: filled, message: "cannot read: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }  // shrank while being read: parse what is there
            filled += count
        }
        if filled < size { bytes.removeLast(size - filled) }
        return bytes
    }
}

/// read(2), named apart from `MosquittoDatabase.read(path:)`.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}
