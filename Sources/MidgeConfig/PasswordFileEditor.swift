import Foundation
import MidgeBroker

/// What `midge passwd` (mosquitto_passwd's interface) does to a password file, without the
/// terminal: parse its arguments, change the file, write it back atomically with mode 0600.
public enum PasswordFileEditor {
    public enum Action: Equatable, Sendable {
        /// Add or update `username`; `password` nil means: prompt for it.
        case set(file: String, username: String, password: String?, create: Bool)
        case delete(file: String, username: String)
        /// Hash every plain-text `user:password` line in place.
        case upgrade(file: String)
    }

    public struct Request: Equatable, Sendable {
        public var action: Action
        public var hashType: PasswordFile.HashType = .sha512PBKDF2
        public var iterations = 101
    }

    public struct UsageError: Error, CustomStringConvertible, Equatable {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public static let usage = """
        midge passwd is a tool for managing password files for Midge (and Mosquitto).

        Usage: midge passwd [-H argon2id | -H sha512-pbkdf2 | -H sha512] [-I iterations] [-c | -D] passwordfile username
               midge passwd [-H argon2id | -H sha512-pbkdf2 | -H sha512] [-I iterations] -b passwordfile username password
               midge passwd -U passwordfile
         -b : run in batch mode to allow passing passwords on the command line.
         -c : create a new password file. This will overwrite existing files.
         -D : delete the username rather than adding/updating its password.
         -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which every Mosquitto 2 reads.
              argon2id is Mosquitto 2.1's default; Mosquitto 2.0 cannot verify it, and
              Mosquitto 1.6 and earlier cannot verify sha512-pbkdf2 passwords.
         -I : specify the number of hashing iterations. Defaults to 101 (not used by argon2id).
         -U : update a plain text password file to use hashed passwords.
        """

    /// Parses mosquitto_passwd's arguments.
    public static func parse(_ arguments: [String]) throws -> Request {
        var batch = false, create = false, delete = false, upgrade = false
        var hashType = PasswordFile.HashType.sha512PBKDF2
        var iterations = 101
        var positional: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "-b": batch = true
            case "-c": create = true
            case "-D": delete = true
            case "-U": upgrade = true
            case "-H":
                index += 1
                guard index < arguments.count, let type = PasswordFile.HashType(rawValue: arguments[index]) else {
                    throw UsageError(description: "Error: Unknown hash type '\(index < arguments.count ? arguments[index] : "")'.")
                }
                hashType = type
            case "-I":
                index += 1
                guard index < arguments.count, let value = Int(arguments[index]), value > 0 else {
                    throw UsageError(description: "Error: Invalid number of iterations.")
                }
                iterations = value
            default:
                if argument.hasPrefix("-") && argument.count > 1 { throw UsageError(description: "Error: Unknown option '\(argument)'.") }
                positional.append(argument)
            }
            index += 1
        }
        if create && delete { throw UsageError(description: "Error: -c and -D cannot be used together.") }
        let action: Action
        if upgrade {
            guard positional.count == 1, !create, !delete, !batch else { throw UsageError(description: "Error: -U takes only a password file.") }
            action = .upgrade(file: positional[0])
        } else if delete {
            guard positional.count == 2 else { throw UsageError(description: "Error: -D needs a password file and a username.") }
            action = .delete(file: positional[0], username: positional[1])
        } else if batch {
            guard positional.count == 3 else { throw UsageError(description: "Error: -b needs a password file, a username and a password.") }
            action = .set(file: positional[0], username: positional[1], password: positional[2], create: create)
        } else {
            guard positional.count == 2 else { throw UsageError(description: "Error: a password file and a username are needed.") }
            action = .set(file: positional[0], username: positional[1], password: nil, create: create)
        }
        if case .set(_, let username, _, _) = action, username.contains(":") {
            throw UsageError(description: "Error: Username must not contain the ':' character.")
        }
        return Request(action: action, hashType: hashType, iterations: iterations)
    }

    /// Applies the request; `password` supplies a prompted password when the request has none.
    public static func apply(_ request: Request, password prompt: () throws -> String) throws {
        switch request.action {
        case .set(let path, let username, let given, let create):
            var file = create ? PasswordFile() : try PasswordFile.load(path: path)
            let password = try given ?? prompt()
            file.set(username, .make(password: password, type: request.hashType, iterations: request.iterations))
            try write(file.text, to: path)
        case .delete(let path, let username):
            var file = try PasswordFile.load(path: path)
            guard file.remove(username) else { throw UsageError(description: "Warning: User \(username) not found in password file.") }
            try write(file.text, to: path)
        case .upgrade(let path):
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw UsageError(description: "Error: Unable to open file \(path) for reading.")
            }
            var output = ""
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
                guard let colon = line.firstIndex(of: ":") else { output += line + "\n"; continue }
                let user = line[..<colon], secret = String(line[line.index(after: colon)...])
                if PasswordFile.Hash(encoded: secret) != nil {
                    output += line + "\n"
                } else {
                    output += "\(user):\(PasswordFile.Hash.make(password: secret, type: request.hashType, iterations: request.iterations).encoded)\n"
                }
            }
            try write(output, to: path)
        }
    }

    /// Writes to a temporary file beside `path`, mode 0600, then renames it over `path`: a
    /// failure never leaves a truncated password file.
    static func write(_ text: String, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = (directory.isEmpty ? "." : directory) + "/.\((path as NSString).lastPathComponent).tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { throw UsageError(description: "Error: Unable to open file \(path) for writing (\(String(cString: strerror(errno)))).") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == bytes.count, synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw UsageError(description: "Error: Unable to write file \(path).")
        }
    }
}
