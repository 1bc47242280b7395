#if os(Linux)
import Atomics
import Dispatch
import NIOCore

/// A fixed set of `EpollEventLoop`s, one thread each, handed out round robin.
public final class EpollEventLoopGroup: EventLoopGroup, @unchecked Sendable {
    public let loops: [EpollEventLoop]
    private let cursor = ManagedAtomic(0)

    public init(numberOfThreads: Int, name: String = "midge-loop") throws {
        precondition(numberOfThreads > 0)
        loops = try (0..<numberOfThreads).map { try EpollEventLoop(name: "\(name)-\($0)") }
    }

    public func next() -> EventLoop { nextLoop() }

    public func nextLoop() -> EpollEventLoop {
        loops[cursor.loadThenWrappingIncrement(ordering: .relaxed) % loops.count]
    }

    public func makeIterator() -> EventLoopIterator { EventLoopIterator(loops) }

    public func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable (Error?) -> Void) {
        let group = DispatchGroup()
        for loop in loops {
            group.enter()
            loop.shutdownGracefully(queue: queue) { _ in group.leave() }
        }
        group.notify(queue: queue) { callback(nil) }
    }
}
#endif
