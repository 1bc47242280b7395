import Foundation
import MidgeServer

/// sd_notify(3) without libsystemd: state lines sent as one datagram to the Unix socket that
/// systemd names in `$NOTIFY_SOCKET` (a path, or an abstract name starting with `@`), for a
/// `Type=notify` service (midge.service): `READY=1` once the listeners are open (where
/// Mosquitto's systemd build calls `sd_notify(0, "READY=1")`), `RELOADING=1` and `READY=1`
/// around a SIGHUP reload, `STOPPING=1` at shutdown. Without `$NOTIFY_SOCKET` it does nothing.
final class SystemdNotifier {
    private let socket: UnixDatagramSocket?
    private let lock = NSLock()

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let path = environment["NOTIFY_SOCKET"], path.count > 1, path.hasPrefix("/") || path.hasPrefix("@") {
            socket = UnixDatagramSocket(path: path)
        } else {
            socket = nil
        }
    }

    func ready() { send("READY=1") }

    func stopping() { send("STOPPING=1") }

    /// `RELOADING=1` with the monotonic time in microseconds, as systemd's notify-reload wants it.
    func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        send("RELOADING=1\nMONOTONIC_USEC=\(UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000)")
    }

    private func send(_ state: String) {
        guard let socket else { return }
        lock.lock()
        socket.send(Array(state.utf8))
        lock.unlock()
    }
}
