// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "RingLoop",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RingLoop", targets: ["RingLoop"]),
        .executable(name: "Hello", targets: ["Hello"]),
        .executable(name: "EchoServer", targets: ["EchoServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.5.0"),
    ],
    targets: [
        // liburing 2.3 plus the few static-inline shims Swift cannot import directly.
        .systemLibrary(
            name: "CUring",
            path: "CUring",
            pkgConfig: "liburing",
            providers: [.apt(["liburing-dev"])]
        ),
        .target(
            name: "RingLoop",
            dependencies: [
                "CUring",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "Hello",
            dependencies: ["RingLoop"],
            path: "Examples/Hello",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "EchoServer",
            dependencies: ["RingLoop"],
            path: "Examples/EchoServer",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "RingLoopTests",
            dependencies: ["RingLoop"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
