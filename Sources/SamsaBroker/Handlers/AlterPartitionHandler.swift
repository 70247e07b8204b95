import KafkaProtocol
import NIOCore
import SamsaController
import SamsaMetadata

/// AlterPartition 0–1 (partition leader → controller): a proposed ISR, fenced by the broker epoch,
/// the leader epoch and the partition epoch. NOT_CONTROLLER on any other broker.
struct AlterPartitionHandler: APIHandler {
    let controller: ControllerDriver
    var versions: ClosedRange<Int16> { 0...1 }

    func handle(_ request: AlterPartitionRequest, context: RequestContext) -> HandlerOutcome<AlterPartitionResponse> {
        let items = request.topics.flatMap { t in
            t.partitions.map { AlterPartitionItem(topic: t.topicName, partition: $0.partitionIndex, leaderEpoch: $0.leaderEpoch,
                                                  newIsr: $0.newIsr, partitionEpoch: $0.partitionEpoch) }
        }
        let controller = self.controller
        return .later(context.eventLoop.makeFutureWithTask {
            let reply = await controller.submit(.alterPartition(brokerId: request.brokerId, brokerEpoch: request.brokerEpoch, items: items))
            var response = AlterPartitionResponse()
            switch reply {
            case let .alterPartition(error, results)?:
                response.errorCode = error.rawValue
                let byTopic = Dictionary(grouping: results, by: \.topic)
                response.topics = byTopic.keys.sorted().map { t in
                    .init(topicName: t, partitions: byTopic[t]!.map { r in
                        .init(partitionIndex: r.partition, errorCode: r.error.rawValue, leaderId: r.leadership?.leader ?? -1,
                              leaderEpoch: r.leadership?.leaderEpoch ?? -1, isr: r.leadership?.isr ?? [], partitionEpoch: r.partitionEpoch)
                    })
                }
            case let .error(code, _)?:
                response.errorCode = code.rawValue
            default:
                response.errorCode = KafkaErrorCode.notController.rawValue
            }
            return response
        })
    }
}
