import KafkaProtocol
import SamsaMetadata

public struct ControllerConfig: Sendable, Equatable {
    /// `unclean.leader.election.enable` (broker default; a topic config of the same name overrides it).
    public var uncleanLeaderElectionEnable = false
    /// `auto.leader.rebalance.enable`.
    public var autoLeaderRebalanceEnable = true
    /// `leader.imbalance.per.broker.percentage`.
    public var leaderImbalancePerBrokerPercentage = 10
    public init() {}
}

/// A topic as the controller loads it from ZooKeeper: each partition's leadership and its state node's version.
public struct LoadedTopic: Sendable, Equatable {
    public var name: String
    public var configs: [String: String]
    public var partitions: [(leadership: PartitionLeadership, version: Int32)]
    public init(name: String, configs: [String: String] = [:], partitions: [(leadership: PartitionLeadership, version: Int32)]) {
        self.name = name
        self.configs = configs
        self.partitions = partitions
    }
    public static func == (a: Self, b: Self) -> Bool {
        a.name == b.name && a.configs == b.configs && a.partitions.map(\.leadership) == b.partitions.map(\.leadership)
            && a.partitions.map(\.version) == b.partitions.map(\.version)
    }
}

public struct ReplicaKey: Hashable, Sendable, Comparable {
    public var topic: String
    public var partition: Int32
    public var broker: Int32
    public init(_ topic: String, _ partition: Int32, _ broker: Int32) {
        self.topic = topic
        self.partition = partition
        self.broker = broker
    }
    public static func < (a: Self, b: Self) -> Bool { (a.topic, a.partition, a.broker) < (b.topic, b.partition, b.broker) }
}

/// One partition of an AlterPartition request (the leader proposing a new ISR).
public struct AlterPartitionItem: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var leaderEpoch: Int32
    public var newIsr: [Int32]
    /// The partition state's version the leader last saw (the fence).
    public var partitionEpoch: Int32
    public init(topic: String, partition: Int32, leaderEpoch: Int32, newIsr: [Int32], partitionEpoch: Int32) {
        self.topic = topic
        self.partition = partition
        self.leaderEpoch = leaderEpoch
        self.newIsr = newIsr
        self.partitionEpoch = partitionEpoch
    }
}

public struct AlterPartitionResult: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var error: KafkaErrorCode
    /// On success: the partition's leadership and its new partition epoch.
    public var leadership: PartitionLeadership?
    public var partitionEpoch: Int32
}

/// The ElectLeaders election types.
public enum ElectionType: Sendable, Equatable { case preferred, unclean }

/// Kafka's ZooKeeper-mode controller decisions (KafkaController, PartitionStateMachine, ReplicaStateMachine,
/// TopicDeletionManager) as a sans-IO state machine: each event mutates the controller's context and returns
/// the actions the driver performs (versioned writes first, then requests to brokers).
///
/// "Live" for elections means registered and not shutting down (Kafka's `liveBrokerIds`); requests go to
/// every registered broker, shutting-down ones included (`liveOrShuttingDownBrokers`).
public struct Controller: Sendable {
    struct PartitionRecord: Sendable {
        var leadership: PartitionLeadership
        var version: Int32
        var state: PartitionState
    }

    struct TopicInfo: Sendable {
        var configs: [String: String]
        var partitions: [PartitionRecord]
        var deleting = false
    }

    public let controllerId: Int32
    public let epoch: Int32
    public var config: ControllerConfig
    /// False once the controller resigned (a fenced write, or another controller took over).
    public private(set) var isActive = true
    public private(set) var brokers: [Int32: LiveBroker] = [:]
    public private(set) var shuttingDown: Set<Int32> = []
    var topics: [String: TopicInfo] = [:]
    public private(set) var replicaStates: [ReplicaKey: ReplicaState] = [:]
    /// Partitions being reassigned (see Controller+Reassignment.swift); RS itself is `leadership.replicas`.
    var reassignments: [TopicPartitionKey: PartitionReassignment] = [:]

    public init(controllerId: Int32, epoch: Int32, config: ControllerConfig = ControllerConfig(),
                brokers: [LiveBroker], topics: [LoadedTopic]) {
        self.controllerId = controllerId
        self.epoch = epoch
        self.config = config
        for b in brokers { self.brokers[b.id] = b }
        for t in topics {
            self.topics[t.name] = TopicInfo(configs: t.configs, partitions: t.partitions.map {
                PartitionRecord(leadership: $0.leadership, version: $0.version, state: .nonExistentPartition)
            })
        }
    }

    // MARK: Queries

    /// Brokers that may lead or be in the ISR: registered and not shutting down.
    public var liveBrokerIds: Set<Int32> { Set(brokers.keys).subtracting(shuttingDown) }
    public var topicNames: [String] { topics.keys.sorted() }

    public func leadership(_ topic: String, _ partition: Int32) -> PartitionLeadership? {
        record(TopicPartitionKey(topic, partition))?.leadership
    }
    public func partitionEpoch(_ topic: String, _ partition: Int32) -> Int32? {
        record(TopicPartitionKey(topic, partition))?.version
    }
    public func partitionState(_ topic: String, _ partition: Int32) -> PartitionState {
        record(TopicPartitionKey(topic, partition))?.state ?? .nonExistentPartition
    }
    public func replicaState(_ topic: String, _ partition: Int32, _ broker: Int32) -> ReplicaState {
        replicaStates[ReplicaKey(topic, partition, broker)] ?? .nonExistentReplica
    }
    public func isDeleting(_ topic: String) -> Bool { topics[topic]?.deleting ?? false }

    func record(_ tp: TopicPartitionKey) -> PartitionRecord? {
        guard let t = topics[tp.topic], tp.partition >= 0, Int(tp.partition) < t.partitions.count else { return nil }
        return t.partitions[Int(tp.partition)]
    }

    var allPartitions: [TopicPartitionKey] {
        topics.keys.sorted().flatMap { name in (0..<topics[name]!.partitions.count).map { TopicPartitionKey(name, Int32($0)) } }
    }

    func uncleanAllowed(_ topic: String) -> Bool {
        if let v = topics[topic]?.configs["unclean.leader.election.enable"] { return v.lowercased() == "true" }
        return config.uncleanLeaderElectionEnable
    }

    // MARK: Mutation helpers

    mutating func update(_ tp: TopicPartitionKey, _ body: (inout PartitionRecord) -> Void) {
        body(&topics[tp.topic]!.partitions[Int(tp.partition)])
    }

    /// Records a versioned write of the partition's new leadership (stamped with this controller's epoch).
    mutating func write(_ tp: TopicPartitionKey, _ leadership: PartitionLeadership, batch: inout RequestBatch) {
        var l = leadership
        l.controllerEpoch = epoch
        let expected = record(tp)!.version
        batch.writes.append(.writePartitionState(topic: tp.topic, leadership: l, expectedVersion: expected))
        update(tp) {
            $0.leadership = l
            $0.version = expected + 1
        }
    }

    /// Moves a replica to `target` when Kafka's replica state machine allows it; an invalid transition is
    /// refused (Kafka logs it) and reported as false.
    @discardableResult
    mutating func setReplicaState(_ key: ReplicaKey, _ target: ReplicaState) -> Bool {
        let current = replicaStates[key] ?? .nonExistentReplica
        guard current.canTransition(to: target) else { return false }
        if target == .nonExistentReplica { replicaStates[key] = nil } else { replicaStates[key] = target }
        return true
    }

    // MARK: Elections (PartitionStateMachine)

    /// Elects a leader for one partition with the given strategy; on success writes the new state (leader
    /// epoch + 1) and tells the replicas. Returns the error code when no leader could be chosen.
    @discardableResult
    mutating func elect(_ tp: TopicPartitionKey, _ strategy: ElectionStrategy, batch: inout RequestBatch) -> KafkaErrorCode {
        guard let rec = record(tp), !(topics[tp.topic]?.deleting ?? true) else { return .unknownTopicOrPartition }
        guard rec.state.canTransition(to: .onlinePartition) else { return .invalidRequest }
        let current = rec.leadership
        if current.controllerEpoch > epoch { return .staleControllerEpoch }
        let live = liveBrokerIds
        let assignment = current.replicas
        var leader: Int32?
        var newIsr = current.isr
        switch strategy {
        case .offline(let allowUnclean):
            leader = LeaderElection.offlinePartition(assignment: assignment, isr: current.isr, live: live,
                                                     uncleanAllowed: allowUnclean || uncleanAllowed(tp.topic))
            if let l = leader {
                newIsr = current.isr.contains(l) ? current.isr.filter { live.contains($0) } : [l]
            }
        case .reassignment(let target):
            leader = LeaderElection.reassignment(target: target, isr: current.isr, live: live)
        case .preferred:
            leader = LeaderElection.preferredReplica(assignment: assignment, isr: current.isr, live: live)
        case .controlledShutdown:
            leader = LeaderElection.controlledShutdown(assignment: assignment, isr: current.isr, live: live,
                                                       shuttingDown: shuttingDown)
            newIsr = current.isr.filter { !shuttingDown.contains($0) }
        }
        guard let newLeader = leader else {
            switch strategy {
            case .preferred: return .preferredLeaderNotAvailable
            default: return .eligibleLeadersNotAvailable
            }
        }
        var next = current
        next.leader = newLeader
        next.leaderEpoch = current.leaderEpoch + 1
        next.isr = newIsr
        write(tp, next, batch: &batch)
        update(tp) { $0.state = .onlinePartition }
        batch.addLeaderAndIsr(brokers: assignment.filter { brokers[$0] != nil }, tp)
        return .none
    }

    /// NewPartition → OnlinePartition: the first live replica leads at epoch 0, the live replicas are the ISR.
    @discardableResult
    mutating func initializePartition(_ tp: TopicPartitionKey, batch: inout RequestBatch) -> Bool {
        let rec = record(tp)!
        let live = liveBrokerIds
        let liveReplicas = rec.leadership.replicas.filter { live.contains($0) }
        guard let leader = liveReplicas.first else { return false }
        var l = PartitionLeadership(partition: tp.partition, leader: leader, leaderEpoch: 0, replicas: rec.leadership.replicas,
                                    isr: liveReplicas, controllerEpoch: epoch)
        l.controllerEpoch = epoch
        batch.writes.append(.writePartitionState(topic: tp.topic, leadership: l, expectedVersion: -1))
        update(tp) {
            $0.leadership = l
            $0.version = 0
            $0.state = .onlinePartition
        }
        batch.addLeaderAndIsr(brokers: l.replicas.filter { brokers[$0] != nil }, tp, isNew: true)
        return true
    }

    /// Kafka's triggerOnlinePartitionStateChange: every New or Offline partition (of topics not being deleted)
    /// goes online if it can.
    mutating func triggerOnlinePartitionStateChange(batch: inout RequestBatch) {
        for tp in allPartitions where !(topics[tp.topic]!.deleting) {
            switch record(tp)!.state {
            case .newPartition: initializePartition(tp, batch: &batch)
            case .offlinePartition: elect(tp, .offline(allowUnclean: false), batch: &batch)
            default: break
            }
        }
    }

    // MARK: Replica state machine

    /// A replica goes offline: the controller removes it from the ISR (keeping the last member) and, if it led,
    /// leaves the partition leaderless (Kafka's doRemoveReplicasFromIsr), bumping the leader epoch.
    mutating func replicaOffline(_ key: ReplicaKey, batch: inout RequestBatch, stopReplica: Bool) {
        let tp = TopicPartitionKey(key.topic, key.partition)
        setReplicaState(key, .offlineReplica)
        if stopReplica { batch.addStopReplica(broker: key.broker, tp, leaderEpoch: record(tp)!.leadership.leaderEpoch, delete: false) }
        guard let rec = record(tp), rec.state != .newPartition, rec.leadership.isr.contains(key.broker) else { return }
        let current = rec.leadership
        if current.controllerEpoch > epoch { return }
        var next = current
        next.isr = current.isr.count == 1 ? current.isr : current.isr.filter { $0 != key.broker }
        next.leader = key.broker == current.leader ? noLeader : current.leader
        next.leaderEpoch = current.leaderEpoch + 1
        write(tp, next, batch: &batch)
        batch.addLeaderAndIsr(brokers: current.replicas.filter { $0 != key.broker && brokers[$0] != nil }, tp)
    }

    // MARK: Events

    /// The controller has just been elected (KafkaController.onControllerFailover): replicas and partitions get
    /// their states from the loaded data, leaderless partitions are elected, and every broker gets the full metadata.
    public mutating func start() -> [ControllerAction] {
        guard isActive else { return [] }
        var batch = RequestBatch()
        for tp in allPartitions {
            let rec = record(tp)!
            for r in rec.leadership.replicas {
                replicaStates[ReplicaKey(tp.topic, tp.partition, r)] = brokers[r] != nil ? .onlineReplica : .offlineReplica
            }
            let state: PartitionState = rec.version < 0 ? .newPartition
                : (liveBrokerIds.contains(rec.leadership.leader) ? .onlinePartition : .offlinePartition)
            update(tp) { $0.state = state }
            // Kafka's ReplicaStateMachine.startup: every live replica of an online partition is told
            // its state again (a broker that restarted while there was no controller learns it here;
            // the others see the epoch they have and keep going).
            if state == .onlinePartition, !(topics[tp.topic]?.deleting ?? false) {
                batch.addLeaderAndIsr(brokers: rec.leadership.replicas.filter { brokers[$0] != nil }, tp)
            }
        }
        batch.addUpdateMetadata(brokers: Array(brokers.keys), allPartitions)
        triggerOnlinePartitionStateChange(batch: &batch)
        // Kafka's ReplicaStateMachine.startup: replicas on brokers that are gone leave the ISR, so
        // leaders do not wait for them (their high watermark would not move until the ISR shrank).
        for tp in allPartitions where !(topics[tp.topic]!.deleting) && record(tp)!.state == .onlinePartition {
            for r in record(tp)!.leadership.isr where brokers[r] == nil {
                replicaOffline(ReplicaKey(tp.topic, tp.partition, r), batch: &batch, stopReplica: false)
            }
        }
        resumeReassignments(batch: &batch)
        return batch.flush(self)
    }

    /// A broker registered (or re-registered with a new epoch: a bounce is a failure then a startup).
    public mutating func brokerRegistered(_ broker: LiveBroker) -> [ControllerAction] {
        guard isActive else { return [] }
        var actions: [ControllerAction] = []
        if let existing = brokers[broker.id] {
            if existing.epoch == broker.epoch { return [] }
            actions += brokerGone(broker.id)
        }
        var batch = RequestBatch()
        brokers[broker.id] = broker
        // Existing brokers learn of the new one; the new one gets everything.
        batch.addUpdateMetadata(brokers: brokers.keys.filter { $0 != broker.id }, [])
        batch.addUpdateMetadata(brokers: [broker.id], allPartitions)
        for tp in allPartitions where record(tp)!.leadership.replicas.contains(broker.id) {
            let key = ReplicaKey(tp.topic, tp.partition, broker.id)
            if topics[tp.topic]!.deleting {
                if replicaStates[key] == .replicaDeletionIneligible {
                    // Kafka's resumeDeletions: retry on the broker that is back.
                    setReplicaState(key, .offlineReplica)
                    setReplicaState(key, .replicaDeletionStarted)
                    batch.addStopReplica(broker: broker.id, tp, leaderEpoch: leaderDuringDelete, delete: true)
                }
                continue
            }
            setReplicaState(key, .onlineReplica)
            if record(tp)!.state != .newPartition { batch.addLeaderAndIsr(brokers: [broker.id], tp) }
        }
        triggerOnlinePartitionStateChange(batch: &batch)
        return actions + batch.flush(self)
    }

    /// A broker's registration is gone (its ZooKeeper session ended): KafkaController.onBrokerFailure.
    public mutating func brokerGone(_ id: Int32) -> [ControllerAction] {
        guard isActive, brokers[id] != nil else { return [] }
        var batch = RequestBatch()
        brokers[id] = nil
        shuttingDown.remove(id)
        let onBroker = allPartitions.filter { record($0)!.leadership.replicas.contains(id) }
        var leaderless = false
        for tp in onBroker where !topics[tp.topic]!.deleting && record(tp)!.leadership.leader == id {
            update(tp) { $0.state = .offlinePartition }
            leaderless = true
        }
        triggerOnlinePartitionStateChange(batch: &batch)
        for tp in onBroker {
            let key = ReplicaKey(tp.topic, tp.partition, id)
            if topics[tp.topic]!.deleting {
                if replicaStates[key] == .replicaDeletionStarted { setReplicaState(key, .replicaDeletionIneligible) }
                continue
            }
            replicaOffline(key, batch: &batch, stopReplica: false)
        }
        if !leaderless { batch.addUpdateMetadata(brokers: Array(brokers.keys), []) }
        return batch.flush(self)
    }

    /// CreateTopics: assigns replicas (unless given) over the registered brokers, writes the assignment, then
    /// brings the new partitions online (KafkaController.onNewPartitionCreation).
    public mutating func createTopic(_ name: String, partitions: Int, replicationFactor: Int, configs: [String: String] = [:],
                                     assignment explicit: [[Int32]]? = nil, startIndex: Int? = nil, replicaShift: Int? = nil)
        -> Result<[ControllerAction], AssignmentError> {
        guard isActive else { return .failure(AssignmentError(.notController, "This broker is no longer the controller.")) }
        if topics[name] != nil { return .failure(AssignmentError(.topicAlreadyExists, "Topic '\(name)' already exists.")) }
        let assignment: [[Int32]]
        do {
            if let explicit {
                try validate(explicit)
                assignment = explicit
            } else {
                assignment = try ReplicaAssignment.assign(
                    partitions: partitions, replicationFactor: replicationFactor, brokers: placements,
                    startIndex: startIndex, replicaShift: replicaShift)
            }
        } catch { return .failure(error) }
        topics[name] = TopicInfo(configs: configs, partitions: [])
        return .success(addPartitions(name, assignment))
    }

    /// CreatePartitions: new partitions continue the topic's assignment pattern (or use the given one).
    public mutating func createPartitions(_ name: String, newTotal: Int, assignment explicit: [[Int32]]? = nil,
                                          replicaShift: Int? = nil) -> Result<[ControllerAction], AssignmentError> {
        guard isActive else { return .failure(AssignmentError(.notController, "This broker is no longer the controller.")) }
        guard let topic = topics[name], !topic.deleting else {
            return .failure(AssignmentError(.unknownTopicOrPartition, "Topic '\(name)' does not exist."))
        }
        let existing = topic.partitions.map(\.leadership.replicas)
        let added: [[Int32]]
        do throws(AssignmentError) {
            if let explicit {
                if existing.count + explicit.count != newTotal {
                    throw AssignmentError(.invalidReplicaAssignment,
                                          "Increasing the number of partitions by \(newTotal - existing.count) but \(explicit.count) assignments provided.")
                }
                try validate(explicit, replicationFactor: existing.first?.count)
                added = explicit
            } else {
                added = try ReplicaAssignment.assignAdditional(existing: existing, newTotal: newTotal, brokers: placements,
                                                               replicaShift: replicaShift)
            }
        } catch { return .failure(error) }
        return .success(addPartitions(name, added))
    }

    var placements: [BrokerPlacement] { brokers.values.sorted { $0.id < $1.id }.map { BrokerPlacement(id: $0.id, rack: $0.rack) } }

    func validate(_ assignment: [[Int32]], replicationFactor: Int? = nil) throws(AssignmentError) {
        if assignment.isEmpty { throw AssignmentError(.invalidReplicaAssignment, "The replica assignment is empty.") }
        let rf = replicationFactor ?? assignment[0].count
        for (p, replicas) in assignment.enumerated() {
            if replicas.isEmpty { throw AssignmentError(.invalidReplicaAssignment, "Partition \(p) has no replicas.") }
            if Set(replicas).count != replicas.count {
                throw AssignmentError(.invalidReplicaAssignment, "Duplicate replica assignment found: \(replicas).")
            }
            if replicas.count != rf {
                throw AssignmentError(.invalidReplicaAssignment, "All partitions should have the same number of replicas.")
            }
            if let unknown = replicas.first(where: { brokers[$0] == nil }) {
                throw AssignmentError(.invalidReplicaAssignment, "Unknown broker \(unknown) in the replica assignment.")
            }
        }
    }

    mutating func addPartitions(_ name: String, _ assignment: [[Int32]]) -> [ControllerAction] {
        var batch = RequestBatch()
        let all = (topics[name]!.partitions.map(\.leadership.replicas)) + assignment
        batch.writes.append(.writeAssignment(topic: name, replicas: all))
        let first = topics[name]!.partitions.count
        var created: [TopicPartitionKey] = []
        for (i, replicas) in assignment.enumerated() {
            let p = Int32(first + i)
            topics[name]!.partitions.append(PartitionRecord(
                leadership: PartitionLeadership(partition: p, leader: noLeader, leaderEpoch: -1, replicas: replicas, isr: [], controllerEpoch: epoch),
                version: -1, state: .newPartition))
            created.append(TopicPartitionKey(name, p))
            for r in replicas { setReplicaState(ReplicaKey(name, p, r), .newReplica) }
        }
        for tp in created { initializePartition(tp, batch: &batch) }
        for tp in created {
            for r in record(tp)!.leadership.replicas {
                let key = ReplicaKey(tp.topic, tp.partition, r)
                setReplicaState(key, brokers[r] != nil ? .onlineReplica : .offlineReplica)
            }
        }
        return batch.flush(self)
    }

    /// DeleteTopics (TopicDeletionManager): the partitions go Offline → NonExistent, every broker learns the
    /// topic is being deleted (leader -2), replicas on live brokers get StopReplica(delete); replicas on dead
    /// brokers wait (ReplicaDeletionIneligible) until their broker is back.
    public mutating func deleteTopic(_ name: String) -> (error: KafkaErrorCode, actions: [ControllerAction]) {
        guard isActive else { return (.notController, []) }
        guard topics[name] != nil, !topics[name]!.deleting else { return (.unknownTopicOrPartition, []) }
        topics[name]!.deleting = true
        dropReassignments(ofTopic: name)
        var batch = RequestBatch()
        let parts = allPartitions.filter { $0.topic == name }
        for tp in parts {
            update(tp) { $0.state = .offlinePartition }
            batch.addUpdateMetadata(brokers: Array(brokers.keys), [tp], deleting: true)
            for r in record(tp)!.leadership.replicas {
                let key = ReplicaKey(name, tp.partition, r)
                setReplicaState(key, .offlineReplica)
                if brokers[r] != nil {
                    setReplicaState(key, .replicaDeletionStarted)
                    batch.addStopReplica(broker: r, tp, leaderEpoch: leaderDuringDelete, delete: true)
                } else {
                    setReplicaState(key, .replicaDeletionIneligible)
                }
            }
            update(tp) { $0.state = .nonExistentPartition }
        }
        return (.none, batch.flush(self))
    }

    /// A broker answered a StopReplica(delete). When every replica of the topic is deleted the topic's nodes go.
    public mutating func replicaDeletionCompleted(broker: Int32, topic: String, partition: Int32,
                                                  error: KafkaErrorCode = .none) -> [ControllerAction] {
        guard isActive, topics[topic]?.deleting == true else { return [] }
        let key = ReplicaKey(topic, partition, broker)
        guard replicaStates[key] == .replicaDeletionStarted else { return [] }
        setReplicaState(key, error == .none ? .replicaDeletionSuccessful : .replicaDeletionIneligible)
        let keys = replicaStates.keys.filter { $0.topic == topic }
        guard keys.allSatisfy({ replicaStates[$0] == .replicaDeletionSuccessful }) else { return [] }
        for k in keys { setReplicaState(k, .nonExistentReplica) }
        topics[topic] = nil
        return [.deleteTopicNodes(topic: topic)]
    }

    /// AlterPartition from a partition leader (KafkaController.processAlterPartition), fenced by the broker
    /// epoch, the leader epoch and the partition epoch (the state node's version).
    public mutating func alterPartition(brokerId: Int32, brokerEpoch: Int64, items: [AlterPartitionItem])
        -> (error: KafkaErrorCode, results: [AlterPartitionResult], actions: [ControllerAction]) {
        guard isActive else { return (.notController, [], []) }
        guard let broker = brokers[brokerId], broker.epoch == brokerEpoch else { return (.staleBrokerEpoch, [], []) }
        var batch = RequestBatch()
        var results: [AlterPartitionResult] = []
        for item in items {
            let tp = TopicPartitionKey(item.topic, item.partition)
            func fail(_ e: KafkaErrorCode) {
                results.append(AlterPartitionResult(topic: item.topic, partition: item.partition, error: e, leadership: nil, partitionEpoch: -1))
            }
            guard let rec = record(tp), !topics[tp.topic]!.deleting, rec.state != .newPartition else {
                fail(.unknownTopicOrPartition); continue
            }
            let current = rec.leadership
            if item.partitionEpoch > rec.version || item.leaderEpoch > current.leaderEpoch { fail(.notController); continue }
            if item.leaderEpoch < current.leaderEpoch { fail(.fencedLeaderEpoch); continue }
            if current.leader != brokerId { fail(.notLeaderOrFollower); continue }
            if item.newIsr == current.isr {
                results.append(AlterPartitionResult(topic: item.topic, partition: item.partition, error: .none,
                                                    leadership: current, partitionEpoch: rec.version))
                continue
            }
            if item.partitionEpoch < rec.version { fail(.invalidUpdateVersion); continue }
            let live = liveBrokerIds
            if item.newIsr.contains(where: { !live.contains($0) || !current.replicas.contains($0) }) || !item.newIsr.contains(brokerId)
                || Set(item.newIsr).count != item.newIsr.count {
                fail(.ineligibleReplica); continue
            }
            var next = current
            next.isr = item.newIsr
            write(tp, next, batch: &batch)
            batch.addUpdateMetadata(brokers: Array(brokers.keys), [tp])
            let after = record(tp)!
            results.append(AlterPartitionResult(topic: item.topic, partition: item.partition, error: .none,
                                                leadership: after.leadership, partitionEpoch: after.version))
        }
        completeReassignments(items.map { TopicPartitionKey($0.topic, $0.partition) }, batch: &batch)
        return (.none, results, batch.flush(self))
    }

    /// ControlledShutdown (KafkaController.doControlledShutdown): leadership moves to another in-sync replica,
    /// the broker leaves the ISR of the partitions it follows (StopReplica without delete). Returns the
    /// partitions it still leads (no other in-sync replica); the broker retries until that is empty.
    public mutating func controlledShutdown(brokerId: Int32, brokerEpoch: Int64)
        -> (error: KafkaErrorCode, remaining: [TopicPartitionKey], actions: [ControllerAction]) {
        guard isActive else { return (.notController, [], []) }
        guard let broker = brokers[brokerId] else { return (.brokerNotAvailable, [], []) }
        guard broker.epoch == brokerEpoch else { return (.staleBrokerEpoch, [], []) }
        shuttingDown.insert(brokerId)
        var batch = RequestBatch()
        let toActOn = allPartitions.filter {
            let rec = record($0)!
            return !topics[$0.topic]!.deleting && rec.leadership.replicas.count > 1 && rec.leadership.replicas.contains(brokerId)
                && rec.state == .onlinePartition
        }
        let led = toActOn.filter { record($0)!.leadership.leader == brokerId }
        let followed = toActOn.filter { record($0)!.leadership.leader != brokerId }
        for tp in led {
            elect(tp, .controlledShutdown, batch: &batch)
        }
        for tp in followed {
            replicaOffline(ReplicaKey(tp.topic, tp.partition, brokerId), batch: &batch, stopReplica: true)
        }
        let remaining = allPartitions.filter {
            let l = record($0)!.leadership
            return l.replicas.count > 1 && l.leader == brokerId
        }
        return (.none, remaining, batch.flush(self))
    }

    /// The periodic preferred-leader check (checkAndTriggerAutoLeaderRebalance): for each broker, the share of
    /// the partitions it prefers that it does not lead; above `leader.imbalance.per.broker.percentage`, each
    /// such partition whose preferred replica is live and in the ISR moves back to it.
    public mutating func checkPreferredLeaderImbalance() -> [ControllerAction] {
        guard isActive, config.autoLeaderRebalanceEnable else { return [] }
        var byPreferred: [Int32: [TopicPartitionKey]] = [:]
        for tp in allPartitions where !topics[tp.topic]!.deleting {
            if let first = record(tp)!.leadership.replicas.first { byPreferred[first, default: []].append(tp) }
        }
        var batch = RequestBatch()
        let live = liveBrokerIds
        for broker in byPreferred.keys.sorted() {
            let preferred = byPreferred[broker]!
            let notLed = preferred.filter { record($0)!.leadership.leader != broker }
            let ratio = Double(notLed.count) / Double(preferred.count)
            guard ratio > Double(config.leaderImbalancePerBrokerPercentage) / 100 else { continue }
            for tp in notLed where live.contains(broker) && record(tp)!.leadership.isr.contains(broker) {
                elect(tp, .preferred, batch: &batch)
            }
        }
        return batch.flush(self)
    }

    /// ElectLeaders: preferred (ELECTION_NOT_NEEDED when the preferred replica already leads) or unclean (only
    /// for partitions without a leader).
    public mutating func electLeaders(_ type: ElectionType, partitions: [TopicPartitionKey])
        -> (results: [TopicPartitionKey: KafkaErrorCode], actions: [ControllerAction]) {
        guard isActive else { return (Dictionary(uniqueKeysWithValues: partitions.map { ($0, .notController) }), []) }
        var batch = RequestBatch()
        var results: [TopicPartitionKey: KafkaErrorCode] = [:]
        for tp in partitions {
            guard let rec = record(tp), !topics[tp.topic]!.deleting else { results[tp] = .unknownTopicOrPartition; continue }
            switch type {
            case .preferred:
                if rec.leadership.leader == rec.leadership.replicas.first { results[tp] = .electionNotNeeded; continue }
                results[tp] = elect(tp, .preferred, batch: &batch)
            case .unclean:
                if liveBrokerIds.contains(rec.leadership.leader) { results[tp] = .electionNotNeeded; continue }
                results[tp] = elect(tp, .offline(allowUnclean: true), batch: &batch)
            }
        }
        return (results, batch.flush(self))
    }

    /// A conditional write failed (another controller changed the state) or `/controller` moved: resign.
    /// Every later event is refused (NOT_CONTROLLER) or ignored.
    public mutating func resign() {
        isActive = false
    }
}

/// Kafka's ControllerBrokerRequestBatch: requests gathered per broker during one event, sent at the end.
struct RequestBatch {
    var writes: [ControllerAction] = []
    var leaderAndIsr: [Int32: [TopicPartitionKey: Bool]] = [:]
    var updateMetadata: [Int32: Set<TopicPartitionKey>] = [:]
    var deleting: Set<TopicPartitionKey> = []
    var stopReplica: [Int32: [StopReplicaCommand.Partition]] = [:]
    /// Brokers that get the partitions' new state through UpdateMetadata along with every LeaderAndIsr.
    var metadataForAllLive: Set<TopicPartitionKey> = []

    mutating func addLeaderAndIsr(brokers: [Int32], _ tp: TopicPartitionKey, isNew: Bool = false) {
        for b in brokers { leaderAndIsr[b, default: [:]][tp] = isNew || (leaderAndIsr[b]?[tp] ?? false) }
        metadataForAllLive.insert(tp)
    }

    mutating func addUpdateMetadata(brokers: [Int32], _ partitions: [TopicPartitionKey], deleting: Bool = false) {
        for b in brokers { updateMetadata[b, default: []].formUnion(partitions) }
        if deleting { self.deleting.formUnion(partitions) }
    }

    mutating func addStopReplica(broker: Int32, _ tp: TopicPartitionKey, leaderEpoch: Int32, delete: Bool) {
        stopReplica[broker, default: []].append(.init(topic: tp.topic, partition: tp.partition, leaderEpoch: leaderEpoch, deletePartition: delete))
    }

    func info(_ c: Controller, _ tp: TopicPartitionKey, isNew: Bool = false, offline: Bool) -> PartitionStateInfo? {
        guard let rec = c.record(tp) else { return nil }
        var l = rec.leadership
        if deleting.contains(tp) { l.leader = leaderDuringDelete }
        return PartitionStateInfo(topic: tp.topic, leadership: l, partitionEpoch: rec.version,
                                  offlineReplicas: offline ? l.replicas.filter { c.brokers[$0] == nil } : [], isNew: isNew)
    }

    func flush(_ c: Controller) -> [ControllerAction] {
        var actions = writes
        var um = updateMetadata
        if !metadataForAllLive.isEmpty { for b in c.brokers.keys { um[b, default: []].formUnion(metadataForAllLive) } }
        let targets = Set(leaderAndIsr.keys).union(um.keys).union(stopReplica.keys).filter { c.brokers[$0] != nil }.sorted()
        let liveBrokers = c.brokers.values.sorted { $0.id < $1.id }
        for b in targets {
            let brokerEpoch = c.brokers[b]!.epoch
            if let parts = leaderAndIsr[b], !parts.isEmpty {
                let infos = parts.keys.sorted().compactMap { info(c, $0, isNew: parts[$0]!, offline: false) }
                let leaders = Set(infos.map(\.leader)).filter { c.brokers[$0] != nil }.sorted()
                actions.append(.send(broker: b, .leaderAndIsr(LeaderAndIsrCommand(
                    controllerId: c.controllerId, controllerEpoch: c.epoch, brokerEpoch: brokerEpoch, partitions: infos, liveLeaders: leaders))))
            }
            if let parts = um[b] {
                let infos = parts.sorted().compactMap { info(c, $0, offline: true) }
                actions.append(.send(broker: b, .updateMetadata(UpdateMetadataCommand(
                    controllerId: c.controllerId, controllerEpoch: c.epoch, brokerEpoch: brokerEpoch, partitions: infos,
                    liveBrokers: liveBrokers))))
            }
            if let parts = stopReplica[b], !parts.isEmpty {
                actions.append(.send(broker: b, .stopReplica(StopReplicaCommand(
                    controllerId: c.controllerId, controllerEpoch: c.epoch, brokerEpoch: brokerEpoch, partitions: parts))))
            }
        }
        return actions
    }
}
