import KafkaProtocol
import KafkaWire
import NIOCore
import SamsaMetadata
import SamsaStorage
import Synchronization

/// One partition replica on this broker: its log, who leads it and, while this broker leads,
/// how far each follower has copied it (Kafka's `Partition`).
public final class Partition: Sendable {
    public let topicPartition: TopicPartition
    public let topicId: KafkaUUID
    public let log: PartitionLog
    let brokerId: Int32

    /// A follower's progress as the leader sees it from its fetches.
    struct ReplicaProgress: Sendable {
        /// -1 until the follower's first fetch since this broker became leader.
        var logEndOffset: Int64 = -1
        var lastCaughtUpMs: Int64
        /// The leader's log end at the follower's previous fetch, and when that was.
        var lastFetchLeaderLogEnd: Int64 = -1
        var lastFetchMs: Int64 = 0
    }

    private struct State: Sendable {
        var leadership: PartitionLeadership
        /// The topic's `min.insync.replicas`: acks=all needs at least this many in-sync replicas.
        var minInsyncReplicas: Int
        /// The partition state's version (the controller's fence for AlterPartition).
        var partitionEpoch: Int32 = 0
        var followers: [Int32: ReplicaProgress] = [:]
        /// An ISR change sent to the controller and not answered yet.
        var pendingIsr: [Int32]?
        /// Where this broker's leader epoch started (a follower must reach it to join the ISR).
        var leaderEpochStartOffset: Int64 = 0
    }
    private let state: Mutex<State>

    /// Told every time this partition's high watermark moves (acks=all waits, delayed fetches), whatever
    /// moved it: a follower's fetch, an append, an ISR change, a new leader epoch.
    let highWatermarkMoved: (@Sendable (TopicPartition, Int64) -> Void)?

    init(topicPartition: TopicPartition, topicId: KafkaUUID, log: PartitionLog, leadership: PartitionLeadership, minInsyncReplicas: Int, brokerId: Int32,
         highWatermarkMoved: (@Sendable (TopicPartition, Int64) -> Void)? = nil) {
        self.topicPartition = topicPartition
        self.topicId = topicId
        self.log = log
        self.brokerId = brokerId
        self.highWatermarkMoved = highWatermarkMoved
        self.state = Mutex(State(leadership: leadership, minInsyncReplicas: minInsyncReplicas))
    }

    public var leadership: PartitionLeadership { state.withLock { $0.leadership } }
    public var minInsyncReplicas: Int { state.withLock { $0.minInsyncReplicas } }
    public var partitionEpoch: Int32 { state.withLock { $0.partitionEpoch } }
    public var isLeader: Bool { state.withLock { $0.leadership.leader == brokerId } }

    func update(_ leadership: PartitionLeadership, minInsyncReplicas: Int) {
        state.withLock {
            $0.leadership = leadership
            $0.minInsyncReplicas = minInsyncReplicas
        }
    }

    func setMinInsyncReplicas(_ value: Int) { state.withLock { $0.minInsyncReplicas = value } }

    /// LeaderAndIsr made this broker the leader: followers start unknown (their first fetch tells).
    func makeLeader(_ leadership: PartitionLeadership, partitionEpoch: Int32, now: Int64 = monotonicMillis()) {
        let leo = log.logEndOffset
        state.withLock { s in
            // A new epoch of the same leader (an ISR change by the controller) keeps what it knows of
            // its followers, as Kafka does; a new leader starts with every follower unknown.
            let wasLeader = s.leadership.leader == brokerId && !s.followers.isEmpty
            if !wasLeader || s.leadership.leaderEpoch != leadership.leaderEpoch { s.leaderEpochStartOffset = leo }
            s.leadership = leadership
            s.partitionEpoch = partitionEpoch
            s.pendingIsr = nil
            var followers: [Int32: ReplicaProgress] = [:]
            for r in leadership.replicas where r != brokerId {
                if wasLeader, let known = s.followers[r] {
                    followers[r] = known
                } else {
                    followers[r] = ReplicaProgress(lastCaughtUpMs: leadership.isr.contains(r) ? now : 0)
                }
            }
            s.followers = followers
        }
        maybeIncrementHighWatermark()
    }

    /// LeaderAndIsr made this broker a follower (or told it a new leader epoch).
    func makeFollower(_ leadership: PartitionLeadership, partitionEpoch: Int32) {
        state.withLock { s in
            s.leadership = leadership
            s.partitionEpoch = partitionEpoch
            s.pendingIsr = nil
            s.followers = [:]
        }
    }

    /// The ISR for the high watermark: the current one plus replicas being added (Kafka's maximal ISR).
    private static func maximalIsr(_ s: State) -> [Int32] {
        guard let pending = s.pendingIsr else { return s.leadership.isr }
        return Array(Set(s.leadership.isr).union(pending))
    }

    /// Moves the high watermark (leader only) to the smallest log end offset of the in-sync
    /// replicas; returns the new high watermark when it moved.
    @discardableResult
    func maybeIncrementHighWatermark() -> Int64? {
        let leo = log.logEndOffset
        let candidate: Int64? = state.withLock { s in
            guard s.leadership.leader == brokerId else { return nil }
            var hw = leo
            for r in Self.maximalIsr(s) where r != brokerId {
                guard let f = s.followers[r], f.logEndOffset >= 0 else { return nil }
                hw = min(hw, f.logEndOffset)
            }
            return hw
        }
        guard let hw = candidate, hw > log.highWatermark else { return nil }
        log.updateHighWatermark(hw)
        let moved = log.highWatermark
        highWatermarkMoved?(topicPartition, moved)
        return moved
    }

    /// A follower fetched from `fetchOffset` (its log end). Records its progress; returns the new
    /// high watermark if it moved, and the ISR to propose if the follower has caught up and is not in it.
    func recordFollowerFetch(replica: Int32, fetchOffset: Int64, now: Int64 = monotonicMillis()) -> (highWatermark: Int64?, expandIsr: [Int32]?) {
        let leo = log.logEndOffset, hwBefore = log.highWatermark
        let expand: [Int32]? = state.withLock { s in
            guard s.leadership.leader == brokerId, var f = s.followers[replica] else { return nil }
            if fetchOffset >= leo {
                f.lastCaughtUpMs = max(f.lastCaughtUpMs, now)
            } else if fetchOffset >= f.lastFetchLeaderLogEnd && f.lastFetchLeaderLogEnd >= 0 {
                f.lastCaughtUpMs = max(f.lastCaughtUpMs, f.lastFetchMs)
            }
            f.logEndOffset = fetchOffset
            f.lastFetchLeaderLogEnd = leo
            f.lastFetchMs = now
            s.followers[replica] = f
            guard s.pendingIsr == nil, !s.leadership.isr.contains(replica), fetchOffset >= hwBefore,
                  fetchOffset >= s.leaderEpochStartOffset else { return nil }
            let proposed = s.leadership.isr + [replica]
            s.pendingIsr = proposed
            return proposed
        }
        return (maybeIncrementHighWatermark(), expand)
    }

    /// ISR members that have not caught up within `lagMs`: the ISR to propose without them.
    func shrinkIsrIfNeeded(lagMs: Int64, now: Int64 = monotonicMillis()) -> [Int32]? {
        state.withLock { s in
            guard s.leadership.leader == brokerId, s.pendingIsr == nil else { return nil }
            let lagging = s.leadership.isr.filter { r in
                r != brokerId && (s.followers[r].map { now - $0.lastCaughtUpMs > lagMs } ?? true)
            }
            guard !lagging.isEmpty else { return nil }
            let proposed = s.leadership.isr.filter { !lagging.contains($0) }
            s.pendingIsr = proposed
            return proposed
        }
    }

    /// The controller answered an ISR change: on success the new leadership and partition epoch.
    func isrChangeCompleted(_ leadership: PartitionLeadership?, partitionEpoch: Int32) {
        state.withLock { s in
            s.pendingIsr = nil
            if let leadership, leadership.leaderEpoch == s.leadership.leaderEpoch {
                s.leadership.isr = leadership.isr
                s.partitionEpoch = partitionEpoch
            }
        }
        maybeIncrementHighWatermark()
    }

    /// Each follower's log end offset as the leader last saw it (DescribeLogDirs lag, tests).
    var followerLogEndOffsets: [Int32: Int64] { state.withLock { $0.followers.mapValues(\.logEndOffset) } }

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
    /// acks=all produces (and coordinator writes) waiting for the high watermark.
    public let producePurgatory = ProducePurgatory()
    public let flusher: Flusher
    private let partitions = Mutex<[TopicPartition: Partition]>([:])

    public init(brokerId: Int32, logManager: LogManager, flusher: Flusher) {
        self.brokerId = brokerId
        self.logManager = logManager
        self.flusher = flusher
    }

    /// Completes acks=all waits and wakes delayed fetches when a partition's high watermark moves.
    private var hwListener: @Sendable (TopicPartition, Int64) -> Void {
        { [producePurgatory, purgatory] tp, hw in
            producePurgatory.highWatermarkMoved(tp, to: hw)
            purgatory.notify(tp, bytes: 1)
        }
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
            let partition = Partition(topicPartition: tp, topicId: topic.topicId, log: log, leadership: p, minInsyncReplicas: minInsyncReplicas, brokerId: brokerId,
                                  highWatermarkMoved: hwListener)
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

    /// A follower fetched `partition` from `fetchOffset`: the high watermark may move (completing
    /// acks=all waits and waking consumers), and a caught-up follower is proposed for the ISR.
    func followerFetched(_ partition: Partition, replica: Int32, fetchOffset: Int64) {
        let (_, expand) = partition.recordFollowerFetch(replica: replica, fetchOffset: fetchOffset)
        if let expand { isrChangeRequested.withLock { $0 }?(partition, expand) }
    }

    /// Set in a cluster: sends an ISR change of a partition this broker leads to the controller.
    let isrChangeRequested = Mutex<(@Sendable (Partition, [Int32]) -> Void)?>(nil)

    /// Opens (or creates) the local replica of a partition named in a LeaderAndIsr request.
    func getOrCreatePartition(_ tp: TopicPartition, topicId: KafkaUUID, config: LogConfig, leadership: PartitionLeadership, minInsyncReplicas: Int) throws -> Partition {
        if let existing = partition(tp) {
            existing.log.updateConfig(config)
            existing.setMinInsyncReplicas(minInsyncReplicas)
            return existing
        }
        let log = try logManager.getOrCreate(tp, config: config)
        log.updateConfig(config)
        let partition = Partition(topicPartition: tp, topicId: topicId, log: log, leadership: leadership, minInsyncReplicas: minInsyncReplicas, brokerId: brokerId,
                                  highWatermarkMoved: hwListener)
        return partitions.withLock { all in
            if let raced = all[tp] { return raced }
            all[tp] = partition
            return partition
        }
    }

    /// StopReplica: the partition is no longer served here; with `delete` its log goes too.
    func stopReplica(_ tp: TopicPartition, delete: Bool) throws {
        producePurgatory.leadershipLost(tp)
        guard delete else { return }
        _ = partitions.withLock { $0.removeValue(forKey: tp) }
        purgatory.notify(tp, bytes: Int.max)
        if logManager.partitions.contains(tp) { try logManager.delete(tp) }
    }
}
