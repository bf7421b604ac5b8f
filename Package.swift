// swift-tools-version: 6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Skein",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SkeinCore", targets: ["SkeinCore"]),
        .library(name: "SkeinTransports", targets: ["SkeinTransports"]),
        .library(name: "SkeinCollectives", targets: ["SkeinCollectives"]),
        .executable(name: "skein", targets: ["skein"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(name: "SkeinCore", swiftSettings: swiftSettings),
        .target(name: "SkeinTransports", dependencies: ["SkeinCore"], swiftSettings: swiftSettings),
        .target(
            name: "SkeinCollectives",
            dependencies: ["SkeinCore", "SkeinTransports"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SkeinTestSupport",
            dependencies: ["SkeinCore", "SkeinTransports", "SkeinCollectives"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "skein",
            dependencies: [
                "SkeinCore", "SkeinTransports", "SkeinCollectives",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SkeinTransportsTests",
            dependencies: ["SkeinCore", "SkeinTransports", "SkeinTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SkeinCollectivesTests",
            dependencies: ["SkeinCore", "SkeinTransports", "SkeinCollectives", "SkeinTestSupport"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
