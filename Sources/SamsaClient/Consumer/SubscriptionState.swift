import DequeModule
import KafkaProtocol

/// What the consumer knows about its partitions (Kafka's `SubscriptionState`): the subscription or manual
/// assignment, each partition's positions, pause and reset state, and the fetched records waiting for `poll`.
/// Guarded by the consumer's lock; the fetcher, the coordinator and the offset lookup all work on it.
extension KafkaConsumer {
    struct PartitionState: Sendable {
        /// The next offset to hand to the application (nil until known).
        var position: Int64?
        /// The next offset to fetch (ahead of `position` while fetched data waits).
        var fetchPosition: Int64?
        var leaderEpoch: Int32 = -1
        var paused = false
        var highWatermark: Int64 = -1
        var resetTo: ConsumerConfiguration.OffsetReset?
        var fetching = false
        var committed: Int64?
        /// Bumped by every seek and reset, so that a slower, older position lookup never wins.
        var positionEpoch: UInt64 = 0
    }

    struct Chunk: Sendable {
        var tp: TopicPartition
        var records: [ConsumerRecord]
        var next: Int
        var bytes: Int
    }

    struct Group: Sendable {
        var memberId = ""
        var generation: Int32 = -1
        var protocolName: String?
        var rejoin = true
        var leader = false
    }

    struct SubscriptionState: Sendable {
        var subscription: [String]?
        var partitions: [TopicPartition: PartitionState] = [:]
        var order: [TopicPartition] = []
        var chunks = Deque<Chunk>()
        var bufferedBytes = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        var fetchingNodes: Set<Int32> = []
        var group = Group()
        var listener: RebalanceListener?
        var error: KafkaClientError?
        var closed = false
        var membershipWake: CheckedContinuation<Void, Never>?
    }
}

extension KafkaConsumer.SubscriptionState {
    mutating func dropChunks(of tp: TopicPartition) {
        let dropped = chunks.filter { $0.tp == tp }.reduce(0) { $0 + $1.bytes }
        chunks.removeAll { $0.tp == tp }
        bufferedBytes -= dropped
    }

    /// Hands out up to `max` buffered records, advancing positions.
    mutating func take(max: Int) -> [ConsumerRecord] {
        var out: [ConsumerRecord] = []
        while out.count < max, var chunk = chunks.first {
            guard let p = partitions[chunk.tp], !p.paused else {
                bufferedBytes -= chunk.bytes
                chunks.removeFirst()
                continue
            }
            let n = Swift.min(max - out.count, chunk.records.count - chunk.next)
            out.append(contentsOf: chunk.records[chunk.next..<(chunk.next + n)])
            chunk.next += n
            partitions[chunk.tp]!.position = chunk.records[chunk.next - 1].offset + 1
            partitions[chunk.tp]!.leaderEpoch = chunk.records[chunk.next - 1].leaderEpoch
            if chunk.next == chunk.records.count {
                bufferedBytes -= chunk.bytes
                chunks.removeFirst()
            } else {
                chunks[0] = chunk
            }
        }
        return out
    }
}
