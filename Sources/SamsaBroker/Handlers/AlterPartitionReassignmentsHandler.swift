import KafkaProtocol
import NIOCore
import SamsaController

/// AlterPartitionReassignments 0 (KIP-455, to the controller): move partitions to new replicas
/// (Kafka's procedure: add the new ones, let them catch up into the ISR, switch, remove the old);
/// null replicas cancel a move in progress. NOT_CONTROLLER on any other broker.
struct AlterPartitionReassignmentsHandler: APIHandler {
    let controller: ControllerDriver
    var versions: ClosedRange<Int16> { 0...0 }

    func handle(_ request: AlterPartitionReassignmentsRequest, context: RequestContext) -> HandlerOutcome<AlterPartitionReassignmentsResponse> {
        var requested: [TopicPartitionKey: [Int32]?] = [:]
        for t in request.topics {
            for p in t.partitions { requested[TopicPartitionKey(t.name, p.partitionIndex)] = .some(p.replicas) }
        }
        let controller = self.controller
        return .later(context.eventLoop.makeFutureWithTask {
            var response = AlterPartitionReassignmentsResponse()
            switch await controller.submit(.alterPartitionReassignments(requested)) {
            case let .reassignments(results)?:
                let byTopic = Dictionary(grouping: results.keys, by: \.topic)
                response.responses = byTopic.keys.sorted().map { t in
                    .init(name: t, partitions: byTopic[t]!.sorted().map { k in
                        let code = results[k]!
                        return .init(partitionIndex: k.partition, errorCode: code.rawValue, errorMessage: code == .none ? nil : "\(code)")
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
