#if os(Linux)
import Dispatch
import MidgeReactor
import NIOConcurrencyHelpers
import NIOCore
import XCTest

/// The epoll loop keeps NIO's shutdown contract: queued work runs, pending timers fail with
/// `EventLoopError.shutdown`, and work handed over afterwards fails its promise instead of
/// vanishing (so nothing waits forever).
final class EpollEventLoopShutdownTests: XCTestCase {
    private func shutDown(_ loop: EpollEventLoop) {
        let done = DispatchSemaphore(value: 0)
        loop.shutdownGracefully(queue: .global()) { _ in done.signal() }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success, "shutdown did not finish")
    }

    private func assertShutdownError<T>(_ future: EventLoopFuture<T>, file: StaticString = #filePath, line: UInt = #line) {
        // wait() must return (it used to hang on a dropped timer).
        XCTAssertThrowsError(try future.wait(), file: file, line: line) { error in
            XCTAssertEqual(error as? EventLoopError, .shutdown, file: file, line: line)
        }
    }

    func testStatesRunningStoppingStopped() throws {
        let loop = try EpollEventLoop(name: "state")
        XCTAssertEqual(loop.currentState, .running)
        XCTAssertEqual(try loop.submit { loop.currentState }.wait(), .running)
        // Work queued before the shutdown runs while the loop is stopping.
        let seen = NIOLockedValueBox<EpollEventLoop.State?>(nil)
        loop.execute { usleep(50_000) }
        loop.execute { seen.withLockedValue { $0 = loop.currentState } }
        shutDown(loop)
        XCTAssertEqual(seen.withLockedValue { $0 }, .stopping)
        XCTAssertEqual(loop.currentState, .stopped)
        XCTAssertFalse(loop.inEventLoop)
    }

    func testTasksQueuedBeforeShutdownStillRun() throws {
        let loop = try EpollEventLoop(name: "drain")
        let count = NIOLockedValueBox(0)
        for _ in 0..<100 {
            loop.execute {
                count.withLockedValue { $0 += 1 }
                // Work queued by queued work runs too.
                loop.execute { count.withLockedValue { $0 += 1 } }
            }
        }
        shutDown(loop)
        XCTAssertEqual(count.withLockedValue { $0 }, 200)
    }

    func testPendingScheduledTasksFailWithShutdown() throws {
        let loop = try EpollEventLoop(name: "pending")
        let ran = NIOLockedValueBox(false)
        let scheduled = loop.scheduleTask(in: .hours(1)) { ran.withLockedValue { $0 = true } }
        let repeated = loop.scheduleRepeatedTask(initialDelay: .hours(1), delay: .hours(1)) { _ in }
        shutDown(loop)
        assertShutdownError(scheduled.futureResult)
        XCTAssertFalse(ran.withLockedValue { $0 })
        _ = repeated
    }

    func testScheduleAndSubmitAfterShutdownFail() throws {
        let loop = try EpollEventLoop(name: "after")
        shutDown(loop)
        let ran = NIOLockedValueBox(false)
        assertShutdownError(loop.scheduleTask(in: .milliseconds(1)) { ran.withLockedValue { $0 = true } }.futureResult)
        assertShutdownError(loop.submit { ran.withLockedValue { $0 = true } })
        XCTAssertFalse(ran.withLockedValue { $0 }, "work accepted after shutdown")
    }

    func testFutureCallbacksStillRunAfterShutdown() throws {
        let loop = try EpollEventLoop(name: "callbacks")
        let promise = loop.makePromise(of: Int.self)
        let mapped = promise.futureResult.map { $0 * 2 }
        shutDown(loop)
        // Completing a promise of a stopped loop runs its callbacks on this thread, as the loop.
        promise.succeed(21)
        XCTAssertEqual(try mapped.wait(), 42)
        XCTAssertEqual(loop.currentState, .stopped)
    }

    func testShutdownTwiceCallsBothCallbacks() throws {
        let loop = try EpollEventLoop(name: "twice")
        shutDown(loop)
        shutDown(loop)
    }
}
#endif
