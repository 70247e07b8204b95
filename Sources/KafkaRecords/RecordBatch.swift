import KafkaCompression
import KafkaProtocol
import KafkaWire
import NIOCore

// Kafka record batches, magic 2 (https://kafka.apache.org/documentation/#recordbatch):
//
//   baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 | crc uint32 |
//   attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64 |
//   producerId int64 | producerEpoch int16 | baseSequence int32 | recordCount int32 | records...
//
// The CRC (CRC32C) covers attributes to the end of the batch, so baseOffset and
// partitionLeaderEpoch can be patched in place by the broker without recomputing it.

/// The compression codec in attribute bits 0–2 (defined with the codecs themselves).
public typealias CompressionCodec = KafkaCompressionCodec

public enum TimestampType: Sendable, Equatable {
    case createTime, logAppendTime
}

/// The batch attributes bit field.
public struct RecordBatchAttributes: Hashable, Sendable {
    public var rawValue: Int16

    public init(rawValue: Int16) { self.rawValue = rawValue }

    public init(compression: CompressionCodec = .none, timestampType: TimestampType = .createTime,
                isTransactional: Bool = false, isControl: Bool = false, hasDeleteHorizon: Bool = false) {
        rawValue = compression.rawValue
            | (timestampType == .logAppendTime ? 0x08 : 0)
            | (isTransactional ? 0x10 : 0)
            | (isControl ? 0x20 : 0)
            | (hasDeleteHorizon ? 0x40 : 0)
    }

    /// nil when bits 0–2 hold a value no codec uses (5–7).
    public var compression: CompressionCodec? { CompressionCodec(rawValue: rawValue & 0x07) }
    public var timestampType: TimestampType { rawValue & 0x08 != 0 ? .logAppendTime : .createTime }
    public var isTransactional: Bool { rawValue & 0x10 != 0 }
    public var isControl: Bool { rawValue & 0x20 != 0 }
    public var hasDeleteHorizon: Bool { rawValue & 0x40 != 0 }
}

/// Why a record batch was refused, with the Kafka error code a broker answers with.
public enum RecordBatchError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Magic 0 or 1 (the legacy message set formats).
    case legacyFormat(magic: Int8)
    case unknownMagic(Int8)
    case crcMismatch(stored: UInt32, computed: UInt32)
    case invalidBatchLength(Int32)
    /// Fewer bytes than the batch length says.
    case truncated(needed: Int, available: Int)
    case unknownCompression(Int16)
    case decompressionFailed(String)
    case invalidRecord(String)
    /// Records refused one by one (Kafka's LogValidator, KIP-467): INVALID_RECORD, or
    /// INVALID_TIMESTAMP when any of them has a timestamp out of range. The batch is refused whole.
    case recordErrors(code: KafkaErrorCode, message: String, errors: [RecordError])

    public var kafkaErrorCode: KafkaErrorCode {
        switch self {
        case .legacyFormat, .unknownMagic: return .unsupportedForMessageFormat
        case .crcMismatch, .invalidBatchLength, .truncated: return .corruptMessage
        case .unknownCompression: return .unsupportedCompressionType
        case .decompressionFailed: return .corruptMessage
        case .invalidRecord: return .invalidRecord
        case let .recordErrors(code, _, _): return code
        }
    }

    public var description: String {
        switch self {
        case let .legacyFormat(magic):
            return "legacy message format (magic \(magic)) is not supported; use a client that writes record batches (magic 2)"
        case let .unknownMagic(magic): return "unknown record batch magic \(magic)"
        case let .crcMismatch(stored, computed):
            return "record batch CRC mismatch: stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16))"
        case let .invalidBatchLength(length): return "invalid record batch length \(length)"
        case let .truncated(needed, available): return "record batch truncated: needs \(needed) bytes, \(available) present"
        case let .unknownCompression(raw): return "unknown compression codec \(raw)"
        case let .decompressionFailed(why): return "cannot decompress records: \(why)"
        case let .invalidRecord(why): return "invalid record: \(why)"
        case let .recordErrors(_, message, _): return message
        }
    }
}

/// The fixed 61-byte header of a record batch.
public struct RecordBatchHeader: Hashable, Sendable {
    public static let size = 61
    /// Bytes before `batchLength`'s count starts (baseOffset + batchLength).
    public static let logOverhead = 12
    public static let magicOffset = 16
    public static let crcOffset = 17
    public static let attributesOffset = 21
    public static let maxTimestampOffset = 35

    public var baseOffset: Int64
    /// Bytes after the batchLength field: the whole batch is `logOverhead + batchLength` bytes.
    public var batchLength: Int32
    public var partitionLeaderEpoch: Int32
    public var magic: Int8
    public var crc: UInt32
    public var attributes: RecordBatchAttributes
    public var lastOffsetDelta: Int32
    public var baseTimestamp: Int64
    public var maxTimestamp: Int64
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var recordCount: Int32

    public var lastOffset: Int64 { baseOffset + Int64(lastOffsetDelta) }
    public var totalSize: Int { Self.logOverhead + Int(batchLength) }

    /// Reads the header at absolute `index` of `buffer` without moving its reader index.
    /// Throws for legacy (magic 0/1) and unknown formats before reading v2 fields.
    public init(from buffer: ByteBuffer, at index: Int) throws {
        let available = buffer.writerIndex - index
        guard available >= Self.magicOffset + 1 else {
            throw RecordBatchError.truncated(needed: Self.magicOffset + 1, available: max(available, 0))
        }
        magic = buffer.getInteger(at: index + Self.magicOffset)!
        guard magic == 2 else {
            throw magic == 0 || magic == 1 ? RecordBatchError.legacyFormat(magic: magic) : RecordBatchError.unknownMagic(magic)
        }
        guard available >= Self.size else { throw RecordBatchError.truncated(needed: Self.size, available: available) }
        func get<T: FixedWidthInteger>(_ offset: Int) -> T { buffer.getInteger(at: index + offset, endianness: .big)! }
        baseOffset = get(0)
        batchLength = get(8)
        partitionLeaderEpoch = get(12)
        crc = get(17)
        attributes = RecordBatchAttributes(rawValue: get(21))
        lastOffsetDelta = get(23)
        baseTimestamp = get(27)
        maxTimestamp = get(35)
        producerId = get(43)
        producerEpoch = get(51)
        baseSequence = get(53)
        recordCount = get(57)
        guard batchLength >= Int32(Self.size - Self.logOverhead) else {
            throw RecordBatchError.invalidBatchLength(batchLength)
        }
    }

    public init(baseOffset: Int64 = 0, batchLength: Int32 = Int32(RecordBatchHeader.size - RecordBatchHeader.logOverhead),
                partitionLeaderEpoch: Int32 = -1, crc: UInt32 = 0, attributes: RecordBatchAttributes = .init(),
                lastOffsetDelta: Int32 = 0, baseTimestamp: Int64 = -1, maxTimestamp: Int64 = -1,
                producerId: Int64 = -1, producerEpoch: Int16 = -1, baseSequence: Int32 = -1, recordCount: Int32 = 0) {
        self.baseOffset = baseOffset
        self.batchLength = batchLength
        self.partitionLeaderEpoch = partitionLeaderEpoch
        self.magic = 2
        self.crc = crc
        self.attributes = attributes
        self.lastOffsetDelta = lastOffsetDelta
        self.baseTimestamp = baseTimestamp
        self.maxTimestamp = maxTimestamp
        self.producerId = producerId
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.recordCount = recordCount
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeKafkaInt64(baseOffset)
        buffer.writeKafkaInt32(batchLength)
        buffer.writeKafkaInt32(partitionLeaderEpoch)
        buffer.writeKafkaInt8(magic)
        buffer.writeKafkaUInt32(crc)
        buffer.writeKafkaInt16(attributes.rawValue)
        buffer.writeKafkaInt32(lastOffsetDelta)
        buffer.writeKafkaInt64(baseTimestamp)
        buffer.writeKafkaInt64(maxTimestamp)
        buffer.writeKafkaInt64(producerId)
        buffer.writeKafkaInt16(producerEpoch)
        buffer.writeKafkaInt32(baseSequence)
        buffer.writeKafkaInt32(recordCount)
    }
}

/// One record batch: its parsed header and its bytes (a slice of the input, not a copy).
public struct RecordBatch: Hashable, Sendable {
    public var header: RecordBatchHeader
    /// The whole batch, header included, exactly as it was received.
    public var bytes: ByteBuffer

    /// The records section: compressed bytes when the batch uses a codec.
    public var recordsPayload: ByteBuffer { bytes.getSlice(at: bytes.readerIndex + RecordBatchHeader.size, length: bytes.readableBytes - RecordBatchHeader.size)! }

    /// Parses the batch at the front of `bytes` (which may hold more after it).
    public init(from bytes: ByteBuffer) throws {
        header = try RecordBatchHeader(from: bytes, at: bytes.readerIndex)
        guard bytes.readableBytes >= header.totalSize else {
            throw RecordBatchError.truncated(needed: header.totalSize, available: bytes.readableBytes)
        }
        self.bytes = bytes.getSlice(at: bytes.readerIndex, length: header.totalSize)!
    }

    /// The CRC32C of attributes..end, as it should be stored.
    public var computedCRC: UInt32 {
        CRC32C.checksum(bytes, at: bytes.readerIndex + RecordBatchHeader.attributesOffset,
                        length: bytes.readableBytes - RecordBatchHeader.attributesOffset)
    }

    /// Checks what a broker checks before appending: the CRC and a known compression codec.
    public func validate() throws {
        let computed = computedCRC
        guard computed == header.crc else { throw RecordBatchError.crcMismatch(stored: header.crc, computed: computed) }
        guard header.attributes.compression != nil else { throw RecordBatchError.unknownCompression(header.attributes.rawValue & 7) }
        guard header.recordCount >= 0 else { throw RecordBatchError.invalidRecord("negative record count \(header.recordCount)") }
    }

    /// The largest decompressed records section accepted (a bound against decompression bombs).
    public static let maxDecompressedSize = 256 << 20

    /// The records section, decompressed when the batch uses a codec.
    public func uncompressedRecords() throws -> ByteBuffer {
        guard let codec = header.attributes.compression else {
            throw RecordBatchError.unknownCompression(header.attributes.rawValue & 7)
        }
        guard codec != .none else { return recordsPayload }
        do {
            return try KafkaCompression.decompress(codec, recordsPayload,
                                                   maxOutput: Self.maxDecompressedSize)
        } catch {
            throw RecordBatchError.decompressionFailed("\(error)")
        }
    }

    /// Calls `body` with each record, in order, without collecting them (decompressing first if needed).
    public func forEachRecord(_ body: (Record) throws -> Void) throws {
        var payload = try uncompressedRecords()
        for _ in 0..<max(header.recordCount, 0) {
            try body(try Record(from: &payload))
        }
        guard payload.readableBytes == 0 else {
            throw RecordBatchError.invalidRecord("\(payload.readableBytes) bytes after the last of \(header.recordCount) records")
        }
    }

    public func records() throws -> [Record] {
        var result: [Record] = []
        result.reserveCapacity(Int(min(header.recordCount, 4096)))
        try forEachRecord { result.append($0) }
        return result
    }

    /// Sets the base offset of the batch stored at absolute `index` of `buffer` (not covered by the CRC).
    public static func setBaseOffset(_ offset: Int64, in buffer: inout ByteBuffer, at index: Int) {
        buffer.setInteger(offset, at: index, endianness: .big)
    }

    /// Sets the partition leader epoch of the batch at `index` (not covered by the CRC).
    public static func setPartitionLeaderEpoch(_ epoch: Int32, in buffer: inout ByteBuffer, at index: Int) {
        buffer.setInteger(epoch, at: index + 12, endianness: .big)
    }
}

/// Walks the record batches in a `records` field or a log segment.
public struct RecordBatchReader: Sendable {
    public var remaining: ByteBuffer
    /// Fetch responses may end with a partial batch (cut by max_bytes); a client ignores it.
    /// Produce requests may not.
    public let allowsPartialTrailingBatch: Bool

    public init(_ records: ByteBuffer, allowsPartialTrailingBatch: Bool = false) {
        remaining = records
        self.allowsPartialTrailingBatch = allowsPartialTrailingBatch
    }

    /// The next batch, or nil at the end.
    public mutating func next() throws -> RecordBatch? {
        guard remaining.readableBytes > 0 else { return nil }
        do {
            let batch = try RecordBatch(from: remaining)
            remaining.moveReaderIndex(forwardBy: batch.bytes.readableBytes)
            return batch
        } catch RecordBatchError.truncated where allowsPartialTrailingBatch {
            remaining.moveReaderIndex(forwardBy: remaining.readableBytes)
            return nil
        }
    }
}

public struct RecordHeader: Hashable, Sendable {
    public var key: String
    public var value: ByteBuffer?

    public init(key: String, value: ByteBuffer?) {
        self.key = key
        self.value = value
    }
}

/// One record inside a batch. Keys, values and header values are slices of the batch.
public struct Record: Hashable, Sendable {
    public var attributes: Int8
    public var timestampDelta: Int64
    public var offsetDelta: Int32
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]

    public init(attributes: Int8 = 0, timestampDelta: Int64 = 0, offsetDelta: Int32 = 0,
                key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader] = []) {
        self.attributes = attributes
        self.timestampDelta = timestampDelta
        self.offsetDelta = offsetDelta
        self.key = key
        self.value = value
        self.headers = headers
    }

    /// Reads one length-prefixed record; the record must use exactly its stated length.
    public init(from buffer: inout ByteBuffer) throws {
        do {
            let length = Int(try buffer.readVarint())
            guard length >= 0, length <= buffer.readableBytes else {
                throw RecordBatchError.invalidRecord("record length \(length) with \(buffer.readableBytes) bytes left")
            }
            var body = buffer.readSlice(length: length)!
            attributes = try body.readKafkaInt8()
            timestampDelta = try body.readVarlong()
            offsetDelta = try body.readVarint()
            key = try Self.readVarintBytes(&body)
            value = try Self.readVarintBytes(&body)
            let headerCount = Int(try body.readVarint())
            guard headerCount >= 0, headerCount <= body.readableBytes else {
                throw RecordBatchError.invalidRecord("header count \(headerCount)")
            }
            headers = []
            headers.reserveCapacity(min(headerCount, 64))
            for _ in 0..<headerCount {
                guard let keyBytes = try Self.readVarintBytes(&body) else {
                    throw RecordBatchError.invalidRecord("null header key")
                }
                headers.append(RecordHeader(key: String(buffer: keyBytes), value: try Self.readVarintBytes(&body)))
            }
            guard body.readableBytes == 0 else {
                throw RecordBatchError.invalidRecord("\(body.readableBytes) bytes after the record's fields")
            }
        } catch let error as KafkaWireError {
            throw RecordBatchError.invalidRecord(error.description)
        }
    }

    static func readVarintBytes(_ buffer: inout ByteBuffer) throws -> ByteBuffer? {
        let length = Int(try buffer.readVarint())
        if length < 0 { return nil }
        return try buffer.readKafkaSlice(length: length)
    }

    public func write(to buffer: inout ByteBuffer) {
        Self.write(into: &buffer, attributes: attributes, timestampDelta: timestampDelta, offsetDelta: offsetDelta,
                   key: key, value: value, headers: headers)
    }

    /// Encodes one record (length varint first) straight into `buffer`.
    @inlinable
    public static func write(into buffer: inout ByteBuffer, attributes: Int8 = 0, timestampDelta: Int64, offsetDelta: Int32,
                             key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader]) {
        @inline(__always) func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
        @inline(__always) func bytesSize(_ b: ByteBuffer?) -> Int {
            guard let b else { return 1 }
            return ByteBuffer.unsignedVarintSize(zigzag(Int64(b.readableBytes))) + b.readableBytes
        }
        var size = 1 + ByteBuffer.unsignedVarintSize(zigzag(timestampDelta)) + ByteBuffer.unsignedVarintSize(zigzag(Int64(offsetDelta)))
            + bytesSize(key) + bytesSize(value) + ByteBuffer.unsignedVarintSize(zigzag(Int64(headers.count)))
        for h in headers {
            let k = h.key.utf8.count
            size += ByteBuffer.unsignedVarintSize(zigzag(Int64(k))) + k + bytesSize(h.value)
        }
        buffer.writeVarint(Int32(size))
        buffer.writeInteger(attributes)
        buffer.writeVarlong(timestampDelta)
        buffer.writeVarint(offsetDelta)
        @inline(__always) func writeBytes(_ b: ByteBuffer?) {
            guard let b else { buffer.writeVarint(-1); return }
            buffer.writeVarint(Int32(b.readableBytes))
            buffer.writeImmutableBuffer(b)
        }
        writeBytes(key)
        writeBytes(value)
        buffer.writeVarint(Int32(headers.count))
        for h in headers {
            buffer.writeVarint(Int32(h.key.utf8.count))
            buffer.writeString(h.key)
            writeBytes(h.value)
        }
    }
}

/// Builds an uncompressed record batch, record by record, straight into one buffer.
public struct RecordBatchBuilder: Sendable {
    public var header: RecordBatchHeader
    private var buffer: ByteBuffer
    private let start: Int

    public init(baseOffset: Int64 = 0, partitionLeaderEpoch: Int32 = -1, attributes: RecordBatchAttributes = .init(),
                producerId: Int64 = -1, producerEpoch: Int16 = -1, baseSequence: Int32 = -1,
                buffer: ByteBuffer = ByteBuffer()) {
        header = RecordBatchHeader(baseOffset: baseOffset, partitionLeaderEpoch: partitionLeaderEpoch, attributes: attributes,
                                   producerId: producerId, producerEpoch: producerEpoch, baseSequence: baseSequence)
        self.buffer = buffer
        start = buffer.writerIndex
        header.write(to: &self.buffer)
    }

    public var recordCount: Int { Int(header.recordCount) }
    /// Bytes the batch takes so far.
    public var sizeInBytes: Int { buffer.writerIndex - start }

    /// Appends a record; the first record's timestamp becomes the batch's base timestamp.
    /// Writes the fields straight into the batch buffer (no intermediate `Record`).
    public mutating func append(key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader] = [], timestamp: Int64) {
        if header.recordCount == 0 {
            header.baseTimestamp = timestamp
            header.maxTimestamp = timestamp
        }
        header.maxTimestamp = max(header.maxTimestamp, timestamp)
        Record.write(into: &buffer, timestampDelta: timestamp - header.baseTimestamp, offsetDelta: header.recordCount,
                     key: key, value: value, headers: headers)
        header.lastOffsetDelta = header.recordCount
        header.recordCount += 1
    }

    /// The finished batch with its records section compressed by `codec` (header and CRC updated).
    public func build(compression codec: CompressionCodec, level: Int? = nil) throws -> ByteBuffer {
        guard codec != .none else { return build() }
        let records = buffer.getSlice(at: start + RecordBatchHeader.size, length: buffer.writerIndex - start - RecordBatchHeader.size)!
        let compressed = try KafkaCompression.compress(codec, records, level: level)
        var h = header
        h.attributes.rawValue = (h.attributes.rawValue & ~0x07) | codec.rawValue
        return RecordBatchHeader.assemble(h, body: compressed)
    }

    /// The finished batch (header filled in, CRC computed).
    public func build() -> ByteBuffer {
        var out = buffer
        var h = header
        h.batchLength = Int32(out.writerIndex - start - RecordBatchHeader.logOverhead)
        out.moveWriterIndex(to: start)
        h.write(to: &out)
        out.moveWriterIndex(to: buffer.writerIndex)
        let crc = CRC32C.checksum(out, at: start + RecordBatchHeader.attributesOffset,
                                  length: out.writerIndex - start - RecordBatchHeader.attributesOffset)
        out.setInteger(crc, at: start + RecordBatchHeader.crcOffset, endianness: .big)
        out.moveReaderIndex(to: start)
        return out
    }
}

extension RecordBatchHeader {
    /// A whole batch from a header and its records section (compressed or not): sets the batch
    /// length, writes both and computes the CRC.
    public static func assemble(_ header: RecordBatchHeader, body: ByteBuffer) -> ByteBuffer {
        var h = header
        h.batchLength = Int32(size - logOverhead + body.readableBytes)
        var out = ByteBuffer()
        out.reserveCapacity(size + body.readableBytes)
        h.write(to: &out)
        out.writeImmutableBuffer(body)
        let crc = CRC32C.checksum(out, at: attributesOffset, length: out.readableBytes - attributesOffset)
        out.setInteger(crc, at: crcOffset, endianness: .big)
        return out
    }
}
