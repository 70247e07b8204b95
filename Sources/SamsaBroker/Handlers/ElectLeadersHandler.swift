import KafkaProtocol
import NIOCore
import SamsaController

/// ElectLeaders 0–2: preferred or unclean leader elections, run by the controller (any other
/// broker answers NOT_CONTROLLER, as Kafka's ZooKeeper-mode brokers forward nothing). Null topics:
/// every partition.
struct ElectLeadersHandler: APIHandler {
    let controller: ControllerDriver
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 0...2 }

    func handle(_ request: ElectLeadersRequest, context: RequestContext) -> HandlerOutcome<ElectLeadersResponse> {
        let type: ElectionType = request.electionType == 1 ? .unclean : .preferred
        let partitions: [TopicPartitionKey] = request.topicPartitions.map { topics in
            topics.flatMap { t in t.partitions.map { TopicPartitionKey(t.topic, $0) } }
        } ?? services.cache.snapshot.topics.values.flatMap { t in t.partitions.map { TopicPartitionKey(t.name, $0.partition) } }
        let controller = self.controller
        let version = context.apiVersion
        return .later(context.eventLoop.makeFutureWithTask {
            let reply = await controller.submit(.electLeaders(type, partitions))
            var response = ElectLeadersResponse()
            var results: [TopicPartitionKey: KafkaErrorCode] = [:]
            switch reply {
            case let .electLeaders(r)?: results = r
            case let .error(code, _)?:
                if version >= 1 { response.errorCode = code.rawValue }
                for p in partitions { results[p] = code }
            default:
                for p in partitions { results[p] = .notController }
            }
            let byTopic = Dictionary(grouping: results.keys, by: \.topic)
            response.replicaElectionResults = byTopic.keys.sorted().map { t in
                .init(topic: t, partitionResult: byTopic[t]!.sorted().map { k in
                    .init(partitionId: k.partition, errorCode: results[k]!.rawValue, errorMessage: results[k]! == .none ? nil : "\(results[k]!)")
                })
            }
            return response
        })
    }
}
