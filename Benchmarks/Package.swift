// swift-tools-version: 6.1
// RingLoop's benchmarks: a package of their own, so users of the library never
// resolve benchmark dependencies (package-benchmark, SwiftNIO, ...).
//
//   swift run -c release Compare --quick    # the side-by-side comparison (README's main command)
//   swift package benchmark                 # package-benchmark suites: ns/op, mallocs/op
import PackageDescription

let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "RingLoopBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "RingLoop", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
    ],
    targets: [
        // The comparison runner: builds and starts every contestant, drives the
        // socket workloads with the C load client, and prints tables and a chart.
        // Links none of the code under test.
        .executableTarget(
            name: "Compare",
            dependencies: ["CompareCore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swift6
        ),
        // The reliability soak: a million connect/echo/close cycles, then
        // thousands of idle connections; prints descriptors and RSS. Not in CI.
        .executableTarget(
            name: "Soak",
            dependencies: [
                .product(name: "RingLoop", package: "RingLoop"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swift6
        ),
        // What the runner computes and prints, apart from running anything:
        // statistics, the report schema, targets, tables, the chart. Unit-tested.
        .target(name: "CompareCore", swiftSettings: swift6),
        .testTarget(name: "CompareCoreTests", dependencies: ["CompareCore"], swiftSettings: swift6),
        // The Swift side of the comparison, one process per measurement: loop
        // micro-workloads, file reads, and SwiftNIO's echo server.
        .executableTarget(
            name: "BenchWorker",
            dependencies: [
                "LoopWorkloads",
                "CompareCore",
                .product(name: "RingLoop", package: "RingLoop"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swift6
        ),
        // The loop micro-workloads, written once for RingLoop and once for NIO,
        // shared by the comparison and the package-benchmark suites.
        .target(
            name: "LoopWorkloads",
            dependencies: [
                "CompareCore",
                .product(name: "RingLoop", package: "RingLoop"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swift6
        ),
        // package-benchmark suites for regression tracking: ns/op and mallocs/op.
        .executableTarget(
            name: "LoopBenchmarks",
            dependencies: [
                "LoopWorkloads",
                .product(name: "RingLoop", package: "RingLoop"),
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/LoopBenchmarks",
            swiftSettings: swift6,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
