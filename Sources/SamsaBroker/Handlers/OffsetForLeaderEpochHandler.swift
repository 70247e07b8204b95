import KafkaProtocol

/// OffsetForLeaderEpoch 0–4 (KIP-101/279/320): where a leader epoch ends in the leader's log, so
/// that a follower can truncate a divergent tail and a consumer can detect truncation after a
/// leader change. The current-leader-epoch check fences clients with stale metadata
/// (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH); an epoch newer than any known answers -1/-1.
struct OffsetForLeaderEpochHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 0...4 }

    func handle(_ request: OffsetForLeaderEpochRequest, context: RequestContext) -> HandlerOutcome<OffsetForLeaderEpochResponse> {
        var response = OffsetForLeaderEpochResponse()
        response.topics = request.topics.map { topic in
            .init(topic: topic.topic, partitions: topic.partitions.map { p in
                var result = OffsetForLeaderEpochResponse.EpochEndOffset(errorCode: 0, partition: p.partition, leaderEpoch: -1, endOffset: -1)
                do {
                    let partition = try services.replicas.leaderPartition(TopicPartition(topic.topic, p.partition))
                    if let code = partition.checkLeaderEpoch(p.currentLeaderEpoch) { throw KafkaError(code) }
                    let (epoch, end) = partition.log.endOffset(forLeaderEpoch: p.leaderEpoch)
                    result.leaderEpoch = epoch
                    result.endOffset = end
                } catch {
                    result.errorCode = KafkaError.from(error).code.rawValue
                }
                return result
            })
        }
        return .respond(response)
    }
}
