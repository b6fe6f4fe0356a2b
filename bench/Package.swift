// swift-tools-version:6.0
// Benchmarks live in their own package so the main build and test graph stay lean.
import PackageDescription

let package = Package(
    name: "chronicle-bench",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "LoggingBenchmark",
            dependencies: [
                .product(name: "ChronicleStorage", package: "chronicle"),
                .product(name: "ChronicleCore", package: "chronicle"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
