#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import KafkaWire

/// A partition's leadership — who leads, at which epoch, its replicas and which of them are in
/// sync. The one type for it from the coordination store through the broker's metadata cache to
/// its replica manager.
public struct PartitionLeadership: Sendable, Equatable {
    public var partition: Int32
    public var leader: Int32
    public var leaderEpoch: Int32
    public var replicas: [Int32]
    public var isr: [Int32]
    /// The epoch of the controller that made this decision.
    public var controllerEpoch: Int32

    public init(partition: Int32, leader: Int32, leaderEpoch: Int32, replicas: [Int32], isr: [Int32], controllerEpoch: Int32 = 1) {
        self.partition = partition
        self.leader = leader
        self.leaderEpoch = leaderEpoch
        self.replicas = replicas
        self.isr = isr
        self.controllerEpoch = controllerEpoch
    }

    /// A new partition's leadership: its first replica leads at epoch 0, every replica in sync.
    public static func initial(partition: Int32, replicas: [Int32]) -> PartitionLeadership {
        PartitionLeadership(partition: partition, leader: replicas.first ?? -1, leaderEpoch: 0, replicas: replicas, isr: replicas)
    }
}

/// A topic as the cluster stores it: id, configs and each partition's replicas and leadership.
public struct TopicRecord: Sendable, Equatable {
    public var name: String
    public var topicId: KafkaUUID
    public var configs: [String: String]
    /// Partition index = array index.
    public var partitions: [PartitionLeadership]

    /// Replicas of each partition, partition index = array index.
    public var replicas: [[Int32]] { partitions.map(\.replicas) }

    public init(name: String, topicId: KafkaUUID, configs: [String: String], partitions: [PartitionLeadership]) {
        self.name = name
        self.topicId = topicId
        self.configs = configs
        self.partitions = partitions
    }
}

/// Kafka's JSON of `/brokers/topics/<t>/partitions/<p>/state` (the replicas are in the topic's node).
struct PartitionStateZNode: Codable, Equatable {
    var controller_epoch: Int32
    var leader: Int32
    var version: Int32 = 1
    var leader_epoch: Int32
    var isr: [Int32]

    init(_ l: PartitionLeadership) {
        controller_epoch = l.controllerEpoch
        leader = l.leader
        leader_epoch = l.leaderEpoch
        isr = l.isr
    }

    func leadership(partition: Int32, replicas: [Int32]) -> PartitionLeadership {
        PartitionLeadership(partition: partition, leader: leader, leaderEpoch: leader_epoch, replicas: replicas, isr: isr, controllerEpoch: controller_epoch)
    }
}

/// A broker's registration (`/brokers/ids/<id>`), ephemeral: it disappears when the broker's session ends.
public struct BrokerRegistration: Sendable, Equatable, Codable {
    public var id: Int32
    public var host: String
    public var port: Int32
    public var rack: String?

    public init(id: Int32, host: String, port: Int32, rack: String?) {
        self.id = id
        self.host = host
        self.port = port
        self.rack = rack
    }
}

/// Typed access to the cluster's metadata in a `CoordinationStore`, in Kafka's ZooKeeper layout.
public struct ClusterMetadataStore: Sendable {
    public let store: any CoordinationStore

    public init(store: any CoordinationStore) { self.store = store }

    struct TopicZNode: Codable {
        var version: Int = 3
        var topic_id: String
        var partitions: [String: [Int32]]
        var adding_replicas: [String: [Int32]] = [:]
        var removing_replicas: [String: [Int32]] = [:]

        init(topic_id: String, partitions: [String: [Int32]]) {
            self.topic_id = topic_id
            self.partitions = partitions
        }

        /// Older writers leave out the reassignment fields (and the version).
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            version = try c.decodeIfPresent(Int.self, forKey: .version) ?? 1
            topic_id = try c.decode(String.self, forKey: .topic_id)
            partitions = try c.decode([String: [Int32]].self, forKey: .partitions)
            adding_replicas = try c.decodeIfPresent([String: [Int32]].self, forKey: .adding_replicas) ?? [:]
            removing_replicas = try c.decodeIfPresent([String: [Int32]].self, forKey: .removing_replicas) ?? [:]
        }
    }

    struct ConfigZNode: Codable {
        var version: Int = 1
        var config: [String: String]
    }

    private struct ClusterIdZNode: Codable {
        var version: String = "1"
        var id: String
    }

    private struct ProducerIdBlockZNode: Codable {
        var version: Int = 1
        var broker: Int32
        var block_start: String
        var block_end: String
    }

    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], path: String) throws -> T {
        do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch {
            throw CoordinationError.invalidData("\(path): \(error)")
        }
    }

    // MARK: Cluster

    /// The cluster id, created (22-character base64url, like Kafka's) the first time it is asked for.
    public func clusterId() async throws -> String {
        let path = "/cluster/id"
        if let node = try await store.get(path) { return try Self.decode(ClusterIdZNode.self, node.data, path: path).id }
        let id = KafkaUUID.random().description
        do {
            try await store.create(path, data: try Self.encode(ClusterIdZNode(id: id)), ephemeral: false)
            return id
        } catch CoordinationError.nodeExists {
            return try await clusterId()
        }
    }

    /// A broker registration as Kafka 3.x writes `/brokers/ids/<id>` (version 5; the id is the node's name).
    struct BrokerZNode: Codable {
        var features: [String: String] = [:]
        var listener_security_protocol_map: [String: String] = ["PLAINTEXT": "PLAINTEXT"]
        var endpoints: [String]
        var jmx_port: Int = -1
        var port: Int32
        var host: String
        var version: Int = 5
        var timestamp: String
        var rack: String?
    }

    /// Kafka's JSON for `/brokers/ids/<id>`.
    public static func brokerJSON(_ broker: BrokerRegistration, timestampMs: Int64) throws -> [UInt8] {
        let host = broker.host.contains(":") ? "[\(broker.host)]" : broker.host
        return try encode(BrokerZNode(endpoints: ["PLAINTEXT://\(host):\(broker.port)"], port: broker.port, host: broker.host,
                                      timestamp: String(timestampMs), rack: broker.rack))
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    public func registerBroker(_ broker: BrokerRegistration) async throws {
        let path = "/brokers/ids/\(broker.id)"
        if try await store.get(path) != nil { try await store.delete(path, recursive: false) }
        try await store.create(path, data: try Self.brokerJSON(broker, timestampMs: Self.nowMs()), ephemeral: true)
    }

    public func brokers() async throws -> [BrokerRegistration] {
        guard try await store.get("/brokers/ids") != nil else { return [] }
        var result: [BrokerRegistration] = []
        for child in try await store.children("/brokers/ids") {
            let path = "/brokers/ids/\(child)"
            guard let id = Int32(child) else { throw CoordinationError.invalidData("\(path): broker id is not a number") }
            if let node = try await store.get(path) {
                let z = try Self.decode(BrokerZNode.self, node.data, path: path)
                result.append(BrokerRegistration(id: id, host: z.host, port: z.port, rack: z.rack))
            }
        }
        return result.sorted { $0.id < $1.id }
    }

    // MARK: Topics

    public func topicNames() async throws -> [String] {
        guard try await store.get("/brokers/topics") != nil else { return [] }
        return try await store.children("/brokers/topics")
    }

    public func topic(_ name: String) async throws -> TopicRecord? {
        let path = "/brokers/topics/\(name)"
        guard let node = try await store.get(path) else { return nil }
        let z = try Self.decode(TopicZNode.self, node.data, path: path)
        guard let id = KafkaUUID(z.topic_id) else { throw CoordinationError.invalidData("\(path): topic id \(z.topic_id)") }
        var partitions: [PartitionLeadership] = []
        for p in 0..<z.partitions.count {
            guard let r = z.partitions[String(p)] else { throw CoordinationError.invalidData("\(path): partition \(p) missing") }
            let statePath = "\(path)/partitions/\(p)/state"
            if let s = try await store.get(statePath) {
                partitions.append(try Self.decode(PartitionStateZNode.self, s.data, path: statePath).leadership(partition: Int32(p), replicas: r))
            } else {
                partitions.append(.initial(partition: Int32(p), replicas: r))
            }
        }
        var configs: [String: String] = [:]
        let configPath = "/config/topics/\(name)"
        if let c = try await store.get(configPath) { configs = try Self.decode(ConfigZNode.self, c.data, path: configPath).config }
        return TopicRecord(name: name, topicId: id, configs: configs, partitions: partitions)
    }

    public func topics() async throws -> [TopicRecord] {
        var result: [TopicRecord] = []
        for name in try await topicNames() {
            if let t = try await topic(name) { result.append(t) }
        }
        return result
    }

    /// Creates a topic with its assignment, configs and initial leadership (first replica leads, epoch 0).
    /// Throws `nodeExists` when the topic exists.
    /// With `initialStates: false` (a cluster with a controller) only the assignment and configs are
    /// written, as Kafka's AdminZkClient does: the controller sees the new topic and elects its leaders.
    public func createTopic(name: String, topicId: KafkaUUID, replicas: [[Int32]], configs: [String: String],
                            initialStates: Bool = true) async throws {
        let path = "/brokers/topics/\(name)"
        var ops: [CoordinationOp] = [
            .create(path, try Self.encode(TopicZNode(topic_id: topicId.description, partitions: Self.assignmentMap(replicas)))),
            .create("/config/topics/\(name)", try Self.encode(ConfigZNode(config: configs))),
        ]
        for (p, r) in replicas.enumerated() where initialStates {
            ops.append(.create("\(path)/partitions/\(p)/state",
                               try Self.encode(PartitionStateZNode(.initial(partition: Int32(p), replicas: r)))))
        }
        try await store.multi(ops)
    }

    public func deleteTopic(_ name: String) async throws {
        var ops: [CoordinationOp] = [.delete("/brokers/topics/\(name)", recursive: true)]
        if try await store.get("/config/topics/\(name)") != nil { ops.append(.delete("/config/topics/\(name)", recursive: false)) }
        try await store.multi(ops)
    }

    public func setTopicConfigs(_ name: String, _ configs: [String: String]) async throws {
        let path = "/config/topics/\(name)"
        let data = try Self.encode(ConfigZNode(config: configs))
        if try await store.get(path) != nil {
            try await store.set(path, data: data, expectedVersion: nil)
        } else {
            try await store.create(path, data: data, ephemeral: false)
        }
    }

    /// Adds partitions with the given replicas (appended after the existing ones).
    public func addPartitions(_ name: String, newReplicas: [[Int32]], initialStates: Bool = true) async throws {
        let path = "/brokers/topics/\(name)"
        guard let node = try await store.get(path) else { throw CoordinationError.noNode(path) }
        var z = try Self.decode(TopicZNode.self, node.data, path: path)
        let start = z.partitions.count
        var ops: [CoordinationOp] = []
        for (i, r) in newReplicas.enumerated() {
            z.partitions[String(start + i)] = r
            guard initialStates else { continue }
            ops.append(.create("\(path)/partitions/\(start + i)/state",
                               try Self.encode(PartitionStateZNode(.initial(partition: Int32(start + i), replicas: r)))))
        }
        ops.insert(.set(path, try Self.encode(z), expectedVersion: node.version), at: 0)
        try await store.multi(ops)
    }

    /// Writes a partition's leadership (its state node; the replicas stay in the topic's node).
    public func setPartitionState(_ name: String, _ leadership: PartitionLeadership) async throws {
        let path = "/brokers/topics/\(name)/partitions/\(leadership.partition)/state"
        try await store.set(path, data: try Self.encode(PartitionStateZNode(leadership)), expectedVersion: nil)
    }

    static func assignmentMap(_ replicas: [[Int32]]) -> [String: [Int32]] {
        Dictionary(uniqueKeysWithValues: replicas.enumerated().map { (String($0.offset), $0.element) })
    }

    // MARK: Producer ids

    /// Reserves the next block of `size` producer ids for `broker` (Kafka's `/latest_producer_id_block`),
    /// with a version check so that two brokers never get the same block.
    public func allocateProducerIdBlock(broker: Int32, size: Int64 = 1000) async throws -> ClosedRange<Int64> {
        let path = "/latest_producer_id_block"
        while true {
            let current = try await store.get(path)
            var start: Int64 = 0
            if let current {
                let z = try Self.decode(ProducerIdBlockZNode.self, current.data, path: path)
                guard let end = Int64(z.block_end) else { throw CoordinationError.invalidData("\(path): block_end \(z.block_end)") }
                start = end + 1
            }
            let block = ProducerIdBlockZNode(broker: broker, block_start: String(start), block_end: String(start + size - 1))
            do {
                if let current {
                    try await store.set(path, data: try Self.encode(block), expectedVersion: current.version)
                } else {
                    try await store.create(path, data: try Self.encode(block), ephemeral: false)
                }
                return start...(start + size - 1)
            } catch CoordinationError.badVersion, CoordinationError.nodeExists {
                continue
            }
        }
    }
}
