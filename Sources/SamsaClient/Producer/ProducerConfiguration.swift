import KafkaCompression
import KafkaProtocol
import KafkaRecords
import NIOCore

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
