import MidgeBroker

// Certificate-based TLS directives: always options of the current listener (the default listener
// before any `listener` line), whatever per_listener_settings says, as in Mosquitto. Values are
// checked here; MidgeServer loads the files at start-up, naming the line kept in `tls.sources`.
// A value-taking option given twice for one listener is an error; the booleans may repeat.
extension MosquittoConfReader {
    static let tlsDirectives: [String: DirectiveHandler] = [
        // File names take the rest of the line, like Mosquitto's string options.
        "certfile": tlsOption(LineValue.freeText, notWithPSK: true) { $0.certFile = $1 },
        "keyfile": tlsOption(LineValue.freeText) { $0.keyFile = $1 },
        "cafile": tlsOption(LineValue.freeText, notWithPSK: true) { $0.caFile = $1 },
        "capath": tlsOption(LineValue.freeText) { $0.caPath = $1 },
        "crlfile": tlsOption(LineValue.freeText) { $0.crlFile = $1 },
        "ciphers": tlsOption(LineValue.single) { $0.ciphers = $1 },
        "ciphers_tls1.3": tlsOption(LineValue.single) { $0.ciphersTLS13 = $1 },
        "tls_version": tlsOption(tlsVersion) { $0.minimumVersion = $1 },
        "require_certificate": tlsOption(LineValue.bool, mayRepeat: true) { $0.requireCertificate = $1 },
        "use_identity_as_username": tlsOption(LineValue.bool, mayRepeat: true) { $0.useIdentityAsUsername = $1 },
        "use_subject_as_username": tlsOption(LineValue.bool, mayRepeat: true) { $0.useSubjectAsUsername = $1 },
        // TLS-PSK: the listener's hint (its keys come from psk_file, SecurityDirectives.swift).
        "psk_hint": { r, line, scope in
            let value = try line.freeText()
            try r.updateListener(line, scope.cursor) { listener in
                if listener.tls.certFile != nil || listener.tls.caFile != nil {
                    throw line.error("Cannot use both certificate and psk encryption in a single listener.")
                }
                listener.tls.pskHint = value
                listener.tls.sources["psk_hint"] = line.source
            }
        },
        // What BoringSSL cannot do is refused, with the reason; `tls_keyform pem` is the default.
        "tls_keyform": { _, line, _ in
            switch try line.single() {
            case "pem": break
            case "engine":
                throw line.error("tls_keyform engine is not available: Midge's TLS (BoringSSL) has no OpenSSL engines; "
                                 + "use a PEM keyfile (tls_keyform pem).")
            case let other:
                throw line.error("Invalid tls_keyform value \"\(other)\" (expected pem or engine).")
            }
        },
        "tls_engine": { _, line, _ in
            _ = try line.freeText()
            throw line.error("tls_engine is not available: Midge's TLS (BoringSSL) has no OpenSSL engines; use a PEM keyfile.")
        },
        "tls_engine_kpass_sha1": { _, line, _ in
            _ = try line.freeText()
            throw line.error("tls_engine_kpass_sha1 is not available: Midge's TLS (BoringSSL) has no OpenSSL engines.")
        },
        "dhparamfile": { _, line, _ in
            _ = try line.freeText()
            throw line.error("dhparamfile is not available: Midge's TLS (BoringSSL) has no finite-field DHE; its ECDHE "
                             + "suites give forward secrecy without DH parameters. Remove the line.")
        },
    ]

    /// `tls_version`'s value.
    static func tlsVersion(_ line: MosquittoConfLine) throws -> TLSSettings.Version {
        let value = try line.single()
        guard let version = TLSSettings.Version(rawValue: value) else {
            throw line.error("Invalid tls_version value \"\(value)\" (expected tlsv1.3, tlsv1.2 or tlsv1.1).")
        }
        return version
    }

    /// A handler that reads the value with `read`, then stores it with `set` in the current
    /// listener's TLS settings and remembers the line.
    /// `notWithPSK`: after `psk_hint` on the same listener it is an error, as in Mosquitto.
    static func tlsOption<Value>(_ read: @escaping @Sendable (MosquittoConfLine) throws -> Value, mayRepeat: Bool = false,
                                 notWithPSK: Bool = false,
                                 _ set: @escaping @Sendable (inout TLSSettings, Value) -> Void) -> DirectiveHandler {
        { r, line, scope in
            let value = try read(line)
            let name = line.directive
            try r.updateListener(line, scope.cursor) { listener in
                if notWithPSK && listener.tls.pskHint != nil {
                    throw line.error("Cannot use both certificate and psk encryption in a single listener.")
                }
                if !mayRepeat && listener.tls.sources[name] != nil {
                    throw line.error("Duplicate \(name) value in configuration.")
                }
                set(&listener.tls, value)
                listener.tls.sources[name] = line.source
            }
        }
    }
}
