import Crypto
import _CryptoExtras
import Foundation

/// A Mosquitto password file: `user:$7$ITERATIONS$SALT$HASH` (PBKDF2-SHA512, written by
/// mosquitto_passwd 2.x) or `user:$6$SALT$HASH` (salted SHA-512, mosquitto_passwd 1.x); salt and
/// hash base64-encoded.
public struct PasswordFile: Equatable, Sendable {
    public enum HashType: String, Sendable { case sha512PBKDF2 = "sha512-pbkdf2", sha512 }

    public struct Hash: Equatable, Sendable {
        public var type: HashType
        public var iterations: Int
        public var salt: [UInt8]
        public var digest: [UInt8]

        /// The `$6$...` / `$7$...` text form.
        public var encoded: String {
            let salt64 = Data(salt).base64EncodedString(), digest64 = Data(digest).base64EncodedString()
            switch type {
            case .sha512: return "$6$\(salt64)$\(digest64)"
            case .sha512PBKDF2: return "$7$\(iterations)$\(salt64)$\(digest64)"
            }
        }

        /// Parses the text form; nil when it is not one.
        public init?(encoded: String) {
            let parts = encoded.split(separator: "$", omittingEmptySubsequences: false).map(String.init)
            func decode(_ text: String) -> [UInt8]? { Data(base64Encoded: text).map { [UInt8]($0) } }
            if parts.count == 4, parts[0].isEmpty, parts[1] == "6", let salt = decode(parts[2]), let digest = decode(parts[3]),
               digest.count == 64 {
                self.init(type: .sha512, iterations: 1, salt: salt, digest: digest)
            } else if parts.count == 5, parts[0].isEmpty, parts[1] == "7", let iterations = Int(parts[2]), iterations > 0,
                      let salt = decode(parts[3]), let digest = decode(parts[4]), digest.count == 64 {
                self.init(type: .sha512PBKDF2, iterations: iterations, salt: salt, digest: digest)
            } else {
                return nil
            }
        }

        public init(type: HashType, iterations: Int, salt: [UInt8], digest: [UInt8]) {
            self.type = type; self.iterations = iterations; self.salt = salt; self.digest = digest
        }

        /// Hashes `password` with a fresh random 12-byte salt, as mosquitto_passwd does.
        public static func make(password: String, type: HashType = .sha512PBKDF2, iterations: Int = 101) -> Hash {
            var salt = [UInt8](repeating: 0, count: 12)
            var generator = SystemRandomNumberGenerator()
            for index in salt.indices { salt[index] = generator.next() }
            return Hash(type: type, iterations: type == .sha512 ? 1 : iterations, salt: salt,
                        digest: digest(Array(password.utf8), type: type, iterations: iterations, salt: salt))
        }

        static func digest(_ password: [UInt8], type: HashType, iterations: Int, salt: [UInt8]) -> [UInt8] {
            switch type {
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
            let computed = Self.digest(password, type: type, iterations: iterations, salt: salt)
            guard computed.count == digest.count else { return false }
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
                try bad("user '\(username)' has no valid $6$ or $7$ password hash (a plain text password? hash the file with 'midge passwd -U')")
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
