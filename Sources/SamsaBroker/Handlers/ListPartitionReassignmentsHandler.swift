import KafkaProtocol
import NIOCore
import SamsaController

/// ListPartitionReassignments 0 (KIP-455, to the controller): the moves in progress, with the
/// replicas being added and removed. Null topics: every partition.
struct ListPartitionReassignmentsHandler: APIHandler {
    let controller: ControllerDriver
    var versions: ClosedRange<Int16> { 0...0 }

    func handle(_ request: ListPartitionReassignmentsRequest, context: RequestContext) -> HandlerOutcome<ListPartitionReassignmentsResponse> {
        let partitions = request.topics.map { topics in topics.flatMap { t in t.partitionIndexes.map { TopicPartitionKey(t.name, $0) } } }
        let controller = self.controller
        return .later(context.eventLoop.makeFutureWithTask {
            var response = ListPartitionReassignmentsResponse()
            switch await controller.submit(.listPartitionReassignments(partitions)) {
            case let .ongoingReassignments(ongoing)?:
                let byTopic = Dictionary(grouping: ongoing.keys, by: \.topic)
                response.topics = byTopic.keys.sorted().map { t in
                    .init(name: t, partitions: byTopic[t]!.sorted().map { k in
                        let r = ongoing[k]!
                        return .init(partitionIndex: k.partition, replicas: r.replicas, addingReplicas: r.adding, removingReplicas: r.removing)
                    })
                }
            case let .error(code, message)?:
                response.errorCode = code.rawValue
                response.errorMessage = message
            default:
                response.errorCode = KafkaErrorCode.notController.rawValue
            }
            return response
        })
    }
}
