import KafkaProtocol
import KafkaWire

/// Which leader ElectLeaders should elect (KIP-460).
public enum ElectionType: Int8, Sendable, CaseIterable {
    /// The first replica of the assignment, when it is in the ISR.
    case preferred = 0
    /// Any live replica, even one out of the ISR (may lose acknowledged records).
    case unclean = 1
}

/// The outcome for one partition of a cluster operation (ElectLeaders, AlterPartitionReassignments):
/// `.none` when it succeeded.
public struct PartitionResult: Sendable, Equatable {
    public var topicPartition: TopicPartition
    public var error: KafkaErrorCode
    public var errorMessage: String?

    public init(topicPartition: TopicPartition, error: KafkaErrorCode, errorMessage: String? = nil) {
        self.topicPartition = topicPartition
        self.error = error
        self.errorMessage = errorMessage
    }
}

/// A partition reassignment in progress (ListPartitionReassignments).
public struct PartitionReassignment: Sendable, Equatable {
    /// The full replica set while moving: the target plus the replicas being removed.
    public var replicas: [Int32]
    public var addingReplicas: [Int32]
    public var removingReplicas: [Int32]

    public init(replicas: [Int32], addingReplicas: [Int32], removingReplicas: [Int32]) {
        self.replicas = replicas
        self.addingReplicas = addingReplicas
        self.removingReplicas = removingReplicas
    }
}

/// One log directory of a broker (DescribeLogDirs).
public struct LogDirDescription: Sendable, Equatable {
    public struct Replica: Sendable, Equatable {
        public var size: Int64
        /// How far the log end is beyond the high watermark (leader) or behind the leader (follower).
        public var offsetLag: Int64
        /// A replica being moved into this directory (AlterReplicaLogDirs).
        public var isFuture: Bool

        public init(size: Int64, offsetLag: Int64, isFuture: Bool) {
            self.size = size
            self.offsetLag = offsetLag
            self.isFuture = isFuture
        }
    }
    public var path: String
    /// `.none`, or KAFKA_STORAGE_ERROR for an offline directory.
    public var error: KafkaErrorCode
    public var replicas: [TopicPartition: Replica]
    /// The volume's size and free space (-1 when the broker does not say: before v4).
    public var totalBytes: Int64
    public var usableBytes: Int64

    public init(path: String, error: KafkaErrorCode, replicas: [TopicPartition: Replica], totalBytes: Int64, usableBytes: Int64) {
        self.path = path
        self.error = error
        self.replicas = replicas
        self.totalBytes = totalBytes
        self.usableBytes = usableBytes
    }
}

extension KafkaAdmin {
    // MARK: Cluster

    /// The cluster id, the controller and the live brokers: DescribeCluster, or Metadata when the
    /// broker does not serve it.
    public func describeCluster() async throws -> ClusterDescription {
        let c = try await cluster.anyConnection()
        guard let version = try? c.version(.describeCluster, 0...1) else {
            let m = try await cluster.refreshMetadata(topics: [])
            return ClusterDescription(clusterId: m.clusterId ?? "", controllerId: m.controllerId, brokers: m.brokers.values.sorted { $0.id < $1.id })
        }
        let response = try await c.send(DescribeClusterRequest(includeClusterAuthorizedOperations: false, endpointType: 1), version: version)
        try KafkaClientError.check(response.errorCode, message: response.errorMessage, broker: c.nodeId)
        return ClusterDescription(clusterId: response.clusterId, controllerId: response.controllerId,
                                  brokers: response.brokers.map { .init(id: $0.brokerId, host: $0.host, port: Int($0.port), rack: $0.rack) }
                                      .sorted { $0.id < $1.id })
    }

    /// Runs `body` against the controller (as Metadata reports it), again after a fresh look-up
    /// when the broker answers NOT_CONTROLLER or the connection fails (a controller moving).
    private func onController<T>(_ body: (BrokerConnection) async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let m = try await cluster.refreshMetadata(topics: [])
                guard m.controllerId >= 0 else {
                    throw KafkaClientError.broker(code: .notController, message: "no controller is known", broker: nil, topicPartition: nil)
                }
                return try await body(try await cluster.connection(to: m.controllerId))
            } catch let e as KafkaClientError {
                let moving: Bool
                switch e {
                case let .broker(code, _, _, _): moving = code == .notController || code == .brokerNotAvailable
                case .connectionFailed, .connectionClosed: moving = true
                default: moving = false
                }
                guard moving, attempt < 5 else { throw e }
                try await Task.sleep(nanoseconds: UInt64(attempt) * 200_000_000)
            }
        }
    }

    /// Elects leaders (ElectLeaders, sent to the controller) for `partitions`, or for every
    /// partition when nil; one result per partition. ELECTION_NOT_NEEDED means the wanted leader
    /// already leads; a request-level error is thrown.
    public func electLeaders(type: ElectionType = .preferred, partitions: [TopicPartition]? = nil, timeoutMs: Int32 = 30_000) async throws -> [PartitionResult] {
        try await onController { c in
            // v0 knows only preferred elections.
            let version = try c.version(.electLeaders, type == .preferred ? 0...2 : 1...2)
            let byTopic = partitions.map { Dictionary(grouping: $0, by: \.topic) }
            let request = ElectLeadersRequest(electionType: type.rawValue,
                                              topicPartitions: byTopic.map { groups in
                                                  groups.keys.sorted().map { .init(topic: $0, partitions: groups[$0]!.map(\.partition).sorted()) }
                                              },
                                              timeoutMs: timeoutMs)
            let response = try await c.send(request, version: version)
            try KafkaClientError.check(response.errorCode, broker: c.nodeId)
            return response.replicaElectionResults.flatMap { t in
                t.partitionResult.map {
                    PartitionResult(topicPartition: TopicPartition(t.topic, $0.partitionId), error: KafkaErrorCode(rawValue: $0.errorCode),
                                    errorMessage: $0.errorMessage)
                }
            }.sorted { $0.topicPartition < $1.topicPartition }
        }
    }

    /// Starts moving partitions to new replica sets (the first replica is the preferred leader), or
    /// cancels a move in progress with nil (AlterPartitionReassignments, sent to the controller).
    /// One result per partition; a request-level error is thrown.
    public func alterPartitionReassignments(_ reassignments: [TopicPartition: [Int32]?], timeoutMs: Int32 = 30_000) async throws -> [PartitionResult] {
        try await onController { c in
            let byTopic = Dictionary(grouping: reassignments.keys, by: \.topic)
            let request = AlterPartitionReassignmentsRequest(timeoutMs: timeoutMs, topics: byTopic.keys.sorted().map { topic in
                .init(name: topic, partitions: byTopic[topic]!.sorted().map { .init(partitionIndex: $0.partition, replicas: reassignments[$0]!) })
            })
            let response = try await c.send(request, range: 0...0)
            try KafkaClientError.check(response.errorCode, message: response.errorMessage, broker: c.nodeId)
            return response.responses.flatMap { t in
                t.partitions.map {
                    PartitionResult(topicPartition: TopicPartition(t.name, $0.partitionIndex), error: KafkaErrorCode(rawValue: $0.errorCode),
                                    errorMessage: $0.errorMessage)
                }
            }.sorted { $0.topicPartition < $1.topicPartition }
        }
    }

    /// Reassignments in progress (ListPartitionReassignments, sent to the controller), for
    /// `partitions` or all of them when nil.
    public func listPartitionReassignments(_ partitions: [TopicPartition]? = nil, timeoutMs: Int32 = 30_000) async throws -> [TopicPartition: PartitionReassignment] {
        try await onController { c in
            let byTopic = partitions.map { Dictionary(grouping: $0, by: \.topic) }
            let request = ListPartitionReassignmentsRequest(timeoutMs: timeoutMs, topics: byTopic.map { groups in
                groups.keys.sorted().map { .init(name: $0, partitionIndexes: groups[$0]!.map(\.partition).sorted()) }
            })
            let response = try await c.send(request, range: 0...0)
            try KafkaClientError.check(response.errorCode, message: response.errorMessage, broker: c.nodeId)
            var result: [TopicPartition: PartitionReassignment] = [:]
            for t in response.topics {
                for p in t.partitions {
                    result[TopicPartition(t.name, p.partitionIndex)] = PartitionReassignment(replicas: p.replicas, addingReplicas: p.addingReplicas,
                                                                                            removingReplicas: p.removingReplicas)
                }
            }
            return result
        }
    }

    /// The log directories of each broker in `brokers` (all live brokers when nil) with the
    /// replicas each holds (DescribeLogDirs, sent to each broker).
    public func describeLogDirs(brokers: [Int32]? = nil) async throws -> [Int32: [LogDirDescription]] {
        let m = try await cluster.refreshMetadata(topics: [])
        var result: [Int32: [LogDirDescription]] = [:]
        for id in brokers ?? m.brokers.keys.sorted() {
            let c = try await cluster.connection(to: id)
            let version = try c.version(.describeLogDirs, 1...4)
            let response = try await c.send(DescribeLogDirsRequest(topics: nil), version: version)
            try KafkaClientError.check(response.errorCode, broker: id)
            result[id] = response.results.map { dir in
                var replicas: [TopicPartition: LogDirDescription.Replica] = [:]
                for t in dir.topics {
                    for p in t.partitions {
                        replicas[TopicPartition(t.name, p.partitionIndex)] = .init(size: p.partitionSize, offsetLag: p.offsetLag, isFuture: p.isFutureKey)
                    }
                }
                return LogDirDescription(path: dir.logDir, error: KafkaErrorCode(rawValue: dir.errorCode), replicas: replicas,
                                         totalBytes: version >= 4 ? dir.totalBytes : -1, usableBytes: version >= 4 ? dir.usableBytes : -1)
            }
        }
        return result
    }
}
