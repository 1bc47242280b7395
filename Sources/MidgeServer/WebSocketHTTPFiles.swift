import Foundation
import MidgeBroker
import NIOHTTP1

/// `http_dir` on a websockets listener: a plain HTTP GET (or HEAD) that is not a WebSocket
/// upgrade gets the file it names under the folder, as Mosquitto serves it through
/// libwebsockets, and safely:
/// - the path (query and fragment dropped, %XX decoded; a NUL or bad escape is 400) is resolved
///   with realpath(3), so `..` and symbolic links are followed first, and what does not lie
///   inside the folder (itself resolved at start-up) is 403 Forbidden;
/// - a path ending in `/` means its `index.html`; a folder named without `/` is redirected
///   (302) to the name with `/`, as in Mosquitto; there is no directory listing;
/// - what is not a regular file is 403, a missing one 404, any method but GET/HEAD 405;
/// - files are read whole (at most `maximumFileSize`, else 403) and sent with a
///   Content-Type guessed from the extension, then the connection closes (HTTP/1.0 style, as
///   Mosquitto's answers).
struct WebSocketHTTPFiles: Sendable {
    struct Response {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    /// The folder, resolved (realpath) at start-up.
    let root: String
    let log: BrokerLog
    static let maximumFileSize = 16 * 1024 * 1024

    /// `http_dir` resolved to a real folder path, or the line's error (missing, not a folder).
    static func resolveRoot(_ path: String, source: ConfigSource) throws -> String {
        var isDirectory: ObjCBool = false
        guard let real = realPath(path), FileManager.default.fileExists(atPath: real, isDirectory: &isDirectory),
              isDirectory.boolValue else {
            throw ConfigError(file: source.file, line: source.line, message: "http_dir \"\(path)\" is not a folder.")
        }
        return real
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    func response(to head: HTTPRequestHead) -> Response {
        guard head.method == .GET || head.method == .HEAD else {
            var headers = HTTPHeaders()
            headers.add(name: "Allow", value: "GET, HEAD")
            return Self.error(.methodNotAllowed, headers: headers)
        }
        var target = Substring(head.uri)
        if let end = target.firstIndex(where: { $0 == "?" || $0 == "#" }) { target = target[..<end] }
        guard target.hasPrefix("/"), let path = Self.percentDecoded(target), !path.utf8.contains(0) else {
            return Self.error(.badRequest)
        }
        let wanted = path.hasSuffix("/") ? path + "index.html" : path
        guard let real = Self.realPath(root + wanted) else { return Self.error(.notFound) }
        guard real == root || real.hasPrefix(root == "/" ? "/" : root + "/") else {
            log.notice("http_dir: refused \"\(head.uri)\" (outside \(root)).")
            return Self.error(.forbidden)
        }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: real),
              let type = attributes[.type] as? FileAttributeType else { return Self.error(.notFound) }
        if type == .typeDirectory {
            // As Mosquitto: to the same path with "/" (one leading "/": never another host).
            var location = path
            while location.hasPrefix("//") { location.removeFirst() }
            var headers = HTTPHeaders()
            headers.add(name: "Location", value: location + "/")
            return Response(status: .found, headers: headers, body: [])
        }
        guard type == .typeRegular, let size = attributes[.size] as? Int, size <= Self.maximumFileSize,
              let data = FileManager.default.contents(atPath: real) else {
            return Self.error(.forbidden)
        }
        log.debug("http serving file \"\(real)\".")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: Self.contentType(real))
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        return Response(status: .ok, headers: headers, body: Array(data))
    }

    static func error(_ status: HTTPResponseStatus, headers: HTTPHeaders = HTTPHeaders()) -> Response {
        var headers = headers
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        return Response(status: status, headers: headers, body: Array("\(status.code) \(status.reasonPhrase)\n".utf8))
    }

    /// %XX decoded as UTF-8; nil for a bad escape or bytes that are not UTF-8.
    static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard let high = iterator.next(), let low = iterator.next(),
                  let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(value)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func contentType(_ path: String) -> String {
        switch (path as NSString).pathExtension.lowercased() {
        case "html", "htm": return "text/html; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "json": return "application/json"
        case "txt": return "text/plain; charset=utf-8"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "ico": return "image/x-icon"
        case "wasm": return "application/wasm"
        default: return "application/octet-stream"
        }
    }
}
