// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "RingLoop",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RingLoop", targets: ["RingLoop"]),
        .executable(name: "Hello", targets: ["Hello"]),
        .executable(name: "EchoServer", targets: ["EchoServer"]),
        .executable(name: "Chat", targets: ["Chat"]),
        .executable(name: "HTTPHello", targets: ["HTTPHello"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.5.0"),
        // The examples' command lines only. SwiftPM resolves a dependency for
        // the products that use it, so a user of the library never fetches it.
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
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
            dependencies: ["RingLoop", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/EchoServer",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "Chat",
            dependencies: ["RingLoop", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/Chat",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "HTTPHello",
            dependencies: ["RingLoop", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/HTTPHello",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Test helper: runs a program with io_uring_setup denied by seccomp.
        .executableTarget(
            name: "no-uring",
            path: "Tests/Helpers/NoURing"
        ),
        // Test helper: uses the main actor from a loop on the main thread.
        .executableTarget(
            name: "main-actor-check",
            dependencies: ["RingLoop"],
            path: "Tests/Helpers/MainActorCheck",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "RingLoopTests",
            dependencies: ["RingLoop"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
