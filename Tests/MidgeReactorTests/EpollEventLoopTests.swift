#if os(Linux)
import Glibc
import MidgeReactor
import NIOConcurrencyHelpers
import NIOCore
import XCTest

/// The epoll loop as a NIO `EventLoop`: tasks, futures, timers and their cancellation.
final class EpollEventLoopTests: XCTestCase {
    private var group: EpollEventLoopGroup!

    override func setUpWithError() throws {
        group = try EpollEventLoopGroup(numberOfThreads: 2, name: "test-loop")
    }

    override func tearDownWithError() throws {
        try group.syncShutdownGracefully()
    }

    func testTasksFromOtherThreadsRunOnTheLoopInOrder() throws {
        let loop = group.loops[0]
        XCTAssertFalse(loop.inEventLoop)
        let order = NIOLockedValueBox<[Int]>([])
        for index in 0..<1000 {
            loop.execute {
                XCTAssertTrue(loop.inEventLoop)
                order.withLockedValue { $0.append(index) }
            }
        }
        try loop.submit {}.wait()
        XCTAssertEqual(order.withLockedValue { $0 }, Array(0..<1000))
    }

    func testSubmitAndFutureChainsCompleteOnTheLoop() throws {
        let loop = group.loops[1]
        let value = try loop.submit { 20 }.map { $0 + 1 }.flatMap { value in
            loop.makeSucceededFuture(value * 2)
        }.wait()
        XCTAssertEqual(value, 42)
        XCTAssertThrowsError(try loop.submit { throw IOError(errnoCode: EPIPE, reason: "test") }.wait())
    }

    func testTimersFireInDeadlineOrderAndNotEarly() throws {
        let loop = group.loops[0]
        let fired = NIOLockedValueBox<[Int]>([])
        let start = NIODeadline.now()
        let late = loop.scheduleTask(in: .milliseconds(120)) { fired.withLockedValue { $0.append(120) } }
        let early = loop.scheduleTask(in: .milliseconds(40)) { fired.withLockedValue { $0.append(40) } }
        try early.futureResult.wait()
        XCTAssertGreaterThanOrEqual((NIODeadline.now() - start).nanoseconds, TimeAmount.milliseconds(40).nanoseconds)
        try late.futureResult.wait()
        XCTAssertGreaterThanOrEqual((NIODeadline.now() - start).nanoseconds, TimeAmount.milliseconds(120).nanoseconds)
        XCTAssertEqual(fired.withLockedValue { $0 }, [40, 120])
    }

    func testATimerScheduledFromTheLoopWakesItFromASleep() throws {
        // The loop sleeps with no timer at all; a timer added from another thread must wake it.
        let loop = group.loops[1]
        Thread.sleep(forTimeInterval: 0.05)
        let start = NIODeadline.now()
        try loop.scheduleTask(in: .milliseconds(30)) {}.futureResult.wait()
        XCTAssertLessThan((NIODeadline.now() - start).nanoseconds, TimeAmount.milliseconds(500).nanoseconds)
    }

    func testCancelledTimerNeverRunsAndFailsItsFuture() throws {
        let loop = group.loops[0]
        let ran = NIOLockedValueBox(false)
        let task = loop.scheduleTask(in: .milliseconds(50)) { ran.withLockedValue { $0 = true } }
        task.cancel()
        XCTAssertThrowsError(try task.futureResult.wait()) { error in
            XCTAssertEqual(error as? EventLoopError, .cancelled)
        }
        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertFalse(ran.withLockedValue { $0 })
    }

    func testRepeatedTaskRunsUntilCancelled() throws {
        let loop = group.loops[1]
        let count = NIOLockedValueBox(0)
        let repeated = loop.scheduleRepeatedTask(initialDelay: .milliseconds(5), delay: .milliseconds(5)) { _ in
            count.withLockedValue { $0 += 1 }
        }
        Thread.sleep(forTimeInterval: 0.2)
        let promise = loop.makePromise(of: Void.self)
        repeated.cancel(promise: promise)
        try promise.futureResult.wait()
        let seen = count.withLockedValue { $0 }
        XCTAssertGreaterThan(seen, 5)
        Thread.sleep(forTimeInterval: 0.05)
        XCTAssertEqual(count.withLockedValue { $0 }, seen)
    }

    func testListenerAcceptsAndTheLoopReportsReadableSockets() throws {
        let loop = group.loops[0]
        let accepted = NIOLockedValueBox<[String]>([])
        let listener = try SocketListener(host: "127.0.0.1", port: 0, loop: loop) { fd, peer in
            accepted.withLockedValue { $0.append(peer) }
            // Echo one read back through a registered source.
            let echo = EchoSource(fd: fd)
            try? loop.register(echo, events: EpollEvent.input)
        }
        listener.start()
        let port = try XCTUnwrap(listener.localAddress.port)
        XCTAssertGreaterThan(port, 0)

        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(client) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(connected, 0)
        XCTAssertEqual(Glibc.write(client, "ping", 4), 4)
        var reply = [UInt8](repeating: 0, count: 4)
        XCTAssertEqual(Glibc.read(client, &reply, 4), 4)
        XCTAssertEqual(String(decoding: reply, as: UTF8.self), "ping")
        XCTAssertEqual(accepted.withLockedValue { $0.count }, 1)
        XCTAssertTrue(accepted.withLockedValue { $0[0] }.hasPrefix("127.0.0.1:"))

        try loop.submit {
            for source in loop.registeredSources where source is EchoSource {
                loop.deregister(source)
                Glibc.close(source.fd)
            }
            listener.close()
        }.wait()
        XCTAssertEqual(try loop.submit { loop.registeredSources.count }.wait(), 0)
    }

    func testBindingABusyPortThrowsAddressInUse() throws {
        let loop = group.loops[0]
        let first = try SocketListener(host: "127.0.0.1", port: 0, loop: loop) { fd, _ in Glibc.close(fd) }
        XCTAssertThrowsError(try SocketListener(host: "127.0.0.1", port: first.localAddress.port!, loop: loop) { fd, _ in Glibc.close(fd) }) { error in
            XCTAssertEqual((error as? IOError)?.errnoCode, EADDRINUSE)
        }
        Glibc.close(first.fd)
    }
}

private final class EchoSource: EpollSource {
    override func ready(_ events: UInt32) {
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = Glibc.read(fd, &buffer, 64)
        if count > 0 { _ = Glibc.write(fd, buffer, count) }
    }
}
#endif
