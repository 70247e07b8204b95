#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import KafkaWire

/// What the controller reads and writes in Kafka's ZooKeeper layout: `/controller`, `/controller_epoch`,
/// versioned partition states, assignments and `/admin/delete_topics`.
extension ClusterMetadataStore {
    struct ControllerZNode: Codable {
        var version: Int = 1
        var brokerid: Int32
        var timestamp: String
    }

    public static let controllerPath = "/controller"
    public static let controllerEpochPath = "/controller_epoch"
    public static let deleteTopicsPath = "/admin/delete_topics"

    /// The broker id in `/controller`, nil when no controller is elected.
    public func controllerId() async throws -> Int32? {
        guard let node = try await store.get(Self.controllerPath) else { return nil }
        return try Self.decode(ControllerZNode.self, node.data, path: Self.controllerPath).brokerid
    }

    /// Kafka's JSON for `/controller`.
    public static func controllerJSON(brokerId: Int32) throws -> [UInt8] {
        try encode(ControllerZNode(brokerid: brokerId, timestamp: String(nowMs())))
    }

    /// After winning `/controller`: bumps `/controller_epoch` with a version check (Kafka's
    /// registerControllerAndIncrementControllerEpoch) and returns the new epoch.
    public func incrementControllerEpoch() async throws -> Int32 {
        while true {
            if let node = try await store.get(Self.controllerEpochPath) {
                guard let text = String(bytes: node.data, encoding: .utf8), let current = Int32(text.filter { !$0.isWhitespace }) else {
                    throw CoordinationError.invalidData("\(Self.controllerEpochPath): not a number")
                }
                do {
                    try await store.set(Self.controllerEpochPath, data: Array(String(current + 1).utf8), expectedVersion: node.version)
                    return current + 1
                } catch CoordinationError.badVersion { continue }
            } else {
                do {
                    try await store.create(Self.controllerEpochPath, data: Array("1".utf8), ephemeral: false)
                    return 1
                } catch CoordinationError.nodeExists { continue }
            }
        }
    }

    /// Registered brokers with their epochs (the registration's timestamp: a re-registration is newer).
    public func brokersWithEpochs() async throws -> [(broker: BrokerRegistration, epoch: Int64)] {
        guard try await store.get("/brokers/ids") != nil else { return [] }
        var result: [(BrokerRegistration, Int64)] = []
        for child in try await store.children("/brokers/ids") {
            let path = "/brokers/ids/\(child)"
            guard let id = Int32(child), let node = try await store.get(path) else { continue }
            let z = try Self.decode(BrokerZNode.self, node.data, path: path)
            result.append((BrokerRegistration(id: id, host: z.host, port: z.port, rack: z.rack), Int64(z.timestamp) ?? 0))
        }
        return result.sorted { $0.0.id < $1.0.id }
    }

    /// A topic with each partition's state-node version (-1: no state node yet, a new partition).
    public func topicWithVersions(_ name: String) async throws -> (record: TopicRecord, versions: [Int32])? {
        try await topicWithReassignments(name).map { ($0.record, $0.versions) }
    }

    /// As `topicWithVersions`, with the reassignments in progress (partition → adding, removing replicas).
    public func topicWithReassignments(_ name: String) async throws
        -> (record: TopicRecord, versions: [Int32], reassigning: [Int32: (adding: [Int32], removing: [Int32])])? {
        let path = "/brokers/topics/\(name)"
        guard let node = try await store.get(path) else { return nil }
        let z = try Self.decode(TopicZNode.self, node.data, path: path)
        guard let id = KafkaUUID(z.topic_id) else { throw CoordinationError.invalidData("\(path): topic id \(z.topic_id)") }
        var partitions: [PartitionLeadership] = []
        var versions: [Int32] = []
        for p in 0..<z.partitions.count {
            guard let r = z.partitions[String(p)] else { throw CoordinationError.invalidData("\(path): partition \(p) missing") }
            let statePath = "\(path)/partitions/\(p)/state"
            if let s = try await store.get(statePath) {
                partitions.append(try Self.decode(PartitionStateZNode.self, s.data, path: statePath).leadership(partition: Int32(p), replicas: r))
                versions.append(s.version)
            } else {
                partitions.append(PartitionLeadership(partition: Int32(p), leader: -1, leaderEpoch: -1, replicas: r, isr: []))
                versions.append(-1)
            }
        }
        var configs: [String: String] = [:]
        let configPath = "/config/topics/\(name)"
        if let c = try await store.get(configPath) { configs = try Self.decode(ConfigZNode.self, c.data, path: configPath).config }
        var reassigning: [Int32: (adding: [Int32], removing: [Int32])] = [:]
        for key in Set(z.adding_replicas.keys).union(z.removing_replicas.keys) {
            guard let p = Int32(key) else { continue }
            reassigning[p] = (z.adding_replicas[key] ?? [], z.removing_replicas[key] ?? [])
        }
        return (TopicRecord(name: name, topicId: id, configs: configs, partitions: partitions), versions, reassigning)
    }

    /// Writes a partition's state if its node is at `expectedVersion` (-1: creates it). Throws `badVersion`
    /// or `nodeExists` when another controller changed it: the caller must resign.
    @discardableResult
    public func writePartitionState(_ topic: String, _ leadership: PartitionLeadership, expectedVersion: Int32) async throws -> Int32 {
        let path = "/brokers/topics/\(topic)/partitions/\(leadership.partition)/state"
        let data = try Self.encode(PartitionStateZNode(leadership))
        if expectedVersion < 0 {
            try await store.create(path, data: data, ephemeral: false)
            return 0
        }
        return try await store.set(path, data: data, expectedVersion: expectedVersion)
    }

    /// Replaces a topic's replica assignment (and the reassignments in progress), keeping its id.
    public func setAssignment(_ topic: String, replicas: [[Int32]], adding: [Int32: [Int32]] = [:], removing: [Int32: [Int32]] = [:]) async throws {
        let path = "/brokers/topics/\(topic)"
        guard let node = try await store.get(path) else { throw CoordinationError.noNode(path) }
        var z = try Self.decode(TopicZNode.self, node.data, path: path)
        z.partitions = Self.assignmentMap(replicas)
        z.adding_replicas = Dictionary(uniqueKeysWithValues: adding.map { (String($0.key), $0.value) })
        z.removing_replicas = Dictionary(uniqueKeysWithValues: removing.map { (String($0.key), $0.value) })
        try await store.set(path, data: try Self.encode(z), expectedVersion: node.version)
    }

    /// Asks the controller to delete a topic (Kafka's `/admin/delete_topics/<t>`).
    public func markTopicForDeletion(_ name: String) async throws {
        do {
            try await store.create("\(Self.deleteTopicsPath)/\(name)", data: [], ephemeral: false)
        } catch CoordinationError.nodeExists {}
    }

    public func topicsMarkedForDeletion() async throws -> [String] {
        guard try await store.get(Self.deleteTopicsPath) != nil else { return [] }
        return try await store.children(Self.deleteTopicsPath)
    }

    /// The deletion finished on every replica: the topic's nodes and its deletion marker go.
    public func removeDeletedTopic(_ name: String) async throws {
        if try await store.get("/brokers/topics/\(name)") != nil { try await deleteTopic(name) }
        if try await store.get("\(Self.deleteTopicsPath)/\(name)") != nil {
            try await store.delete("\(Self.deleteTopicsPath)/\(name)", recursive: false)
        }
    }

    public static let configChangesPath = "/config/changes"

    struct ConfigChangeZNode: Codable {
        var version: Int = 2
        var entity_path: String
    }

    /// Tells every broker that a topic's configs changed (`/config/changes/config_change_<seq>`,
    /// Kafka's JSON), as Kafka's AdminZkClient does.
    public func notifyTopicConfigChange(_ name: String) async throws {
        guard let cluster = store as? any ClusterCoordinationStore else { return }
        _ = try await cluster.createSequential("\(Self.configChangesPath)/config_change_", data: try Self.encode(ConfigChangeZNode(entity_path: "topics/\(name)")),
                                               ephemeral: false)
    }

    /// The topic named by a config change notification (nil for other entities).
    public func configChangeTopic(_ child: String) async throws -> String? {
        let path = "\(Self.configChangesPath)/\(child)"
        guard let node = try await store.get(path) else { return nil }
        let z = try Self.decode(ConfigChangeZNode.self, node.data, path: path)
        guard z.entity_path.hasPrefix("topics/") else { return nil }
        return String(z.entity_path.dropFirst("topics/".count))
    }
}
