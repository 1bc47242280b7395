import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A connected Unix-domain datagram socket to `path` (a leading `@` names an abstract socket,
/// as in systemd's `NOTIFY_SOCKET`): how syslog(3) talks to /dev/log and sd_notify(3) to
/// systemd. Connects at the first send and once more after a failed send (the receiver
/// restarted); a datagram that still cannot be sent is dropped.
public final class UnixDatagramSocket {
    public let path: String
    private var fd: Int32 = -1

    public init(path: String) {
        self.path = path
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Sends one datagram; false when it could not be sent.
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        for attempt in 0..<2 {
            if fd < 0 && !connectSocket() { return false }
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent == bytes.count { return true }
            if sent < 0 && errno == EINTR { continue }
            close(fd)
            fd = -1
            if attempt == 1 { return false }
        }
        return false
    }

    private func connectSocket() -> Bool {
        let socketFD = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socketFD >= 0 else { return false }
        guard let connected = Self.withAddress(path, { connect(socketFD, $0, $1) }), connected == 0 else {
            close(socketFD)
            return false
        }
        fd = socketFD
        return true
    }

    /// Calls `body` with the `sockaddr_un` of `path` (abstract for a leading `@`) and its length;
    /// nil when the path does not fit.
    static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity || (abstract && bytes.count <= capacity) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        // A path counts its terminating NUL (zeroed above); an abstract name is exactly its bytes.
        let length = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)! + bytes.count + (abstract ? 0 : 1)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(length)) }
        }
    }
}
