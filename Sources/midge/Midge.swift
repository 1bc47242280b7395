import ArgumentParser
import Foundation

struct Midge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "midge",
        abstract: "An MQTT 3.1/3.1.1/5.0 broker, a drop-in for Mosquitto.",
        discussion: "Run without a subcommand to start the broker (mosquitto's flags: -c FILE, -p PORT, -v, -d).",
        version: BrokerCommand.versionString,
        subcommands: [BrokerCommand.self, PasswdCommand.self, PubCommand.self, SubCommand.self, RRCommand.self, BenchCommand.self],
        defaultSubcommand: BrokerCommand.self,
        helpNames: [.long]
    )
}

/// Entry point: like Mosquitto's tools, a usage error is one line on stderr and a non-zero exit
/// (ArgumentParser would add the whole usage text); help and version print as usual.
@main
enum MidgeMain {
    static func main() {
        do {
            var command = try Midge.parseAsRoot()
            try command.run()
        } catch {
            let code = Midge.exitCode(for: error)
            if code == .success || error is CleanExit {
                Midge.exit(withError: error)
            }
            if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }
            let message = Midge.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(Data((message.hasPrefix("Error") ? message : "Error: \(message)").appending("\n").utf8))
            Foundation.exit(code.rawValue == 0 ? 1 : code.rawValue)
        }
    }
}
