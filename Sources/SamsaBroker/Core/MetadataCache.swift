import KafkaWire
import SamsaMetadata
import Synchronization

/// A topic as the broker serves it: the stored record (id, configs, each partition's leadership).
public typealias TopicMetadata = TopicRecord

extension TopicRecord {
    public var isInternal: Bool { Topics.isInternal(name) }
}

/// Topic name rules and Kafka's internal topics.
public enum Topics {
    public static let consumerOffsets = "__consumer_offsets"
    public static let transactionState = "__transaction_state"

    public static func isInternal(_ name: String) -> Bool { name == consumerOffsets || name == transactionState }

    /// Why `name` is not a legal topic name (Kafka's rules), or nil.
    public static func invalidReason(_ name: String) -> String? {
        if name.isEmpty { return "Topic name is illegal, it can't be empty" }
        if name == "." || name == ".." { return "Topic name cannot be \".\" or \"..\"" }
        if name.utf8.count > 249 { return "Topic name is illegal, it can't be longer than 249 characters, topic name: \(name)" }
        for c in name.utf8 {
            let ok = (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x2E || c == 0x5F || c == 0x2D
            if !ok { return "Topic name \(name) is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'" }
        }
        return nil
    }

    /// Kafka refuses names that differ from an existing one only by '.' versus '_' (metric names collide).
    static func collisionKey(_ name: String) -> String { name.replacingDots() }
}

extension String {
    func replacingDots() -> String { String(map { $0 == "." ? "_" : $0 }) }
}

/// What the broker currently knows of the cluster: brokers, topics, leaders. Read on every request
/// (lock-protected snapshot); replaced when the coordination store changes.
public final class MetadataCache: Sendable {
    public struct Snapshot: Sendable {
        public var clusterId: String = ""
        public var controllerId: Int32 = -1
        public var brokers: [BrokerRegistration] = []
        public var topics: [String: TopicMetadata] = [:]
        public var topicNamesById: [KafkaUUID: String] = [:]
    }

    private let state = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    public func topic(_ name: String) -> TopicMetadata? { state.withLock { $0.topics[name] } }

    public func topicName(id: KafkaUUID) -> String? { state.withLock { $0.topicNamesById[id] } }

    public func partition(_ topic: String, _ partition: Int32) -> PartitionLeadership? {
        state.withLock { s in
            guard let t = s.topics[topic], partition >= 0, Int(partition) < t.partitions.count else { return nil }
            return t.partitions[Int(partition)]
        }
    }

    public func setCluster(id: String, controllerId: Int32, brokers: [BrokerRegistration]) {
        state.withLock {
            $0.clusterId = id
            $0.controllerId = controllerId
            $0.brokers = brokers
        }
    }

    public func put(_ topic: TopicMetadata) {
        state.withLock {
            if let old = $0.topics[topic.name], old.topicId != topic.topicId { $0.topicNamesById.removeValue(forKey: old.topicId) }
            $0.topics[topic.name] = topic
            $0.topicNamesById[topic.topicId] = topic.name
        }
    }

    public func remove(_ name: String) {
        state.withLock {
            if let old = $0.topics.removeValue(forKey: name) { $0.topicNamesById.removeValue(forKey: old.topicId) }
        }
    }
}
