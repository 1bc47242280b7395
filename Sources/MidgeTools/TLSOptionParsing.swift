import MidgeClient

/// mosquitto_pub/sub/rr's TLS options (client_shared.c): `--cafile`, `--capath`, `--cert`,
/// `--key`, `--ciphers`, `--tls-version`, `--insecure`, `--tls-use-os-certs`. TLS is on when a
/// CA is given (`--cafile`, `--capath`, `--tls-use-os-certs`, or `-L mqtts://`, which trusts
/// the system's CAs), and the port then defaults to 8883, as in Mosquitto's clients.
extension OptionParser {
    /// Reads the TLS option at `args[i]` (and its value; `i` is left on the last word used).
    static func parseTLSOption(_ args: [String], _ i: inout Int, into cfg: inout ClientOptions) -> ParseOutcome? {
        let arg = args[i]
        func fail(_ text: String) -> ParseOutcome { .failure(text, quietable: false) }
        switch arg {
        case "--insecure":
            cfg.tls.insecure = true
            return nil
        case "--tls-use-os-certs":
            cfg.tls.useOSCertificates = true
            return nil
        default:
            break
        }
        guard i < args.count - 1 else {
            let what: String
            switch arg {
            case "--capath": what = "directory"
            case "--ciphers": what = "ciphers"
            case "--tls-version": what = "version"
            default: what = "file"
            }
            return fail("Error: \(arg) argument given but no \(what) specified.\n\n")
        }
        i += 1
        let value = args[i]
        switch arg {
        case "--cafile": cfg.tls.caFile = value
        case "--capath": cfg.tls.caPath = value
        case "--cert": cfg.tls.certFile = value
        case "--key": cfg.tls.keyFile = value
        case "--ciphers": cfg.tls.ciphers = value
        default:
            guard let version = TLSClientOptions.Version(rawValue: value) else {
                return fail("Error: Invalid --tls-version \"\(value)\" (expected tlsv1.3, tlsv1.2 or tlsv1.1).\n\n")
            }
            cfg.tls.minimumVersion = version
        }
        return nil
    }

    /// The checks Mosquitto makes once every option is read.
    static func checkTLSOptions(_ cfg: ClientOptions) -> ParseOutcome? {
        if (cfg.tls.certFile == nil) != (cfg.tls.keyFile == nil) {
            return .failure("Error: Both certfile and keyfile must be provided if one of them is set.\n", quietable: false)
        }
        if cfg.tls.certFile != nil && !cfg.usesTLS {
            return .failure("Error: --cert and --key need --cafile, --capath or --tls-use-os-certs (TLS is off without a CA).\n",
                            quietable: false)
        }
        return nil
    }
}

extension ClientOptions {
    /// Whether the connection uses TLS: a CA was given (or the system's CAs asked for).
    public var usesTLS: Bool { tls.caFile != nil || tls.caPath != nil || tls.useOSCertificates }
}
