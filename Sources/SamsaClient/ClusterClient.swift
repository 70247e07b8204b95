#if canImport(Glibc)
import Glibc
#endif
import KafkaProtocol
import KafkaWire
import NIOCore
import Synchronization

/// What the client knows of the cluster.
public struct ClusterMetadata: Sendable {
    public struct Broker: Sendable, Equatable {
        public var id: Int32
        public var host: String
        public var port: Int
        public var rack: String?
    }

    public struct Partition: Sendable, Equatable {
        public var partition: Int32
        public var leader: Int32
        public var leaderEpoch: Int32
        public var replicas: [Int32]
        public var isr: [Int32]
        public var errorCode: Int16
    }

    public struct Topic: Sendable, Equatable {
        public var name: String
        public var topicId: KafkaUUID
        public var isInternal: Bool
        public var partitions: [Partition]
        public var errorCode: Int16
    }

    public var clusterId: String?
    public var controllerId: Int32 = -1
    public var brokers: [Int32: Broker] = [:]
    public var topics: [String: Topic] = [:]
}

/// Connections, metadata and coordinators: the part every client shares.
final class ClusterClient: Sendable {
    let config: ClientConfiguration
    private struct State: Sendable {
        var metadata = ClusterMetadata()
        var metadataUpdatedAt: Int64 = 0
        var connections: [Int32: Task<BrokerConnection, any Error>] = [:]
        var bootstrap: Task<BrokerConnection, any Error>?
        var coordinators: [String: Int32] = [:]
        var closed = false
    }

    private let state = Mutex(State())

    init(config: ClientConfiguration) {
        self.config = config
    }

    var metadata: ClusterMetadata { state.withLock { $0.metadata } }

    /// A connection to `nodeId`, opened if needed (concurrent callers share one attempt).
    func connection(to nodeId: Int32) async throws -> BrokerConnection {
        let task = try state.withLock { s -> Task<BrokerConnection, any Error> in
            guard !s.closed else { throw KafkaClientError.closed }
            if let existing = s.connections[nodeId] { return existing }
            guard let broker = s.metadata.brokers[nodeId] else {
                throw KafkaClientError.broker(code: .brokerNotAvailable, message: "broker \(nodeId) is not in the metadata", broker: nodeId, topicPartition: nil)
            }
            let config = self.config
            let t = Task {
                try await BrokerConnection.connect(host: broker.host, port: broker.port, nodeId: nodeId, clientId: config.clientId,
                                                   group: config.eventLoopGroup, timeoutMs: config.connectTimeoutMs)
            }
            s.connections[nodeId] = t
            return t
        }
        do {
            let connection = try await task.value
            if connection.isActive { return connection }
            forget(nodeId, task)
            return try await self.connection(to: nodeId)
        } catch {
            forget(nodeId, task)
            throw error
        }
    }

    private func forget(_ nodeId: Int32, _ task: Task<BrokerConnection, any Error>) {
        state.withLock { s in
            if let current = s.connections[nodeId], current == task { s.connections.removeValue(forKey: nodeId) }
        }
    }

    /// Any live connection: a known broker, else a bootstrap server.
    func anyConnection() async throws -> BrokerConnection {
        let known = state.withLock { Array($0.metadata.brokers.keys) }
        for id in known.shuffled() {
            if let c = try? await connection(to: id) { return c }
        }
        return try await bootstrapConnection()
    }

    private func bootstrapConnection() async throws -> BrokerConnection {
        let task = try state.withLock { s -> Task<BrokerConnection, any Error> in
            guard !s.closed else { throw KafkaClientError.closed }
            if let t = s.bootstrap { return t }
            let config = self.config
            let servers = try config.parsedBootstrap()
            let t = Task { () throws -> BrokerConnection in
                var lastError = ""
                for server in servers {
                    do {
                        return try await BrokerConnection.connect(host: server.host, port: server.port, nodeId: -1, clientId: config.clientId,
                                                                  group: config.eventLoopGroup, timeoutMs: config.connectTimeoutMs)
                    } catch KafkaClientError.connectionFailed(_, let reason) {
                        lastError = reason
                    } catch {
                        lastError = "\(error)"
                    }
                }
                throw KafkaClientError.connectionFailed(servers: config.bootstrapServers, reason: lastError)
            }
            s.bootstrap = t
            return t
        }
        do {
            let c = try await task.value
            if c.isActive { return c }
            state.withLock { if $0.bootstrap == task { $0.bootstrap = nil } }
            return try await bootstrapConnection()
        } catch {
            state.withLock { if $0.bootstrap == task { $0.bootstrap = nil } }
            throw error
        }
    }

    /// Fetches metadata for `topics` (all topics when nil) and merges it in.
    @discardableResult
    func refreshMetadata(topics: [String]?, allowAutoCreate: Bool = false) async throws -> ClusterMetadata {
        let connection = try await anyConnection()
        var request = MetadataRequest(topics: topics.map { $0.map { .init(name: $0) } }, allowAutoTopicCreation: allowAutoCreate)
        request.includeTopicAuthorizedOperations = false
        let response = try await connection.send(request, range: 1...12)
        return state.withLock { s in
            var m = s.metadata
            m.clusterId = response.clusterId
            m.controllerId = response.controllerId
            m.brokers = Dictionary(uniqueKeysWithValues: response.brokers.map {
                ($0.nodeId, ClusterMetadata.Broker(id: $0.nodeId, host: $0.host, port: Int($0.port), rack: $0.rack))
            })
            if topics == nil { m.topics = [:] }
            for t in response.topics {
                guard let name = t.name else { continue }
                if t.errorCode != 0 && t.partitions.isEmpty {
                    m.topics.removeValue(forKey: name)
                    continue
                }
                m.topics[name] = ClusterMetadata.Topic(
                    name: name, topicId: t.topicId, isInternal: t.isInternal,
                    partitions: t.partitions.sorted { $0.partitionIndex < $1.partitionIndex }.map {
                        .init(partition: $0.partitionIndex, leader: $0.leaderId, leaderEpoch: $0.leaderEpoch, replicas: $0.replicaNodes,
                              isr: $0.isrNodes, errorCode: $0.errorCode)
                    },
                    errorCode: t.errorCode)
            }
            // Connections to brokers that left are closed.
            for (id, task) in s.connections where m.brokers[id] == nil {
                s.connections.removeValue(forKey: id)
                Task { try? await task.value.close() }
            }
            s.metadata = m
            s.metadataUpdatedAt = currentTimeMillis()
            return m
        }
    }

    /// Metadata for `topic`, refreshed when unknown; throws the topic's error when it has one.
    func topic(_ name: String, allowAutoCreate: Bool = false) async throws -> ClusterMetadata.Topic {
        if let t = state.withLock({ $0.metadata.topics[name] }), !t.partitions.isEmpty { return t }
        var lastError: (any Error)?
        for attempt in 0..<10 {
            do {
                let m = try await refreshMetadata(topics: [name], allowAutoCreate: allowAutoCreate)
                if let t = m.topics[name], !t.partitions.isEmpty, t.partitions.allSatisfy({ $0.leader >= 0 }) { return t }
                lastError = KafkaClientError.broker(code: .unknownTopicOrPartition, message: "topic \(name) does not exist", broker: nil, topicPartition: nil)
                if !allowAutoCreate && attempt >= 1 { break }
            } catch let e as KafkaClientError where !e.isRetriable {
                throw e
            } catch {
                lastError = error
            }
            try await Task.sleep(nanoseconds: UInt64(config.retryBackoffMs) * 1_000_000 * UInt64(attempt + 1))
        }
        throw lastError!
    }

    func cachedTopic(_ name: String) -> ClusterMetadata.Topic? { state.withLock { $0.metadata.topics[name] } }

    func leader(of tp: TopicPartition) -> Int32? {
        state.withLock { s in
            guard let t = s.metadata.topics[tp.topic], Int(tp.partition) < t.partitions.count else { return nil }
            let leader = t.partitions[Int(tp.partition)].leader
            return leader >= 0 ? leader : nil
        }
    }

    /// The coordinator of a group (or transactional id with `keyType` 1).
    func coordinator(for key: String, keyType: Int8 = 0, refresh: Bool = false) async throws -> BrokerConnection {
        if !refresh, let id = state.withLock({ $0.coordinators["\(keyType)/\(key)"] }), let c = try? await connection(to: id) { return c }
        var lastError: (any Error)?
        for attempt in 0..<20 {
            do {
                let connection = try await anyConnection()
                let version = try connection.version(.findCoordinator, 0...6)
                var request = FindCoordinatorRequest(key: key, keyType: keyType)
                if version >= 4 { request.coordinatorKeys = [key] }
                let response = try await connection.send(request, version: version)
                let (code, message, nodeId, host, port) = version >= 4
                    ? response.coordinators.first.map { ($0.errorCode, $0.errorMessage, $0.nodeId, $0.host, $0.port) } ?? (KafkaErrorCode.coordinatorNotAvailable.rawValue, nil, -1, "", -1)
                    : (response.errorCode, response.errorMessage, response.nodeId, response.host, response.port)
                try KafkaClientError.check(code, message: message)
                state.withLock { s in
                    if s.metadata.brokers[nodeId] == nil { s.metadata.brokers[nodeId] = .init(id: nodeId, host: host, port: Int(port)) }
                    s.coordinators["\(keyType)/\(key)"] = nodeId
                }
                return try await self.connection(to: nodeId)
            } catch let e as KafkaClientError where !e.isRetriable {
                throw e
            } catch let e as KafkaClientError {
                // Nothing reachable at all: waiting will not find a coordinator.
                if case .connectionFailed = e { throw e }
                lastError = e
                try await Task.sleep(nanoseconds: UInt64(config.retryBackoffMs) * 1_000_000 * UInt64(min(attempt + 1, 10)))
            } catch {
                lastError = error
                try await Task.sleep(nanoseconds: UInt64(config.retryBackoffMs) * 1_000_000 * UInt64(min(attempt + 1, 10)))
            }
        }
        throw lastError!
    }

    /// ListOffsets on each partition's leader: `wanted` maps partitions to a timestamp or to -1
    /// (latest) / -2 (earliest) / -3 (max timestamp); answers the offsets.
    func listOffsets(_ wanted: [TopicPartition: Int64], isolationLevel: Int8 = 0) async throws -> [TopicPartition: Int64] {
        var byLeader: [Int32: [TopicPartition]] = [:]
        for tp in wanted.keys {
            if leader(of: tp) == nil { _ = try await topic(tp.topic) }
            guard let leader = leader(of: tp) else {
                throw KafkaClientError.broker(code: .leaderNotAvailable, message: nil, broker: nil, topicPartition: tp)
            }
            byLeader[leader, default: []].append(tp)
        }
        var result: [TopicPartition: Int64] = [:]
        for (leader, tps) in byLeader {
            let connection = try await connection(to: leader)
            let byTopic = Dictionary(grouping: tps, by: \.topic)
            let request = ListOffsetsRequest(replicaId: -1, isolationLevel: isolationLevel, topics: byTopic.map { topic, ps in
                .init(name: topic, partitions: ps.map { .init(partitionIndex: $0.partition, timestamp: wanted[$0]!) })
            })
            let response = try await connection.send(request, range: 1...10)
            for t in response.topics {
                for p in t.partitions {
                    let tp = TopicPartition(t.name, p.partitionIndex)
                    try KafkaClientError.check(p.errorCode, broker: leader, tp)
                    result[tp] = p.offset
                }
            }
        }
        return result
    }

    func forgetCoordinator(_ key: String, keyType: Int8 = 0) {
        _ = state.withLock { $0.coordinators.removeValue(forKey: "\(keyType)/\(key)") }
    }

    func close() async {
        let (tasks, bootstrap) = state.withLock { s -> ([Task<BrokerConnection, any Error>], Task<BrokerConnection, any Error>?) in
            s.closed = true
            defer { s.connections.removeAll(); s.bootstrap = nil }
            return (Array(s.connections.values), s.bootstrap)
        }
        for t in tasks { (try? await t.value)?.close() }
        (try? await bootstrap?.value)?.close()
    }
}
