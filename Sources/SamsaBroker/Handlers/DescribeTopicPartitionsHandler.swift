import KafkaProtocol
import SamsaMetadata

/// DescribeTopicPartitions 0 (KIP-966): topics with each partition's leader, epoch, replicas, ISR
/// and offline replicas, paginated as Kafka's handler does. Topics are served sorted by name (all
/// topics when the request lists none), from the request's cursor (topic, partition) on, with at
/// most `responsePartitionLimit` partitions (capped at Kafka's default
/// `max.request.partition.size.limit`, 2000); when that cuts the answer short, `nextCursor` names
/// the first partition left out. Unknown topics answer UNKNOWN_TOPIC_OR_PARTITION and count no
/// partitions. There is no ELR (KIP-966's eligible leaders are a KRaft notion): both lists are empty.
struct DescribeTopicPartitionsHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 0...0 }

    /// Kafka's default `max.request.partition.size.limit`.
    static let maxPartitionLimit: Int32 = 2000

    func handle(_ request: DescribeTopicPartitionsRequest, context: RequestContext) -> HandlerOutcome<DescribeTopicPartitionsResponse> {
        .respond(Self.describe(request, snapshot: services.cache.snapshot))
    }

    static func describe(_ request: DescribeTopicPartitionsRequest, snapshot: MetadataCache.Snapshot) -> DescribeTopicPartitionsResponse {
        typealias Cursor = DescribeTopicPartitionsResponse.Cursor
        var response = DescribeTopicPartitionsResponse()
        let fetchAll = request.topics.isEmpty
        // A malformed cursor fails every requested topic, as Kafka's error response does.
        if let cursor = request.cursor {
            let reason: String? = cursor.partitionIndex < 0 ? "the cursor's partition index must be non-negative"
                : (!fetchAll && !request.topics.contains { $0.name == cursor.topicName }) ? "the cursor's topic is not in the request's topics" : nil
            if reason != nil {
                response.topics = Set(request.topics.map(\.name)).sorted().map {
                    .init(errorCode: KafkaErrorCode.invalidRequest.rawValue, name: $0, topicId: .zero, isInternal: false, partitions: [])
                }
                return response
            }
        }
        let cursorTopic = request.cursor?.topicName ?? ""
        let names = (fetchAll ? Array(snapshot.topics.keys) : Array(Set(request.topics.map(\.name))))
            .filter { $0 >= cursorTopic }.sorted()
        let live = Set(snapshot.brokers.map(\.id))
        var remaining = Int(max(0, min(request.responsePartitionLimit, maxPartitionLimit)))

        var index = 0
        while index < names.count, remaining > 0 {
            let name = names[index]
            index += 1
            guard let topic = snapshot.topics[name] else {
                response.topics.append(.init(errorCode: KafkaErrorCode.unknownTopicOrPartition.rawValue, name: name, topicId: .zero,
                                             isInternal: false, partitions: []))
                continue
            }
            let start = Int(name == request.cursor?.topicName ? request.cursor!.partitionIndex : 0)
            let partitions = topic.partitions.filter { Int($0.partition) >= start }
            let taken = partitions.prefix(remaining)
            remaining -= taken.count
            response.topics.append(.init(errorCode: 0, name: name, topicId: topic.topicId, isInternal: topic.isInternal,
                                         partitions: taken.map { describe($0, live: live) },
                                         topicAuthorizedOperations: AclOperations.allTopic))
            if taken.count < partitions.count {
                response.nextCursor = Cursor(topicName: name, partitionIndex: partitions[taken.count].partition)
                return response
            }
        }
        // The limit was reached exactly at a topic's end: the next topic starts the next page.
        if remaining == 0, index < names.count { response.nextCursor = Cursor(topicName: names[index], partitionIndex: 0) }
        return response
    }

    static func describe(_ p: PartitionLeadership, live: Set<Int32>) -> DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponsePartition {
        let leaderLive = p.leader >= 0 && live.contains(p.leader)
        return .init(errorCode: leaderLive ? 0 : KafkaErrorCode.leaderNotAvailable.rawValue, partitionIndex: p.partition,
                     leaderId: leaderLive ? p.leader : -1, leaderEpoch: p.leaderEpoch, replicaNodes: p.replicas, isrNodes: p.isr,
                     eligibleLeaderReplicas: [], lastKnownElr: [], offlineReplicas: p.replicas.filter { !live.contains($0) })
    }
}
