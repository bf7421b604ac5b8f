// swift-tools-version: 6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

/// The collective layers: an async function runs on its caller's executor (SE-0461), so a call
/// makes no hop to the generic executor at each async function's entry (a check of the task's
/// executor preference, ~10% of a small collective's time).
let collectiveSettings = swiftSettings + [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]

let package = Package(
    name: "Skein",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SkeinCore", targets: ["SkeinCore"]),
        .library(name: "SkeinTransports", targets: ["SkeinTransports"]),
        .library(name: "SkeinCollectives", targets: ["SkeinCollectives"]),
        .library(name: "SkeinMPI", targets: ["SkeinMPI"]),
        .library(name: "SkeinRuntime", targets: ["SkeinRuntime"]),
        .library(name: "SkeinData", targets: ["SkeinData"]),
        .executable(name: "skein", targets: ["skein"]),
    ],
    traits: [
        // The cluster backend: `swift build --traits MPI` (needs Open MPI: apt-get install libopenmpi-dev).
        .trait(name: "MPI", description: "Build the MPI transport (Open MPI or MPICH) for running under mpirun or srun"),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Non-temporal copies, which Swift cannot express.
        .target(name: "CMemoryCopy"),
        .target(name: "SkeinCore", dependencies: ["CMemoryCopy"], swiftSettings: collectiveSettings),
        .target(name: "SkeinTransports", dependencies: ["SkeinCore", "CMemoryCopy", "CSystemCalls"], swiftSettings: collectiveSettings),
        .target(
            name: "SkeinCollectives",
            dependencies: ["SkeinCore", "SkeinTransports"],
            swiftSettings: collectiveSettings
        ),
        .systemLibrary(
            name: "CMPI", pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev"])]
        ),
        .target(
            name: "SkeinMPI",
            dependencies: ["SkeinCore", .target(name: "CMPI", condition: .when(traits: ["MPI"]))],
            swiftSettings: swiftSettings
        ),
        // process_vm_readv, prctl and membarrier, which Swift's Glibc module does not declare.
        .target(name: "CSystemCalls"),
        .target(name: "SkeinRuntime", dependencies: ["SkeinCore", "CSystemCalls"], swiftSettings: swiftSettings),
        .target(name: "SkeinData", dependencies: ["SkeinCore", "SkeinCollectives"], swiftSettings: swiftSettings),
        .target(
            name: "SkeinTestSupport",
            dependencies: ["SkeinCore", "SkeinTransports", "SkeinCollectives"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "skein",
            dependencies: [
                "SkeinCore", "SkeinTransports", "SkeinCollectives", "SkeinMPI", "SkeinRuntime", "SkeinData",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // Checks every operation and algorithm over MPI against the naive references; run under mpirun.
        .executableTarget(
            name: "skein-mpi-check",
            dependencies: ["SkeinCore", "SkeinTransports", "SkeinCollectives", "SkeinMPI", "SkeinTestSupport", "SkeinRuntime", "SkeinData"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SkeinTransportsTests",
            dependencies: ["SkeinCore", "SkeinTransports", "SkeinTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SkeinRuntimeTests",
            dependencies: ["SkeinRuntime", "SkeinTestSupport", "SkeinCore", "SkeinTransports"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SkeinDataTests",
            dependencies: ["SkeinData", "SkeinTestSupport", "SkeinCollectives", "SkeinTransports"],
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
