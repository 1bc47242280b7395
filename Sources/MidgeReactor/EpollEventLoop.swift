#if os(Linux)
import CMidgeEpoll
import Dispatch
import Foundation
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The epoll event bits, for code that does not import the C module.
public enum EpollEvent {
    public static let input = EPOLLIN.rawValue
    public static let output = EPOLLOUT.rawValue
    public static let hangUp = EPOLLHUP.rawValue
    public static let error = EPOLLERR.rawValue
}

/// A file descriptor watched by an `EpollEventLoop`: the loop calls `ready(_:)` on its own thread
/// with the epoll events that fired.
open class EpollSource {
    public let fd: Int32
    /// Index in the loop's `sources` (-1 when not registered).
    @exclusivity(unchecked) fileprivate var slot: Int32 = -1

    public init(fd: Int32) { self.fd = fd }

    public var isRegistered: Bool { slot >= 0 }

    /// Called on the loop with the events that fired (`EPOLLIN`, `EPOLLOUT`, `EPOLLHUP`, ...).
    open func ready(_ events: UInt32) {}
}

/// An event loop of our own on epoll: one thread, a task queue, timers, and file descriptors
/// registered directly (no NIO channel or pipeline per socket). It conforms to NIO's `EventLoop`,
/// so the broker engine, futures, promises and scheduled tasks work on it unchanged.
///
/// Why: a NIO `SocketChannel` costs ~2 KiB of objects per connection (channel, pipeline, write
/// queue, selector registration) before the broker allocates anything; a connection here is
/// one file descriptor and one small object.
///
/// Shutdown keeps NIO's contract: the tasks queued before `shutdownGracefully` run, scheduled
/// tasks still pending then fail with `EventLoopError.shutdown` (so a `wait()` on one returns),
/// and so does anything scheduled or submitted afterwards. Once the thread is gone, what is
/// still handed to `execute` (the callbacks of those failed futures, mostly) runs on the
/// calling thread, one caller at a time, with `inEventLoop` true for it: NIO's own loop drops
/// such work with a printed error and leaves its waiters hanging.
///
/// Only NIO's public requirements are implemented (no underscored `_…IsolatedUnsafeUnchecked`
/// ones: their defaults call `execute` and `scheduleTask`).
public final class EpollEventLoop: EventLoop, @unchecked Sendable {
    public static let readBufferCapacity = 64 * 1024

    /// The loop's life: `running` until `shutdownGracefully`, `stopping` while it runs what was
    /// queued before and fails its pending timers, `stopped` once its thread has left.
    public enum State: Sendable { case running, stopping, stopped }

    private let epollFD: Int32
    private let wakeFD: Int32
    /// `pthread_self()` of the thread that runs this loop's work: the loop thread (set before
    /// `init` returns), after shutdown the caller draining late work, else 0.
    private let runner = Atomic<UInt>(0)

    // Shared with other threads, under `lock` (so without Swift's dynamic exclusivity checks,
    // a runtime call per access; the loop-confined state below likewise).
    private let lock = NIOLock()
    @exclusivity(unchecked) private var tasks: [() -> Void] = []
    @exclusivity(unchecked) private var timers: [ScheduledTimer] = []  // a binary min-heap on (deadline, id)
    @exclusivity(unchecked) private var nextTimerID: UInt64 = 0
    /// The loop will look at the queue before it sleeps again: no need to write `wakeFD`.
    @exclusivity(unchecked) private var awake = true
    @exclusivity(unchecked) private var state = State.running
    /// The shutdown callbacks to call when the thread leaves.
    @exclusivity(unchecked) private var shutdownCallbacks: [() -> Void] = []
    /// After shutdown: a caller is running the late tasks (see `runLate`).
    @exclusivity(unchecked) private var lateRunnerActive = false

    // Loop-confined.
    @exclusivity(unchecked) private var sources: [EpollSource] = []
    /// Sources deregistered while a batch of events is handled, kept alive until its end (a later
    /// event of the same batch may still name them).
    @exclusivity(unchecked) private var released: [EpollSource] = []
    /// Scratch buffer for socket reads on this loop (see `SocketConnection`).
    @exclusivity(unchecked) public var readBuffer: ByteBuffer

    public init(name: String) throws {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw IOError(errnoCode: errno, reason: "epoll_create1") }
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wakeFD >= 0 else {
            let code = errno
            Glibc.close(epollFD)
            throw IOError(errnoCode: code, reason: "eventfd")
        }
        readBuffer = ByteBufferAllocator().buffer(capacity: Self.readBufferCapacity)
        guard midge_epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, EPOLLIN.rawValue, 0) == 0 else {
            throw IOError(errnoCode: errno, reason: "epoll_ctl")
        }
        let started = DispatchSemaphore(value: 0)
        // The thread keeps the loop alive until it stops (a loop dropped without shutdown leaks
        // its thread, as a NIO loop does, rather than running on freed memory).
        let thread = Thread { [self] in
            self.runner.store(UInt(bitPattern: Int(bitPattern: pthread_self())), ordering: .releasing)
            started.signal()
            self.run()
        }
        thread.name = name
        thread.start()
        started.wait()
    }

    deinit {
        Glibc.close(wakeFD)
        Glibc.close(epollFD)
    }

    // MARK: EventLoop

    public var inEventLoop: Bool {
        runner.load(ordering: .relaxed) == UInt(bitPattern: Int(bitPattern: pthread_self()))
    }

    /// Where the loop is in its life (for tests and shutdown checks).
    public var currentState: State { lock.withLock { state } }

    public func execute(_ task: @escaping @Sendable () -> Void) {
        enqueue(task)
    }

    private func enqueue(_ task: @escaping () -> Void) {
        let (wake, late): (Bool, Bool) = lock.withLock {
            tasks.append(task)
            if state == .stopped {
                if lateRunnerActive { return (false, false) }
                lateRunnerActive = true
                return (false, true)
            }
            if awake { return (false, false) }
            awake = true
            return (true, false)
        }
        if late { runLate(); return }
        // The loop thread itself is awake by definition: it looks at the queue before sleeping.
        if wake, !inEventLoop { wakeUp() }
    }

    /// After shutdown, on the thread that found no late runner active: runs the queued tasks
    /// (and those they queue) as the loop would, then gives the role back.
    private func runLate() {
        runner.store(UInt(bitPattern: Int(bitPattern: pthread_self())), ordering: .releasing)
        var batch: [() -> Void] = []
        while true {
            let more: Bool = lock.withLock {
                swap(&batch, &tasks)
                if batch.isEmpty {
                    runner.store(0, ordering: .releasing)
                    lateRunnerActive = false
                    return false
                }
                return true
            }
            guard more else { return }
            for task in batch { task() }
            batch.removeAll(keepingCapacity: true)
        }
    }

    public func submit<T>(_ task: @escaping @Sendable () throws -> T) -> EventLoopFuture<T> {
        let promise: EventLoopPromise<T> = makePromise()
        let accepted: Bool = lock.withLock { state != .stopped }
        guard accepted else {
            promise.fail(EventLoopError.shutdown)
            return promise.futureResult
        }
        execute {
            do { promise.succeed(try task()) } catch { promise.fail(error) }
        }
        return promise.futureResult
    }

    public func scheduleTask<T>(deadline: NIODeadline, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        schedule(deadline: deadline, task)
    }

    public func scheduleTask<T>(in amount: TimeAmount, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        schedule(deadline: .now() + amount, task)
    }

    private func schedule<T>(deadline: NIODeadline, _ task: @escaping () throws -> T) -> Scheduled<T> {
        let promise: EventLoopPromise<T> = makePromise()
        let (id, wake, refused): (UInt64, Bool, Bool) = lock.withLock {
            if state == .stopped { return (0, false, true) }
            nextTimerID &+= 1
            let timer = ScheduledTimer(deadline: deadline, id: nextTimerID,
                                       body: { do { promise.succeed(try task()) } catch { promise.fail(error) } },
                                       fail: { promise.fail($0) })
            heapPush(timer)
            // A sleeping loop must recompute its timeout when the new timer is the earliest.
            if awake || timers[0].id != timer.id { return (timer.id, false, false) }
            awake = true
            return (timer.id, true, false)
        }
        if refused {
            promise.fail(EventLoopError.shutdown)
            return Scheduled(promise: promise) {}
        }
        if wake, !inEventLoop { wakeUp() }
        return Scheduled(promise: promise) { [self] in
            let removed = lock.withLock { heapRemove(id: id) }
            if removed { promise.fail(EventLoopError.cancelled) }
        }
    }

    public func preconditionInEventLoop(file: StaticString, line: UInt) {
        precondition(inEventLoop, "not on the event loop", file: file, line: line)
    }

    public func preconditionNotInEventLoop(file: StaticString, line: UInt) {
        precondition(!inEventLoop, "on the event loop", file: file, line: line)
    }

    /// Stops the thread once the tasks queued before this call (and those they queue) have run;
    /// timers still pending then fail with `EventLoopError.shutdown`. Sources still registered
    /// are not closed: their owner closes them first.
    public func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable (Error?) -> Void) {
        let alreadyStopped: Bool = lock.withLock {
            if state == .stopped { return true }
            shutdownCallbacks.append { queue.async { callback(nil) } }
            state = .stopping
            awake = true
            return false
        }
        if alreadyStopped { queue.async { callback(nil) } } else { wakeUp() }
    }

    // MARK: Registration (on the loop)

    /// Watches `source.fd` for `events` (level-triggered) and keeps `source` alive until deregistered.
    public func register(_ source: EpollSource, events: UInt32) throws {
        assert(inEventLoop, "EpollEventLoop.register off its loop")
        let pointer = UInt64(UInt(bitPattern: Unmanaged.passUnretained(source).toOpaque()))
        guard midge_epoll_ctl(epollFD, EPOLL_CTL_ADD, source.fd, events, pointer) == 0 else {
            throw IOError(errnoCode: errno, reason: "epoll_ctl(ADD)")
        }
        source.slot = Int32(sources.count)
        sources.append(source)
    }

    /// Changes the events watched for a registered source.
    public func modify(_ source: EpollSource, events: UInt32) {
        assert(inEventLoop, "EpollEventLoop.modify off its loop")
        guard source.isRegistered else { return }
        let pointer = UInt64(UInt(bitPattern: Unmanaged.passUnretained(source).toOpaque()))
        _ = midge_epoll_ctl(epollFD, EPOLL_CTL_MOD, source.fd, events, pointer)
    }

    /// Stops watching `source` (call before closing its descriptor).
    public func deregister(_ source: EpollSource) {
        assert(inEventLoop, "EpollEventLoop.deregister off its loop")
        let slot = Int(source.slot)
        guard slot >= 0 else { return }
        _ = midge_epoll_ctl(epollFD, EPOLL_CTL_DEL, source.fd, 0, 0)
        let last = sources.removeLast()
        if slot < sources.count {
            sources[slot] = last
            last.slot = Int32(slot)
        }
        source.slot = -1
        released.append(source)
    }

    /// The sources registered on this loop (for closing them all at shutdown).
    public var registeredSources: [EpollSource] { sources }

    // MARK: The loop

    private func wakeUp() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    private func run() {
        let capacity = 256
        let raw = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        let ready = UnsafeMutablePointer<midge_epoll_ready>.allocate(capacity: capacity)
        defer {
            raw.deallocate()
            ready.deallocate()
        }
        var batch: [() -> Void] = []
        var due: [ScheduledTimer] = []
        while true {
            // Take the due timers and the queued tasks; decide how long to sleep.
            var timeout: Int32 = -1
            /// Set when nothing is left to run while stopping: the timers to fail.
            var abandoned: [ScheduledTimer]?
            lock.withLock {
                let now = NIODeadline.now()
                while let first = timers.first, first.deadline <= now { due.append(heapPop()) }
                swap(&batch, &tasks)
                if state == .stopping && batch.isEmpty && due.isEmpty {
                    abandoned = timers
                    timers = []
                    return
                }
                if !batch.isEmpty || !due.isEmpty {
                    timeout = 0
                } else {
                    awake = false
                    if let first = timers.first {
                        let nanoseconds = first.deadline.uptimeNanoseconds - now.uptimeNanoseconds
                        timeout = Int32(clamping: (nanoseconds + 999_999) / 1_000_000)
                    }
                }
            }
            if let abandoned {
                // Failing a timer's promise may queue more work (its callbacks): go round again
                // until a round finds nothing at all.
                for timer in abandoned { timer.fail(EventLoopError.shutdown) }
                if abandoned.isEmpty, let callbacks = finishIfIdle() {
                    for callback in callbacks { callback() }
                    return
                }
                continue
            }
            for timer in due { timer.body() }
            due.removeAll(keepingCapacity: true)
            for task in batch { task() }
            batch.removeAll(keepingCapacity: true)

            let count = midge_epoll_wait(epollFD, raw, ready, Int32(capacity), timeout)
            if count < 0 { continue }  // EINTR
            for index in 0..<Int(count) {
                let event = ready[index]
                if event.data == 0 {
                    var value: UInt64 = 0
                    _ = Glibc.read(wakeFD, &value, 8)
                    continue
                }
                let source = Unmanaged<EpollSource>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(event.data))!).takeUnretainedValue()
                if source.isRegistered { source.ready(event.events) }
            }
            released.removeAll(keepingCapacity: true)
        }
    }

    /// While stopping, with no timer left: when no task was queued meanwhile, the loop is
    /// stopped (later work runs on its callers, see `runLate`) and returns its shutdown callbacks.
    private func finishIfIdle() -> [() -> Void]? {
        lock.withLock {
            guard tasks.isEmpty && timers.isEmpty else { return nil }
            state = .stopped
            runner.store(0, ordering: .releasing)
            let callbacks = shutdownCallbacks
            shutdownCallbacks = []
            return callbacks
        }
    }

    // MARK: Timer heap (under `lock`)

    private struct ScheduledTimer {
        let deadline: NIODeadline
        let id: UInt64
        let body: () -> Void
        let fail: (Error) -> Void

        func precedes(_ other: ScheduledTimer) -> Bool {
            deadline < other.deadline || (deadline == other.deadline && id < other.id)
        }
    }

    private func heapPush(_ timer: ScheduledTimer) {
        timers.append(timer)
        siftUp(timers.count - 1)
    }

    private func heapPop() -> ScheduledTimer {
        let first = timers[0]
        let last = timers.removeLast()
        if !timers.isEmpty {
            timers[0] = last
            siftDown(0)
        }
        return first
    }

    /// O(n), as NIO's own cancellation: timers are few (keep-alive sweeps, expiries, closes).
    private func heapRemove(id: UInt64) -> Bool {
        guard let index = timers.firstIndex(where: { $0.id == id }) else { return false }
        let last = timers.removeLast()
        if index < timers.count {
            timers[index] = last
            siftDown(index)
            siftUp(index)
        }
        return true
    }

    private func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard timers[child].precedes(timers[parent]) else { return }
            timers.swapAt(child, parent)
            child = parent
        }
    }

    private func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < timers.count else { return }
            var smallest = left
            if left + 1 < timers.count, timers[left + 1].precedes(timers[left]) { smallest = left + 1 }
            guard timers[smallest].precedes(timers[parent]) else { return }
            timers.swapAt(smallest, parent)
            parent = smallest
        }
    }
}
#endif
