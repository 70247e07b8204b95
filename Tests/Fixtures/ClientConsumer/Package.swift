// swift-tools-version:6.0
// A package outside the repository's own targets that uses SamsaClient the way an application would:
// scripts/test.sh builds it (scratch path .build-fixture) so the library stays usable as a dependency.
import PackageDescription

let package = Package(
    name: "ClientConsumer",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "samsa", path: "../../.."),
    ],
    targets: [
        .executableTarget(name: "ClientConsumer", dependencies: [.product(name: "SamsaClient", package: "samsa")]),
    ]
)
