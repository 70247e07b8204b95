import Foundation
import KafkaProtocol
import Logging
import NIOCore
import NIOPosix
import SamsaBroker
import SamsaClient
import Synchronization
import Testing

/// A scripted two-broker "cluster" for KafkaAdmin's cluster operations, which a single Samsa node
/// does not serve yet: SamsaBroker's network layer (KafkaServer) with fake handlers, advertised as
/// brokers 1 and 2 (both this one server). It records what the client sends and answers
/// NOT_CONTROLLER while told to, moving the controller to broker 2.
final class ScriptedCluster: Sendable {
    struct State {
        var port = 0
        var controllerId: Int32 = 1
        var notControllerAnswers = 0
        var elections: [(version: Int16, request: ElectLeadersRequest)] = []
        var reassignments: [AlterPartitionReassignmentsRequest] = []
        var listings: [ListPartitionReassignmentsRequest] = []
        var describeClusterServed = true
    }

    let state = Mutex(State())
    private let server: KafkaServer

    private init(server: KafkaServer) { self.server = server }

    static func start(describeCluster: Bool = true) async throws -> ScriptedCluster {
        var registry = HandlerRegistry()
        let box = Box()
        registry.register(ScriptedMetadata(box: box))
        if describeCluster { registry.register(ScriptedDescribeCluster(box: box)) }
        registry.register(ScriptedElectLeaders(box: box))
        registry.register(ScriptedAlterReassignments(box: box))
        registry.register(ScriptedListReassignments(box: box))
        registry.register(ScriptedDescribeLogDirs())
        let apis = (registry.supported + [(ApiKey.apiVersions.rawValue, 0...3)]).sorted { $0.key < $1.key }
        registry.register(ScriptedApiVersions(apis: apis))
        var logger = Logger(label: "fake-cluster")
        logger.logLevel = .critical
        let server = KafkaServer(group: MultiThreadedEventLoopGroup.singleton, registry: registry, limits: ServerLimits(), logger: logger)
        let fake = ScriptedCluster(server: server)
        box.cluster.withLock { $0 = fake }
        let port = try await server.start(host: "127.0.0.1", port: 0)
        fake.state.withLock { $0.port = port }
        return fake
    }

    var bootstrap: String { "127.0.0.1:\(state.withLock { $0.port })" }

    func stop() async { await server.stop() }

    /// The handlers reach the cluster through this (they are registered before it exists).
    final class Box: Sendable {
        let cluster = Mutex<ScriptedCluster?>(nil)
        func with<T: Sendable>(_ body: (inout State) -> T) -> T { cluster.withLock { $0! }.state.withLock { body(&$0) } }
    }

    /// True (and one fewer left) while NOT_CONTROLLER answers are scripted; the controller moves to 2.
    static func refuseAsNotController(_ s: inout State) -> Bool {
        guard s.notControllerAnswers > 0 else { return false }
        s.notControllerAnswers -= 1
        s.controllerId = 2
        return true
    }
}

struct ScriptedApiVersions: APIHandler {
    let apis: [(key: Int16, versions: ClosedRange<Int16>)]
    var versions: ClosedRange<Int16> { 0...3 }
    func handle(_ request: ApiVersionsRequest, context: RequestContext) -> HandlerOutcome<ApiVersionsResponse> {
        var r = ApiVersionsResponse()
        r.apiKeys = apis.map { .init(apiKey: $0.key, minVersion: $0.versions.lowerBound, maxVersion: $0.versions.upperBound) }
        return .respond(r)
    }
}

struct ScriptedMetadata: APIHandler {
    let box: ScriptedCluster.Box
    var versions: ClosedRange<Int16> { 1...12 }
    func handle(_ request: MetadataRequest, context: RequestContext) -> HandlerOutcome<MetadataResponse> {
        let (port, controller) = box.with { ($0.port, $0.controllerId) }
        var r = MetadataResponse(brokers: [1, 2].map { .init(nodeId: $0, host: "127.0.0.1", port: Int32(port), rack: "r\($0)") },
                                 clusterId: "fake-cluster", controllerId: controller)
        if request.topics == nil || request.topics?.contains(where: { $0.name == "t" }) == true {
            r.topics = [.init(errorCode: 0, name: "t", partitions: (0..<2).map {
                .init(errorCode: 0, partitionIndex: $0, leaderId: 1, leaderEpoch: 3, replicaNodes: [1, 2], isrNodes: [1, 2], offlineReplicas: [])
            })]
        }
        return .respond(r)
    }
}

struct ScriptedDescribeCluster: APIHandler {
    let box: ScriptedCluster.Box
    var versions: ClosedRange<Int16> { 0...1 }
    func handle(_ request: DescribeClusterRequest, context: RequestContext) -> HandlerOutcome<DescribeClusterResponse> {
        let (port, controller) = box.with { ($0.port, $0.controllerId) }
        // Only broker 2 is live here, unlike Metadata: the client must have used DescribeCluster.
        return .respond(DescribeClusterResponse(clusterId: "fake-cluster-dc", controllerId: controller,
                                                brokers: [.init(brokerId: 2, host: "127.0.0.1", port: Int32(port), rack: "r2")]))
    }
}

struct ScriptedElectLeaders: APIHandler {
    let box: ScriptedCluster.Box
    var versions: ClosedRange<Int16> { 0...2 }
    func handle(_ request: ElectLeadersRequest, context: RequestContext) -> HandlerOutcome<ElectLeadersResponse> {
        if box.with({ ScriptedCluster.refuseAsNotController(&$0) }) {
            return .respond(ElectLeadersResponse(errorCode: KafkaErrorCode.notController.rawValue))
        }
        box.with { $0.elections.append((context.apiVersion, request)) }
        let wanted = request.topicPartitions ?? [.init(topic: "t", partitions: [0, 1])]
        return .respond(ElectLeadersResponse(replicaElectionResults: wanted.map { t in
            .init(topic: t.topic, partitionResult: t.partitions.map {
                $0 == 0 ? .init(partitionId: 0, errorCode: 0, errorMessage: nil)
                    : .init(partitionId: $0, errorCode: KafkaErrorCode.electionNotNeeded.rawValue, errorMessage: "leader is preferred")
            })
        }))
    }
}

struct ScriptedAlterReassignments: APIHandler {
    let box: ScriptedCluster.Box
    var versions: ClosedRange<Int16> { 0...0 }
    func handle(_ request: AlterPartitionReassignmentsRequest, context: RequestContext) -> HandlerOutcome<AlterPartitionReassignmentsResponse> {
        if box.with({ ScriptedCluster.refuseAsNotController(&$0) }) {
            return .respond(AlterPartitionReassignmentsResponse(errorCode: KafkaErrorCode.notController.rawValue, errorMessage: "not me"))
        }
        box.with { $0.reassignments.append(request) }
        return .respond(AlterPartitionReassignmentsResponse(errorCode: 0, errorMessage: nil, responses: request.topics.map { t in
            .init(name: t.name, partitions: t.partitions.map {
                $0.replicas == nil ? .init(partitionIndex: $0.partitionIndex, errorCode: KafkaErrorCode.noReassignmentInProgress.rawValue, errorMessage: nil)
                    : .init(partitionIndex: $0.partitionIndex, errorCode: 0, errorMessage: nil)
            })
        }))
    }
}

struct ScriptedListReassignments: APIHandler {
    let box: ScriptedCluster.Box
    var versions: ClosedRange<Int16> { 0...0 }
    func handle(_ request: ListPartitionReassignmentsRequest, context: RequestContext) -> HandlerOutcome<ListPartitionReassignmentsResponse> {
        box.with { $0.listings.append(request) }
        return .respond(ListPartitionReassignmentsResponse(errorCode: 0, errorMessage: nil, topics: [
            .init(name: "t", partitions: [.init(partitionIndex: 1, replicas: [1, 2, 3], addingReplicas: [3], removingReplicas: [1])]),
        ]))
    }
}

struct ScriptedDescribeLogDirs: APIHandler {
    var versions: ClosedRange<Int16> { 0...4 }
    func handle(_ request: DescribeLogDirsRequest, context: RequestContext) -> HandlerOutcome<DescribeLogDirsResponse> {
        .respond(DescribeLogDirsResponse(results: [
            .init(errorCode: 0, logDir: "/data/a", topics: [.init(name: "t", partitions: [.init(partitionIndex: 0, partitionSize: 100, offsetLag: 2, isFutureKey: false)])],
                  totalBytes: 1000, usableBytes: 400),
            .init(errorCode: KafkaErrorCode.kafkaStorageError.rawValue, logDir: "/data/b", topics: [], totalBytes: -1, usableBytes: -1),
        ]))
    }
}

@Suite(.serialized) struct ClusterAdminTests {
    static func withFake(describeCluster: Bool = true, _ body: (ScriptedCluster, KafkaAdmin) async throws -> Void) async throws {
        let fake = try await ScriptedCluster.start(describeCluster: describeCluster)
        let admin = KafkaAdmin(configuration: ClientConfiguration(bootstrapServers: [fake.bootstrap], clientId: "cluster-admin-test"))
        do {
            try await body(fake, admin)
        } catch {
            await admin.close()
            await fake.stop()
            throw error
        }
        await admin.close()
        await fake.stop()
    }

    @Test func describeClusterUsesDescribeClusterAndFallsBackToMetadata() async throws {
        try await Self.withFake { fake, admin in
            let c = try await admin.describeCluster()
            #expect(c.clusterId == "fake-cluster-dc" && c.controllerId == 1)
            #expect(c.brokers.map(\.id) == [2] && c.brokers[0].rack == "r2")
        }
        try await Self.withFake(describeCluster: false) { fake, admin in
            let c = try await admin.describeCluster()
            #expect(c.clusterId == "fake-cluster" && c.controllerId == 1)
            #expect(c.brokers.map(\.id) == [1, 2] && c.brokers.map(\.rack) == ["r1", "r2"])
        }
    }

    @Test func electLeadersGroupsPartitionsByTopicAndReportsEachResult() async throws {
        try await Self.withFake { fake, admin in
            let results = try await admin.electLeaders(type: .unclean, partitions: [TopicPartition("t", 1), TopicPartition("t", 0), TopicPartition("u", 0)])
            #expect(results.map(\.topicPartition) == [TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("u", 0)])
            #expect(results.map(\.error) == [.none, .electionNotNeeded, .none])
            #expect(results[1].errorMessage == "leader is preferred")
            let sent = try #require(fake.state.withLock { $0.elections.last })
            #expect(sent.version == 2 && sent.request.electionType == 1)
            #expect(sent.request.topicPartitions?.map(\.topic) == ["t", "u"] && sent.request.topicPartitions?[0].partitions == [0, 1])

            // nil: every partition (a null list on the wire).
            let all = try await admin.electLeaders()
            #expect(all.map(\.topicPartition) == [TopicPartition("t", 0), TopicPartition("t", 1)])
            #expect(fake.state.withLock { $0.elections.last?.request.topicPartitions == nil && $0.elections.last?.request.electionType == 0 })
        }
    }

    @Test func controllerRequestsFollowAMovingController() async throws {
        try await Self.withFake { fake, admin in
            fake.state.withLock { $0.notControllerAnswers = 2 }
            let results = try await admin.electLeaders(partitions: [TopicPartition("t", 0)])
            #expect(results.map(\.error) == [.none])
            #expect(fake.state.withLock { $0.notControllerAnswers == 0 && $0.controllerId == 2 && $0.elections.count == 1 })

            // More refusals than the client's attempts: the error comes through.
            fake.state.withLock { $0.notControllerAnswers = 100 }
            await #expect(throws: KafkaClientError.self) { _ = try await admin.alterPartitionReassignments([TopicPartition("t", 0): [1, 2]]) }
            #expect(fake.state.withLock { $0.reassignments.isEmpty })
        }
    }

    @Test func reassignmentsAreSentAndListed() async throws {
        try await Self.withFake { fake, admin in
            let results = try await admin.alterPartitionReassignments([TopicPartition("t", 1): nil, TopicPartition("t", 0): [2, 1, 3]])
            #expect(results.map(\.topicPartition) == [TopicPartition("t", 0), TopicPartition("t", 1)])
            #expect(results.map(\.error) == [.none, .noReassignmentInProgress])
            let sent = try #require(fake.state.withLock { $0.reassignments.last })
            #expect(sent.topics.map(\.name) == ["t"])
            #expect(sent.topics[0].partitions.map(\.partitionIndex) == [0, 1])
            #expect(sent.topics[0].partitions.map(\.replicas) == [[2, 1, 3], nil])

            let moves = try await admin.listPartitionReassignments()
            #expect(moves == [TopicPartition("t", 1): PartitionReassignment(replicas: [1, 2, 3], addingReplicas: [3], removingReplicas: [1])])
            #expect(fake.state.withLock { $0.listings.count == 1 && $0.listings[0].topics == nil })
            _ = try await admin.listPartitionReassignments([TopicPartition("t", 1), TopicPartition("t", 0)])
            #expect(fake.state.withLock { $0.listings.count == 2 && $0.listings[1].topics?.map(\.partitionIndexes) == [[0, 1]] })
        }
    }

    @Test func logDirsOfEveryBroker() async throws {
        try await Self.withFake { fake, admin in
            let dirs = try await admin.describeLogDirs()
            #expect(dirs.keys.sorted() == [1, 2])
            let a = try #require(dirs[1]?.first)
            #expect(a.path == "/data/a" && a.error == .none && a.totalBytes == 1000 && a.usableBytes == 400)
            #expect(a.replicas == [TopicPartition("t", 0): .init(size: 100, offsetLag: 2, isFuture: false)])
            #expect(dirs[1]?.last?.error == .kafkaStorageError)
            #expect(try await admin.describeLogDirs(brokers: [2]).keys.sorted() == [2])
        }
    }
}
