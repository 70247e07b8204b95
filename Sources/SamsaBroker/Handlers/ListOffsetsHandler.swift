import KafkaProtocol
import SamsaStorage

/// ListOffsets 1–10: earliest (-2), latest (-1: the high watermark), max timestamp (-3),
/// earliest local (-4), and the first offset at or after a timestamp.
struct ListOffsetsHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 1...10 }

    static let latest: Int64 = -1, earliest: Int64 = -2, maxTimestamp: Int64 = -3, earliestLocal: Int64 = -4, earliestPendingUpload: Int64 = -5

    func handle(_ request: ListOffsetsRequest, context: RequestContext) -> HandlerOutcome<ListOffsetsResponse> {
        var response = ListOffsetsResponse()
        for topic in request.topics {
            var t = ListOffsetsResponse.ListOffsetsTopicResponse(name: topic.name)
            for p in topic.partitions {
                var r = ListOffsetsResponse.ListOffsetsPartitionResponse(partitionIndex: p.partitionIndex)
                do {
                    let partition = try services.replicas.leaderPartition(TopicPartition(topic.name, p.partitionIndex))
                    if let code = partition.checkLeaderEpoch(p.currentLeaderEpoch) { throw KafkaError(code) }
                    let log = partition.log
                    let offsets = log.offsets
                    let epochs = log.leaderEpochCache
                    var found: (offset: Int64, timestamp: Int64)?
                    switch p.timestamp {
                    case Self.latest: found = (offsets.highWatermark, -1)
                    case Self.earliest, Self.earliestLocal: found = (offsets.logStartOffset, -1)
                    case Self.maxTimestamp: found = try log.offsetOfMaxTimestamp()
                    case Self.earliestPendingUpload: found = nil
                    default:
                        guard p.timestamp >= 0 else { throw KafkaError(.invalidRequest, "invalid timestamp \(p.timestamp)") }
                        found = try log.offsetForTimestamp(p.timestamp)
                        if let f = found, f.offset >= offsets.highWatermark { found = nil }
                    }
                    if let found {
                        r.offset = found.offset
                        r.timestamp = found.timestamp
                        r.leaderEpoch = found.offset == offsets.highWatermark && p.timestamp == Self.latest
                            ? partition.leadership.leaderEpoch : epochs.epoch(forOffset: found.offset)
                    } else {
                        r.offset = -1
                        r.timestamp = -1
                    }
                } catch {
                    r.errorCode = KafkaError.from(error).code.rawValue
                    r.offset = -1
                    r.timestamp = -1
                }
                t.partitions.append(r)
            }
            response.topics.append(t)
        }
        return .respond(response)
    }
}
