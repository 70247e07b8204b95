import Foundation
import KafkaWire
import Testing
import ZooKeeperTestSupport
@testable import SamsaMetadata

/// Collects watch changes.
final class ChangeLog: Sendable {
    private let changes = Locked<[CoordinationChange]>([])
    var watcher: CoordinationWatcher { { [changes] c in changes.withLock { $0.append(c) } } }
    var all: [CoordinationChange] { changes.withLock { $0 } }
}

/// The same behaviour from both stores: the embedded one and the ZooKeeper one.
func exerciseStore(_ store: some ClusterCoordinationStore) async throws {
    // Tree operations and versions.
    try await store.create("/a/b/c", data: [1], ephemeral: false)
    #expect(try await store.children("/a") == ["b"])
    #expect(try await store.get("/a/b/c") == CoordinationNode(data: [1], version: 0))
    #expect(try await store.set("/a/b/c", data: [2], expectedVersion: 0) == 1)
    await #expect(throws: CoordinationError.badVersion("/a/b/c")) { try await store.set("/a/b/c", data: [3], expectedVersion: 0) }
    await #expect(throws: CoordinationError.nodeExists("/a/b/c")) { try await store.create("/a/b/c", data: [], ephemeral: false) }
    await #expect(throws: CoordinationError.notEmpty("/a")) { try await store.delete("/a", recursive: false) }
    await #expect(throws: CoordinationError.noNode("/nope")) { try await store.children("/nope") }
    #expect(try await store.get("/nope") == nil)
    // A failing multi changes nothing.
    await #expect(throws: CoordinationError.noNode("/missing")) {
        try await store.multi([.create("/x/y", [1]), .set("/missing", [], expectedVersion: nil)])
    }
    #expect(try await store.get("/x") == nil)
    try await store.multi([.create("/x/y", [1]), .set("/a/b/c", [5], expectedVersion: 1), .create("/x/z", [])])
    #expect(try await store.children("/x") == ["y", "z"])
    #expect(try await store.get("/a/b/c") == CoordinationNode(data: [5], version: 2))
    try await store.delete("/a", recursive: true)
    #expect(try await store.get("/a/b") == nil)
    #expect(try await store.get("/a") == nil)

    // Watches fire once per trigger.
    let w1 = ChangeLog()
    #expect(try await store.get("/w", watch: w1.watcher) == nil)
    try await store.create("/w", data: [0], ephemeral: false)
    #expect(await eventually { w1.all.count == 1 })
    try await store.set("/w", data: [1], expectedVersion: nil)  // not watched any more
    let w2 = ChangeLog(), c1 = ChangeLog()
    #expect(try await store.get("/w", watch: w2.watcher)?.data == [1])
    #expect(try await store.children("/w", watch: c1.watcher) == [])
    try await store.set("/w", data: [2], expectedVersion: nil)
    try await store.create("/w/k", data: [], ephemeral: false)
    try await store.set("/w", data: [3], expectedVersion: nil)
    #expect(await eventually { w2.all.count == 1 && c1.all.count == 1 })
    let w3 = ChangeLog()
    _ = try await store.get("/w/k", watch: w3.watcher)
    try await store.delete("/w", recursive: true)
    #expect(await eventually { w3.all.count == 1 })
    try await Task.sleep(for: .milliseconds(200))
    #expect(w1.all == [CoordinationChange(.created, "/w")])
    #expect(w2.all == [CoordinationChange(.dataChanged, "/w")])
    #expect(c1.all == [CoordinationChange(.childrenChanged, "/w")])
    #expect(w3.all == [CoordinationChange(.deleted, "/w/k")])

    // Sequential nodes.
    #expect(try await store.createSequential("/seq/n-", data: [1], ephemeral: false) == "/seq/n-0000000000")
    #expect(try await store.createSequential("/seq/n-", data: [2], ephemeral: true) == "/seq/n-0000000001")
    #expect(try await store.children("/seq") == ["n-0000000000", "n-0000000001"])

    // A stream of changes.
    let arms = Locked(0)
    let stream = store.changes(of: "/s", armed: { arms.withLock { $0 += 1 } })
    let events = Locked<[CoordinationChange]>([])
    let reader = Task { for await c in stream { events.withLock { $0.append(c) } } }
    defer { reader.cancel() }
    #expect(await eventually { arms.withLock { $0 } >= 1 })
    try await store.create("/s", data: [], ephemeral: false)
    #expect(await eventually { events.withLock { $0.count } == 1 })
    #expect(await eventually { arms.withLock { $0 } >= 2 })  // re-armed
    try await store.set("/s", data: [1], expectedVersion: nil)
    #expect(await eventually { events.withLock { $0.count } == 2 })
    #expect(events.withLock { $0 } == [CoordinationChange(.created, "/s"), CoordinationChange(.dataChanged, "/s")])

    // Kafka's layout through ClusterMetadataStore (multi with parents, recursive delete).
    let meta = ClusterMetadataStore(store: store)
    let id = KafkaUUID.random()
    try await meta.createTopic(name: "orders", topicId: id, replicas: [[0], [0], [0]], configs: ["retention.ms": "1000"])
    await #expect(throws: CoordinationError.self) { try await meta.createTopic(name: "orders", topicId: id, replicas: [[0]], configs: [:]) }
    let topic = try #require(try await meta.topic("orders"))
    #expect(topic.topicId == id && topic.replicas.count == 3 && topic.configs == ["retention.ms": "1000"])
    try await meta.addPartitions("orders", newReplicas: [[0]])
    #expect(try await meta.topic("orders")?.replicas.count == 4)
    try await meta.deleteTopic("orders")
    #expect(try await meta.topicNames().isEmpty)
}

@Suite struct EmbeddedClusterStoreTests {
    @Test func sameBehaviourAsZooKeeper() async throws {
        try await exerciseStore(try EmbeddedCoordinationStore(file: nil))
    }

    @Test func sessionIsTheProcess() async throws {
        let store = try EmbeddedCoordinationStore(file: nil)
        var it = store.sessionStates().makeAsyncIterator()
        #expect(await it.next() == .connected)
    }

    @Test func sequenceContinuesAboveExistingNodes() async throws {
        let store = try EmbeddedCoordinationStore(file: nil)
        try await store.create("/q/job-0000000041", data: [], ephemeral: false)
        #expect(try await store.createSequential("/q/job-", data: [], ephemeral: false) == "/q/job-0000000042")
    }
}

/// Against a real ZooKeeper ensemble (scripts/zookeeper.sh); serialized, each with its own ensemble.
@Suite(.serialized) struct ZooKeeperStoreTests {
    @Test func sameBehaviourAsEmbedded() async throws {
        let ensemble = try Ensemble(nodes: 1)
        defer { ensemble.shutdown() }
        let store = try await ZooKeeperCoordinationStore.connect(ensemble.connectString + "/samsa/test", sessionTimeoutMs: 6000)
        try await exerciseStore(store)
        // The chroot was created, and everything lives under it.
        let root = try await ZooKeeperCoordinationStore.connect(ensemble.connectString, sessionTimeoutMs: 6000)
        #expect(try await root.children("/samsa/test/seq") == ["n-0000000000", "n-0000000001"])
        // Ephemeral nodes go with the session.
        await store.close()
        #expect(try await root.children("/samsa/test/seq") == ["n-0000000000"])
        await root.close()
    }

    @Test func expiredSessionIsReportedAndTheOwnerRegistersAgain() async throws {
        let ensemble = try Ensemble(nodes: 1)
        defer { ensemble.shutdown() }
        let proxy = try PartitionProxy(target: ensemble.ports[0])
        defer { proxy.shutdown() }
        let broker = try await ZooKeeperCoordinationStore.connect("127.0.0.1:\(proxy.port)", sessionTimeoutMs: 2000, connectionTimeoutMs: 1000)
        let observer = try await ZooKeeperCoordinationStore.connect(ensemble.connectString, sessionTimeoutMs: 6000)
        let states = Locked<[CoordinationSessionState]>([])
        let stream = broker.sessionStates()
        let reader = Task { for await s in stream { states.withLock { $0.append(s) } } }
        defer { reader.cancel() }
        let meta = ClusterMetadataStore(store: broker)
        try await meta.registerBroker(BrokerRegistration(id: 1, host: "localhost", port: 9092, rack: nil))
        #expect(try await observer.children("/brokers/ids") == ["1"])

        try proxy.cut()
        // While cut off, reads fail as connection problems, never as "no node".
        do {
            _ = try await broker.get("/brokers/ids/1")
            Issue.record("read answered while partitioned")
        } catch let e as CoordinationError {
            switch e {
            case .timeout, .connectionLoss: break
            default: Issue.record("unexpected \(e)")
            }
        }
        #expect(await eventually { ((try? await observer.children("/brokers/ids")) ?? ["?"]).isEmpty })
        try proxy.restore()
        #expect(await eventually { states.withLock { $0.contains(.expired) && $0.last == .connected } })
        // The owner saw the expiry: it registers again in the new session.
        try await meta.registerBroker(BrokerRegistration(id: 1, host: "localhost", port: 9092, rack: nil))
        #expect(try await observer.children("/brokers/ids") == ["1"])
        await broker.close()
        await observer.close()
    }

    @Test func unreachableEnsembleIsAOneLineErrorAfterTheConnectionTimeout() async throws {
        let start = ContinuousClock.now
        await #expect(throws: CoordinationError.unavailable("cannot connect to ZooKeeper at 127.0.0.1:1/samsa within 500 ms")) {
            _ = try await ZooKeeperCoordinationStore.connect("127.0.0.1:1/samsa", sessionTimeoutMs: 6000, connectionTimeoutMs: 500)
        }
        #expect(ContinuousClock.now - start < .seconds(3))
        await #expect(throws: CoordinationError.self) {
            _ = try await ZooKeeperCoordinationStore.connect("not a host:port", connectionTimeoutMs: 500)
        }
    }
}
