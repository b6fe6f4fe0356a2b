// swift-tools-version:6.2
import Foundation
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "chronicle",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "ChronicleCore", targets: ["ChronicleCore"]),
        .library(name: "ChronicleStorage", targets: ["ChronicleStorage"]),
        .library(name: "ChronicleServer", targets: ["ChronicleServer"]),
        .library(name: "ChronicleTesting", targets: ["ChronicleTesting"]),
        .library(name: "ChronicleFuzzing", targets: ["ChronicleFuzzing"]),
        .library(name: "ChronicleClient", targets: ["ChronicleClient"]),
        .library(name: "ChronicleEmbedded", targets: ["ChronicleEmbedded"]),
        .executable(name: "chronicle", targets: ["chronicle"]),
        .executable(name: "chronicle-fuzz", targets: ["ChronicleFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // TLS for the pooled HTTP/1.1 upstream transport (already built for AsyncHTTPClient).
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.27.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.9.0"..<"6.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.20.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.2.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
        // OTLP/HTTP only: the gRPC exporter would add grpc-swift and minutes of build time.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        // `swift package generate-documentation --target ChronicleClient` (and ChronicleCore); CI runs it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // Gateway core: chat format, providers, routing, retries, streaming, logging pipeline. No server.
        .target(
            name: "ChronicleCore",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // SigV4 signing for AWS Bedrock (already built for postgres-nio).
                .product(name: "Crypto", package: "swift-crypto"),
                // Instrumentation APIs only; the server picks the backends (OTLP, Prometheus).
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // Storage backends: the batching log writer with its spill file, SQLite and PostgreSQL stores, migrations.
        .target(
            name: "ChronicleStorage",
            dependencies: [
                "ChronicleCore",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP server: Hummingbird application, routes, headers, error rendering, configuration files.
        .target(
            name: "ChronicleServer",
            dependencies: [
                "ChronicleCore",
                "ChronicleStorage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // SIGHUP reloads the configuration files.
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            // The dashboard's files are embedded as Swift source (scripts/embed-dashboard.py), not as resources:
            // the binary copied alone must serve them.
            exclude: ["Dashboard/assets"],
            swiftSettings: swiftSettings
        ),
        // Test doubles shipped as a product: mock upstreams that replay recorded provider traffic, and the
        // manual clock. Not the server: a library user takes these without TOMLKit, swift-otel or storage.
        // MockUpstream is a Hummingbird application (Hummingbird alone, not ChronicleServer).
        .target(
            name: "ChronicleTesting",
            dependencies: [
                "ChronicleCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The seeded mutation fuzzer of the decoders that see untrusted bytes, the server's request decoding
        // among them (hence its own product, apart from ChronicleTesting).
        .target(
            name: "ChronicleFuzzing",
            dependencies: [
                "ChronicleCore",
                "ChronicleServer",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Swift client library: typed chat calls and runs/steps recorded by scope. A client needs only an
        // HTTP client and logging: no server, storage, Hummingbird or providers. Its wire types are its own
        // Codable structs (the JSON is the contract), so that it builds without the gateway.
        .target(
            name: "ChronicleClient",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The client's embedded mode: a transport that hands calls and events to an in-process `Gateway`,
        // apart from ChronicleClient so that the client alone never links the gateway.
        .target(
            name: "ChronicleEmbedded",
            dependencies: [
                "ChronicleClient",
                "ChronicleCore",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // A small command-line agent: a three-step run with tool calls through a local Chronicle.
        .executableTarget(
            name: "Agent",
            dependencies: ["ChronicleClient"],
            path: "Examples/Agent",
            swiftSettings: swiftSettings
        ),
        // The thin `chronicle` executable.
        .executableTarget(
            name: "chronicle",
            dependencies: [
                "ChronicleServer",
                "ChronicleStorage",
                "ChronicleCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // The admin subcommands call a server's admin API.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        // The seeded mutation fuzzer's command line (`fuzz/run.sh`).
        .executableTarget(
            name: "ChronicleFuzz",
            dependencies: ["ChronicleFuzzing"],
            path: "fuzz/Sources/ChronicleFuzz",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChronicleCoreTests",
            dependencies: [
                "ChronicleCore", "ChronicleTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChronicleStorageTests",
            dependencies: [
                "ChronicleStorage", "ChronicleCore", "ChronicleTesting",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChronicleClientTests",
            dependencies: [
                "ChronicleClient", "ChronicleEmbedded", "ChronicleCore", "ChronicleServer", "ChronicleStorage",
                "ChronicleTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChronicleServerTests",
            dependencies: [
                "ChronicleServer", "ChronicleStorage", "ChronicleTesting", "ChronicleFuzzing",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                // A PostgreSQL database per test, for the server tests whose behaviour depends on storage.
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

// Benchmarks stay out of the normal build graph; `CHRONICLE_BENCH=1 swift run -c release <name>` builds them.
if ProcessInfo.processInfo.environment["CHRONICLE_BENCH"] != nil {
    package.targets.append(
        .executableTarget(
            name: "LoggingBenchmark",
            dependencies: [
                "ChronicleCore", "ChronicleStorage",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "bench/Sources/LoggingBenchmark",
            swiftSettings: swiftSettings
        )
    )
    // HTTP benchmark tools (bench/run.sh): plain SwiftNIO only, so they build in a fraction of the gateway's time.
    // What the bench tools share: unbuffered output, the open-file limit, whole-file reads.
    package.targets.append(
        .target(name: "BenchSupport", path: "bench/Sources/BenchSupport", swiftSettings: swiftSettings)
    )
    package.targets.append(
        .executableTarget(
            name: "ChronicleMock",
            dependencies: [
                "BenchSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "bench/Sources/ChronicleMock",
            swiftSettings: swiftSettings
        )
    )
    package.targets.append(
        .executableTarget(
            name: "ChronicleLoad",
            dependencies: [
                "BenchSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "bench/Sources/ChronicleLoad",
            swiftSettings: swiftSettings
        )
    )
    // The floor of the side-by-side benchmark (bench/run.sh peers): a bare relay with no JSON work or logging.
    package.targets.append(
        .executableTarget(
            name: "ChronicleFloor",
            dependencies: [
                "BenchSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "bench/Sources/ChronicleFloor",
            swiftSettings: swiftSettings
        )
    )
}
