import ArgumentParser
import Dispatch
import Foundation
import MidgeBroker
import MidgeConfig
import MidgeServer
import MidgeStore
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// SIGHUP received and not yet applied: set by the signal handler (an atomic store is
/// async-signal-safe), cleared by whoever applies it first.
private let hangupPending = Atomic<Bool>(false)
/// The signal handler writes a byte here to wake the thread that applies the reload.
nonisolated(unsafe) private var hangupPipe: (read: Int32, write: Int32) = (-1, -1)

/// `midge [-c FILE] [-p PORT]... [-v] [-d]`: the broker, with mosquitto(8)'s options.
struct BrokerCommand: ParsableCommand {
    static let versionString = "midge version \(MidgeServer.version)"
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Start the MQTT broker (the default when no subcommand is given).",
        helpNames: [.short, .long]
    )

    @Option(name: [.customShort("c"), .customLong("config-file")], help: "Read the configuration from FILE (mosquitto.conf syntax).")
    var configFile: String?

    @Option(name: [.customShort("p"), .customLong("port")], help: "Listen on PORT on the loopback interface; repeatable.")
    var ports: [Int] = []

    @Flag(name: [.customShort("v"), .customLong("verbose")], help: "Log everything (log_type all) to the terminal.")
    var verbose = false

    @Flag(name: [.customShort("d"), .customLong("daemon")], help: "Run in the background.")
    var daemon = false

    @Flag(name: .customLong("version"), help: "Print the version and exit.")
    var version = false

    // Midge only (Mosquitto is single-threaded): how many event-loop threads serve connections.
    @Option(name: .customLong("threads"), help: "Event-loop threads (default: one per core). Midge only.")
    var threads: Int?

    // Midge only: start even when the store cannot be read, renaming it aside (docs/persistence.md).
    @Flag(name: .customLong("move-aside-bad-store"), help: "If the persistence store is corrupt, rename it and start with an empty one. Midge only.")
    var moveAsideBadStore = false

    func validate() throws {
        for port in ports where !(1...65535).contains(port) {
            throw ValidationError("Error: Invalid port specified (\(port)).")
        }
        if let threads, threads < 1 { throw ValidationError("Error: --threads must be at least 1.") }
    }

    func run() throws {
        if version {
            print(Self.versionString)
            return
        }
        var configuration = BrokerConfiguration.defaults
        if let configFile {
            do {
                configuration = try ConfigFileParser.parse(contentsOf: configFile)
            } catch let error as ConfigError {
                // An unreadable file has no line to point at: "Error: Unable to open config file X." as Mosquitto says.
                let text = error.line > 0 ? error.description : error.message
                FileHandle.standardError.write(Data("Error: \(text)\n".utf8))
                throw ExitCode(1)
            }
        }
        if verbose { configuration.logTypes = [.all] }

        // `user`: who to become is decided now (an unknown user stops start-up before anything
        // opens, as in Mosquitto); the switch comes once listeners and files are open.
        let privileges: PrivilegeDrop.Plan
        do {
            privileges = try PrivilegeDrop.plan(user: configuration.user)
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }

        // Lines go to the destinations through bounded queues written by threads of their own
        // (started at the first line, so after the `-d` fork): a stalled reader loses log lines,
        // never deliveries.
        let outputs: LogOutputs
        do {
            outputs = try LogOutputs(destinations: configuration.logDestinations, facility: configuration.logFacility,
                                     syslogPath: ProcessInfo.processInfo.environment["MIDGE_SYSLOG_SOCKET"] ?? LogOutputs.defaultSyslogPath)
        } catch {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let log = BrokerLog(types: configuration.logTypes, timestamp: configuration.logTimestamp,
                            timestampFormat: configuration.logTimestampFormat, sink: outputs.isEmpty ? nil : outputs)
        let logReachesTerminal = log.isEnabled(.error)
            && configuration.logDestinations.contains { $0 == .stderr || $0 == .stdout }
        /// Logs a start-up error, also on stderr when the log would not show it on the terminal (a
        /// `log_dest file` only, say), as Mosquitto prints what happens before its log is open.
        func fail(_ message: String) -> ExitCode {
            log.error(message)
            if !logReachesTerminal { FileHandle.standardError.write(Data("\(message)\n".utf8)) }
            outputs.drain(timeout: 2)
            return ExitCode(1)
        }
        if daemon && daemonize() != 0 {
            FileHandle.standardError.write(Data("Error: unable to run in the background.\n".utf8))
            throw ExitCode(1)
        }
        // As Mosquitto: the pid file right after going to the background, before anything else.
        if let pidFile = configuration.pidFile {
            guard FileManager.default.createFile(atPath: pidFile, contents: Data("\(getpid())".utf8)) else {
                throw fail("Error: Unable to write pid file \(pidFile): \(String(cString: strerror(errno))).")
            }
        }
        defer { if let pidFile = configuration.pidFile { try? FileManager.default.removeItem(atPath: pidFile) } }

        log.notice("\(Self.versionString) starting")
        if let configFile { log.notice("Config loaded from \(configFile).") }
        for warning in configuration.warnings { log.warning("Warning: \(warning)") }
        if configuration.listeners.isEmpty {
            log.notice("Starting in local only mode. Connections will only be possible from clients running on this machine.")
        }
        // Signals first: a SIGTERM/SIGINT that arrives while the listeners open must still stop
        // the broker cleanly (removing its unix sockets), and an early SIGHUP must not kill it.
        let stop = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            sources.append(source)
        }
        signal(SIGPIPE, SIG_IGN)
        signal(SIGHUP, SIG_IGN)
        signal(SIGUSR1, SIG_IGN)

        let server: MidgeServer
        do {
            // Persistence is loaded before any listener opens.
            var persistence: (store: SessionStore, state: PersistedState)?
            if configuration.persistence {
                persistence = try PersistenceStartup.open(configuration, moveAsideBadStore: moveAsideBadStore, log: log)
            }
            server = try MidgeServer(configuration: configuration, commandLinePorts: ports, log: log,
                                     threads: threads ?? System.coreCount, store: persistence?.store, restoring: persistence?.state)
            try server.start()
        } catch {
            throw fail("\(error)")
        }

        // Listeners open, every file read or open: become `user` (root only). What Midge made
        // as root and still writes, reopens or removes goes to that user first.
        switch privileges {
        case .notRoot:
            break
        case .stayRoot:
            if let warning = PrivilegeDrop.stillRootWarning { log.warning(warning) }
        case .drop(let account, let warning):
            if let warning { log.error(warning) }
            var owned = outputs.createdFiles + configuration.listeners.compactMap(\.unixSocketPath)
            if let pidFile = configuration.pidFile { owned.append(pidFile) }
            if configuration.persistence {
                let store = PersistenceStartup.locate(configuration).store
                owned += [store, store + "-wal", store + "-shm", store + "-journal"]
            }
            for path in owned { account.handOver(path) }
            do {
                try account.apply()
            } catch {
                server.shutdown()
                throw fail("\(error)")
            }
            if let warning = PrivilegeDrop.stillRootWarning { log.warning(warning) }
        }
        outputs.attach(broker: server.broker)
        log.notice("\(Self.versionString) running")
        let systemd = SystemdNotifier()
        systemd.ready()

        // SIGHUP reloads the password and ACL files and the TLS certificates and reopens the log
        // file, as in Mosquitto; systemd hears of the reload (Type=notify-reload's protocol). A
        // signal handler marks it at once; a thread applies it, and so does a CONNECT that comes
        // first (Broker.beforeSessionOpens): Mosquitto handles the signal before the next network
        // event, so a client that connects right after the SIGHUP meets the new rules.
        let reloadLock = NSLock()
        let applyHangup: @Sendable () -> Void = {
            guard hangupPending.load(ordering: .acquiring) else { return }
            reloadLock.lock()
            defer { reloadLock.unlock() }
            guard hangupPending.exchange(false, ordering: .acquiringAndReleasing) else { return }
            systemd.reloading()
            log.notice("Reloading config.")
            server.reloadSecurity()
            outputs.reopenFiles()
            systemd.ready()
        }
        server.broker.beforeSessionOpens = applyHangup
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            hangupPipe = (fds[0], fds[1])
            _ = hangupPending.load(ordering: .relaxed)  // initialised before the handler can run
            signal(SIGHUP) { _ in
                hangupPending.store(true, ordering: .releasing)
                var byte: UInt8 = 1
                _ = write(hangupPipe.write, &byte, 1)
            }
            let reader = Thread {
                var byte: UInt8 = 0
                while true {
                    let count = read(hangupPipe.read, &byte, 1)
                    if count == 0 || (count < 0 && errno != EINTR) { break }
                    applyHangup()
                }
            }
            reader.start()
        }
        // SIGUSR1 makes Mosquitto write its database now; Midge's store already holds every
        // acknowledged change, so there is nothing to save (it must not end the process either).
        let save = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: .global())
        save.setEventHandler {
            log.notice(configuration.persistence ? "Persistence: every change is already stored (\(PersistenceStartup.locate(configuration).store))."
                                                 : "Persistence is off: nothing to save.")
        }
        save.resume()
        sources.append(save)
        stop.wait()
        systemd.stopping()
        log.notice("\(Self.versionString) terminating")
        outputs.attach(broker: nil)
        server.shutdown()
        outputs.drain(timeout: 2)
        _ = sources
    }

    private func daemonize() -> Int32 {
        #if os(Linux)
        return Glibc.daemon(1, 0)
        #else
        return -1
        #endif
    }
}
