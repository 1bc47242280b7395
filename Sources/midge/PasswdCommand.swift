import ArgumentParser
import Foundation
import MidgeBroker
import MidgeConfig

/// `midge passwd`: mosquitto_passwd's interface over `PasswordFileEditor`.
struct PasswdCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passwd",
        abstract: "Manage password files (mosquitto_passwd's options).",
        helpNames: [.customLong("help")]
    )

    @Argument(parsing: .allUnrecognized) var arguments: [String] = []

    func run() throws {
        if arguments.isEmpty || arguments == ["--help"] {
            print(PasswordFileEditor.usage)
            throw ExitCode(arguments.isEmpty ? 1 : 0)
        }
        do {
            let request = try PasswordFileEditor.parse(arguments)
            try PasswordFileEditor.apply(request, password: Self.promptTwice)
        } catch let error as PasswordFileEditor.UsageError {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// Reads the password twice from the terminal without echo.
    static func promptTwice() throws -> String {
        guard let first = getpass("Password: ").map({ String(cString: $0) }) else {
            throw PasswordFileEditor.UsageError(description: "Error: Empty password.")
        }
        guard let second = getpass("Reenter password: ").map({ String(cString: $0) }) else {
            throw PasswordFileEditor.UsageError(description: "Error: Empty password.")
        }
        guard first == second else { throw PasswordFileEditor.UsageError(description: "Error: Passwords do not match.") }
        guard !first.isEmpty else { throw PasswordFileEditor.UsageError(description: "Error: Empty password.") }
        return first
    }
}
