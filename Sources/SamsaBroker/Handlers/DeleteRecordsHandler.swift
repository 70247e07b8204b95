import KafkaProtocol
import SamsaStorage

/// DeleteRecords 0–2: moves each partition's log start offset (-1: to the high watermark).
struct DeleteRecordsHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 0...2 }

    func handle(_ request: DeleteRecordsRequest, context: RequestContext) -> HandlerOutcome<DeleteRecordsResponse> {
        var response = DeleteRecordsResponse()
        for topic in request.topics {
            var t = DeleteRecordsResponse.DeleteRecordsTopicResult(name: topic.name)
            for p in topic.partitions {
                var r = DeleteRecordsResponse.DeleteRecordsPartitionResult(partitionIndex: p.partitionIndex, lowWatermark: -1)
                do {
                    let partition = try services.replicas.leaderPartition(TopicPartition(topic.name, p.partitionIndex))
                    r.lowWatermark = try partition.log.deleteRecords(before: p.offset)
                } catch {
                    r.errorCode = KafkaError.from(error).code.rawValue
                }
                t.partitions.append(r)
            }
            response.topics.append(t)
        }
        return .respond(response)
    }
}
