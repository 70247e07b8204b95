import KafkaProtocol
import KafkaWire
import NIOCore

/// Kafka's `TransactionState` with the ids it writes in `TransactionLogValue.transactionStatus`.
/// `PrepareEpochFence` is a transient state of the coordinator (a zombie's ongoing transaction is
/// being aborted with a bumped epoch) and is never written to the log.
public enum TransactionState: Int8, Sendable, CaseIterable, CustomStringConvertible {
    case empty = 0
    case ongoing = 1
    case prepareCommit = 2
    case prepareAbort = 3
    case completeCommit = 4
    case completeAbort = 5
    case dead = 6
    case prepareEpochFence = 7

    /// The names DescribeTransactions/ListTransactions use (Kafka's `TransactionState.name`).
    public var description: String {
        switch self {
        case .empty: "Empty"
        case .ongoing: "Ongoing"
        case .prepareCommit: "PrepareCommit"
        case .prepareAbort: "PrepareAbort"
        case .completeCommit: "CompleteCommit"
        case .completeAbort: "CompleteAbort"
        case .dead: "Dead"
        case .prepareEpochFence: "PrepareEpochFence"
        }
    }

    public init?(name: String) {
        guard let s = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = s
    }

    /// States in which a transactional id may expire (`transactional.id.expiration.ms`).
    var isExpirable: Bool { self == .empty || self == .completeCommit || self == .completeAbort }
}

/// The coordinator's view of one transactional id (Kafka's `TransactionMetadata`).
public struct TransactionMetadata: Sendable, Equatable {
    public var transactionalId: String
    public var producerId: Int64
    /// The producer id before the last rotation (epoch exhaustion), else -1. Persisted.
    public var previousProducerId: Int64
    public var producerEpoch: Int16
    /// The epoch before the last bump (KIP-360 retries of InitProducerId); not persisted, -1 after a load.
    public var lastProducerEpoch: Int16
    public var timeoutMs: Int32
    public var state: TransactionState
    public var partitions: Set<TopicPartition>
    /// -1 when no transaction is open.
    public var startTimestamp: Int64
    public var lastUpdateTimestamp: Int64

    public init(transactionalId: String, producerId: Int64, previousProducerId: Int64 = -1, producerEpoch: Int16, lastProducerEpoch: Int16 = -1,
                timeoutMs: Int32, state: TransactionState, partitions: Set<TopicPartition> = [], startTimestamp: Int64 = -1,
                lastUpdateTimestamp: Int64) {
        self.transactionalId = transactionalId
        self.producerId = producerId
        self.previousProducerId = previousProducerId
        self.producerEpoch = producerEpoch
        self.lastProducerEpoch = lastProducerEpoch
        self.timeoutMs = timeoutMs
        self.state = state
        self.partitions = partitions
        self.startTimestamp = startTimestamp
        self.lastUpdateTimestamp = lastUpdateTimestamp
    }

    /// Kafka: an epoch this close to `Short.MAX_VALUE` cannot be bumped; the producer id is rotated.
    public var isEpochExhausted: Bool { producerEpoch >= Int16.max - 1 }
}

/// One record for `__transaction_state`: key and value in the formats of Kafka's
/// `TransactionLogKey/Value` (a big-endian int16 version, then the struct). A nil value is a
/// tombstone (the transactional id expired).
public struct TransactionRecord: Sendable, Equatable {
    public var key: ByteBuffer
    public var value: ByteBuffer?

    public init(key: ByteBuffer, value: ByteBuffer?) {
        self.key = key
        self.value = value
    }
}

public enum TransactionRecordError: Error, Equatable {
    case unknownState(Int8)
    case unknownKeyVersion(Int16)
}

/// Encoding and decoding of `__transaction_state` records.
public enum TransactionRecords {
    /// Key version 0 (the only one), value version 1 (flexible: keeps the previous producer id).
    public static let keyVersion: Int16 = 0
    public static let valueVersion: Int16 = 1

    static func versioned<M: KafkaMessage>(_ message: M, version: Int16) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(version, endianness: .big)
        message.write(to: &b, version: version)
        return b
    }

    public static func key(_ transactionalId: String) -> ByteBuffer {
        versioned(TransactionLogKey(transactionalId: transactionalId), version: keyVersion)
    }

    public static func value(_ m: TransactionMetadata) -> ByteBuffer {
        let byTopic = Dictionary(grouping: m.partitions, by: \.topic)
        let partitions = byTopic.keys.sorted().map { topic in
            TransactionLogValue.PartitionsSchema(topic: topic, partitionIds: byTopic[topic]!.map(\.partition).sorted())
        }
        let v = TransactionLogValue(producerId: m.producerId, previousProducerId: m.previousProducerId, producerEpoch: m.producerEpoch,
                                    transactionTimeoutMs: m.timeoutMs, transactionStatus: m.state.rawValue,
                                    transactionPartitions: partitions, transactionLastUpdateTimestampMs: m.lastUpdateTimestamp,
                                    transactionStartTimestampMs: m.startTimestamp)
        return versioned(v, version: valueVersion)
    }

    public static func record(_ m: TransactionMetadata) -> TransactionRecord {
        TransactionRecord(key: key(m.transactionalId), value: value(m))
    }

    public static func tombstone(_ transactionalId: String) -> TransactionRecord {
        TransactionRecord(key: key(transactionalId), value: nil)
    }

    public static func decodeKey(_ key: ByteBuffer) throws -> String {
        var b = key
        let version = try b.readKafkaInt16()
        guard TransactionLogKey.validVersions.contains(version) else { throw TransactionRecordError.unknownKeyVersion(version) }
        return try TransactionLogKey(from: &b, version: version).transactionalId
    }

    /// The metadata a value describes (`lastProducerEpoch` is not in the log: -1).
    public static func decodeValue(_ value: ByteBuffer, transactionalId: String) throws -> TransactionMetadata {
        var b = value
        let version = try b.readKafkaInt16()
        let v = try TransactionLogValue(from: &b, version: version)
        guard let state = TransactionState(rawValue: v.transactionStatus) else { throw TransactionRecordError.unknownState(v.transactionStatus) }
        var partitions: Set<TopicPartition> = []
        for t in v.transactionPartitions ?? [] {
            for p in t.partitionIds { partitions.insert(TopicPartition(t.topic, p)) }
        }
        return TransactionMetadata(transactionalId: transactionalId, producerId: v.producerId, previousProducerId: v.previousProducerId,
                                   producerEpoch: v.producerEpoch, lastProducerEpoch: -1, timeoutMs: v.transactionTimeoutMs, state: state,
                                   partitions: partitions, startTimestamp: v.transactionStartTimestampMs,
                                   lastUpdateTimestamp: v.transactionLastUpdateTimestampMs)
    }

    /// The `__transaction_state` partition of a transactional id: Java's `String.hashCode`,
    /// Kafka's `Utils.abs`, modulo the partition count (as for groups).
    public static func partition(for transactionalId: String, partitions: Int32) -> Int32 {
        GroupRecords.partition(for: transactionalId, partitions: partitions)
    }
}
