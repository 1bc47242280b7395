import Foundation
import XCTest

/// A real browser as the MQTT client: headless Chromium (Debian's `chromium`, installed by
/// scripts/test.sh) loads `WebSocketBrowserPage`, which connects to the broker's WebSocket
/// listener with the browser's own WebSocket, subscribes, and shows the message `midge pub`
/// publishes over TCP. The test reads the page's title through Chromium's DevTools HTTP
/// endpoint (`/json/list`).
final class WebSocketBrowserTests: InteropTestCase {
    func testChromiumReceivesMessagePublishedByMidgePub() throws {
        let chromium = try Executables.require("chromium", hint: "apt-get install chromium (scripts/test.sh does it)")
        let wsPort = try BrokerProcess.freeLoopbackPort()
        let broker = try startBroker(arguments: ["-v"], config: """
            listener \(wsPort) 127.0.0.1
            protocol websockets
            allow_anonymous true
            listener {PORT} 127.0.0.1
            allow_anonymous true
            """)
        let page = try Scratch.writeFile(WebSocketBrowserPage.html, named: "mqtt-page.html", in: workDir)
        let profile = workDir.appendingPathComponent("chromium-profile")
        let topic = "browser/news"
        let url = "file://\(page.path)?port=\(wsPort)&topic=\(topic)"
        // --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
        let browser = try ClientProcess.start(chromium, [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--user-data-dir=\(profile.path)", "--remote-debugging-port=0", url,
        ], directory: workDir, name: "chromium")
        defer { browser.terminate(grace: 5) }

        let devTools = try waitForDevToolsPort(profile: profile, browser: browser)
        let subscribed = try waitForTitle(devTools, browser: browser, broker: broker) { $0.hasPrefix("subscribed") }
        // The page asked for "mqtt" and the broker chose it [MQTT-6.0.0-4].
        XCTAssertEqual(subscribed, "subscribed (protocol mqtt)")

        let midge = try BrokerProcess.locateMidge()
        let pub = try ClientProcess.run(midge, ["pub", "-h", broker.host, "-p", String(broker.port), "-q", "1", "-t", topic,
                                                "-m", "hello from midge pub"], timeout: peerTimeout, directory: workDir, name: "midge-pub")
        XCTAssertEqual(pub.exitCode, 0, "\(pub)")
        let received = try waitForTitle(devTools, browser: browser, broker: broker) { $0.hasPrefix("received") }
        XCTAssertEqual(received, "received hello from midge pub")
        XCTAssertTrue(broker.output.contains("Received SUBSCRIBE from browser-"), brokerLog(broker))
    }

    /// The body of `GET path` on 127.0.0.1:port, over a plain socket (swift-corelibs-foundation's
    /// URL loading fails on DevTools' answer, and DevTools does not answer HTTP/1.0).
    static func httpGet(port: Int, path: String) -> Data? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, 0) == request.count else { return nil }
        var response = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { break }
            response.append(contentsOf: chunk[0..<n])
            if let end = response.range(of: Data("\r\n\r\n".utf8)) {
                let head = String(decoding: response[..<end.lowerBound], as: UTF8.self).lowercased()
                if let line = head.components(separatedBy: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
                   let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)),
                   response.count - end.upperBound >= length {
                    break
                }
            }
        }
        guard let end = response.range(of: Data("\r\n\r\n".utf8)) else { return nil }
        return response.subdata(in: end.upperBound..<response.endIndex)
    }

    /// Chromium writes the port it chose for `--remote-debugging-port=0` to DevToolsActivePort.
    private func waitForDevToolsPort(profile: URL, browser: ManagedProcess) throws -> Int {
        let file = profile.appendingPathComponent("DevToolsActivePort")
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let text = try? String(contentsOf: file, encoding: .utf8),
               let port = text.split(separator: "\n").first.flatMap({ Int($0) }) {
                return port
            }
            if !browser.isRunning {
                XCTFail("chromium exited:\n\(browser.result())")
                throw InteropError.startFailed("chromium")
            }
            usleep(100_000)
        }
        XCTFail("chromium wrote no DevToolsActivePort within 60 s:\n\(browser.result())")
        throw InteropError.timeout("chromium DevTools")
    }

    /// Polls the page's title until `done` accepts it (30 s), returns it.
    private func waitForTitle(_ port: Int, browser: ManagedProcess, broker: BrokerProcess,
                              _ done: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(30)
        var title = ""
        while Date() < deadline {
            if let data = Self.httpGet(port: port, path: "/json/list"),
               let targets = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]],
               let target = targets.first(where: { ($0["type"] as? String) == "page" && (($0["url"] as? String) ?? "").hasPrefix("file://") }) {
                title = target["title"] as? String ?? ""
                if done(title) { return title }
            }
            usleep(100_000)
        }
        XCTFail("the page's title stayed \"\(title)\":\n\(browser.result())\n\(brokerLog(broker))")
        throw InteropError.timeout("page title")
    }
}
