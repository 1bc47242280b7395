import ArgumentParser

@main
struct Midge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "midge",
        abstract: "An MQTT 3.1/3.1.1/5.0 broker, a drop-in for Mosquitto.",
        discussion: "Run without a subcommand to start the broker (mosquitto's flags: -c FILE, -p PORT, -v, -d).",
        version: BrokerCommand.versionString,
        subcommands: [BrokerCommand.self],
        defaultSubcommand: BrokerCommand.self,
        helpNames: [.long]
    )
}
