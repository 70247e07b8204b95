import KafkaProtocol
import KafkaRecords
import KafkaWire
import NIOCore
import Testing

/// Issue 10, item 7: record validation as Kafka's LogValidator does.
@Suite struct RecordValidationTests {
    static let now: Int64 = 1_700_000_000_000

    /// A batch whose records carry exactly the given offset deltas, keys and timestamp deltas, with
    /// the header's record count and last offset delta as given (CRC correct), as a hostile or
    /// buggy client could send it.
    static func craft(_ records: [(offsetDelta: Int32, key: String?, timestampDelta: Int64)], recordCount: Int32? = nil,
                      lastOffsetDelta: Int32? = nil, attributes: RecordBatchAttributes = .init(),
                      producerId: Int64 = -1, baseSequence: Int32 = -1) -> ByteBuffer {
        var body = ByteBuffer()
        for r in records {
            Record.write(into: &body, timestampDelta: r.timestampDelta, offsetDelta: r.offsetDelta,
                         key: r.key.map { ByteBuffer(string: $0) }, value: ByteBuffer(string: "value"), headers: [])
        }
        var h = RecordBatchHeader(attributes: attributes, lastOffsetDelta: lastOffsetDelta ?? Int32(records.count - 1),
                                  baseTimestamp: now, maxTimestamp: now + (records.map(\.timestampDelta).max() ?? 0),
                                  producerId: producerId, producerEpoch: producerId >= 0 ? 0 : -1, baseSequence: baseSequence,
                                  recordCount: recordCount ?? Int32(records.count))
        h.batchLength = Int32(RecordBatchHeader.size - RecordBatchHeader.logOverhead + body.readableBytes)
        var out = ByteBuffer()
        h.write(to: &out)
        out.writeImmutableBuffer(body)
        let crc = CRC32C.checksum(out, at: RecordBatchHeader.attributesOffset, length: out.readableBytes - RecordBatchHeader.attributesOffset)
        out.setInteger(crc, at: RecordBatchHeader.crcOffset, endianness: .big)
        return out
    }

    static func keyed(_ keys: [String?], codec: CompressionCodec = .none) throws -> ByteBuffer {
        var b = RecordBatchBuilder()
        for (i, k) in keys.enumerated() {
            b.append(key: k.map { ByteBuffer(string: $0) }, value: ByteBuffer(string: "v\(i)"), timestamp: now + Int64(i))
        }
        return try b.build(compression: codec)
    }

    func policy(compacted: Bool = false, logAppendTime: Bool = false, before: Int64 = .max, after: Int64 = .max) -> RecordValidationPolicy {
        RecordValidationPolicy(now: Self.now, compacted: compacted, logAppendTime: logAppendTime, timestampBeforeMaxMs: before,
                               timestampAfterMaxMs: after, fromClient: true, topicPartition: "t-0")
    }

    /// The record errors a batch is refused with (nil: accepted).
    func refusal(_ bytes: ByteBuffer, _ policy: RecordValidationPolicy) throws -> (KafkaErrorCode, [RecordError])? {
        let batch = try RecordBatch(from: bytes)
        try batch.validate()
        do {
            try batch.validateBatchHeader(policy)
            try batch.validateRecords(policy)
            return nil
        } catch let RecordBatchError.recordErrors(code, _, errors) {
            return (code, errors)
        }
    }

    @Test func aKeylessRecordOnACompactedTopicIsRefusedWithItsIndex() throws {
        for codec in [CompressionCodec.none, .gzip, .lz4, .zstd, .snappy] {
            let bytes = try Self.keyed(["a", nil, "c", nil], codec: codec)
            #expect(try refusal(bytes, policy()) == nil, "keyless records are fine on a non-compacted topic")
            let refused = try #require(try refusal(bytes, policy(compacted: true)), "\(codec): keyless records on a compacted topic")
            #expect(refused.0 == .invalidRecord)
            #expect(refused.1.map(\.batchIndex) == [1, 3])
            #expect(refused.1.allSatisfy { $0.message.contains("Compacted topic cannot accept message without key") })
            #expect(try refusal(try Self.keyed(["a", "b"], codec: codec), policy(compacted: true)) == nil)
        }
    }

    @Test func offsetDeltasMustBeZeroToCountMinusOne() throws {
        let swapped = Self.craft([(0, "a", 0), (2, "b", 0), (1, "c", 0)])
        let refused = try #require(try refusal(swapped, policy()))
        #expect(refused.0 == .invalidRecord)
        #expect(refused.1.map(\.batchIndex) == [1, 2])
        let shifted = Self.craft([(5, "a", 0), (6, "b", 0)])
        #expect(try refusal(shifted, policy())?.1.map(\.batchIndex) == [0, 1])
        #expect(try refusal(Self.craft([(0, "a", 0), (1, "b", 0)]), policy()) == nil)
    }

    @Test func theRecordCountMustMatchTheHeader() throws {
        // Header says 3 records (and last offset delta 2), two are present.
        let fewer = try RecordBatch(from: Self.craft([(0, "a", 0), (1, "b", 0)], recordCount: 3, lastOffsetDelta: 2))
        #expect(throws: RecordBatchError.self) { try fewer.validateRecords(policy()) }
        do { try fewer.validateRecords(policy()) } catch let e as RecordBatchError { #expect(e.kafkaErrorCode == .invalidRecord) }
        // Header says 1 record, two are present.
        let more = try RecordBatch(from: Self.craft([(0, "a", 0), (1, "b", 0)], recordCount: 1, lastOffsetDelta: 0))
        #expect(throws: RecordBatchError.self) { try more.validateRecords(policy()) }
        // Count and last offset delta disagree: refused before the records are read.
        let inconsistent = try RecordBatch(from: Self.craft([(0, "a", 0), (1, "b", 0)], recordCount: 2, lastOffsetDelta: 5))
        #expect(throws: RecordBatchError.self) { try inconsistent.validateBatchHeader(policy()) }
        let empty = try RecordBatch(from: Self.craft([], recordCount: 0, lastOffsetDelta: -1))
        #expect(throws: RecordBatchError.self) { try empty.validateBatchHeader(policy()) }
    }

    @Test func timestampsOutOfRangeAreRefusedPerRecord() throws {
        let bytes = Self.craft([(0, "a", 0), (1, "b", 7_200_000), (2, "c", 10)])
        let refused = try #require(try refusal(bytes, policy(after: 3_600_000)))
        #expect(refused.0 == .invalidTimestamp)
        #expect(refused.1.map(\.batchIndex) == [1])
        #expect(refused.1[0].message.contains("out of range"))
        let old = Self.craft([(0, "a", -100_000), (1, "b", 0)])
        #expect(try refusal(old, policy(before: 50_000))?.1.map(\.batchIndex) == [0])
        #expect(try refusal(old, policy(before: 200_000)) == nil)
        // LogAppendTime topics take any CreateTime (the broker stamps the batch) ...
        #expect(try refusal(bytes, policy(logAppendTime: true, after: 0)) == nil)
        // ... but a producer may not flag its batch LogAppendTime.
        let stamped = Self.craft([(0, "a", 0)], attributes: RecordBatchAttributes(timestampType: .logAppendTime))
        #expect(try refusal(stamped, policy(logAppendTime: true))?.0 == .invalidTimestamp)
    }

    @Test func clientsMayNotWriteControlBatchesOrIdempotentBatchesWithoutSequence() throws {
        let control = try RecordBatch(from: Self.craft([(0, "a", 0)], attributes: RecordBatchAttributes(isControl: true)))
        #expect(throws: RecordBatchError.self) { try control.validateBatchHeader(policy()) }
        var coordinator = policy()
        coordinator.fromClient = false
        try control.validateBatchHeader(coordinator)
        let noSequence = try RecordBatch(from: Self.craft([(0, "a", 0)], producerId: 9, baseSequence: -1))
        #expect(throws: RecordBatchError.self) { try noSequence.validateBatchHeader(policy()) }
    }

    @Test func malformedRecordsAreCorruptNotCrashes() throws {
        var bytes = Self.craft([(0, "a", 0), (1, "b", 0)])
        // The second record's length varint claims far more than is left.
        let first = RecordBatchHeader.size
        let firstLength = Int(bytes.getInteger(at: first, as: UInt8.self)!) >> 1
        bytes.setInteger(UInt8(0x7E), at: first + 1 + firstLength)
        let crc = CRC32C.checksum(bytes, at: RecordBatchHeader.attributesOffset, length: bytes.readableBytes - RecordBatchHeader.attributesOffset)
        bytes.setInteger(crc, at: RecordBatchHeader.crcOffset, endianness: .big)
        let batch = try RecordBatch(from: bytes)
        #expect(throws: RecordBatchError.self) { try batch.validateRecords(policy()) }
    }

    @Test func recompressionKeepsTheHeaderAndRecords() throws {
        var b = RecordBatchBuilder(producerId: 77, producerEpoch: 3, baseSequence: 40)
        for i in 0..<20 { b.append(key: ByteBuffer(string: "k\(i)"), value: ByteBuffer(string: String(repeating: "v\(i)", count: 30)), timestamp: Self.now + Int64(i)) }
        let original = try RecordBatch(from: b.build())
        for codec in [CompressionCodec.zstd, .gzip, .lz4, .snappy, .none] {
            let bytes = try original.recompressed(to: codec, uncompressed: try original.uncompressedRecords())
            let converted = try RecordBatch(from: bytes)
            try converted.validate()
            #expect(converted.header.attributes.compression == codec)
            var expected = original.header
            expected.attributes = converted.header.attributes
            expected.batchLength = converted.header.batchLength
            expected.crc = converted.header.crc
            #expect(converted.header == expected, "every other header field is kept")
            #expect(try converted.records() == original.records())
            // And back.
            let back = try RecordBatch(from: try converted.recompressed(to: .none, uncompressed: try converted.uncompressedRecords()))
            #expect(back.bytes == original.bytes)
        }
    }
}

/// Hostile records sections: validation throws or accepts, never traps or over-reads.
@Suite struct RecordValidationFuzzTests {
    @Test func mutatedRecordsNeverCrashValidation() throws {
        var b = RecordBatchBuilder()
        for i in 0..<8 {
            b.append(key: i % 3 == 0 ? nil : ByteBuffer(string: "key\(i)"), value: ByteBuffer(string: "value-\(i)"),
                     headers: i % 2 == 0 ? [RecordHeader(key: "h", value: ByteBuffer(string: "x"))] : [], timestamp: 1_700_000_000_000 + Int64(i))
        }
        let original = Array(b.build().readableBytesView)
        var rng = SystemRandomNumberGenerator()
        let policy = RecordValidationPolicy(now: 1_700_000_000_000, compacted: true, timestampBeforeMaxMs: 1000, timestampAfterMaxMs: 1000)
        var refused = 0
        for _ in 0..<5000 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: RecordBatchHeader.size..<bytes.count, using: &rng)
                bytes[at] = [0x00, 0x01, 0x7F, 0x80, 0xFF, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)!
            }
            var buffer = ByteBuffer(bytes: bytes)
            buffer.setInteger(CRC32C.checksum(buffer, at: RecordBatchHeader.attributesOffset,
                                              length: buffer.readableBytes - RecordBatchHeader.attributesOffset),
                              at: RecordBatchHeader.crcOffset, endianness: .big)
            let batch = try RecordBatch(from: buffer)
            do { try batch.validateRecords(policy) } catch is RecordBatchError { refused += 1 }
        }
        #expect(refused > 0)
    }
}
