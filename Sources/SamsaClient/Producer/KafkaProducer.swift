import KafkaCompression
import KafkaWire
import DequeModule
import KafkaProtocol
import KafkaRecords
import Logging
import NIOCore
import Synchronization

/// An asynchronous Kafka producer: per-partition batching (`linger.ms`, `batch.size`),
/// idempotent by default, several requests in flight per broker, retries that keep order.
public final class KafkaProducer: Sendable {
    let cluster: ClusterClient
    let config: ProducerConfiguration
    let state = Mutex(State())

    public init(configuration: ProducerConfiguration) throws {
        self.config = try configuration.validated()
        self.cluster = ClusterClient(config: configuration.client)
    }

    // MARK: Sending

    /// Sends a record and waits for its acknowledgement.
    @discardableResult
    public func send(_ record: ProducerRecord) async throws -> RecordMetadata {
        try await withCheckedThrowingContinuation { continuation in
            let callback: DeliveryCallback = { continuation.resume(with: $0.mapError { $0 as any Error }) }
            do {
                if try appendIfReady(record, callback: callback) { return }
            } catch {
                continuation.resume(throwing: error)
                return
            }
            Task {
                do { try await self.enqueueSlowly(record, callback: callback) } catch { continuation.resume(throwing: error) }
            }
        }
    }

    /// Queues a record for sending; `callback` gets its delivery result. Suspends only while the
    /// buffer is full (`bufferMemory`) or the topic's metadata is first fetched; otherwise this is
    /// one lock and a copy of the record into its partition's batch.
    public func enqueue(_ record: ProducerRecord, callback: DeliveryCallback? = nil) async throws {
        if try appendIfReady(record, callback: callback) { return }
        try await enqueueSlowly(record, callback: callback)
    }

    func enqueueSlowly(_ record: ProducerRecord, callback: DeliveryCallback?) async throws {
        while true {
            try await prepare(record)
            await waitForSpace()
            if try appendIfReady(record, callback: callback) { return }
        }
    }

    /// Makes sure the producer id and the topic's partition count are known.
    func prepare(_ record: ProducerRecord) async throws {
        if state.withLock({ $0.closed }) { throw KafkaClientError.closed }
        if config.enableIdempotence, state.withLock({ $0.producerId < 0 }) { try await initProducerId() }
        if state.withLock({ $0.topics[record.topic] }) == nil {
            let topic = try await cluster.topic(record.topic, allowAutoCreate: true)
            state.withLock { s in
                if s.topics[record.topic] == nil { s.topics[record.topic] = TopicState(name: record.topic, count: Int32(topic.partitions.count)) }
            }
        }
    }

    /// Waits until every queued record has been acknowledged or has failed.
    public func flush() async {
        closeOpenBatches()
        drain()
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let wait = state.withLock { s -> Bool in
                guard s.unfinishedRecords > 0 else { return false }
                s.flushWaiters.append(c)
                return true
            }
            if !wait { c.resume() }
        }
    }

    /// Flushes, then closes connections. Later sends throw `.closed`.
    public func close() async {
        await flush()
        state.withLock { $0.closed = true }
        await cluster.close()
    }

    // MARK: Idempotence

    func initProducerId() async throws {
        let connection = try await cluster.anyConnection()
        let response = try await connection.send(InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: -1), range: 0...5)
        try KafkaClientError.check(response.errorCode, broker: connection.nodeId)
        state.withLock { s in
            if s.producerId < 0 {
                s.producerId = response.producerId
                s.producerEpoch = response.producerEpoch
            }
        }
    }
}
