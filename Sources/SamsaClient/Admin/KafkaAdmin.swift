import KafkaProtocol
import KafkaWire
import NIOCore

public struct TopicDescription: Sendable, Equatable {
    public var name: String
    public var topicId: KafkaUUID
    public var isInternal: Bool
    public var partitions: [ClusterMetadata.Partition]
}

public struct ConfigEntry: Sendable, Equatable {
    public enum Source: Int8, Sendable {
        case unknown = 0, dynamicTopic = 1, dynamicBroker = 2, dynamicDefaultBroker = 3, staticBroker = 4, defaultConfig = 5, dynamicBrokerLogger = 6
    }
    public var name: String
    public var value: String?
    public var source: Source
    public var isReadOnly: Bool
    public var isSensitive: Bool
    public var documentation: String?
}

public struct GroupListing: Sendable, Equatable {
    public var groupId: String
    public var protocolType: String
    public var state: String
}

public struct GroupMemberDescription: Sendable, Equatable {
    public var memberId: String
    public var groupInstanceId: String?
    public var clientId: String
    public var clientHost: String
    public var assignment: [TopicPartition]
}

public struct GroupDescription: Sendable, Equatable {
    public var groupId: String
    public var state: String
    public var protocolType: String
    public var protocolName: String
    public var members: [GroupMemberDescription]
}

public struct ClusterDescription: Sendable, Equatable {
    public var clusterId: String
    public var controllerId: Int32
    public var brokers: [ClusterMetadata.Broker]
}

/// Which offset ListOffsets should return.
public enum OffsetSpec: Sendable, Equatable {
    case earliest, latest, maxTimestamp
    case timestamp(Int64)

    var wire: Int64 {
        switch self {
        case .earliest: return -2
        case .latest: return -1
        case .maxTimestamp: return -3
        case let .timestamp(t): return t
        }
    }
}

/// Topics, configs, groups and cluster administration.
public final class KafkaAdmin: Sendable {
    let cluster: ClusterClient

    public init(configuration: ClientConfiguration) {
        cluster = ClusterClient(config: configuration)
    }

    public func close() async { await cluster.close() }

    /// Admin requests go to the controller when known, else to any broker.
    private func controller() async throws -> BrokerConnection {
        let m = try await cluster.refreshMetadata(topics: [])
        if m.controllerId >= 0, let c = try? await cluster.connection(to: m.controllerId) { return c }
        return try await cluster.anyConnection()
    }

    // MARK: Topics

    public func createTopic(_ name: String, partitions: Int32 = -1, replicationFactor: Int16 = -1, configs: [String: String] = [:],
                            validateOnly: Bool = false) async throws {
        let c = try await controller()
        let request = CreateTopicsRequest(topics: [.init(name: name, numPartitions: partitions, replicationFactor: replicationFactor,
                                                         configs: configs.sorted { $0.key < $1.key }.map { .init(name: $0.key, value: $0.value) })],
                                          timeoutMs: 30_000, validateOnly: validateOnly)
        let response = try await c.send(request, range: 2...7)
        for t in response.topics { try KafkaClientError.check(t.errorCode, message: t.errorMessage, broker: c.nodeId) }
    }

    public func deleteTopics(_ names: [String]) async throws {
        let c = try await controller()
        let version = try c.version(.deleteTopics, 1...6)
        var request = DeleteTopicsRequest(timeoutMs: 30_000)
        if version >= 6 { request.topics = names.map { .init(name: $0) } } else { request.topicNames = names }
        let response = try await c.send(request, version: version)
        for r in response.responses { try KafkaClientError.check(r.errorCode, message: r.errorMessage ?? r.name.map { "topic \($0)" }, broker: c.nodeId) }
    }

    public func listTopics(includeInternal: Bool = false) async throws -> [String] {
        let m = try await cluster.refreshMetadata(topics: nil)
        return m.topics.values.filter { includeInternal || !$0.isInternal }.map(\.name).sorted()
    }

    public func describeTopics(_ names: [String]) async throws -> [TopicDescription] {
        let m = try await cluster.refreshMetadata(topics: names)
        return try names.map { name in
            guard let t = m.topics[name] else {
                throw KafkaClientError.broker(code: .unknownTopicOrPartition, message: "topic \(name) does not exist", broker: nil, topicPartition: nil)
            }
            return TopicDescription(name: name, topicId: t.topicId, isInternal: t.isInternal, partitions: t.partitions)
        }
    }

    public func createPartitions(_ topic: String, totalCount: Int32) async throws {
        let c = try await controller()
        let response = try await c.send(CreatePartitionsRequest(topics: [.init(name: topic, count: totalCount)], timeoutMs: 30_000), range: 0...3)
        for r in response.results { try KafkaClientError.check(r.errorCode, message: r.errorMessage, broker: c.nodeId) }
    }

    // MARK: Configs

    public func describeTopicConfigs(_ topic: String) async throws -> [ConfigEntry] {
        try await describeConfigs(resourceType: 2, name: topic)
    }

    public func describeBrokerConfigs(_ broker: Int32) async throws -> [ConfigEntry] {
        try await describeConfigs(resourceType: 4, name: String(broker))
    }

    private func describeConfigs(resourceType: Int8, name: String) async throws -> [ConfigEntry] {
        let c = resourceType == 4 ? try await cluster.connection(to: Int32(name) ?? 0) : try await cluster.anyConnection()
        let response = try await c.send(DescribeConfigsRequest(resources: [.init(resourceType: resourceType, resourceName: name)],
                                                               includeSynonyms: false, includeDocumentation: true), range: 1...4)
        guard let r = response.results.first else { throw KafkaClientError.malformedResponse("DescribeConfigs without result") }
        try KafkaClientError.check(r.errorCode, message: r.errorMessage, broker: c.nodeId)
        return r.configs.map {
            ConfigEntry(name: $0.name, value: $0.value, source: ConfigEntry.Source(rawValue: $0.configSource) ?? .unknown,
                        isReadOnly: $0.readOnly, isSensitive: $0.isSensitive, documentation: $0.documentation)
        }
    }

    /// Sets and removes topic config overrides (IncrementalAlterConfigs).
    public func alterTopicConfigs(_ topic: String, set: [String: String] = [:], delete: [String] = []) async throws {
        let c = try await cluster.anyConnection()
        var configs: [IncrementalAlterConfigsRequest.AlterableConfig] = set.sorted { $0.key < $1.key }.map { .init(name: $0.key, configOperation: 0, value: $0.value) }
        configs += delete.map { .init(name: $0, configOperation: 1, value: nil) }
        let response = try await c.send(IncrementalAlterConfigsRequest(resources: [.init(resourceType: 2, resourceName: topic, configs: configs)]), range: 0...1)
        for r in response.responses { try KafkaClientError.check(r.errorCode, message: r.errorMessage, broker: c.nodeId) }
    }

    // MARK: Cluster and offsets

    // describeCluster(), electLeaders, partition reassignments and log dirs: KafkaAdmin+Cluster.swift.

    /// Offsets per partition for `spec` (earliest, latest = high watermark, by timestamp).
    public func listOffsets(_ partitions: [TopicPartition], spec: OffsetSpec) async throws -> [TopicPartition: Int64] {
        _ = try await cluster.refreshMetadata(topics: Array(Set(partitions.map(\.topic))))
        return try await cluster.listOffsets(Dictionary(uniqueKeysWithValues: partitions.map { ($0, spec.wire) }))
    }

    /// All partitions of `topics`.
    public func partitions(of topics: [String]) async throws -> [TopicPartition] {
        try await describeTopics(topics).flatMap { t in t.partitions.map { TopicPartition(t.name, $0.partition) } }
    }

    // MARK: Groups

    public func listGroups() async throws -> [GroupListing] {
        let m = try await cluster.refreshMetadata(topics: [])
        var result: [GroupListing] = []
        for id in m.brokers.keys.sorted() {
            let c = try await cluster.connection(to: id)
            let response = try await c.send(ListGroupsRequest(), range: 0...5)
            try KafkaClientError.check(response.errorCode, broker: id)
            result += response.groups.map { GroupListing(groupId: $0.groupId, protocolType: $0.protocolType, state: $0.groupState) }
        }
        return result.sorted { $0.groupId < $1.groupId }
    }

    public func describeGroups(_ groupIds: [String]) async throws -> [GroupDescription] {
        var result: [GroupDescription] = []
        for id in groupIds {
            let c = try await cluster.coordinator(for: id)
            let response = try await c.send(DescribeGroupsRequest(groups: [id]), range: 0...5)
            for g in response.groups {
                try KafkaClientError.check(g.errorCode, message: "group \(g.groupId)", broker: c.nodeId)
                result.append(GroupDescription(groupId: g.groupId, state: g.groupState, protocolType: g.protocolType, protocolName: g.protocolData,
                                               members: g.members.map {
                    GroupMemberDescription(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, clientId: $0.clientId, clientHost: $0.clientHost,
                                           assignment: g.protocolType == "consumer" ? ((try? ConsumerProtocol.decodeAssignment($0.memberAssignment)) ?? []) : [])
                }))
            }
        }
        return result
    }

    /// A group's committed offsets (all partitions it has committed for).
    public func listGroupOffsets(_ groupId: String) async throws -> [TopicPartition: Int64] {
        let c = try await cluster.coordinator(for: groupId)
        let version = try c.version(.offsetFetch, 1...9)
        var request = OffsetFetchRequest()
        if version >= 8 { request.groups = [.init(groupId: groupId, topics: nil)] } else { request.groupId = groupId; request.topics = nil }
        if version < 2 { throw KafkaClientError.unsupportedVersion(api: "OffsetFetch (all partitions)", broker: c.address) }
        let response = try await c.send(request, version: version)
        var result: [TopicPartition: Int64] = [:]
        if version >= 8 {
            for g in response.groups {
                try KafkaClientError.check(g.errorCode, broker: c.nodeId)
                for t in g.topics { for p in t.partitions where p.committedOffset >= 0 { result[TopicPartition(t.name, p.partitionIndex)] = p.committedOffset } }
            }
        } else {
            try KafkaClientError.check(response.errorCode, broker: c.nodeId)
            for t in response.topics { for p in t.partitions where p.committedOffset >= 0 { result[TopicPartition(t.name, p.partitionIndex)] = p.committedOffset } }
        }
        return result
    }

    /// Sets a group's committed offsets; the group must have no active members (as in Kafka's tool).
    public func alterGroupOffsets(_ groupId: String, _ offsets: [TopicPartition: Int64]) async throws {
        let c = try await cluster.coordinator(for: groupId)
        var request = OffsetCommitRequest(groupId: groupId, generationIdOrMemberEpoch: -1, memberId: "")
        let byTopic = Dictionary(grouping: offsets.keys, by: \.topic)
        request.topics = byTopic.keys.sorted().map { t in
            .init(name: t, partitions: byTopic[t]!.sorted().map { .init(partitionIndex: $0.partition, committedOffset: offsets[$0]!, committedMetadata: "") })
        }
        let response = try await c.send(request, range: 2...9)
        for t in response.topics {
            for p in t.partitions { try KafkaClientError.check(p.errorCode, broker: c.nodeId, TopicPartition(t.name, p.partitionIndex)) }
        }
    }

    public func deleteGroups(_ groupIds: [String]) async throws {
        for id in groupIds {
            let c = try await cluster.coordinator(for: id)
            let response = try await c.send(DeleteGroupsRequest(groupsNames: [id]), range: 0...2)
            for r in response.results { try KafkaClientError.check(r.errorCode, message: "group \(r.groupId)", broker: c.nodeId) }
        }
    }
}
