import KafkaCompression
import KafkaWire
import DequeModule
import KafkaProtocol
import KafkaRecords
import Logging
import NIOCore
import Synchronization

/// The record accumulator (Kafka's `RecordAccumulator`): records appended to their partition's open batch
/// (`batch.size`, `linger.ms`, sticky partitioning for keyless records), closed batches queued per partition
/// for the sender, and `buffer.memory` accounting. All under the producer's lock.
extension KafkaProducer {
    final class Batch: @unchecked Sendable {
        let tp: TopicPartition
        var builder: RecordBatchBuilder
        var bytes: ByteBuffer?
        var callbacks: [DeliveryCallback?] = []
        var hasCallbacks = false
        var enqueueNanos: [UInt64] = []
        var recordCount = 0
        var size = 0
        var baseSequence: Int32 = -1
        let createdNanos: UInt64
        var attempts = 0
        let id: UInt64

        init(tp: TopicPartition, builder: RecordBatchBuilder, id: UInt64, now: UInt64) {
            self.tp = tp
            self.builder = builder
            self.id = id
            self.createdNanos = now
        }
    }

    /// What the per-record path needs of a topic, found with one lookup (or none, for the same
    /// topic as the previous record). Mutated only under the producer's lock.
    final class TopicState: @unchecked Sendable {
        let name: String
        var count: Int32
        var sticky: Int32 = -1
        /// The batch being filled, per partition.
        var open: [Batch?]

        init(name: String, count: Int32) {
            self.name = name
            self.count = count
            self.open = Array(repeating: nil, count: Int(count))
        }

        func resize(_ newCount: Int32) {
            guard newCount > count else { return }
            open += Array(repeating: nil, count: Int(newCount - count))
            count = newCount
        }
    }

    struct PartitionQueue {
        var ready = Deque<Batch>()
        var inFlight = 0
        var nextSequence: Int32 = 0
        var blockedUntil: UInt64 = 0
        var retrying = false
    }

    struct State: @unchecked Sendable {
        /// Batches waiting to be sent and in-flight accounting, per partition.
        var partitions: [TopicPartition: PartitionQueue] = [:]
        var inFlightPerNode: [Int32: Int] = [:]
        var connections: [Int32: BrokerConnection] = [:]
        var connecting: Set<Int32> = []
        var unfinishedRecords = 0
        var bufferedBytes = 0
        var flushWaiters: [CheckedContinuation<Void, Never>] = []
        var spaceWaiters: [CheckedContinuation<Void, Never>] = []
        var producerId: Int64 = -1
        var producerEpoch: Int16 = -1
        var nextBatchId: UInt64 = 0
        /// The topics written to, with their partition counts (from metadata) and open batches.
        var topics: [String: TopicState] = [:]
        var lastTopic: TopicState?
        var closed = false

        mutating func topic(_ name: String) -> TopicState? {
            if let last = lastTopic, last.name == name { return last }
            guard let t = topics[name] else { return nil }
            lastTopic = t
            return t
        }

        /// Moves a full or lingering batch to its partition's send queue.
        mutating func close(_ batch: Batch, in topic: TopicState) {
            topic.open[Int(batch.tp.partition)] = nil
            partitions[batch.tp, default: PartitionQueue()].ready.append(batch)
        }

        /// Appends to the partition's open batch. Returns whether a batch was closed (ready to
        /// send) and the id of a batch opened by this record.
        mutating func append(_ record: ProducerRecord, topic: TopicState, partition: Int32, estimated: Int, callback: DeliveryCallback?,
                             config: ProducerConfiguration) -> (closed: Bool, opened: UInt64?) {
            let p = Int(partition)
            var closed = false
            var opened: UInt64?
            if let open = topic.open[p], open.recordCount > 0, open.size + estimated > config.batchSize {
                close(open, in: topic)
                closed = true
            }
            let batch: Batch
            if let open = topic.open[p] {
                batch = open
            } else {
                batch = Batch(tp: TopicPartition(topic.name, partition), builder: RecordBatchBuilder(producerId: producerId, producerEpoch: producerEpoch),
                              id: nextBatchId, now: monotonicNanos())
                nextBatchId += 1
                topic.open[p] = batch
                opened = batch.id
            }
            batch.builder.append(key: record.key, value: record.value, headers: record.headers, timestamp: record.timestamp ?? currentTimeMillis())
            batch.recordCount += 1
            batch.size += estimated
            if let callback {
                if !batch.hasCallbacks {
                    batch.callbacks = Array(repeating: nil, count: batch.recordCount - 1)
                    batch.hasCallbacks = true
                }
                batch.callbacks.append(callback)
            } else if batch.hasCallbacks {
                batch.callbacks.append(nil)
            }
            if config.trackLatency { batch.enqueueNanos.append(monotonicNanos()) }
            if batch.size >= config.batchSize {
                close(batch, in: topic)
                closed = true
                if opened == batch.id { opened = nil }
            }
            unfinishedRecords += 1
            bufferedBytes += estimated
            return (closed, opened)
        }
    }

    func waitForSpace() async {
        guard state.withLock({ $0.bufferedBytes > config.bufferMemory }) else { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let wait = state.withLock { s -> Bool in
                guard s.bufferedBytes > config.bufferMemory, !s.closed else { return false }
                s.spaceWaiters.append(c)
                return true
            }
            if !wait { c.resume() }
        }
    }

    /// Adds the record to its partition's open batch if everything it needs is known and the buffer
    /// has room (false: take the slow path). One lock; the batch is mutated in place.
    func appendIfReady(_ record: ProducerRecord, callback: DeliveryCallback?) throws -> Bool {
        var estimated = 24 + (record.key?.readableBytes ?? 0) + (record.value?.readableBytes ?? 0)
        for h in record.headers { estimated += h.key.utf8.count + (h.value?.readableBytes ?? 0) + 4 }
        var lingerBatch: (TopicPartition, UInt64)?
        let outcome = try state.withLock { s -> Bool? in
            guard !s.closed else { throw KafkaClientError.closed }
            guard !config.enableIdempotence || s.producerId >= 0, s.bufferedBytes <= config.bufferMemory,
                  let topic = s.topic(record.topic) else { return nil }
            let count = topic.count
            let partition: Int32
            if let p = record.partition {
                guard p >= 0, p < count else {
                    throw KafkaClientError.broker(code: .unknownTopicOrPartition, message: "partition \(p) does not exist (topic has \(count))",
                                                  broker: nil, topicPartition: TopicPartition(record.topic, p))
                }
                partition = p
            } else if let key = record.key {
                partition = Murmur2.partition(for: key, partitionCount: count)
            } else if topic.sticky >= 0, topic.sticky < count {
                partition = topic.sticky
            } else {
                partition = Int32.random(in: 0..<count)
                topic.sticky = partition
            }
            let (closedOne, newBatch) = s.append(record, topic: topic, partition: partition, estimated: estimated, callback: callback, config: config)
            if let id = newBatch { lingerBatch = (TopicPartition(record.topic, partition), id) }
            if closedOne, record.partition == nil, record.key == nil { topic.sticky = Self.nextSticky(partition, count) }
            return closedOne
        }
        guard let closedOne = outcome else { return false }
        if let (tp, id) = lingerBatch, config.lingerMs > 0 { scheduleLinger(tp, id) }
        // With lingerMs 0 the drain takes open batches itself, but only for partitions that can
        // send now: while requests are in flight, records keep filling one batch (as in Kafka).
        if closedOne || config.lingerMs == 0 { drain() }
        return true
    }

    static func nextSticky(_ p: Int32, _ count: Int32) -> Int32 {
        count <= 1 ? 0 : (p + 1 + Int32.random(in: 0..<(count - 1))) % count
    }

    func scheduleLinger(_ tp: TopicPartition, _ id: UInt64) {
        config.client.eventLoopGroup.next().scheduleTask(in: .milliseconds(config.lingerMs)) { [self] in
            let closed = state.withLock { s -> Bool in
                guard let topic = s.topics[tp.topic], let open = topic.open[Int(tp.partition)], open.id == id else { return false }
                s.close(open, in: topic)
                return true
            }
            if closed { drain() }
        }
    }

    func closeOpenBatches() {
        state.withLock { s in
            for topic in s.topics.values {
                for case let open? in topic.open { s.close(open, in: topic) }
            }
        }
    }
}
