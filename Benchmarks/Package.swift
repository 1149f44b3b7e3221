// swift-tools-version: 6.1
// RingLoop's benchmarks: a package of their own, so users of the library never
// resolve benchmark dependencies (package-benchmark, SwiftNIO, ...).
import PackageDescription

let package = Package(
    name: "RingLoopBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "RingLoop", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
    ],
    targets: [
        // Random 4 KiB file reads on RingLoop, beside fio in the file comparison.
        .executableTarget(
            name: "FileBench",
            dependencies: [.product(name: "RingLoop", package: "RingLoop")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // SwiftNIO's echo server, the peer in the echo comparison.
        .executableTarget(
            name: "NIOEchoServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // package-benchmark suites: ns/op and mallocs/op, RingLoop beside SwiftNIO.
        .executableTarget(
            name: "LoopBenchmarks",
            dependencies: [
                .product(name: "RingLoop", package: "RingLoop"),
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/LoopBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
