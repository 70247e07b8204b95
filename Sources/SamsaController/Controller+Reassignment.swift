import KafkaProtocol
import SamsaMetadata

/// A partition's full replica assignment (Kafka's `ReplicaAssignment`): the replica set RS and, while a
/// reassignment runs, the replicas being added (AR = TRS - ORS) and removed (RR = ORS - TRS).
///
/// As in Kafka, RS lists the target replicas first, then the remaining original ones
/// (`(TRS ++ ORS).distinct`): [1, 2, 3] → [2, 3, 4] runs as RS [2, 3, 4, 1], adding [4], removing [1].
/// A cancellation therefore cannot always restore the original order (Kafka has the same limit).
public struct PartitionReassignment: Sendable, Hashable, CustomStringConvertible {
    public var replicas: [Int32]
    public var adding: [Int32]
    public var removing: [Int32]

    public init(replicas: [Int32], adding: [Int32] = [], removing: [Int32] = []) {
        self.replicas = replicas
        self.adding = adding
        self.removing = removing
    }

    public var isBeingReassigned: Bool { !adding.isEmpty || !removing.isEmpty }
    /// ORS: the replicas before the reassignment.
    public var originReplicas: [Int32] { replicas.filter { !adding.contains($0) } }
    /// TRS: the replicas after it.
    public var targetReplicas: [Int32] { replicas.filter { !removing.contains($0) } }

    /// Kafka's `reassignTo`: a new target relative to the original replicas (so a new reassignment
    /// replaces an ongoing one, and reassigning to the original replicas cancels it).
    public func reassigned(to target: [Int32]) -> PartitionReassignment {
        let origin = originReplicas
        var full: [Int32] = []
        for r in target + origin where !full.contains(r) { full.append(r) }
        return PartitionReassignment(replicas: full, adding: full.filter { !origin.contains($0) },
                                     removing: full.filter { !target.contains($0) })
    }

    public var description: String { "replicas \(replicas) adding \(adding) removing \(removing)" }
}

/// Partition reassignment (KIP-455) as Kafka's ZooKeeper-mode controller runs it
/// (KafkaController.onPartitionReassignment):
///
/// - U (assignment update): RS = TRS + ORS, AR, RR are written to the topic's assignment
///   (`.writeReassignment`, Kafka's `adding_replicas` / `removing_replicas` in `/brokers/topics/<t>`) before
///   anything else, so a new controller can resume; replicas that a replaced or cancelled reassignment no
///   longer needs are stopped and deleted.
/// - A (TRS not all in the ISR): the leader epoch is bumped and RS gets LeaderAndIsr (the adding replicas
///   with isNew), which starts the new replicas as followers; they catch up and the leader adds them to
///   the ISR with AlterPartition.
/// - B (TRS ⊆ ISR, checked after every successful AlterPartition): the leader moves into TRS if needed
///   (the `.reassignment(target:)` election), then in one versioned write replicas = TRS, ISR = ISR ∩ TRS,
///   leader epoch + 1; TRS gets LeaderAndIsr, every broker UpdateMetadata; the removed replicas go
///   OfflineReplica (StopReplica without delete) → ReplicaDeletionStarted (StopReplica with delete) →
///   ReplicaDeletionSuccessful → NonExistentReplica without waiting for the answers (as Kafka does);
///   last, the final assignment (RS = TRS, no AR/RR) is written — the persisted ORS is only dropped once
///   everything else is done.
///
/// Differences from Kafka, on purpose: Kafka's B3 and B4 are separate writes (leader move, then one ISR
/// shrink per removed replica); here they are one write. Kafka refuses to delete a topic with a
/// reassignment in progress and resumes the deletion afterwards; here deleting the topic drops its
/// reassignments (every replica in RS is deleted). When the leader is not live or was removed while a
/// reassignment is still in phase A, a clean election among RS picks a new one (Kafka only bumps the epoch).
extension Controller {
    // MARK: Queries

    /// The partition's full assignment (its replicas, plus what is being added and removed).
    func fullAssignment(_ tp: TopicPartitionKey) -> PartitionReassignment {
        let replicas = record(tp)!.leadership.replicas
        guard let r = reassignments[tp] else { return PartitionReassignment(replicas: replicas) }
        return PartitionReassignment(replicas: replicas, adding: r.adding, removing: r.removing)
    }

    /// Kafka's isReassignmentComplete: nothing to add or remove, or every target replica is in the ISR.
    func isReassignmentComplete(_ tp: TopicPartitionKey) -> Bool {
        let a = fullAssignment(tp)
        guard a.isBeingReassigned else { return true }
        return Set(a.targetReplicas).isSubset(of: record(tp)!.leadership.isr)
    }

    /// The whole topic's assignment as Kafka writes it to `/brokers/topics/<t>`: every partition's replicas,
    /// and `adding_replicas` / `removing_replicas` for the partitions being reassigned.
    func reassignmentWrite(_ topic: String) -> ControllerAction {
        var adding: [Int32: [Int32]] = [:]
        var removing: [Int32: [Int32]] = [:]
        for (tp, r) in reassignments where tp.topic == topic {
            if !r.adding.isEmpty { adding[tp.partition] = r.adding }
            if !r.removing.isEmpty { removing[tp.partition] = r.removing }
        }
        return .writeReassignment(topic: topic, replicas: topics[topic]!.partitions.map(\.leadership.replicas),
                                  adding: adding, removing: removing)
    }

    // MARK: Requests

    /// AlterPartitionReassignments: a target replica list starts (or replaces) a reassignment, nil cancels one.
    /// Errors per partition: UNKNOWN_TOPIC_OR_PARTITION (no such partition, or its topic is being deleted),
    /// INVALID_REPLICA_ASSIGNMENT (empty, duplicate or negative ids, or an added replica on a broker that is
    /// not live — as Kafka, replicas the partition already has may be on a dead broker),
    /// NO_REASSIGNMENT_IN_PROGRESS (cancel without one), LEADER_NOT_AVAILABLE (the partition was never
    /// brought online). NOT_CONTROLLER for every partition once this controller resigned.
    public mutating func alterPartitionReassignments(_ requested: [TopicPartitionKey: [Int32]?])
        -> (results: [TopicPartitionKey: KafkaErrorCode], actions: [ControllerAction]) {
        guard isActive else { return (requested.mapValues { _ in .notController }, []) }
        var batch = RequestBatch()
        var results: [TopicPartitionKey: KafkaErrorCode] = [:]
        for tp in requested.keys.sorted() {
            results[tp] = submitReassignment(tp, requested[tp]!, batch: &batch)
        }
        return (results, batch.flush(self))
    }

    /// ListPartitionReassignments: the ongoing reassignments among `partitions` (nil: all of them).
    /// Partitions that do not exist or are not being reassigned are left out, as Kafka does.
    public func listPartitionReassignments(_ partitions: [TopicPartitionKey]? = nil)
        -> (error: KafkaErrorCode, reassignments: [TopicPartitionKey: PartitionReassignment]) {
        guard isActive else { return (.notController, [:]) }
        var result: [TopicPartitionKey: PartitionReassignment] = [:]
        for tp in partitions ?? Array(reassignments.keys) {
            guard record(tp) != nil, !(topics[tp.topic]?.deleting ?? true), reassignments[tp] != nil else { continue }
            result[tp] = fullAssignment(tp)
        }
        return (.none, result)
    }

    /// Controller failover: the reassignments found in the topics' `adding_replicas` / `removing_replicas`.
    /// Call before `.startup`, which resumes them (Kafka's initializePartitionReassignments). The loaded
    /// replicas are authoritative: `replicas` is ignored and adding/removing are kept to RS members.
    public mutating func restoreReassignments(_ loaded: [TopicPartitionKey: PartitionReassignment]) {
        for (tp, r) in loaded {
            guard let rec = record(tp) else { continue }
            let replicas = rec.leadership.replicas
            let a = PartitionReassignment(replicas: replicas, adding: r.adding.filter { replicas.contains($0) },
                                          removing: r.removing.filter { replicas.contains($0) })
            reassignments[tp] = a.isBeingReassigned && a.targetReplicas.count > 0 ? a : nil
        }
    }

    // MARK: Hooks from other events

    /// At startup (after the partitions are online): every restored reassignment resumes — phase A again
    /// (epoch bump, LeaderAndIsr to RS) or, when its target is already in sync, phase B.
    mutating func resumeReassignments(batch: inout RequestBatch) {
        for tp in reassignments.keys.sorted() {
            guard let rec = record(tp), !topics[tp.topic]!.deleting, rec.state != .newPartition else {
                reassignments[tp] = nil
                continue
            }
            onPartitionReassignment(tp, fullAssignment(tp), batch: &batch)
        }
    }

    /// After an ISR change (AlterPartition): partitions being reassigned whose target is now in sync complete.
    mutating func completeReassignments(_ partitions: [TopicPartitionKey], batch: inout RequestBatch) {
        for tp in Set(partitions).sorted() where reassignments[tp] != nil {
            guard let rec = record(tp), !topics[tp.topic]!.deleting, rec.leadership.controllerEpoch <= epoch else { continue }
            if isReassignmentComplete(tp) { onPartitionReassignment(tp, fullAssignment(tp), batch: &batch) }
        }
    }

    /// A topic is being deleted: its reassignments end with it.
    mutating func dropReassignments(ofTopic name: String) {
        reassignments = reassignments.filter { $0.key.topic != name }
    }

    // MARK: The procedure

    mutating func submitReassignment(_ tp: TopicPartitionKey, _ target: [Int32]?, batch: inout RequestBatch) -> KafkaErrorCode {
        guard let rec = record(tp), !topics[tp.topic]!.deleting else { return .unknownTopicOrPartition }
        let current = fullAssignment(tp)
        if let target {
            if target.isEmpty || Set(target).count != target.count || target.contains(where: { $0 < 0 }) {
                return .invalidReplicaAssignment
            }
            let live = liveBrokerIds
            if current.reassigned(to: target).adding.contains(where: { !live.contains($0) }) { return .invalidReplicaAssignment }
        } else if !current.isBeingReassigned {
            return .noReassignmentInProgress
        }
        if rec.state == .newPartition { return .leaderNotAvailable }
        if rec.leadership.controllerEpoch > epoch { return .staleControllerEpoch }
        onPartitionReassignment(tp, current.reassigned(to: target ?? current.originReplicas), batch: &batch)
        return .none
    }

    /// Kafka's onPartitionReassignment for one partition and its new full assignment.
    mutating func onPartitionReassignment(_ tp: TopicPartitionKey, _ next: PartitionReassignment, batch: inout RequestBatch) {
        // U: the new assignment is recorded (store first, then memory); replicas no longer needed stop.
        let current = fullAssignment(tp)
        if current != next {
            update(tp) { $0.leadership.replicas = next.replicas }
            reassignments[tp] = next.isBeingReassigned ? next : nil
            batch.writes.append(reassignmentWrite(tp.topic))
            stopRemovedReplicas(tp, current.replicas.filter { !next.replicas.contains($0) }, batch: &batch)
        }
        if isReassignmentComplete(tp) {
            finishReassignment(tp, batch: &batch)
        } else {
            // A1: bump the leader epoch, RS learns the new assignment (the added replicas as new ones).
            let live = liveBrokerIds
            var l = record(tp)!.leadership
            l.leaderEpoch += 1
            if !live.contains(l.leader) || !next.replicas.contains(l.leader) {
                l.leader = LeaderElection.offlinePartition(assignment: next.replicas, isr: l.isr, live: live, uncleanAllowed: false) ?? noLeader
            }
            write(tp, l, batch: &batch)
            update(tp) { $0.state = live.contains(l.leader) ? .onlinePartition : .offlinePartition }
            batch.addLeaderAndIsr(brokers: next.originReplicas.filter { brokers[$0] != nil }, tp)
            batch.addLeaderAndIsr(brokers: next.adding.filter { brokers[$0] != nil }, tp, isNew: true)
            // A2: the added replicas start as NewReplica.
            for r in next.adding { setReplicaState(ReplicaKey(tp.topic, tp.partition, r), .newReplica) }
        }
    }

    /// Phase B: the target is in sync (or nothing is being added or removed any more).
    mutating func finishReassignment(_ tp: TopicPartitionKey, batch: inout RequestBatch) {
        let a = fullAssignment(tp)
        let target = a.targetReplicas
        // B1: the added replicas are online.
        for r in a.adding {
            let key = ReplicaKey(tp.topic, tp.partition, r)
            if brokers[r] != nil { setReplicaState(key, .onlineReplica) } else { setReplicaState(key, .offlineReplica) }
        }
        // B2: RS = TRS in memory.
        update(tp) { $0.leadership.replicas = target }
        reassignments[tp] = nil
        // B3 (+ B4's ISR shrink): leader in TRS, ISR ∩ TRS, one write; TRS hears it, every broker gets UpdateMetadata.
        let live = liveBrokerIds
        let current = record(tp)!.leadership
        var l = current
        if !target.contains(l.leader) || !live.contains(l.leader) {
            l.leader = LeaderElection.reassignment(target: target, isr: current.isr, live: live) ?? noLeader
        }
        let inTarget = current.isr.filter { target.contains($0) }
        // Nothing of the target in sync (only after a cancellation): keep the ISR, as ZooKeeper mode keeps its last member.
        if !inTarget.isEmpty { l.isr = inTarget }
        l.leaderEpoch += 1
        write(tp, l, batch: &batch)
        update(tp) { $0.state = live.contains(l.leader) ? .onlinePartition : .offlinePartition }
        batch.addLeaderAndIsr(brokers: target.filter { brokers[$0] != nil }, tp)
        // B4, B5: the removed replicas stop and are deleted.
        stopRemovedReplicas(tp, a.removing, batch: &batch)
        // B6: the final assignment, last (until now the store still knew ORS).
        batch.writes.append(reassignmentWrite(tp.topic))
    }

    /// Kafka's stopRemovedReplicasOfReassignedPartition: OfflineReplica (out of the ISR if still in it,
    /// StopReplica without delete), ReplicaDeletionStarted (StopReplica with delete), then
    /// ReplicaDeletionSuccessful and NonExistentReplica without waiting for the broker's answer.
    mutating func stopRemovedReplicas(_ tp: TopicPartitionKey, _ removed: [Int32], batch: inout RequestBatch) {
        for r in removed {
            let key = ReplicaKey(tp.topic, tp.partition, r)
            replicaOffline(key, batch: &batch, stopReplica: true)
            setReplicaState(key, .replicaDeletionStarted)
            batch.addStopReplica(broker: r, tp, leaderEpoch: record(tp)!.leadership.leaderEpoch, delete: true)
            setReplicaState(key, .replicaDeletionSuccessful)
            setReplicaState(key, .nonExistentReplica)
        }
        // The leader itself was removed (an election during the reassignment had picked an added replica, then the
        // reassignment was replaced or cancelled): the partition is offline until the caller's next step elects.
        if !removed.isEmpty, record(tp)!.leadership.leader == noLeader, record(tp)!.state == .onlinePartition {
            update(tp) { $0.state = .offlinePartition }
        }
    }
}
