import KafkaProtocol

/// The controller's events, as Kafka's ControllerEventManager queues them: the driver puts each ZooKeeper watch
/// and each controller-bound request onto one serial queue and hands it to `Controller.handle`.
public enum ControllerEvent: Sendable, Equatable {
    case startup
    case brokerRegistered(LiveBroker)
    case brokerGone(Int32)
    case createTopic(name: String, partitions: Int, replicationFactor: Int, configs: [String: String], assignment: [[Int32]]?)
    case createPartitions(topic: String, newTotal: Int, assignment: [[Int32]]?)
    case deleteTopic(String)
    case replicaDeletionCompleted(broker: Int32, topic: String, partition: Int32, error: KafkaErrorCode)
    case alterPartition(brokerId: Int32, brokerEpoch: Int64, items: [AlterPartitionItem])
    case controlledShutdown(brokerId: Int32, brokerEpoch: Int64)
    case preferredLeaderImbalanceCheck
    case electLeaders(ElectionType, [TopicPartitionKey])
    /// AlterPartitionReassignments: a target replica list per partition, nil to cancel.
    case alterPartitionReassignments([TopicPartitionKey: [Int32]?])
    /// ListPartitionReassignments: the given partitions, nil for every ongoing reassignment.
    case listPartitionReassignments([TopicPartitionKey]?)
    /// A conditional write failed or `/controller` changed hands: resign.
    case controllerMoved
}

/// What one event produced: the actions, and the answer for events that came from a request.
public struct ControllerOutput: Sendable, Equatable {
    public enum Reply: Sendable, Equatable {
        case error(KafkaErrorCode, message: String?)
        case alterPartition(error: KafkaErrorCode, results: [AlterPartitionResult])
        case controlledShutdown(error: KafkaErrorCode, remaining: [TopicPartitionKey])
        case electLeaders([TopicPartitionKey: KafkaErrorCode])
        case reassignments([TopicPartitionKey: KafkaErrorCode])
        case ongoingReassignments([TopicPartitionKey: PartitionReassignment])
    }
    public var actions: [ControllerAction]
    public var reply: Reply?
}

extension Controller {
    public mutating func handle(_ event: ControllerEvent) -> ControllerOutput {
        switch event {
        case .startup:
            return ControllerOutput(actions: start(), reply: nil)
        case .brokerRegistered(let b):
            return ControllerOutput(actions: brokerRegistered(b), reply: nil)
        case .brokerGone(let id):
            return ControllerOutput(actions: brokerGone(id), reply: nil)
        case .createTopic(let name, let partitions, let rf, let configs, let assignment):
            switch createTopic(name, partitions: partitions, replicationFactor: rf, configs: configs, assignment: assignment) {
            case .success(let actions): return ControllerOutput(actions: actions, reply: .error(.none, message: nil))
            case .failure(let e): return ControllerOutput(actions: [], reply: .error(e.code, message: e.message))
            }
        case .createPartitions(let topic, let newTotal, let assignment):
            switch createPartitions(topic, newTotal: newTotal, assignment: assignment) {
            case .success(let actions): return ControllerOutput(actions: actions, reply: .error(.none, message: nil))
            case .failure(let e): return ControllerOutput(actions: [], reply: .error(e.code, message: e.message))
            }
        case .deleteTopic(let name):
            let r = deleteTopic(name)
            return ControllerOutput(actions: r.actions, reply: .error(r.error, message: nil))
        case .replicaDeletionCompleted(let broker, let topic, let partition, let error):
            return ControllerOutput(actions: replicaDeletionCompleted(broker: broker, topic: topic, partition: partition, error: error), reply: nil)
        case .alterPartition(let brokerId, let brokerEpoch, let items):
            let r = alterPartition(brokerId: brokerId, brokerEpoch: brokerEpoch, items: items)
            return ControllerOutput(actions: r.actions, reply: .alterPartition(error: r.error, results: r.results))
        case .controlledShutdown(let brokerId, let brokerEpoch):
            let r = controlledShutdown(brokerId: brokerId, brokerEpoch: brokerEpoch)
            return ControllerOutput(actions: r.actions, reply: .controlledShutdown(error: r.error, remaining: r.remaining))
        case .preferredLeaderImbalanceCheck:
            return ControllerOutput(actions: checkPreferredLeaderImbalance(), reply: nil)
        case .electLeaders(let type, let partitions):
            let r = electLeaders(type, partitions: partitions)
            return ControllerOutput(actions: r.actions, reply: .electLeaders(r.results))
        case .alterPartitionReassignments(let requested):
            let r = alterPartitionReassignments(requested)
            return ControllerOutput(actions: r.actions, reply: .reassignments(r.results))
        case .listPartitionReassignments(let partitions):
            let r = listPartitionReassignments(partitions)
            if r.error != .none { return ControllerOutput(actions: [], reply: .error(r.error, message: nil)) }
            return ControllerOutput(actions: [], reply: .ongoingReassignments(r.reassignments))
        case .controllerMoved:
            resign()
            return ControllerOutput(actions: [], reply: nil)
        }
    }
}
