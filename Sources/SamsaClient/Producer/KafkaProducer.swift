import KafkaCompression
import KafkaWire
import DequeModule
import KafkaProtocol
import KafkaRecords
import Logging
import NIOCore
import Synchronization

public struct ProducerConfiguration: Sendable {
    public enum Acks: Int16, Sendable {
        case none = 0, leader = 1, all = -1
    }

    public var client: ClientConfiguration
    /// `acks` (idempotence requires `.all`).
    public var acks: Acks = .all
    /// `enable.idempotence`: producer id + sequence numbers, so retries never duplicate or reorder.
    public var enableIdempotence = true
    /// `linger.ms`: how long a batch waits for more records.
    public var lingerMs: Int64 = 5
    /// `batch.size`: bytes per partition batch before it is sent.
    public var batchSize = 16_384
    /// `max.in.flight.requests.per.connection` (at most 5 with idempotence).
    public var maxInFlightPerConnection = 5
    /// `compression.type`
    public var compression: CompressionCodec = .none
    /// `compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level` (KIP-390), Kafka's defaults
    /// (-1: zlib's default, 9, 3) and ranges (-1 or 1...9, 1...17, -131072...22).
    public var compressionGzipLevel = KafkaCompression.defaultLevel(.gzip)!
    public var compressionLz4Level = KafkaCompression.defaultLevel(.lz4)!
    public var compressionZstdLevel = KafkaCompression.defaultLevel(.zstd)!
    /// The level for the codec in `compression` (one of the three above; nil for codecs without levels).
    /// Setting it for snappy or none is an invalid configuration.
    public var compressionLevel: Int? {
        get {
            switch compression {
            case .gzip: compressionGzipLevel
            case .lz4: compressionLz4Level
            case .zstd: compressionZstdLevel
            case .none, .snappy: nil
            }
        }
        set {
            switch compression {
            case .gzip: compressionGzipLevel = newValue ?? KafkaCompression.defaultLevel(.gzip)!
            case .lz4: compressionLz4Level = newValue ?? KafkaCompression.defaultLevel(.lz4)!
            case .zstd: compressionZstdLevel = newValue ?? KafkaCompression.defaultLevel(.zstd)!
            case .none, .snappy: levelForCodecWithoutLevels = newValue
            }
        }
    }
    private var levelForCodecWithoutLevels: Int?
    /// `delivery.timeout.ms`: a record fails if not acknowledged within this time.
    public var deliveryTimeoutMs: Int64 = 120_000
    /// `buffer.memory`: bytes that may wait to be sent before `send` suspends.
    public var bufferMemory = 32 << 20
    /// `request.timeout.ms` sent to the broker for acks.
    public var ackTimeoutMs: Int32 = 30_000
    /// Called once per acknowledged (or failed) batch; cheap delivery reporting for tools.
    public var onBatchCompleted: (@Sendable (BatchReport) -> Void)?
    /// Record each record's enqueue time so `BatchReport.enqueueNanos` can give latencies.
    public var trackLatency = false

    public init(client: ClientConfiguration = ClientConfiguration()) {
        self.client = client
    }

    func validated() throws -> ProducerConfiguration {
        var c = self
        if c.enableIdempotence {
            guard c.acks == .all else {
                throw KafkaClientError.invalidConfiguration("enableIdempotence requires acks=all; set enableIdempotence = false for acks \(c.acks.rawValue)")
            }
            c.maxInFlightPerConnection = min(c.maxInFlightPerConnection, 5)
        }
        guard c.maxInFlightPerConnection >= 1, c.batchSize > 0, c.lingerMs >= 0 else {
            throw KafkaClientError.invalidConfiguration("batchSize, lingerMs and maxInFlightPerConnection must be positive")
        }
        for (name, codec, level) in [("compression.gzip.level", CompressionCodec.gzip, c.compressionGzipLevel),
                                     ("compression.lz4.level", .lz4, c.compressionLz4Level),
                                     ("compression.zstd.level", .zstd, c.compressionZstdLevel)]
        where !KafkaCompression.isValidLevel(codec, level) {
            let range = KafkaCompression.levelRange(codec)!
            throw KafkaClientError.invalidConfiguration(
                "\(name) \(level) is out of range \(range.lowerBound)...\(range.upperBound)\(codec == .gzip ? " (or -1)" : "")")
        }
        if let level = c.levelForCodecWithoutLevels {
            throw KafkaClientError.invalidConfiguration("compression \(c.compression) has no levels (compressionLevel \(level))")
        }
        return c
    }

    /// Sets a setting by its Java client name (`compression.type`, `compression.gzip.level`,
    /// `compression.lz4.level`, `compression.zstd.level`, `linger.ms`, `batch.size`, `acks`, `enable.idempotence`,
    /// `max.in.flight.requests.per.connection`, `delivery.timeout.ms`, `buffer.memory`, `request.timeout.ms`),
    /// as tools take them (`name=value`). Unknown names and malformed values throw `invalidConfiguration`.
    public mutating func set(_ name: String, _ value: String) throws {
        func integer() throws -> Int {
            guard let n = Int(value) else {
                throw KafkaClientError.invalidConfiguration("\(name): '\(value)' is not an integer")
            }
            return n
        }
        switch name {
        case "compression.type":
            guard let codec = CompressionCodec.allCases.first(where: { $0.description == value.lowercased() }) else {
                throw KafkaClientError.invalidConfiguration("compression.type: '\(value)' is not none, gzip, snappy, lz4 or zstd")
            }
            compression = codec
        case "compression.gzip.level": compressionGzipLevel = try integer()
        case "compression.lz4.level": compressionLz4Level = try integer()
        case "compression.zstd.level": compressionZstdLevel = try integer()
        case "linger.ms": lingerMs = Int64(try integer())
        case "batch.size": batchSize = try integer()
        case "max.in.flight.requests.per.connection": maxInFlightPerConnection = try integer()
        case "delivery.timeout.ms": deliveryTimeoutMs = Int64(try integer())
        case "buffer.memory": bufferMemory = try integer()
        case "request.timeout.ms": ackTimeoutMs = Int32(clamping: try integer())
        case "enable.idempotence":
            guard let flag = Bool(value.lowercased()) else {
                throw KafkaClientError.invalidConfiguration("enable.idempotence: '\(value)' is not true or false")
            }
            enableIdempotence = flag
        case "acks":
            switch value.lowercased() {
            case "all", "-1": acks = .all
            case "1": acks = .leader
            case "0": acks = .none
            default: throw KafkaClientError.invalidConfiguration("acks: '\(value)' is not all, -1, 0 or 1")
            }
        default:
            throw KafkaClientError.invalidConfiguration("unknown producer setting '\(name)'")
        }
    }
}

/// A record to send. Keys decide the partition (murmur2, like the Java client) unless
/// `partition` is given; records without key stick to one partition per batch.
public struct ProducerRecord: Sendable {
    public var topic: String
    public var partition: Int32?
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]
    /// CreateTime in ms; now when nil.
    public var timestamp: Int64?

    public init(topic: String, partition: Int32? = nil, key: ByteBuffer? = nil, value: ByteBuffer?, headers: [RecordHeader] = [],
                timestamp: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }

    public init(topic: String, partition: Int32? = nil, key: String? = nil, value: String?, headers: [(String, String)] = [],
                timestamp: Int64? = nil) {
        self.init(topic: topic, partition: partition, key: key.map { ByteBuffer(string: $0) }, value: value.map { ByteBuffer(string: $0) },
                  headers: headers.map { RecordHeader(key: $0.0, value: ByteBuffer(string: $0.1)) }, timestamp: timestamp)
    }
}

/// Where an acknowledged record went.
public struct RecordMetadata: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    /// -1 when the broker does not say (acks=0).
    public var offset: Int64
    public var timestamp: Int64
}

public typealias DeliveryCallback = @Sendable (Result<RecordMetadata, KafkaClientError>) -> Void

/// One batch's outcome, for tools that count deliveries without per-record callbacks.
public struct BatchReport: Sendable {
    public var topicPartition: TopicPartition
    public var baseOffset: Int64
    public var recordCount: Int
    public var bytes: Int
    public var error: KafkaClientError?
    /// Monotonic enqueue time of each record (when `trackLatency`), and when the batch completed.
    public var enqueueNanos: [UInt64]
    public var completedNanos: UInt64
}

/// An asynchronous Kafka producer: per-partition batching (`linger.ms`, `batch.size`),
/// idempotent by default, several requests in flight per broker, retries that keep order.
public final class KafkaProducer: Sendable {
    let cluster: ClusterClient
    let config: ProducerConfiguration
    private let state = Mutex(State())

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

    private func enqueueSlowly(_ record: ProducerRecord, callback: DeliveryCallback?) async throws {
        while true {
            try await prepare(record)
            await waitForSpace()
            if try appendIfReady(record, callback: callback) { return }
        }
    }

    /// Makes sure the producer id and the topic's partition count are known.
    private func prepare(_ record: ProducerRecord) async throws {
        if state.withLock({ $0.closed }) { throw KafkaClientError.closed }
        if config.enableIdempotence, state.withLock({ $0.producerId < 0 }) { try await initProducerId() }
        if state.withLock({ $0.topics[record.topic] }) == nil {
            let topic = try await cluster.topic(record.topic, allowAutoCreate: true)
            state.withLock { s in
                if s.topics[record.topic] == nil { s.topics[record.topic] = TopicState(name: record.topic, count: Int32(topic.partitions.count)) }
            }
        }
    }

    private func waitForSpace() async {
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
    private func appendIfReady(_ record: ProducerRecord, callback: DeliveryCallback?) throws -> Bool {
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

    private func scheduleLinger(_ tp: TopicPartition, _ id: UInt64) {
        config.client.eventLoopGroup.next().scheduleTask(in: .milliseconds(config.lingerMs)) { [self] in
            let closed = state.withLock { s -> Bool in
                guard let topic = s.topics[tp.topic], let open = topic.open[Int(tp.partition)], open.id == id else { return false }
                s.close(open, in: topic)
                return true
            }
            if closed { drain() }
        }
    }

    private func closeOpenBatches() {
        state.withLock { s in
            for topic in s.topics.values {
                for case let open? in topic.open { s.close(open, in: topic) }
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

    private func initProducerId() async throws {
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

    // MARK: The sender

    /// Sends every batch that may go now: per partition in order, at most `maxInFlightPerConnection`
    /// requests per broker, one batch per partition per request.
    func drain() {
        var requests: [Int32: [Batch]] = [:]
        var expired: [Batch] = []
        var compressionFailures: [(Batch, KafkaClientError)] = []
        var missingLeaders: Set<String> = []
        var toConnect: [Int32] = []
        var sent: [(BrokerConnection, [Batch], Written)] = []
        let deliveryTimeout = UInt64(config.deliveryTimeoutMs) * 1_000_000
        state.withLock { s in
            guard !s.closed || s.unfinishedRecords > 0 else { return }
            let now = monotonicNanos()
            if config.lingerMs == 0 {
                for topic in s.topics.values {
                    for case let open? in topic.open where s.partitions[open.tp]?.ready.isEmpty ?? true
                        && (s.partitions[open.tp]?.inFlight ?? 0) < config.maxInFlightPerConnection {
                        s.close(open, in: topic)
                    }
                }
            }
            for tp in s.partitions.keys {
                // Mutated in place: a copy of the queue would copy its whole `ready` deque.
                guard let first = s.partitions[tp]!.ready.first else { continue }
                if first.baseSequence < 0, now > first.createdNanos, now - first.createdNanos > deliveryTimeout {
                    expired.append(s.partitions[tp]!.ready.removeFirst())
                    continue
                }
                if s.partitions[tp]!.retrying {
                    if s.partitions[tp]!.inFlight > 0 || now < s.partitions[tp]!.blockedUntil { continue }
                    s.partitions[tp]!.retrying = false
                }
                guard s.partitions[tp]!.inFlight < config.maxInFlightPerConnection else { continue }
                guard let leader = cluster.leader(of: tp) else { missingLeaders.insert(tp.topic); continue }
                guard s.inFlightPerNode[leader, default: 0] < config.maxInFlightPerConnection else { continue }
                let batch = s.partitions[tp]!.ready.removeFirst()
                if batch.bytes == nil {
                    if config.enableIdempotence {
                        batch.baseSequence = s.partitions[tp]!.nextSequence
                        s.partitions[tp]!.nextSequence &+= Int32(batch.recordCount)
                        batch.builder.header.baseSequence = batch.baseSequence
                        batch.builder.header.producerId = s.producerId
                        batch.builder.header.producerEpoch = s.producerEpoch
                    }
                    do {
                        batch.bytes = try batch.builder.build(compression: config.compression, level: config.compressionLevel)
                    } catch {
                        // Never sent uncompressed behind the application's back: the batch's records fail,
                        // and its sequence numbers go back to the next batch.
                        if batch.baseSequence >= 0 {
                            s.partitions[tp]!.nextSequence = batch.baseSequence
                            batch.baseSequence = -1
                        }
                        compressionFailures.append((batch, .compressionFailed(codec: "\(config.compression)", reason: "\(error)")))
                        continue
                    }
                }
                s.partitions[tp]!.inFlight += 1
                requests[leader, default: []].append(batch)
            }
            for (node, batches) in requests {
                if let connection = s.connections[node], connection.isActive {
                    s.inFlightPerNode[node, default: 0] += 1
                    // Written while holding the lock, so requests for a partition reach the socket
                    // in sequence order even when drains run on several threads at once. Their
                    // completions are attached after the lock is released.
                    sent.append((connection, batches, write(batches, on: connection)))
                } else {
                    // Not connected yet: put the batches back and connect.
                    for b in batches.reversed() {
                        s.partitions[b.tp]!.inFlight -= 1
                        s.partitions[b.tp]!.ready.prepend(b)
                    }
                    if s.connecting.insert(node).inserted { toConnect.append(node) }
                }
            }
        }
        for batch in expired {
            complete(batch, result: .failure(.timedOut(operation: "delivery to \(batch.tp)", milliseconds: config.deliveryTimeoutMs)))
        }
        for (batch, error) in compressionFailures {
            config.client.logger.error("producer batch failed", metadata: ["partition": "\(batch.tp)", "records": "\(batch.recordCount)", "error": "\(error)"])
            complete(batch, result: .failure(error))
        }
        for (connection, batches, written) in sent { handle(written, batches, on: connection) }
        for node in toConnect {
            Task {
                let connection = try? await cluster.connection(to: node)
                state.withLock { s in
                    s.connecting.remove(node)
                    if let connection { s.connections[node] = connection }
                }
                if connection == nil { try? await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000) }
                drain()
            }
        }
        if !missingLeaders.isEmpty {
            Task {
                if let m = try? await cluster.refreshMetadata(topics: Array(missingLeaders)) {
                    state.withLock { s in
                        for t in missingLeaders { if let topic = m.topics[t] { s.topics[t]?.resize(Int32(topic.partitions.count)) } }
                    }
                }
                try? await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000)
                drain()
            }
        }
    }

    /// A produce request handed to a connection: its response (or, for acks=0, its write).
    enum Written {
        case response(EventLoopFuture<ProduceResponse>)
        case writeOnly(EventLoopFuture<Void>)
        case failed(KafkaClientError)
    }

    /// Encodes one produce request for `batches` and writes it (no completion handling here).
    private func write(_ batches: [Batch], on connection: BrokerConnection) -> Written {
        var request = ProduceRequest(acks: config.acks.rawValue, timeoutMs: config.ackTimeoutMs)
        var byTopic: [String: [ProduceRequest.PartitionProduceData]] = [:]
        for b in batches { byTopic[b.tp.topic, default: []].append(.init(index: b.tp.partition, records: b.bytes)) }
        request.topicData = byTopic.map { .init(name: $0.key, partitionData: $0.value) }
        let version: Int16
        do { version = try connection.version(.produce, 3...11) } catch {
            return .failed(error as? KafkaClientError ?? .unsupportedVersion(api: "Produce", broker: connection.address))
        }
        if config.acks == .none { return .writeOnly(connection.sendWithoutResponse(request, version: version)) }
        return .response(connection.sendFuture(request, version: version))
    }

    private func handle(_ written: Written, _ batches: [Batch], on connection: BrokerConnection) {
        switch written {
        case let .failed(e):
            finishRequest(batches, node: connection.nodeId) { _ in .fail(e) }
        case let .writeOnly(future):
            future.whenComplete { result in
                self.finishRequest(batches, node: connection.nodeId) { _ in
                    switch result {
                    case .success: return .succeed(baseOffset: -1)
                    case .failure: return .retry(.connectionClosed(broker: connection.address))
                    }
                }
            }
        case let .response(future):
            future.whenComplete { result in
                switch result {
                case let .failure(error):
                    let e = error as? KafkaClientError ?? .connectionClosed(broker: connection.address)
                    _ = self.state.withLock { $0.connections.removeValue(forKey: connection.nodeId) }
                    self.finishRequest(batches, node: connection.nodeId) { _ in e.isRetriable ? .retry(e) : .fail(e) }
                case let .success(response):
                    var results: [TopicPartition: ProduceResponse.PartitionProduceResponse] = [:]
                    for t in response.responses {
                        for p in t.partitionResponses { results[TopicPartition(t.name, p.index)] = p }
                    }
                    self.finishRequest(batches, node: connection.nodeId) { batch in
                        guard let r = results[batch.tp] else {
                            return .retry(.malformedResponse("no result for \(batch.tp)"))
                        }
                        let code = KafkaErrorCode(r.errorCode)
                        switch code {
                        case .none: return .succeed(baseOffset: r.baseOffset, logAppendTime: r.logAppendTimeMs)
                        case .duplicateSequenceNumber: return .succeed(baseOffset: -1)
                        case .outOfOrderSequenceNumber where batch.attempts < 20:
                            // An earlier batch of this partition failed and is being retried.
                            return .retry(.broker(code: code, message: r.errorMessage, broker: connection.nodeId, topicPartition: batch.tp))
                        default:
                            let e = KafkaClientError.broker(code: code, message: r.errorMessage, broker: connection.nodeId, topicPartition: batch.tp)
                            return code.isRetriable ? .retry(e) : .fail(e)
                        }
                    }
                }
            }
        }
    }

    enum Outcome {
        case succeed(baseOffset: Int64, logAppendTime: Int64 = -1)
        case retry(KafkaClientError)
        case fail(KafkaClientError)
    }

    private func finishRequest(_ batches: [Batch], node: Int32, _ outcome: (Batch) -> Outcome) {
        var done: [(Batch, Result<(Int64, Int64), KafkaClientError>)] = []
        var needMetadata: Set<String> = []
        state.withLock { s in
            let now = monotonicNanos()
            s.inFlightPerNode[node, default: 1] -= 1
            for batch in batches {
                s.partitions[batch.tp]!.inFlight -= 1
                switch outcome(batch) {
                case let .succeed(offset, time):
                    done.append((batch, .success((offset, time))))
                case let .fail(e):
                    done.append((batch, .failure(e)))
                case let .retry(e):
                    batch.attempts += 1
                    if now > batch.createdNanos, now - batch.createdNanos > UInt64(config.deliveryTimeoutMs) * 1_000_000 {
                        done.append((batch, .failure(e)))
                        continue
                    }
                    if case let .broker(code, _, _, _) = e, code == .notLeaderOrFollower || code == .unknownTopicOrPartition || code == .leaderNotAvailable {
                        needMetadata.insert(batch.tp.topic)
                    }
                    // Back in sequence order, ahead of batches not sent yet.
                    let index = s.partitions[batch.tp]!.ready.firstIndex { $0.baseSequence < 0 || $0.baseSequence > batch.baseSequence }
                        ?? s.partitions[batch.tp]!.ready.endIndex
                    s.partitions[batch.tp]!.ready.insert(batch, at: index)
                    s.partitions[batch.tp]!.retrying = true
                    s.partitions[batch.tp]!.blockedUntil = now + UInt64(config.client.retryBackoffMs) * 1_000_000
                }
            }
        }
        for (batch, result) in done {
            switch result {
            case let .success((offset, time)): complete(batch, result: .success((offset, time)))
            case let .failure(e): complete(batch, result: .failure(e))
            }
        }
        if !needMetadata.isEmpty {
            Task {
                _ = try? await cluster.refreshMetadata(topics: Array(needMetadata))
                drain()
            }
        }
        if done.count < batches.count {
            config.client.eventLoopGroup.next().scheduleTask(in: .milliseconds(config.client.retryBackoffMs)) { self.drain() }
        }
        drain()
    }

    private func complete(_ batch: Batch, result: Result<(Int64, Int64), KafkaClientError>) {
        let completed = monotonicNanos()
        if batch.hasCallbacks {
            for (i, callback) in batch.callbacks.enumerated() {
                guard let callback else { continue }
                switch result {
                case let .success((base, time)):
                    callback(.success(RecordMetadata(topic: batch.tp.topic, partition: batch.tp.partition,
                                                     offset: base < 0 ? -1 : base + Int64(i), timestamp: time)))
                case let .failure(e):
                    callback(.failure(e))
                }
            }
        }
        if let report = config.onBatchCompleted {
            let (base, error): (Int64, KafkaClientError?) = switch result {
            case let .success((b, _)): (b, nil)
            case let .failure(e): (-1, e)
            }
            report(BatchReport(topicPartition: batch.tp, baseOffset: base, recordCount: batch.recordCount, bytes: batch.bytes?.readableBytes ?? 0,
                               error: error, enqueueNanos: batch.enqueueNanos, completedNanos: completed))
        }
        let (flushers, spacers) = state.withLock { s -> ([CheckedContinuation<Void, Never>], [CheckedContinuation<Void, Never>]) in
            s.unfinishedRecords -= batch.recordCount
            s.bufferedBytes -= batch.size
            var f: [CheckedContinuation<Void, Never>] = [], w: [CheckedContinuation<Void, Never>] = []
            if s.unfinishedRecords == 0 { swap(&f, &s.flushWaiters) }
            if s.bufferedBytes <= config.bufferMemory { swap(&w, &s.spaceWaiters) }
            return (f, w)
        }
        for c in flushers { c.resume() }
        for c in spacers { c.resume() }
    }
}
