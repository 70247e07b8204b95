import KafkaProtocol
import KafkaWire
import NIOCore
import SamsaMetadata
import SamsaStorage
import Synchronization

/// One partition replica on this broker: its log and who leads it.
public final class Partition: Sendable {
    public let topicPartition: TopicPartition
    public let topicId: KafkaUUID
    public let log: PartitionLog
    private struct State: Sendable {
        var leadership: PartitionLeadership
        /// The topic's `min.insync.replicas`: acks=all needs at least this many in-sync replicas.
        var minInsyncReplicas: Int
    }
    private let state: Mutex<State>

    init(topicPartition: TopicPartition, topicId: KafkaUUID, log: PartitionLog, leadership: PartitionLeadership, minInsyncReplicas: Int) {
        self.topicPartition = topicPartition
        self.topicId = topicId
        self.log = log
        self.state = Mutex(State(leadership: leadership, minInsyncReplicas: minInsyncReplicas))
    }

    public var leadership: PartitionLeadership { state.withLock { $0.leadership } }
    public var minInsyncReplicas: Int { state.withLock { $0.minInsyncReplicas } }

    func update(_ leadership: PartitionLeadership, minInsyncReplicas: Int) {
        state.withLock { $0 = State(leadership: leadership, minInsyncReplicas: minInsyncReplicas) }
    }

    /// Moves the high watermark to the smallest log end offset of the in-sync replicas. With this
    /// broker the only replica in sync, that is its own log end.
    func maybeIncrementHighWatermark() {
        log.updateHighWatermark(log.logEndOffset)
    }

    /// Checks a client's idea of the leader epoch (KIP-320): newer than ours → UNKNOWN_LEADER_EPOCH,
    /// older → FENCED_LEADER_EPOCH; -1 skips the check.
    func checkLeaderEpoch(_ epoch: Int32) -> KafkaErrorCode? {
        guard epoch >= 0 else { return nil }
        let current = leadership.leaderEpoch
        if epoch > current { return .unknownLeaderEpoch }
        if epoch < current { return .fencedLeaderEpoch }
        return nil
    }
}

/// The partitions this broker hosts: creates and removes their logs, appends to the ones it leads,
/// and wakes delayed fetches when data arrives.
public final class ReplicaManager: Sendable {
    public let brokerId: Int32
    public let logManager: LogManager
    public let purgatory = FetchPurgatory()
    public let flusher: Flusher
    private let partitions = Mutex<[TopicPartition: Partition]>([:])

    public init(brokerId: Int32, logManager: LogManager, flusher: Flusher) {
        self.brokerId = brokerId
        self.logManager = logManager
        self.flusher = flusher
    }

    public func partition(_ tp: TopicPartition) -> Partition? { partitions.withLock { $0[tp] } }

    public var allPartitions: [Partition] { partitions.withLock { Array($0.values) } }

    /// Applies a topic's metadata: opens (or creates) the log of every partition this broker holds
    /// a replica of and records its leadership.
    public func apply(_ topic: TopicMetadata, config: LogConfig, minInsyncReplicas: Int) throws {
        for p in topic.partitions where p.replicas.contains(brokerId) {
            let tp = TopicPartition(topic.name, p.partition)
            if let existing = partition(tp) {
                existing.update(p, minInsyncReplicas: minInsyncReplicas)
                existing.log.updateConfig(config)
                continue
            }
            let log = try logManager.getOrCreate(tp, config: config)
            log.updateConfig(config)
            let partition = Partition(topicPartition: tp, topicId: topic.topicId, log: log, leadership: p, minInsyncReplicas: minInsyncReplicas)
            if p.leader == brokerId { partition.maybeIncrementHighWatermark() }
            partitions.withLock { $0[tp] = partition }
        }
    }

    /// Stops serving a topic and deletes its logs.
    public func removeTopic(_ name: String) throws {
        let removed = partitions.withLock { all -> [TopicPartition] in
            let keys = all.keys.filter { $0.topic == name }
            for k in keys { all.removeValue(forKey: k) }
            return keys
        }
        var firstError: (any Error)?
        for tp in removed {
            // Every partition is removed even if one fails; the first failure is reported.
            do { try logManager.delete(tp) } catch { firstError = firstError ?? error }
            purgatory.notify(tp, bytes: Int.max)
        }
        if let firstError { throw firstError }
    }

    /// The partition, if this broker leads it; the Kafka error otherwise.
    public func leaderPartition(_ tp: TopicPartition) throws(KafkaError) -> Partition {
        guard let partition = partition(tp) else {
            throw KafkaError(.unknownTopicOrPartition, "This server does not host this topic-partition.")
        }
        guard partition.leadership.leader == brokerId else {
            throw KafkaError(.notLeaderOrFollower, "This server is not the leader for \(tp)")
        }
        return partition
    }

    /// Appends client (or coordinator) records to a partition this broker leads, then advances the
    /// high watermark and wakes fetches waiting on it.
    public func appendToLeader(_ tp: TopicPartition, records: ByteBuffer, requiredAcks: Int16) throws -> (LogAppendResult, Partition) {
        let partition = try leaderPartition(tp)
        let leadership = partition.leadership, minIsr = partition.minInsyncReplicas
        if requiredAcks == -1, leadership.isr.count < minIsr {
            throw KafkaError(.notEnoughReplicas, "The size of the current ISR \(leadership.isr) is insufficient to satisfy the min.isr requirement of \(minIsr) for partition \(tp)")
        }
        let result = try partition.log.append(records, leaderEpoch: leadership.leaderEpoch)
        if !result.isDuplicate {
            partition.maybeIncrementHighWatermark()
            purgatory.notify(tp, bytes: result.bytes)
        }
        return (result, partition)
    }
}
