// swift-tools-version:6.0
import PackageDescription

// Module graph (one-way): KafkaWire → KafkaProtocol → KafkaRecords (+CCRC32C); storage, coordination,
// coordinators and the broker come next, in that order. See docs/ARCHITECTURE.md.
let package = Package(
    name: "samsa",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "samsa", targets: ["samsa"]),
        .library(name: "KafkaProtocol", targets: ["KafkaWire", "KafkaProtocol", "KafkaRecords", "KafkaCompression"]),
        .library(name: "SamsaClient", targets: ["SamsaClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // Wire primitives: Kafka's integer, varint, string, bytes, UUID and tagged-field encodings on ByteBuffer.
        .target(name: "KafkaWire", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        // Generated request/response/header/data messages, ApiKey, error codes, frame codec.
        .target(name: "KafkaProtocol", dependencies: ["KafkaWire", .product(name: "NIOCore", package: "swift-nio")]),
        // CRC32C with a hardware path (SSE4.2 / ARMv8 CRC) and a portable fallback chosen at run time.
        // No unsafeFlags (they keep a package from being used as a versioned dependency): release builds
        // compile C with -O2 anyway; debug builds (-O0) are slower but still in GB/s (docs/PERFORMANCE.md).
        .target(name: "CCRC32C"),
        // The reference compression libraries from the system (Debian: zlib1g-dev, libzstd-dev, liblz4-dev,
        // libsnappy-dev; installed by scripts/install-test-deps.sh).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd"),
        .systemLibrary(name: "CLZ4", path: "Sources/CLZ4"),
        .systemLibrary(name: "CSnappy", path: "Sources/CSnappy"),
        // Kafka's compression codecs over those libraries: gzip, snappy (raw, and the xerial framing in Swift),
        // lz4 (frame), zstd; levels as KIP-390.
        .target(name: "KafkaCompression", dependencies: ["CZlib", "CZstd", "CLZ4", "CSnappy", .product(name: "NIOCore", package: "swift-nio")]),
        // Record batches (magic 2): decode, build, validate.
        .target(name: "KafkaRecords", dependencies: ["KafkaWire", "KafkaProtocol", "CCRC32C", "KafkaCompression", .product(name: "NIOCore", package: "swift-nio")]),
        // Storage engine: segmented partition logs, indexes, checkpoints, recovery, producer state. No sockets.
        .target(name: "SamsaStorage", dependencies: ["KafkaWire", "KafkaRecords", "KafkaProtocol", "KafkaCompression", .product(name: "NIOCore", package: "swift-nio")]),
        // A ZooKeeper client on SwiftNIO: jute encoding, a sans-IO session state machine, the NIO transport.
        .target(name: "ZooKeeperClient", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The cluster's metadata store: the CoordinationStore protocol (embedded or ZooKeeper) and typed
        // cluster metadata in Kafka's ZooKeeper layout and JSON.
        .target(name: "SamsaMetadata", dependencies: ["KafkaWire", "ZooKeeperClient", .product(name: "NIOCore", package: "swift-nio")]),
        // The controller's decisions as sans-IO state machines (Kafka's ZooKeeper-mode controller): replica
        // assignment, partition and replica states, leader elections, ISR changes, preferred leaders. No I/O.
        .target(name: "SamsaController", dependencies: ["SamsaMetadata", "KafkaProtocol"]),
        // The broker: network server (sans-IO connection state machine + NIO handler), one handler per API,
        // replica manager (leader and follower roles), replica fetchers, fetch and produce purgatories, topic
        // administration, and in a cluster the controller driver (runs SamsaController's decisions).
        .target(name: "SamsaBroker", dependencies: [
            "KafkaWire", "KafkaProtocol", "KafkaRecords", "SamsaStorage", "SamsaMetadata", "SamsaController", "SamsaCoordinators",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"), .product(name: "DequeModule", package: "swift-collections"),
        ]),
        // Coordinators as replayable sans-IO state machines: the classic group coordinator and the
        // transaction coordinator (broker wiring of transactions next).
        .target(name: "SamsaCoordinators", dependencies: [
            "KafkaWire", "KafkaProtocol", .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "OrderedCollections", package: "swift-collections"),
        ]),
        // The Swift client library: producer, consumer, admin. Depends only on the protocol modules.
        .target(name: "SamsaClient", dependencies: [
            "KafkaWire", "KafkaProtocol", "KafkaRecords", "KafkaCompression",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "DequeModule", package: "swift-collections"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The protocol code generator: reads Kafka's JSON message schemas, writes Swift.
        .executableTarget(name: "SamsaCodegen", path: "Sources/SamsaCodegen"),
        // The single `samsa` command.
        .executableTarget(name: "samsa", dependencies: [
            "KafkaProtocol", "KafkaRecords", "SamsaBroker", "SamsaClient", .product(name: "Logging", package: "swift-log"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Micro-benchmarks (not tests): `swift run -c release samsa-bench-crc32c`.
        .executableTarget(name: "samsa-bench-crc32c", dependencies: ["KafkaRecords", "CCRC32C"], path: "bench/CRC32CBench"),
        // `swift run -c release samsa-bench-compression`: compression/decompression MB/s per codec.
        .executableTarget(name: "samsa-bench-compression", dependencies: ["KafkaCompression"], path: "bench/CompressionBench"),

        .testTarget(name: "KafkaWireTests", dependencies: ["KafkaWire", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "KafkaProtocolTests", dependencies: ["KafkaProtocol", "KafkaWire", "KafkaRecords",
                                                              .product(name: "NIOEmbedded", package: "swift-nio")],
                    exclude: ["Fixtures"]),
        .testTarget(name: "KafkaRecordsTests", dependencies: ["KafkaRecords", "CCRC32C"]),
        .testTarget(name: "KafkaCompressionTests", dependencies: ["KafkaCompression", .product(name: "NIOCore", package: "swift-nio")],
                    exclude: ["Fixtures"]),
        .testTarget(name: "SamsaStorageTests", dependencies: ["SamsaStorage", "KafkaRecords"]),
        // Test support: real ZooKeeper ensembles (scripts/zookeeper.sh) and a partitioning TCP proxy.
        .target(name: "ZooKeeperTestSupport", dependencies: [
            "ZooKeeperClient", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
        ], path: "Tests/ZooKeeperTestSupport"),
        .testTarget(name: "ZooKeeperClientTests", dependencies: [
            "ZooKeeperClient", "ZooKeeperTestSupport", .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ], exclude: ["Fixtures"]),
        .testTarget(name: "SamsaMetadataTests", dependencies: ["SamsaMetadata", "KafkaWire", "ZooKeeperClient", "ZooKeeperTestSupport"]),
        .testTarget(name: "SamsaControllerTests", dependencies: ["SamsaController", "SamsaMetadata", "KafkaProtocol"]),
        .testTarget(name: "SamsaCoordinatorsTests", dependencies: ["SamsaCoordinators", "KafkaProtocol", "KafkaWire",
                                                                 .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "SamsaClientTests", dependencies: [
            "SamsaClient", "SamsaBroker", "KafkaProtocol", "KafkaRecords", "KafkaCompression",
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "SamsaBrokerTests", dependencies: [
            "SamsaBroker", "SamsaStorage", "SamsaCoordinators", "KafkaProtocol", "KafkaRecords", "KafkaWire", "SamsaMetadata", "ZooKeeperTestSupport",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
    ]
)
