import KafkaCompression
import KafkaProtocol
import NIOCore

// What a broker checks in a record batch before appending it, as Kafka's LogValidator does:
// batch-level checks (offset range against the record count, no control batches or idempotent
// batches without a sequence from clients) throw at once; record-level checks (offset deltas
// 0..n-1, keys on compacted topics, CreateTime timestamps within range) are collected per record
// and refuse the batch with every failing record's index (KIP-467 `record_errors`).

/// One record refused in a batch: its index in the batch (`batch_index`) and why.
public struct RecordError: Hashable, Sendable, CustomStringConvertible {
    public var batchIndex: Int32
    public var message: String

    public init(batchIndex: Int32, message: String) {
        self.batchIndex = batchIndex
        self.message = message
    }

    public var description: String { "RecordError(batchIndex=\(batchIndex), message='\(message)')" }
}

/// The topic settings record validation depends on.
public struct RecordValidationPolicy: Sendable, Equatable {
    /// The time the broker validates at (ms since the epoch).
    public var now: Int64
    /// `cleanup.policy` contains `compact`: every record needs a key.
    public var compacted: Bool
    /// `message.timestamp.type=LogAppendTime`: the broker stamps batches; producers may not.
    public var logAppendTime: Bool
    /// `message.timestamp.before.max.ms` / `message.timestamp.after.max.ms` (CreateTime only).
    public var timestampBeforeMaxMs: Int64
    public var timestampAfterMaxMs: Int64
    /// The batch comes from a client (Produce): control batches and idempotent batches without a
    /// sequence are refused, as Kafka refuses them for the client origin.
    public var fromClient: Bool
    /// For messages ("in topic partition t-0").
    public var topicPartition: String

    public init(now: Int64, compacted: Bool = false, logAppendTime: Bool = false, timestampBeforeMaxMs: Int64 = .max,
                timestampAfterMaxMs: Int64 = .max, fromClient: Bool = true, topicPartition: String = "") {
        self.now = now
        self.compacted = compacted
        self.logAppendTime = logAppendTime
        self.timestampBeforeMaxMs = timestampBeforeMaxMs
        self.timestampAfterMaxMs = timestampAfterMaxMs
        self.fromClient = fromClient
        self.topicPartition = topicPartition
    }
}

extension RecordBatch {
    /// Kafka's batch-level checks (LogValidator.validateBatch); throws INVALID_RECORD.
    public func validateBatchHeader(_ policy: RecordValidationPolicy) throws {
        let h = header
        let tp = policy.topicPartition
        if policy.fromClient {
            guard h.lastOffsetDelta >= 0 else {
                throw RecordBatchError.invalidRecord("Batch has an invalid offset range: [\(h.baseOffset), \(h.lastOffset)] in topic partition \(tp)")
            }
            guard h.recordCount > 0 else {
                throw RecordBatchError.invalidRecord("Invalid reported count for record batch: \(h.recordCount) in topic partition \(tp)")
            }
            guard Int64(h.lastOffsetDelta) + 1 == Int64(h.recordCount) else {
                throw RecordBatchError.invalidRecord(
                    "Inconsistent batch offset range [\(h.baseOffset), \(h.lastOffset)] and count of records \(h.recordCount) in topic partition \(tp)")
            }
            guard !h.attributes.isControl else {
                throw RecordBatchError.invalidRecord("Clients are not allowed to write control records in topic partition \(tp)")
            }
            if h.producerId >= 0, h.baseSequence < 0 {
                throw RecordBatchError.invalidRecord(
                    "Invalid sequence number \(h.baseSequence) in record batch with producerId \(h.producerId) in topic partition \(tp)")
            }
        } else {
            guard h.recordCount >= 0 else { throw RecordBatchError.invalidRecord("negative record count \(h.recordCount)") }
        }
    }

    /// Checks every record of the batch (Kafka's LogValidator.validateRecord), decompressing it
    /// first when it uses a codec (pass `uncompressed` when the caller already has the records
    /// section uncompressed). An uncompressed batch is checked in place, with no allocation unless
    /// a record fails. Returns the uncompressed records section (a slice of the batch when it is
    /// not compressed).
    ///
    /// Throws `RecordBatchError.invalidRecord` for a malformed records section (wrong lengths,
    /// fewer or more records than the header says), `.recordErrors` with each failing record's
    /// index for offset deltas out of order, keyless records on a compacted topic and CreateTime
    /// timestamps out of range.
    @discardableResult
    public func validateRecords(_ policy: RecordValidationPolicy, uncompressed: ByteBuffer? = nil) throws -> ByteBuffer {
        let payload = try uncompressed ?? uncompressedRecords()
        var errors: [RecordError] = []
        var timestampErrors = false
        let h = header
        let count = max(h.recordCount, 0)
        try payload.withUnsafeReadableBytes { raw in
            var scanner = RecordScanner(raw)
            var index: Int32 = 0
            while index < count {
                guard scanner.position < raw.count else {
                    throw RecordBatchError.invalidRecord("Incorrect declared batch size, premature EOF reached: \(index) of \(count) records in topic partition \(policy.topicPartition)")
                }
                let record = try scanner.nextRecord(index: index)
                if record.offsetDelta != index {
                    errors.append(RecordError(batchIndex: index, message:
                        "Inner record offset delta \(record.offsetDelta) is out of order (expected \(index)) in topic partition \(policy.topicPartition)"))
                } else if policy.compacted, !record.hasKey {
                    errors.append(RecordError(batchIndex: index, message:
                        "Compacted topic cannot accept message without key in topic partition \(policy.topicPartition)."))
                } else if let problem = Self.timestampProblem(h, record: record, policy: policy) {
                    errors.append(RecordError(batchIndex: index, message: problem))
                    timestampErrors = true
                }
                index += 1
            }
            guard scanner.position == raw.count else {
                throw RecordBatchError.invalidRecord("Incorrect declared batch size, records still remaining in file (\(raw.count - scanner.position) bytes after \(count) records) in topic partition \(policy.topicPartition)")
            }
        }
        if !errors.isEmpty {
            if timestampErrors {
                throw RecordBatchError.recordErrors(code: .invalidTimestamp,
                                                    message: "One or more records have been rejected due to invalid timestamp", errors: errors)
            }
            throw RecordBatchError.recordErrors(
                code: .invalidRecord,
                message: "One or more records have been rejected due to \(errors.count) record errors in total, and only showing the first three errors at most: [\(errors.prefix(3).map(\.description).joined(separator: ", "))]",
                errors: errors)
        }
        return payload
    }

    /// Kafka's validateTimestamp: a CreateTime topic checks each record's timestamp (the batch's
    /// max timestamp for a batch flagged LogAppendTime) against now; a LogAppendTime topic refuses
    /// batches a producer flagged LogAppendTime.
    static func timestampProblem(_ h: RecordBatchHeader, record: RecordScanner.Fields, policy: RecordValidationPolicy) -> String? {
        if !policy.logAppendTime {
            let ts = h.attributes.timestampType == .logAppendTime ? h.maxTimestamp : h.baseTimestamp &+ record.timestampDelta
            guard ts != -1 else { return nil }
            // Saturating: the limits default to Int64.max.
            let (below, underflow) = policy.now.subtractingReportingOverflow(policy.timestampBeforeMaxMs)
            let (above, overflow) = policy.now.addingReportingOverflow(policy.timestampAfterMaxMs)
            let lower = underflow ? Int64.min : below
            let upper = overflow ? Int64.max : above
            if ts < lower || ts > upper {
                return "Timestamp \(ts) of message with offset \(record.offsetDelta) is out of range. The timestamp should be within [\(lower), \(upper)]"
            }
        } else if h.attributes.timestampType == .logAppendTime {
            return "Invalid timestamp type in message at offset delta \(record.offsetDelta). Producer should not set timestamp type to LogAppendTime."
        }
        return nil
    }
}

/// Walks the records of an uncompressed records section without allocating: each record's
/// framing is checked (lengths within the record, header keys not null, nothing left over) and
/// only the fields validation needs are returned.
struct RecordScanner {
    struct Fields {
        var timestampDelta: Int64
        var offsetDelta: Int32
        var hasKey: Bool
    }

    let raw: UnsafeRawBufferPointer
    var position = 0

    init(_ raw: UnsafeRawBufferPointer) { self.raw = raw }

    /// A zigzag varlong ending before `limit`.
    mutating func varlong(_ limit: Int, _ what: StaticString, index: Int32) throws -> Int64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < limit else { throw RecordBatchError.invalidRecord("record \(index): \(what) runs past the end of the record") }
            let byte = raw[position]
            position += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
            guard shift < 64 else { throw RecordBatchError.invalidRecord("record \(index): \(what) is not a valid varlong") }
        }
        return Int64(bitPattern: result >> 1) ^ -Int64(bitPattern: result & 1)
    }

    mutating func varint(_ limit: Int, _ what: StaticString, index: Int32) throws -> Int32 {
        let start = position
        let v = try varlong(limit, what, index: index)
        guard position - start <= 5, let n = Int32(exactly: v) else {
            throw RecordBatchError.invalidRecord("record \(index): \(what) is not a valid varint")
        }
        return n
    }

    /// Skips a varint-length-prefixed byte field; returns whether it was non-null.
    mutating func skipBytes(_ limit: Int, _ what: StaticString, index: Int32, nullable: Bool = true) throws -> Bool {
        let length = try varint(limit, what, index: index)
        if length < 0 {
            guard nullable, length == -1 else { throw RecordBatchError.invalidRecord("record \(index): invalid \(what) length \(length)") }
            return false
        }
        guard Int(length) <= limit - position else {
            throw RecordBatchError.invalidRecord("record \(index): \(what) of \(length) bytes runs past the end of the record")
        }
        position += Int(length)
        return true
    }

    mutating func nextRecord(index: Int32) throws -> Fields {
        let length = try varint(raw.count, "record length", index: index)
        guard length > 0, Int(length) <= raw.count - position else {
            throw RecordBatchError.invalidRecord("record \(index): length \(length) with \(raw.count - position) bytes left")
        }
        let end = position + Int(length)
        position += 1  // attributes (unused in magic 2)
        let timestampDelta = try varlong(end, "timestamp delta", index: index)
        let offsetDelta = try varint(end, "offset delta", index: index)
        let hasKey = try skipBytes(end, "key", index: index)
        _ = try skipBytes(end, "value", index: index)
        let headers = try varint(end, "header count", index: index)
        guard headers >= 0 else { throw RecordBatchError.invalidRecord("record \(index): invalid header count \(headers)") }
        for _ in 0..<headers {
            _ = try skipBytes(end, "header key", index: index, nullable: false)
            _ = try skipBytes(end, "header value", index: index)
        }
        guard position == end else {
            throw RecordBatchError.invalidRecord("Invalid record size: expected to read \(length) bytes in record payload, but instead read \(Int(length) - (end - position))")
        }
        return Fields(timestampDelta: timestampDelta, offsetDelta: offsetDelta, hasKey: hasKey)
    }
}

extension RecordBatch {
    /// The same batch with its records section in `codec` (Kafka's broker-side `compression.type`):
    /// `uncompressed` is the batch's records section uncompressed; every header field (offsets,
    /// producer id/epoch/sequence, timestamps, counts, flags) is kept, only the codec bits, the
    /// length and the CRC change.
    public func recompressed(to codec: CompressionCodec, level: Int? = nil, uncompressed: ByteBuffer) throws -> ByteBuffer {
        let records = codec == .none ? uncompressed : try KafkaCompression.compress(codec, uncompressed, level: level)
        var h = header
        h.attributes.rawValue = (h.attributes.rawValue & ~0x07) | codec.rawValue
        return RecordBatchHeader.assemble(h, body: records)
    }
}
