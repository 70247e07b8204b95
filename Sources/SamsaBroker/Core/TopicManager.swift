import KafkaProtocol
import KafkaWire
import SamsaController
import SamsaMetadata
import SamsaStorage
import Synchronization

/// Topic administration: validates, writes the change to the coordination store, then applies it
/// to the metadata cache and this broker's replicas.
public final class TopicManager: Sendable {
    let store: ClusterMetadataStore
    let cache: MetadataCache
    let replicas: ReplicaManager
    let config: BrokerConfig

    init(store: ClusterMetadataStore, cache: MetadataCache, replicas: ReplicaManager, config: BrokerConfig) {
        self.store = store
        self.cache = cache
        self.replicas = replicas
        self.config = config
    }

    /// Applies a topic to the cache and to local replicas.
    func apply(_ record: TopicRecord) throws {
        let topic = record
        let minIsr = config.topicValue("min.insync.replicas", overrides: topic.configs).flatMap { Int($0.trimmingSpaces) } ?? 1
        if isCluster {
            // Leadership comes from the controller: only the configs change here.
            let logConfig = logConfig(for: topic)
            for p in replicas.allPartitions where p.topicPartition.topic == topic.name {
                p.log.updateConfig(logConfig)
                p.setMinInsyncReplicas(minIsr)
            }
            if var cached = cache.topic(topic.name) {
                cached.configs = topic.configs
                cache.put(cached)
            }
            return
        }
        try replicas.apply(topic, config: logConfig(for: topic), minInsyncReplicas: minIsr)
        cache.put(topic)
    }

    func logConfig(for topic: TopicMetadata) -> LogConfig {
        var c = config.logConfig(overrides: topic.configs)
        if topic.name == Topics.consumerOffsets {
            // Kafka's offsets topic defaults: compacted, 100 MiB segments.
            if topic.configs["segment.bytes"] == nil { c.segmentBytes = config.int("offsets.topic.segment.bytes") ?? 104_857_600 }
        }
        return c
    }

    /// Loads every topic from the store (broker start).
    func loadAll() async throws -> [TopicRecord] {
        try await store.topics()
    }

    public struct Created: Sendable {
        public var topic: TopicMetadata
        public var configs: [String: String]
    }

    /// Creates a topic. `partitions`/`replicationFactor` of -1 take the broker defaults.
    public func create(name: String, partitions requested: Int32, replicationFactor requestedRF: Int16,
                       assignments: [[Int32]]?, configs: [String: String], validateOnly: Bool) async throws(KafkaError) -> Created {
        if let reason = Topics.invalidReason(name) { throw KafkaError(.invalidTopicException, reason) }
        let snapshot = cache.snapshot
        if snapshot.topics[name] != nil { throw KafkaError(.topicAlreadyExists, "Topic '\(name)' already exists.") }
        let key = Topics.collisionKey(name)
        if let clash = snapshot.topics.keys.first(where: { Topics.collisionKey($0) == key }) {
            throw KafkaError(.invalidTopicException, "Topic '\(name)' collides with existing topic: \(clash)")
        }
        if let problem = BrokerConfig.validateTopicConfigs(configs) { throw KafkaError(.invalidConfig, problem) }
        let brokerIds = snapshot.brokers.map(\.id).sorted()
        var replicaAssignment: [[Int32]]
        if let assignments, !assignments.isEmpty {
            guard requested == -1, requestedRF == -1 else {
                throw KafkaError(.invalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.")
            }
            for (i, replicas) in assignments.enumerated() {
                if replicas.isEmpty || Set(replicas).count != replicas.count {
                    throw KafkaError(.invalidReplicaAssignment, "Duplicate or empty replica assignment for partition \(i)")
                }
                if let unknown = replicas.first(where: { !brokerIds.contains($0) }) {
                    throw KafkaError(.invalidReplicaAssignment, "Replica assignment refers to unknown broker \(unknown)")
                }
            }
            replicaAssignment = assignments
        } else {
            // Kafka's assignment (rack-aware with broker.rack), the same on one node and in a cluster.
            let count = requested == -1 ? config.numPartitions : requested
            let rf = requestedRF == -1 ? config.defaultReplicationFactor : requestedRF
            do {
                replicaAssignment = try ReplicaAssignment.assign(partitions: Int(count), replicationFactor: Int(rf),
                                                                 brokers: snapshot.brokers.map { BrokerPlacement(id: $0.id, rack: $0.rack) })
            } catch { throw KafkaError(error.code, error.message) }
        }
        if isCluster {
            // A cluster: the assignment is written to ZooKeeper; the controller elects the leaders
            // and tells the brokers; answer once this broker knows them.
            let id = KafkaUUID.random()
            let record = TopicRecord(name: name, topicId: id, configs: configs,
                                     partitions: replicaAssignment.enumerated().map { .initial(partition: Int32($0.offset), replicas: $0.element) })
            if validateOnly { return Created(topic: record, configs: configs) }
            do {
                try await store.createTopic(name: name, topicId: id, replicas: replicaAssignment, configs: configs, initialStates: false)
            } catch CoordinationError.nodeExists {
                throw KafkaError(.topicAlreadyExists, "Topic '\(name)' already exists.")
            } catch {
                throw KafkaError(.unknownServerError, "cannot create topic \(name): \(error)")
            }
            await waitForMetadata { cache in
                guard let t = cache.topic(name) else { return false }
                return t.partitions.count == replicaAssignment.count && t.partitions.allSatisfy { $0.leader >= 0 }
            }
            return Created(topic: cache.topic(name) ?? record, configs: configs)
        }
        let id = KafkaUUID.random()
        let record = TopicRecord(name: name, topicId: id, configs: configs,
                                 partitions: replicaAssignment.enumerated().map { .initial(partition: Int32($0.offset), replicas: $0.element) })
        if !validateOnly {
            do {
                try await store.createTopic(name: name, topicId: id, replicas: replicaAssignment, configs: configs)
            } catch CoordinationError.nodeExists {
                throw KafkaError(.topicAlreadyExists, "Topic '\(name)' already exists.")
            } catch {
                throw KafkaError(.unknownServerError, "cannot create topic \(name): \(error)")
            }
            do {
                try apply(record)
            } catch {
                // Opening the partitions failed part-way (out of descriptors, disk full): undo it
                // all, so the topic neither half-exists now nor comes back after a restart.
                cache.remove(name)
                try? replicas.removeTopic(name)
                for p in replicaAssignment.indices { try? replicas.logManager.removeUnopened(TopicPartition(name, Int32(p))) }
                do { try await store.deleteTopic(name) } catch let undo {
                    throw KafkaError(.kafkaStorageError, "cannot create topic \(name): \(error); and removing what was created failed: \(undo)")
                }
                let e = KafkaError.from(error)
                throw KafkaError(e.code == .unknownServerError ? .kafkaStorageError : e.code, "cannot create topic \(name): \(e.message ?? "\(error)")")
            }
        }
        return Created(topic: record, configs: configs)
    }

    /// A cluster (ZooKeeper mode): changes go through the controller.
    var isCluster: Bool { config.zookeeperConnect != nil }

    /// Waits (up to 30 s, as Kafka's delayed topic operations) until the metadata cache satisfies `done`.
    func waitForMetadata(_ done: (MetadataCache) -> Bool) async {
        let deadline = monotonicMillis() + 30_000
        while !done(cache), monotonicMillis() < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    public func delete(name: String) async throws(KafkaError) {
        guard config.deleteTopicEnable else { throw KafkaError(.topicDeletionDisabled, "Topic deletion is disabled.") }
        guard cache.topic(name) != nil else { throw KafkaError(.unknownTopicOrPartition, "This server does not host this topic-partition.") }
        if isCluster {
            // The controller deletes it on every replica (StopReplica with delete), then its nodes.
            do { try await store.markTopicForDeletion(name) } catch { throw KafkaError.from(error) }
            await waitForMetadata { $0.topic(name) == nil }
            return
        }
        do {
            try await store.deleteTopic(name)
            cache.remove(name)
            try replicas.removeTopic(name)
        } catch { throw KafkaError.from(error) }
    }

    public func createPartitions(name: String, count: Int32, assignments: [[Int32]]?, validateOnly: Bool) async throws(KafkaError) {
        guard let topic = cache.topic(name) else { throw KafkaError(.unknownTopicOrPartition, "The topic '\(name)' does not exist.") }
        let current = topic.partitions.count
        guard Int(count) > current else {
            if Int(count) == current { throw KafkaError(.invalidPartitions, "Topic already has \(current) partitions.") }
            throw KafkaError(.invalidPartitions, "Topic currently has \(current) partitions, which is higher than the requested \(count).")
        }
        let brokerIds = cache.snapshot.brokers.map(\.id).sorted()
        let rf = topic.partitions.first?.replicas.count ?? 1
        var newReplicas: [[Int32]]
        if let assignments, !assignments.isEmpty {
            guard assignments.count == Int(count) - current else {
                throw KafkaError(.invalidReplicaAssignment, "Increasing the number of partitions by \(Int(count) - current) but \(assignments.count) assignments provided.")
            }
            for a in assignments where a.count != rf || a.contains(where: { !brokerIds.contains($0) }) {
                throw KafkaError(.invalidReplicaAssignment, "Inconsistent replication factor or unknown broker in assignment \(a)")
            }
            newReplicas = assignments
        } else {
            guard rf <= brokerIds.count else { throw KafkaError(.invalidReplicationFactor, "Replication factor \(rf) larger than available brokers \(brokerIds.count)") }
            do {
                newReplicas = try ReplicaAssignment.assignAdditional(existing: topic.replicas, newTotal: Int(count),
                                                                     brokers: cache.snapshot.brokers.map { BrokerPlacement(id: $0.id, rack: $0.rack) })
            } catch { throw KafkaError(error.code, error.message) }
        }
        if validateOnly { return }
        if isCluster {
            do { try await store.addPartitions(name, newReplicas: newReplicas, initialStates: false) } catch { throw KafkaError.from(error) }
            await waitForMetadata { ($0.topic(name)?.partitions.filter { $0.leader >= 0 }.count ?? 0) >= Int(count) }
            return
        }
        do {
            try await store.addPartitions(name, newReplicas: newReplicas)
            if let record = try await store.topic(name) { try apply(record) }
        } catch { throw KafkaError.from(error) }
    }

    /// Replaces a topic's config overrides.
    public func setConfigs(name: String, configs: [String: String], validateOnly: Bool) async throws(KafkaError) {
        guard cache.topic(name) != nil else { throw KafkaError(.unknownTopicOrPartition, "The topic '\(name)' does not exist.") }
        if let problem = BrokerConfig.validateTopicConfigs(configs) { throw KafkaError(.invalidConfig, problem) }
        if validateOnly { return }
        do {
            try await store.setTopicConfigs(name, configs)
            if isCluster {
                // Every broker re-reads the topic's configs (Kafka's config change notification).
                try await store.notifyTopicConfigChange(name)
            }
            if let record = try await store.topic(name) { try apply(record) }
        } catch { throw KafkaError.from(error) }
    }
}
