import NIOConcurrencyHelpers
import NIOCore

/// Runs a set of `VirtualEventLoop`s on the calling thread against one virtual clock.
///
/// `run()` runs queued tasks, loop by loop in index order, until no loop has any (timers due
/// at the current time included). `advance(by:)` moves the clock to each timer's deadline in
/// turn, earliest first (ties in the order they were scheduled), running what becomes due,
/// then to the target time. Nothing depends on real time or on thread scheduling.
public final class VirtualLoopScheduler: @unchecked Sendable {
    public private(set) var loops: [VirtualEventLoop] = []
    /// The loop whose task is running (nil between tasks).
    public internal(set) var running: VirtualEventLoop?
    private var clock = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private let sequenceLock = NIOLock()
    private var sequence: UInt64 = 0

    public init(loopCount: Int) {
        precondition(loopCount >= 1)
        loops = (0..<loopCount).map { VirtualEventLoop(index: $0, scheduler: self) }
    }

    /// The virtual time (starts at 1 s of uptime, so that "zero" never means "now").
    public var now: NIODeadline { clock }

    func nextSequence() -> UInt64 {
        sequenceLock.withLock {
            sequence &+= 1
            return sequence
        }
    }

    /// Runs `body` as a task of `loop`, now (for tests that call into the engine directly).
    public func onLoop<T>(_ loop: VirtualEventLoop, _ body: () throws -> T) rethrows -> T {
        precondition(running == nil, "onLoop inside a running task")
        running = loop
        defer { running = nil }
        return try body()
    }

    /// Runs every queued task and every timer due now, until there is none. Returns how many
    /// tasks and timers ran.
    @discardableResult
    public func run() -> Int {
        var count = 0
        while true {
            var progressed = false
            for loop in loops where loop.hasTasks {
                for task in loop.takeTasks() {
                    running = loop
                    task()
                    running = nil
                    count += 1
                }
                progressed = true
            }
            if progressed { continue }
            guard let (loop, deadline, sequence) = earliestTimer(), deadline <= clock else { return count }
            if let timer = loop.takeTimer(sequence: sequence) {
                running = loop
                timer.body()
                running = nil
                count += 1
            }
        }
    }

    /// Moves the clock forward by `amount`, running everything that falls due on the way at
    /// its own time.
    public func advance(by amount: TimeAmount) {
        advance(to: clock + amount)
    }

    public func advance(to target: NIODeadline) {
        run()
        while let (_, deadline, _) = earliestTimer(), deadline <= target {
            if deadline > clock { clock = deadline }
            run()
        }
        if target > clock { clock = target }
        run()
    }

    /// Ends every loop: runs what is queued, fails the pending timers (running their callbacks),
    /// and leaves nothing that keeps the loops alive.
    public func shutDown() {
        run()
        for loop in loops { loop.shutDownNow() }
        run()
    }

    private func earliestTimer() -> (VirtualEventLoop, NIODeadline, UInt64)? {
        var best: (VirtualEventLoop, NIODeadline, UInt64)?
        for loop in loops {
            guard let (deadline, sequence) = loop.earliestTimer else { continue }
            if let current = best, (current.1, current.2) < (deadline, sequence) { continue }
            best = (loop, deadline, sequence)
        }
        return best
    }
}
