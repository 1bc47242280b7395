import Dispatch
import NIOConcurrencyHelpers
import NIOCore

/// A NIO `EventLoop` without a thread, run by a `VirtualLoopScheduler` on the caller's thread
/// against a virtual clock: tasks and timers run only when the scheduler says so, in a fixed
/// order, so the engine's behaviour over minutes of keep alive, will delay or expiry is tested in
/// microseconds and the same way every time.
///
/// `inEventLoop` is true only while this loop is running a task. Code that touches one loop's
/// state from another loop's task therefore trips the engine's loop assertions here, exactly
/// (not by chance, as with threads).
public final class VirtualEventLoop: EventLoop, @unchecked Sendable {
    public let index: Int
    unowned let scheduler: VirtualLoopScheduler

    // Guarded by `lock`: the engine may hand work to this loop from code running on another
    // loop, and a test may call from its own thread, but everything runs on the scheduler's.
    private let lock = NIOLock()
    private var tasks: [() -> Void] = []
    private var timers: [Timer] = []
    private var isShutDown = false

    struct Timer {
        let deadline: NIODeadline
        let sequence: UInt64
        let body: () -> Void
        let fail: (Error) -> Void
    }

    init(index: Int, scheduler: VirtualLoopScheduler) {
        self.index = index
        self.scheduler = scheduler
    }

    // MARK: EventLoop

    public var inEventLoop: Bool { scheduler.running === self }

    public var now: NIODeadline { scheduler.now }

    public func execute(_ task: @escaping @Sendable () -> Void) {
        lock.withLock { tasks.append(task) }
    }

    public func scheduleTask<T>(deadline: NIODeadline, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        let promise: EventLoopPromise<T> = makePromise()
        let sequence = scheduler.nextSequence()
        let refused: Bool = lock.withLock {
            if isShutDown { return true }
            timers.append(Timer(deadline: deadline, sequence: sequence,
                                body: { do { promise.succeed(try task()) } catch { promise.fail(error) } },
                                fail: { promise.fail($0) }))
            return false
        }
        if refused { promise.fail(EventLoopError.shutdown) }
        return Scheduled(promise: promise) { [weak self] in
            guard let self else { return }
            let removed: Bool = self.lock.withLock {
                guard let position = self.timers.firstIndex(where: { $0.sequence == sequence }) else { return false }
                self.timers.remove(at: position)
                return true
            }
            if removed { promise.fail(EventLoopError.cancelled) }
        }
    }

    public func scheduleTask<T>(in amount: TimeAmount, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        scheduleTask(deadline: now + amount, task)
    }

    public func preconditionInEventLoop(file: StaticString, line: UInt) {
        precondition(inEventLoop, "not on virtual loop \(index)", file: file, line: line)
    }

    public func preconditionNotInEventLoop(file: StaticString, line: UInt) {
        precondition(!inEventLoop, "on virtual loop \(index)", file: file, line: line)
    }

    /// Futures may be waited on from the test's thread between scheduler runs.
    public func _preconditionSafeToWait(file: StaticString, line: UInt) {}

    public func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable (Error?) -> Void) {
        shutDownNow()
        queue.async { callback(nil) }
    }

    /// Fails the pending timers with `EventLoopError.shutdown` and refuses new ones. A pending
    /// timer's closure holds its promise, whose future holds this loop: dropping the timers
    /// breaks that cycle, so a finished harness is freed.
    func shutDownNow() {
        let abandoned: [Timer] = lock.withLock {
            isShutDown = true
            defer { timers = [] }
            return timers
        }
        for timer in abandoned { timer.fail(EventLoopError.shutdown) }
    }

    // MARK: For the scheduler

    var hasTasks: Bool { lock.withLock { !tasks.isEmpty } }

    func takeTasks() -> [() -> Void] {
        lock.withLock {
            var taken: [() -> Void] = []
            swap(&taken, &tasks)
            return taken
        }
    }

    /// The earliest timer's (deadline, sequence), if any.
    var earliestTimer: (NIODeadline, UInt64)? {
        lock.withLock { timers.min { ($0.deadline, $0.sequence) < ($1.deadline, $1.sequence) }.map { ($0.deadline, $0.sequence) } }
    }

    func takeTimer(sequence: UInt64) -> Timer? {
        lock.withLock {
            guard let position = timers.firstIndex(where: { $0.sequence == sequence }) else { return nil }
            return timers.remove(at: position)
        }
    }
}
