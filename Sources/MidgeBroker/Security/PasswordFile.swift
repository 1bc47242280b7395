import CArgon2
import Crypto
import _CryptoExtras
import Foundation

/// A Mosquitto password file: `user:$7$ITERATIONS$SALT$HASH` (PBKDF2-SHA512, written by
/// mosquitto_passwd 2.0), `user:$6$SALT$HASH` (salted SHA-512, mosquitto_passwd 1.x), salt and
/// hash base64-encoded, or `user:$argon2id$v=19$m=47104,t=1,p=1$SALT$HASH` (Argon2id in the
/// reference implementation's encoding, base64 without padding: mosquitto_passwd 2.1's default).
public struct PasswordFile: Equatable, Sendable {
    public enum HashType: String, Sendable { case sha512PBKDF2 = "sha512-pbkdf2", sha512, argon2id }

    public struct Hash: Equatable, Sendable {
        public var type: HashType
        /// PBKDF2's iterations; Argon2's time cost (t).
        public var iterations: Int
        public var salt: [UInt8]
        public var digest: [UInt8]
        /// Argon2 only: memory in KiB (m), lanes (p), and the algorithm version (19, or 16 for
        /// an encoding without `v=`, as the reference library reads it).
        public var memoryKiB = 0
        public var parallelism = 0
        public var version = 0

        /// Mosquitto 2.1's Argon2id parameters (libcommon/password_common.c): t=1, m=47104 KiB,
        /// p=1, 64-byte salt and hash.
        public static let argon2Iterations = 1, argon2MemoryKiB = 47104, argon2Parallelism = 1, argon2Length = 64

        /// The `$6$...` / `$7$...` / `$argon2id$...` text form.
        public var encoded: String {
            let salt64 = Data(salt).base64EncodedString(), digest64 = Data(digest).base64EncodedString()
            switch type {
            case .sha512: return "$6$\(salt64)$\(digest64)"
            case .sha512PBKDF2: return "$7$\(iterations)$\(salt64)$\(digest64)"
            case .argon2id:
                func unpadded(_ text: String) -> Substring { text[..<(text.firstIndex(of: "=") ?? text.endIndex)] }
                return "$argon2id$v=\(version)$m=\(memoryKiB),t=\(iterations),p=\(parallelism)$\(unpadded(salt64))$\(unpadded(digest64))"
            }
        }

        /// `$argon2id$[v=19$]m=M,t=T,p=P$SALT$HASH` (what argon2id_verify accepts, within its limits).
        private static func argon2(_ encoded: String) -> Hash? {
            var parts = encoded.split(separator: "$", omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 5, parts[0].isEmpty, parts[1] == "argon2id" else { return nil }
            var version = 0x10
            if parts[2].hasPrefix("v=") {
                guard let value = Int(parts[2].dropFirst(2)), value == 0x10 || value == 0x13 else { return nil }
                version = value
                parts.remove(at: 2)
            }
            guard parts.count == 5 else { return nil }
            var values: [String: Int] = [:]
            let fields = parts[2].split(separator: ",", omittingEmptySubsequences: false)
            for field in fields {
                let pair = field.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard pair.count == 2, let value = Int(pair[1]), value > 0, pair[1].allSatisfy(\.isNumber) else { return nil }
                values[String(pair[0])] = value
            }
            guard fields.map({ $0.split(separator: "=").first.map(String.init) ?? "" }) == ["m", "t", "p"],
                  let memory = values["m"], let time = values["t"], let lanes = values["p"],
                  lanes <= 0xFF_FFFF, memory >= 8 * lanes, memory <= 4 * 1024 * 1024, time <= 0xFFFF_FFFF else { return nil }
            func decode(_ text: String) -> [UInt8]? {
                guard !text.contains("=") else { return nil }
                let padded = text + String(repeating: "=", count: (4 - text.count % 4) % 4)
                return Data(base64Encoded: padded).map { [UInt8]($0) }
            }
            guard let salt = decode(parts[3]), salt.count >= 8, let digest = decode(parts[4]), digest.count >= 4 else { return nil }
            return Hash(type: .argon2id, iterations: time, salt: salt, digest: digest, memoryKiB: memory, parallelism: lanes,
                        version: version)
        }

        /// Parses the text form; nil when it is not one.
        public init?(encoded: String) {
            let parts = encoded.split(separator: "$", omittingEmptySubsequences: false).map(String.init)
            func decode(_ text: String) -> [UInt8]? { Data(base64Encoded: text).map { [UInt8]($0) } }
            if encoded.hasPrefix("$argon2id$") {
                guard let hash = Self.argon2(encoded) else { return nil }
                self = hash
            } else if parts.count == 4, parts[0].isEmpty, parts[1] == "6", let salt = decode(parts[2]), let digest = decode(parts[3]),
               digest.count == 64 {
                self.init(type: .sha512, iterations: 1, salt: salt, digest: digest)
            } else if parts.count == 5, parts[0].isEmpty, parts[1] == "7", let iterations = Int(parts[2]), iterations > 0,
                      let salt = decode(parts[3]), let digest = decode(parts[4]), digest.count == 64 {
                self.init(type: .sha512PBKDF2, iterations: iterations, salt: salt, digest: digest)
            } else {
                return nil
            }
        }

        public init(type: HashType, iterations: Int, salt: [UInt8], digest: [UInt8], memoryKiB: Int = 0, parallelism: Int = 0,
                    version: Int = 0) {
            self.type = type; self.iterations = iterations; self.salt = salt; self.digest = digest
            self.memoryKiB = memoryKiB; self.parallelism = parallelism; self.version = version
        }

        /// Hashes `password` with a fresh random salt, as mosquitto_passwd does: 12 bytes for
        /// `$6$`/`$7$` (2.0), 64 bytes and Mosquitto 2.1's parameters for Argon2id (`iterations`
        /// is then ignored, as mosquitto_passwd 2.1 ignores -I).
        public static func make(password: String, type: HashType = .sha512PBKDF2, iterations: Int = 101) -> Hash {
            var salt = [UInt8](repeating: 0, count: type == .argon2id ? argon2Length : 12)
            var generator = SystemRandomNumberGenerator()
            for index in salt.indices { salt[index] = generator.next() }
            if type == .argon2id {
                var hash = Hash(type: .argon2id, iterations: argon2Iterations, salt: salt, digest: [], memoryKiB: argon2MemoryKiB,
                                parallelism: argon2Parallelism, version: 0x13)
                hash.digest = hash.argon2Digest(Array(password.utf8), length: argon2Length)
                return hash
            }
            return Hash(type: type, iterations: type == .sha512 ? 1 : iterations, salt: salt,
                        digest: digest(Array(password.utf8), type: type, iterations: iterations, salt: salt))
        }

        /// Argon2id of `password` with this hash's parameters and salt (the reference library);
        /// empty if the library refuses them.
        func argon2Digest(_ password: [UInt8], length: Int) -> [UInt8] {
            var output = [UInt8](repeating: 0, count: length)
            let status = password.withUnsafeBytes { pwd in
                salt.withUnsafeBytes { saltBytes in
                    output.withUnsafeMutableBytes { out in
                        argon2_hash(UInt32(iterations), UInt32(memoryKiB), UInt32(parallelism), pwd.baseAddress, pwd.count,
                                    saltBytes.baseAddress, saltBytes.count, out.baseAddress, out.count, nil, 0, Argon2_id,
                                    UInt32(version))
                    }
                }
            }
            return status == ARGON2_OK.rawValue ? output : []
        }

        func digest(of password: [UInt8]) -> [UInt8] {
            type == .argon2id ? argon2Digest(password, length: digest.count)
                              : Self.digest(password, type: type, iterations: iterations, salt: salt)
        }

        static func digest(_ password: [UInt8], type: HashType, iterations: Int, salt: [UInt8]) -> [UInt8] {
            switch type {
            case .argon2id:
                preconditionFailure("Argon2id digests need the hash's parameters: Hash.argon2Digest")
            case .sha512:
                var hasher = SHA512()
                hasher.update(data: password)
                hasher.update(data: salt)
                return Array(hasher.finalize())
            case .sha512PBKDF2:
                let key = try! KDF.Insecure.PBKDF2.deriveKey(from: password, salt: salt, using: .sha512, outputByteCount: 64,
                                                             unsafeUncheckedRounds: iterations)
                return key.withUnsafeBytes { Array($0) }
            }
        }

        /// Checks `password` in constant time with respect to the stored digest.
        public func verify(_ password: [UInt8]) -> Bool {
            let computed = digest(of: password)
            guard !computed.isEmpty, computed.count == digest.count else { return false }
            var difference: UInt8 = 0
            for index in computed.indices { difference |= computed[index] ^ digest[index] }
            return difference == 0
        }
    }

    /// Users in file order (mosquitto_passwd keeps order when it rewrites a file).
    public private(set) var entries: [(username: String, hash: Hash)] = []

    public init() {}

    public static func == (lhs: PasswordFile, rhs: PasswordFile) -> Bool {
        lhs.entries.map(\.username) == rhs.entries.map(\.username) && lhs.entries.map(\.hash) == rhs.entries.map(\.hash)
    }

    /// Reads a password file; errors are `FILE:LINE: ...`. With `skipping`, a bad line is passed
    /// to it and left out instead (the broker does so, as Mosquitto, which logs and ignores such
    /// lines: 09-pwfile-parse-invalid); without, it is thrown (`midge passwd`).
    public static func load(path: String, skipping: ((ConfigError) -> Void)? = nil) throws -> PasswordFile {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: 0, message: "Unable to open password file \(path).")
        }
        return try parse(text, fileName: path, skipping: skipping)
    }

    public static func parse(_ text: String, fileName: String, skipping: ((ConfigError) -> Void)? = nil) throws -> PasswordFile {
        var file = PasswordFile()
        var lineNumber = 0
        func bad(_ message: String) throws {
            let error = ConfigError(file: fileName, line: lineNumber, message: message)
            guard let skipping else { throw error }
            skipping(error)
        }
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.hasSuffix("\r") ? String(rawLine.dropLast()) : String(rawLine)
            if line.trimmingCharacters(in: .whitespaces).isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                try bad("invalid line in password file (expected user:hash)")
                continue
            }
            let username = String(line[..<colon])
            let encoded = String(line[line.index(after: colon)...])
            guard !username.isEmpty else {
                try bad("empty user name in password file")
                continue
            }
            guard let hash = Hash(encoded: encoded) else {
                try bad("user '\(username)' has no valid $6$, $7$ or $argon2id$ password hash (a plain text password? hash the file with 'midge passwd -U')")
                continue
            }
            file.set(username, hash)
        }
        return file
    }

    public func hash(for username: String) -> Hash? { entries.first { $0.username == username }?.hash }

    /// nil when the user is unknown, else whether the password is right.
    public func verify(username: String, password: [UInt8]) -> Bool? {
        hash(for: username).map { $0.verify(password) }
    }

    public mutating func set(_ username: String, _ hash: Hash) {
        if let index = entries.firstIndex(where: { $0.username == username }) { entries[index].hash = hash } else {
            entries.append((username, hash))
        }
    }

    @discardableResult
    public mutating func remove(_ username: String) -> Bool {
        guard let index = entries.firstIndex(where: { $0.username == username }) else { return false }
        entries.remove(at: index)
        return true
    }

    /// The file's text.
    public var text: String { entries.map { "\($0.username):\($0.hash.encoded)\n" }.joined() }
}
