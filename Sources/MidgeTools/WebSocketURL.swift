/// `-L ws://[username[:password]@]host[:port][/path]` and `wss://…`: MQTT over WebSocket, a
/// Midge extension (Mosquitto's clients speak no WebSocket). Unlike `mqtt://…/topic`, the path
/// is the HTTP request path of the WebSocket endpoint (default `/`); topics come from `-t`.
/// Default ports: 80 for ws, 443 for wss, as for any ws/wss URL.
struct WebSocketURL: Equatable {
    var secure: Bool
    var username: String?
    var password: String?
    var host: String
    var port: Int
    var path: String

    /// nil when `url` is not a ws:// or wss:// URL; throws a Mosquitto-style message when it is
    /// one but malformed.
    static func parse(_ url: String) throws -> WebSocketURL? {
        let lowered = url.lowercased()
        let secure: Bool
        var rest: Substring
        if lowered.hasPrefix("ws://") {
            secure = false
            rest = url.dropFirst(5)
        } else if lowered.hasPrefix("wss://") {
            secure = true
            rest = url.dropFirst(6)
        } else {
            return nil
        }
        var path = "/"
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        var result = WebSocketURL(secure: secure, username: nil, password: nil, host: "", port: secure ? 443 : 80, path: path)
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            if let colon = credentials.firstIndex(of: ":") {
                result.username = String(credentials[..<colon])
                result.password = String(credentials[credentials.index(after: colon)...])
            } else {
                result.username = String(credentials)
            }
            rest = rest[rest.index(after: at)...]
        }
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            // [IPv6]:port
            result.host = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
            if rest.hasPrefix(":") { try result.setPort(rest.dropFirst(), url) }
        } else if let colon = rest.lastIndex(of: ":") {
            result.host = String(rest[..<colon])
            try result.setPort(rest[rest.index(after: colon)...], url)
        } else {
            result.host = String(rest)
        }
        if result.host.isEmpty {
            throw OptionError(message: "Error: Invalid URL for -L argument specified - host missing.\n")
        }
        return result
    }

    private mutating func setPort(_ text: Substring, _ url: String) throws {
        guard let port = Int(text), (1...65535).contains(port) else {
            throw OptionError(message: "Error: Invalid URL for -L argument specified - invalid port \"\(text)\".\n")
        }
        self.port = port
    }

    struct OptionError: Error {
        var message: String
    }
}

extension WebSocketURL {
    /// What the URL sets, as `-L mqtt://…` does for its parts; wss trusts the system's CA
    /// certificates as `mqtts://` does.
    func apply(to options: inout ClientOptions) {
        options.host = host
        options.port = port
        options.webSocketPath = path
        if let username { options.username = username }
        if let password { options.password = password }
        if secure { options.tls.useOSCertificates = true }
    }
}
