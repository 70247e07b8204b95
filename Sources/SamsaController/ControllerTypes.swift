import KafkaProtocol
import SamsaMetadata

/// Kafka's partition states (PartitionStateMachine.scala).
public enum PartitionState: Sendable, Equatable {
    case newPartition, onlinePartition, offlinePartition, nonExistentPartition

    /// The states a partition may enter this one from.
    public var validPreviousStates: Set<PartitionState> {
        switch self {
        case .newPartition: [.nonExistentPartition]
        case .onlinePartition: [.newPartition, .onlinePartition, .offlinePartition]
        case .offlinePartition: [.newPartition, .onlinePartition, .offlinePartition]
        case .nonExistentPartition: [.offlinePartition]
        }
    }

    public func canTransition(to target: PartitionState) -> Bool { target.validPreviousStates.contains(self) }
}

/// Kafka's replica states (ReplicaStateMachine.scala).
public enum ReplicaState: Sendable, Equatable {
    case newReplica, onlineReplica, offlineReplica, replicaDeletionStarted, replicaDeletionSuccessful,
         replicaDeletionIneligible, nonExistentReplica

    public var validPreviousStates: Set<ReplicaState> {
        switch self {
        case .newReplica: [.nonExistentReplica]
        case .onlineReplica: [.newReplica, .onlineReplica, .offlineReplica, .replicaDeletionIneligible]
        case .offlineReplica: [.newReplica, .onlineReplica, .offlineReplica, .replicaDeletionIneligible]
        case .replicaDeletionStarted: [.offlineReplica]
        case .replicaDeletionSuccessful: [.replicaDeletionStarted]
        case .replicaDeletionIneligible: [.offlineReplica, .replicaDeletionStarted]
        case .nonExistentReplica: [.replicaDeletionSuccessful]
        }
    }

    public func canTransition(to target: ReplicaState) -> Bool { target.validPreviousStates.contains(self) }
}

public struct TopicPartitionKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }
    public static func < (a: Self, b: Self) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
    public var description: String { "\(topic)-\(partition)" }
}

/// Leader id meaning "no leader" (Kafka's LeaderAndIsr.NoLeader) and "being deleted" (LeaderDuringDelete).
public let noLeader: Int32 = -1
public let leaderDuringDelete: Int32 = -2

/// One partition's state in a LeaderAndIsr or UpdateMetadata request: its leadership (the one
/// `PartitionLeadership` type) plus what only these requests carry.
public struct PartitionStateInfo: Sendable, Equatable {
    public var topic: String
    public var leadership: PartitionLeadership
    /// The partition state's version (Kafka's zkVersion, the partition epoch).
    public var partitionEpoch: Int32
    /// Replicas on brokers that are not alive (UpdateMetadata only; empty in LeaderAndIsr).
    public var offlineReplicas: [Int32]
    /// LeaderAndIsr only: the partition was just created (the broker may create its log).
    public var isNew: Bool

    public init(topic: String, leadership: PartitionLeadership, partitionEpoch: Int32, offlineReplicas: [Int32] = [], isNew: Bool = false) {
        self.topic = topic
        self.leadership = leadership
        self.partitionEpoch = partitionEpoch
        self.offlineReplicas = offlineReplicas
        self.isNew = isNew
    }

    public var partition: Int32 { leadership.partition }
    public var controllerEpoch: Int32 { leadership.controllerEpoch }
    public var leader: Int32 { leadership.leader }
    public var leaderEpoch: Int32 { leadership.leaderEpoch }
    public var isr: [Int32] { leadership.isr }
    public var replicas: [Int32] { leadership.replicas }
}

/// A live broker as the controller knows it (`/brokers/ids/<id>`).
public struct LiveBroker: Sendable, Equatable {
    public var id: Int32
    /// The broker's epoch: the czxid of its registration node; a re-registration has a larger one.
    public var epoch: Int64
    public var rack: String?
    public init(id: Int32, epoch: Int64, rack: String? = nil) {
        self.id = id
        self.epoch = epoch
        self.rack = rack
    }
}

/// Controller-to-broker requests, as plain values (the broker wiring turns them into the generated messages).
/// Every one carries the controller's id and epoch; a broker refuses one whose epoch is older than the
/// newest it has seen (see `ControllerEpochFence`).
public struct LeaderAndIsrCommand: Sendable, Equatable {
    public var controllerId: Int32
    public var controllerEpoch: Int32
    public var brokerEpoch: Int64
    public var partitions: [PartitionStateInfo]
    /// The leaders named in `partitions`, so the broker can reach them.
    public var liveLeaders: [Int32]
}

public struct UpdateMetadataCommand: Sendable, Equatable {
    public var controllerId: Int32
    public var controllerEpoch: Int32
    public var brokerEpoch: Int64
    public var partitions: [PartitionStateInfo]
    public var liveBrokers: [LiveBroker]
}

public struct StopReplicaCommand: Sendable, Equatable {
    public struct Partition: Sendable, Equatable {
        public var topic: String
        public var partition: Int32
        /// The leader epoch at the time (Kafka sends LeaderDuringDelete's epoch -2 on deletion).
        public var leaderEpoch: Int32
        public var deletePartition: Bool
    }
    public var controllerId: Int32
    public var controllerEpoch: Int32
    public var brokerEpoch: Int64
    public var partitions: [Partition]
}

public enum BrokerRequest: Sendable, Equatable {
    case leaderAndIsr(LeaderAndIsrCommand)
    case updateMetadata(UpdateMetadataCommand)
    case stopReplica(StopReplicaCommand)

    public var controllerEpoch: Int32 {
        switch self {
        case .leaderAndIsr(let r): r.controllerEpoch
        case .updateMetadata(let r): r.controllerEpoch
        case .stopReplica(let r): r.controllerEpoch
        }
    }
}

/// What the driver must do, in order. Writes come first; if a conditional write fails (another controller
/// moved the state), the driver must stop and report `ControllerEvent.writeFenced` instead of sending.
public enum ControllerAction: Sendable, Equatable {
    /// Write `/brokers/topics/<t>/partitions/<p>/state` if its version is `expectedVersion`
    /// (-1: create it; it must not exist). The new version is expectedVersion + 1.
    case writePartitionState(topic: String, leadership: PartitionLeadership, expectedVersion: Int32)
    /// Write the topic's replica assignment (`/brokers/topics/<t>`).
    case writeAssignment(topic: String, replicas: [[Int32]])
    /// Write the topic's whole assignment (`/brokers/topics/<t>`) with Kafka's `adding_replicas` and
    /// `removing_replicas` (by partition; empty maps when no reassignment is left). Written during partition
    /// reassignments, so that a new controller can resume them (`Controller.restoreReassignments`).
    case writeReassignment(topic: String, replicas: [[Int32]], adding: [Int32: [Int32]], removing: [Int32: [Int32]])
    /// Remove the topic's nodes (its deletion finished on every replica).
    case deleteTopicNodes(topic: String)
    case send(broker: Int32, BrokerRequest)
}

/// Broker side: the newest controller epoch seen; requests from an older controller are refused
/// with STALE_CONTROLLER_EPOCH (Kafka's ReplicaManager / KafkaApis checks).
public struct ControllerEpochFence: Sendable, Equatable {
    public private(set) var latestEpoch: Int32
    public init(latestEpoch: Int32 = 0) { self.latestEpoch = latestEpoch }

    /// Accepts the request's epoch (remembering it when newer) or answers STALE_CONTROLLER_EPOCH.
    public mutating func admit(_ controllerEpoch: Int32) -> KafkaErrorCode {
        if controllerEpoch < latestEpoch { return .staleControllerEpoch }
        latestEpoch = controllerEpoch
        return .none
    }
}
