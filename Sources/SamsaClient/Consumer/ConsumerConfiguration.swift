import KafkaProtocol
import KafkaRecords
import NIOCore

public struct ConsumerConfiguration: Sendable {
    public enum OffsetReset: Sendable { case earliest, latest, none }
    public enum IsolationLevel: Int8, Sendable { case readUncommitted = 0, readCommitted = 1 }

    public var client: ClientConfiguration
    /// `group.id`: needed for `subscribe` and for committing offsets.
    public var groupId: String?
    /// `group.instance.id`: static membership (KIP-345).
    public var groupInstanceId: String?
    /// `auto.offset.reset`: where to start without a committed offset.
    public var autoOffsetReset: OffsetReset = .latest
    /// `enable.auto.commit` and `auto.commit.interval.ms`.
    public var enableAutoCommit = true
    public var autoCommitIntervalMs: Int64 = 5000
    /// `session.timeout.ms`, `heartbeat.interval.ms`, `max.poll.interval.ms` (rebalance timeout).
    public var sessionTimeoutMs: Int32 = 45_000
    public var heartbeatIntervalMs: Int64 = 3000
    public var rebalanceTimeoutMs: Int32 = 300_000
    /// `fetch.min.bytes`, `fetch.max.wait.ms`, `fetch.max.bytes`, `max.partition.fetch.bytes`.
    public var fetchMinBytes: Int32 = 1
    public var fetchMaxWaitMs: Int32 = 500
    public var fetchMaxBytes: Int32 = 52_428_800
    public var maxPartitionFetchBytes: Int32 = 1_048_576
    /// `max.poll.records`
    public var maxPollRecords = 500
    public var isolationLevel: IsolationLevel = .readUncommitted
    /// `partition.assignment.strategy`, most preferred first.
    public var assignors: [any PartitionAssignor] = [RangeAssignor(), CooperativeStickyAssignor()]
    /// How many fetched bytes may wait for the application before fetching pauses.
    public var maxBufferedBytes = 64 << 20

    public init(client: ClientConfiguration = ClientConfiguration(), groupId: String? = nil) {
        self.client = client
        self.groupId = groupId
    }
}

/// A record as consumed: key, value and header values are slices of the fetched data.
public struct ConsumerRecord: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var timestamp: Int64
    public var timestampType: TimestampType
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]
    public var leaderEpoch: Int32

    public var topicPartition: TopicPartition { TopicPartition(topic, partition) }
}

/// What happens to a consumer's partitions in a rebalance.
public struct RebalanceListener: Sendable {
    public var onAssigned: @Sendable ([TopicPartition]) async -> Void
    public var onRevoked: @Sendable ([TopicPartition]) async -> Void

    public init(onAssigned: @escaping @Sendable ([TopicPartition]) async -> Void = { _ in },
                onRevoked: @escaping @Sendable ([TopicPartition]) async -> Void = { _ in }) {
        self.onAssigned = onAssigned
        self.onRevoked = onRevoked
    }
}

/// `for try await record in consumer.records`: every record until the consumer closes.
public struct ConsumerRecords: AsyncSequence, Sendable {
    public typealias Element = ConsumerRecord
    let consumer: KafkaConsumer

    public struct AsyncIterator: AsyncIteratorProtocol {
        let consumer: KafkaConsumer
        var buffer: [ConsumerRecord] = []
        var index = 0

        public mutating func next() async throws -> ConsumerRecord? {
            while index >= buffer.count {
                do {
                    buffer = try await consumer.poll(timeoutMs: 1000)
                } catch KafkaClientError.closed {
                    return nil
                }
                index = 0
            }
            defer { index += 1 }
            return buffer[index]
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(consumer: consumer) }
}
