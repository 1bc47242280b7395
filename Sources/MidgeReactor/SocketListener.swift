#if os(Linux)
import CMidgeEpoll
import Glibc
import NIOCore

/// A listening TCP socket on an `EpollEventLoop`: accepts every pending connection when readable
/// and hands each (non-blocking, close-on-exec) descriptor with its peer's `host:port` to
/// `onAccept`, on the loop.
public final class SocketListener: EpollSource {
    public let localAddress: SocketAddress
    public unowned let loop: EpollEventLoop
    private let onAccept: (Int32, String) -> Void
    /// Accepting is paused after EMFILE/ENFILE (a level-triggered listener would spin).
    private var paused = false

    /// Binds and listens on `host:port` (port 0 picks a free port, see `localAddress`).
    /// - Parameter ipv6Only: for an IPv6 address, leave the IPv4 port free for another socket.
    public init(host: String, port: Int, backlog: Int32 = 1024, ipv6Only: Bool = true,
                loop: EpollEventLoop, onAccept: @escaping (Int32, String) -> Void) throws {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let family: Int32
        switch address {
        case .v4: family = AF_INET
        case .v6: family = AF_INET6
        case .unixDomainSocket: throw IOError(errnoCode: EAFNOSUPPORT, reason: "socket")
        }
        let fd = Glibc.socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        do {
            try Self.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            if family == AF_INET6, ipv6Only { try Self.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
            let bound = address.withSockAddr { Glibc.bind(fd, $0, socklen_t($1)) }
            guard bound == 0 else { throw IOError(errnoCode: errno, reason: "bind") }
            guard Glibc.listen(fd, backlog) == 0 else { throw IOError(errnoCode: errno, reason: "listen") }
            localAddress = try SocketAddress(ipAddress: address.ipAddress ?? host, port: Self.boundPort(fd))
        } catch {
            Glibc.close(fd)
            throw error
        }
        self.loop = loop
        self.onAccept = onAccept
        super.init(fd: fd)
    }

    /// Starts accepting (from any thread).
    public func start() {
        loop.execute { [self] in
            do { try loop.register(self, events: EPOLLIN.rawValue) } catch { Glibc.close(fd) }
        }
    }

    /// Stops accepting and closes the socket (on the loop).
    public func close() {
        guard isRegistered else { return }
        loop.deregister(self)
        Glibc.close(fd)
    }

    public override func ready(_ events: UInt32) {
        // Up to 64 per wake-up, so that a connection storm does not starve this loop's clients.
        for _ in 0..<64 {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { midge_accept(fd, $0, &length) }
            }
            if client >= 0 {
                onAccept(client, Self.describe(storage))
                continue
            }
            switch errno {
            case EINTR, ECONNABORTED:
                continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                // Out of descriptors: stop watching for 100 ms instead of spinning on the backlog.
                guard !paused else { return }
                paused = true
                loop.modify(self, events: 0)
                _ = loop.scheduleTask(in: .milliseconds(100)) { [self] in
                    paused = false
                    loop.modify(self, events: EPOLLIN.rawValue)
                }
                return
            default:
                return  // EAGAIN: the backlog is empty
            }
        }
    }

    /// `host:port` of a socket address (an IPv6 host without brackets, as Mosquitto logs it).
    public static func describe(_ storage: sockaddr_storage) -> String {
        let family = Int32(storage.ss_family)
        return withUnsafeBytes(of: storage) { raw in
            let (offset, port): (Int, UInt16)
            switch family {
            case AF_INET:
                offset = MemoryLayout<sockaddr_in>.offset(of: \sockaddr_in.sin_addr)!
                port = raw.load(fromByteOffset: MemoryLayout<sockaddr_in>.offset(of: \sockaddr_in.sin_port)!, as: UInt16.self)
            case AF_INET6:
                offset = MemoryLayout<sockaddr_in6>.offset(of: \sockaddr_in6.sin6_addr)!
                port = raw.load(fromByteOffset: MemoryLayout<sockaddr_in6>.offset(of: \sockaddr_in6.sin6_port)!, as: UInt16.self)
            default:
                return "unknown"
            }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            inet_ntop(family, raw.baseAddress! + offset, &text, socklen_t(text.count))
            return "\(String(cString: text)):\(UInt16(bigEndian: port))"
        }
    }

    /// `host:port` of a connected socket's peer ("unknown" when it has none).
    public static func peerAddress(of fd: Int32) -> String {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        return result == 0 ? describe(storage) : "unknown"
    }

    public static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws {
        var value = value
        guard setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw IOError(errnoCode: errno, reason: "setsockopt")
        }
    }

    private static func boundPort(_ fd: Int32) throws -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { throw IOError(errnoCode: errno, reason: "getsockname") }
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }
}
#endif
