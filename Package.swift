// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "midge",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "midge", targets: ["midge"]),
        .library(name: "MQTTCodec", targets: ["MQTTCodec"]),
        .library(name: "MidgeBroker", targets: ["MidgeBroker"]),
        .library(name: "MidgeConfig", targets: ["MidgeConfig"]),
        .library(name: "MidgeServer", targets: ["MidgeServer"]),
        .library(name: "MidgeClient", targets: ["MidgeClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"4.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    ],
    targets: [
        .target(name: "MQTTCodec", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        // Argon2id for Mosquitto 2.1's password hashes: the system's reference libargon2 (Debian: libargon2-dev).
        .systemLibrary(name: "CArgon2", pkgConfig: "libargon2", providers: [.apt(["libargon2-dev"])]),
        .target(name: "MidgeBroker", dependencies: [
            "MQTTCodec", "CArgon2",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Atomics", package: "swift-atomics"),
            .product(name: "DequeModule", package: "swift-collections"),
            .product(name: "OrderedCollections", package: "swift-collections"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "_CryptoExtras", package: "swift-crypto"),
        ]),
        // The engine in memory: virtual event loops and clock, in-memory transports (tests, fuzzing).
        .target(name: "MidgeEngineHarness", dependencies: [
            "MidgeBroker", "MQTTCodec",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        // The front end of the configuration: mosquitto.conf parsing (split by area) and password-file
        // editing (`midge passwd`). It fills the engine's BrokerConfiguration; the engine never reads files.
        .target(name: "MidgeConfig", dependencies: ["MidgeBroker"]),
        // Linux system calls Swift's Glibc module lacks (epoll, eventfd, accept4).
        .target(name: "CMidgeEpoll"),
        // Midge's own epoll event loops and listening sockets (NIO `EventLoop`s without channels).
        .target(name: "MidgeReactor", dependencies: [
            "CMidgeEpoll",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Atomics", package: "swift-atomics"),
        ]),
        .target(name: "MidgeServer", dependencies: [
            "MQTTCodec", "MidgeBroker", "MidgeReactor",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
        ]),
        .target(name: "MidgeClient", dependencies: [
            "MQTTCodec",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "DequeModule", package: "swift-collections"),
            .product(name: "OrderedCollections", package: "swift-collections"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
        ]),
        .target(name: "MidgeTestSupport", dependencies: [
            "MQTTCodec", "MidgeBroker", "MidgeServer", "MidgeClient", "MidgeStore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // Shared XCTest helpers of the end-to-end test targets (imports XCTest: only test targets
        // may depend on it).
        .target(name: "MidgeTestKit", dependencies: [
            "MQTTCodec", "MidgeBroker", "MidgeClient", "MidgeTestSupport",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // Persistence behind the engine's `SessionStore`: the SQLite store (GRDB) and the importer
        // of Mosquitto's own database (mosquitto.db).
        .target(name: "MidgeStore", dependencies: [
            "MidgeBroker", "MQTTCodec",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "GRDB", package: "GRDB.swift"),
            // SQLite's C API, for binding values on the writer's hot path (RawStatement.swift).
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
        ]),
        .target(name: "MidgeBench", dependencies: [
            "MQTTCodec",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Histogram", package: "hdrhistogram-swift"),
        ]),
        .target(name: "MidgeTools", dependencies: [
            "MidgeClient", "MQTTCodec",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "DequeModule", package: "swift-collections"),
        ]),
        .executableTarget(name: "midge", dependencies: [
            "MidgeServer", "MidgeBroker", "MidgeConfig", "MidgeClient", "MidgeBench", "MidgeTools", "MidgeStore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "MQTTCodecTests", dependencies: [
            "MQTTCodec", .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "MidgeReactorTests", dependencies: [
            "MidgeReactor",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        .testTarget(name: "MidgeBrokerTests", dependencies: [
            "MidgeBroker", "MQTTCodec", .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "MidgeEngineTests", dependencies: [
            "MidgeEngineHarness", "MidgeBroker", "MQTTCodec",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "MidgeStoreTests", dependencies: [
            "MidgeStore", "MidgeBroker", "MQTTCodec", "MidgeTestSupport",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "MidgeConfigTests", dependencies: ["MidgeConfig", "MidgeBroker"]),
        .testTarget(name: "MidgeServerTests", dependencies: [
            "MidgeServer", "MidgeBroker", "MidgeConfig", "MQTTCodec", "MidgeClient", "MidgeTestSupport",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "MidgeConnectionTests", dependencies: [
            "MidgeServer", "MidgeBroker", "MQTTCodec", "MidgeClient", "MidgeTestSupport", "MidgeTestKit",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "MidgeConformanceTests", dependencies: [
            "MidgeServer", "MidgeBroker", "MQTTCodec", "MidgeClient", "MidgeTestSupport", "MidgeTestKit",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "MidgeMessagingTests", dependencies: [
            "MidgeServer", "MidgeBroker", "MQTTCodec", "MidgeClient", "MidgeTestSupport", "MidgeTestKit",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "MidgeToolsTests", dependencies: [
            "MidgeTools", "MidgeClient", "MidgeTestSupport", "MQTTCodec",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "MidgeInteropTests", dependencies: ["midge", "MidgeTestSupport"]),
        .testTarget(name: "MidgeBenchTests", dependencies: [
            "MidgeBench", "MidgeTestSupport", "MQTTCodec",
        ]),
        .testTarget(name: "MidgeClientTests", dependencies: [
            "MidgeClient", "MidgeTestSupport", "MQTTCodec",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
    ],
    swiftLanguageModes: [.v5]
)

// Fuzz targets (docs/fuzzing.md, scripts/fuzz.sh): only when MIDGE_FUZZ is set, so normal builds
// and `swift test` never see them. Each is an executable target in Fuzz/<Name>/ whose one file
// defines LLVMFuzzerTestOneInput (libFuzzer provides main); to add one, add a line here and a
// folder Fuzz/<Name>/ (scripts/fuzz.sh finds targets by their folders).
import class Foundation.ProcessInfo
if ProcessInfo.processInfo.environment["MIDGE_FUZZ"] != nil {
    let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
        ("FuzzCodec", ["MQTTCodec", .product(name: "NIOCore", package: "swift-nio")]),
        ("FuzzEngine", ["MidgeEngineHarness", "MidgeBroker", "MQTTCodec", .product(name: "NIOCore", package: "swift-nio")]),
    ]
    for fuzz in fuzzTargets {
        package.targets.append(.executableTarget(name: fuzz.name, dependencies: fuzz.dependencies, path: "Fuzz/\(fuzz.name)"))
        package.products.append(.executable(name: fuzz.name, targets: [fuzz.name]))
    }
}
