// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    // Release builds skip the runtime exclusivity checks (they cost ~15% of the request path);
    // debug builds, which the tests use, keep them.
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "SwiftROMA",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "romad", targets: ["romad"]),
        .executable(name: "cpdb", targets: ["cpdb"]),
        .executable(name: "mkroute", targets: ["mkroute"]),
        .executable(name: "recoverlost", targets: ["recoverlost"]),
        .executable(name: "roma-adm", targets: ["roma-adm"]),
        .executable(name: "roma-bench", targets: ["roma-bench"]),
        .library(name: "ROMAClient", targets: ["ROMAClient"]),
        .library(name: "RomaClient", targets: ["RomaClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // TokyoCabinet's C API (Debian: libtokyocabinet-dev, pkg-config tokyocabinet).
        .systemLibrary(
            name: "CTokyoCabinet",
            pkgConfig: "tokyocabinet",
            providers: [.apt(["libtokyocabinet-dev"])]
        ),
        // OpenSSL's libcrypto (Debian: libssl-dev, pkg-config libcrypto): hardware SHA-256.
        .systemLibrary(
            name: "CCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // zlib (Debian: zlib1g-dev, pkg-config zlib): rzset's compressed replica values (R5.2).
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // Storage: record codec, engines, divisions, safecopy state machine. No networking.
        .target(name: "ROMAStorage", dependencies: ["CTokyoCabinet"], swiftSettings: strict),
        // Routing: SHA-1 digest, vnodes, division map, routing table, mkroute.
        .target(name: "ROMARouting", dependencies: [.product(name: "Yams", package: "Yams")], swiftSettings: strict),
        // Protocol: request parser and reply encoder on ByteBuffers. No storage.
        .target(name: "ROMAProtocol", dependencies: [.product(name: "NIOCore", package: "swift-nio")], swiftSettings: strict),
        // The node: command dispatch, connections, background processes.
        .target(
            name: "ROMANode",
            dependencies: [
                "ROMAStorage", "ROMARouting", "ROMAProtocol", "CZlib", "ROMAClient", "RomaClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        // splice(2) for Swift (Glibc's module lacks it): received files go socket → disk uncopied.
        .target(name: "CSplice"),
        // A small blocking text-protocol client for tools and tests.
        .target(name: "ROMAClient", dependencies: ["CSplice"], swiftSettings: strict),
        // Async cluster client: NIO connection pools, client-side routing, failover (docs/client.md).
        .target(
            name: "RomaClient",
            dependencies: [
                "ROMARouting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Snapshot files: durable copies, manifests with SHA-256, verify, restore, retention.
        .target(name: "ROMASnapshot", dependencies: ["ROMAStorage", "CCrypto"], swiftSettings: strict),
        // romad's no-op sched_yield (see no_yield.c): TokyoCabinet's hashing loop yields the CPU.
        .target(name: "CTokyoCabinetNoYield"),
        .executableTarget(
            name: "romad",
            dependencies: ["ROMANode", "CTokyoCabinetNoYield", .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict,
            // Swift's runtime and Foundation linked in (glibc, libstdc++ and TokyoCabinet stay
            // shared): a joining node starts beside serving ones, and the dynamic loader's work
            // for Swift's libraries came first in its start. `romad --version` runs 16.7 M
            // instructions instead of 29.9 M (callgrind); see docs/cluster.md, "File-level
            // seeding". The static Foundation archives need their helper archives named.
            linkerSettings: [.unsafeFlags(["-static-stdlib", "-lCoreFoundation", "-l_FoundationICU", "-l_FoundationCollections", "-l_FoundationCShims"])]
        ),
        .executableTarget(
            name: "cpdb",
            dependencies: ["ROMAClient", "ROMASnapshot", "ROMAStorage", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict,
            // cpdb is one self-contained static executable. It starts beside a serving node, and
            // everything it does before `main` (the dynamic loader's relocations and symbol
            // lookups for Swift's runtime, libcrypto and libstdc++) runs at the launcher's
            // priority, before cpdb can lower it: 4.4 ms of CPU dynamically linked, 0.7 ms
            // static (docs/snapshots.md). FoundationEssentials' static archive needs its two
            // helper archives named; libtokyocabinet needs bz2 and z. lld, because it does not
            // repeat glibc's link-time notes about NSS and dlopen in static programs (cpdb
            // resolves only the node's host name, through /etc/hosts or DNS, which static
            // glibc handles itself).
            linkerSettings: [.unsafeFlags(["-static-executable", "-l_FoundationCollections", "-l_FoundationCShims", "-lbz2", "-lz", "-use-ld=lld"])]
        ),
        .executableTarget(
            name: "mkroute",
            dependencies: ["ROMARouting", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "recoverlost",
            dependencies: ["ROMAClient", "ROMARouting", "ROMAStorage", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "roma-adm",
            dependencies: ["ROMAClient", "ROMARouting", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        // Load generator: options, connections, latency histograms, reports.
        .target(
            name: "ROMABench",
            dependencies: [
                "RomaClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "roma-bench",
            dependencies: ["ROMABench", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        // Parser and routing unit tests; an integration test against a real `romad` (built by
        // `swift build`, found next to the test binary or in .build/debug).
        .testTarget(name: "RomaClientTests", dependencies: ["RomaClient", "ROMARouting", .product(name: "NIOPosix", package: "swift-nio")], swiftSettings: strict),
        .testTarget(name: "ROMABenchTests", dependencies: ["ROMABench"], swiftSettings: strict),
        .testTarget(name: "ROMAStorageTests", dependencies: ["ROMAStorage"], swiftSettings: strict),
        .testTarget(name: "ROMARoutingTests", dependencies: ["ROMARouting"], swiftSettings: strict),
        .testTarget(name: "ROMAProtocolTests", dependencies: ["ROMAProtocol"], swiftSettings: strict),
        .testTarget(name: "ROMANodeTests", dependencies: ["ROMANode", "ROMAClient", .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")], swiftSettings: strict),
        .testTarget(name: "ROMASnapshotTests", dependencies: ["ROMASnapshot", "ROMAClient"], swiftSettings: strict),
    ]
)
