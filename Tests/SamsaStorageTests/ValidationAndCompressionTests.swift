import Foundation
import KafkaProtocol
import KafkaRecords
import KafkaWire
import NIOCore
import Testing
@testable import SamsaStorage

/// Issue 10, items 6 and 7 at the storage level: appends validate records as Kafka's LogValidator
/// does, re-compress for `compression.type`, and idle producers expire.
@Suite struct ValidationAndCompressionTests {
    /// Batch headers and records as stored in the log.
    func stored(_ log: PartitionLog) throws -> [(RecordBatchHeader, [Record])] {
        var out: [(RecordBatchHeader, [Record])] = []
        var reader = RecordBatchReader(try log.readBatches(from: log.logStartOffset, maxBytes: 64 << 20, upperBound: log.logEndOffset))
        while let batch = try reader.next() {
            try batch.validate()
            out.append((batch.header, try batch.records()))
        }
        return out
    }

    @Test func aKeylessRecordOnACompactedLogIsRefusedAndNothingIsWritten() throws {
        var config = LogConfig()
        config.compact = true
        let log = try openLog(temporaryDirectory(), config: config)
        var b = RecordBatchBuilder()
        b.append(key: ByteBuffer(string: "k"), value: ByteBuffer(string: "v"), timestamp: currentTimeMillis())
        b.append(key: nil, value: ByteBuffer(string: "no key"), timestamp: currentTimeMillis())
        do {
            _ = try log.append(b.build(), leaderEpoch: 0)
            Issue.record("a keyless record was appended to a compacted log")
        } catch let StorageError.invalidBatch(.recordErrors(code, _, errors)) {
            #expect(code == .invalidRecord)
            #expect(errors.map(\.batchIndex) == [1])
        }
        #expect(log.logEndOffset == 0)
        #expect(log.sizeInBytes == 0)
        // With keys the same log takes it.
        #expect(try log.append(keyedBatch([("a", "1"), ("b", nil)]), leaderEpoch: 0).firstOffset == 0)
    }

    @Test func perRecordTimestampsAreChecked() throws {
        var config = LogConfig()
        config.timestampAfterMaxMs = 60_000
        let log = try openLog(temporaryDirectory(), config: config)
        let now = currentTimeMillis()
        // The batch's first and max timestamps are fine, a record in the middle is not: only a
        // per-record check sees it (the header's max timestamp is what the client wrote).
        var body = ByteBuffer()
        for (i, delta) in [Int64(0), 3_600_000, 0].enumerated() {
            Record.write(into: &body, timestampDelta: delta, offsetDelta: Int32(i), key: nil, value: ByteBuffer(string: "x"), headers: [])
        }
        var h = RecordBatchHeader(lastOffsetDelta: 2, baseTimestamp: now, maxTimestamp: now, recordCount: 3)
        h.batchLength = Int32(RecordBatchHeader.size - RecordBatchHeader.logOverhead + body.readableBytes)
        var bytes = ByteBuffer()
        h.write(to: &bytes)
        bytes.writeImmutableBuffer(body)
        bytes.setInteger(CRC32C.checksum(bytes, at: RecordBatchHeader.attributesOffset, length: bytes.readableBytes - RecordBatchHeader.attributesOffset),
                         at: RecordBatchHeader.crcOffset, endianness: .big)
        do {
            _ = try log.append(bytes, leaderEpoch: 0, now: now)
            Issue.record("a record an hour in the future was accepted with message.timestamp.after.max.ms=60000")
        } catch let e as StorageError {
            #expect(e.kafkaErrorCode == .invalidTimestamp)
            guard case let .invalidBatch(.recordErrors(_, _, errors)) = e else { Issue.record("no record errors: \(e)"); return }
            #expect(errors.map(\.batchIndex) == [1])
        }
        #expect(log.logEndOffset == 0)
    }

    @Test func compressionTypeRecompressesBatchesInAnotherCodec() throws {
        var config = LogConfig()
        config.compression = .zstd
        let log = try openLog(temporaryDirectory(), config: config)
        let first = keyedBatch((0..<50).map { ("k\($0)", Optional(String(repeating: "value \($0) ", count: 20))) },
                               producerId: 5, epoch: 1, sequence: 0)
        let second = keyedBatch((0..<10).map { ("x\($0)", Optional("v\($0)")) }, producerId: 5, epoch: 1, sequence: 50)
        let alreadyZstd = keyedBatch([("z", "zstd")], codec: .zstd)
        #expect(try log.append(first, leaderEpoch: 3).firstOffset == 0)
        #expect(try log.append(second, leaderEpoch: 3).firstOffset == 50)
        #expect(try log.append(alreadyZstd, leaderEpoch: 3).firstOffset == 60)
        // An idempotent retry of a converted batch is still recognised as a duplicate.
        #expect(try log.append(second, leaderEpoch: 3).isDuplicate)
        log.updateHighWatermark(log.logEndOffset)

        let batches = try stored(log)
        #expect(batches.count == 3)
        #expect(batches.allSatisfy { $0.0.attributes.compression == .zstd })
        #expect(batches.map(\.0.baseOffset) == [0, 50, 60])
        #expect(batches.map(\.0.partitionLeaderEpoch) == [3, 3, 3])
        #expect(batches[0].0.producerId == 5 && batches[0].0.producerEpoch == 1 && batches[0].0.baseSequence == 0)
        #expect(batches[1].0.baseSequence == 50 && batches[1].0.recordCount == 10)
        let original = try RecordBatch(from: first)
        #expect(batches[0].0.baseTimestamp == original.header.baseTimestamp && batches[0].0.maxTimestamp == original.header.maxTimestamp)
        #expect(batches[0].1 == (try original.records()))
        #expect(batches[0].0.batchLength < original.header.batchLength, "zstd shrinks the repetitive values")
        // The log's offsets and reads go through the converted bytes.
        #expect(try readAll(log).map(\.0) == Array(0..<61))
        // A restart (recovery scans CRCs) reads the same.
        let size = log.sizeInBytes
        _ = try log.close()
        let reopened = try PartitionLog.open(directory: log.directory, topicPartition: log.topicPartition, config: config)
        #expect(reopened.logEndOffset == 61)
        #expect(reopened.sizeInBytes == size)
    }

    @Test func uncompressedAndProducerSettings() throws {
        var config = LogConfig()
        config.compression = CompressionCodec.none
        let plain = try openLog(temporaryDirectory(), config: config)
        _ = try plain.append(keyedBatch([("a", "1"), ("b", "2")], codec: .gzip), leaderEpoch: 0)
        plain.updateHighWatermark(plain.logEndOffset)
        #expect(try stored(plain).map(\.0.attributes.compression) == [CompressionCodec.none])

        let keep = try openLog(temporaryDirectory(), config: LogConfig())  // compression.type=producer
        let gz = keyedBatch([("a", "1"), ("b", "2")], codec: .gzip)
        _ = try keep.append(gz, leaderEpoch: 0)
        _ = try keep.append(keyedBatch([("c", "3")], codec: .lz4), leaderEpoch: 0)
        keep.updateHighWatermark(keep.logEndOffset)
        #expect(try stored(keep).map(\.0.attributes.compression) == [.gzip, .lz4])
        #expect(try keep.readBatches(from: 0, maxBytes: gz.readableBytes).getSlice(at: 16, length: gz.readableBytes - 16)
                == gz.getSlice(at: 16, length: gz.readableBytes - 16), "kept byte for byte (past offset and epoch)")
    }

    @Test func idleProducersExpire() throws {
        let log = try openLog(temporaryDirectory())
        let t0: Int64 = 1_700_000_000_000
        _ = try log.append(makeBatch(2, timestamp: t0, producerId: 7, epoch: 0, sequence: 0), leaderEpoch: 0, now: t0)
        _ = try log.append(makeBatch(1, timestamp: t0 + 5_000, producerId: 8, epoch: 0, sequence: 0), leaderEpoch: 0, now: t0 + 5_000)
        #expect(log.removeExpiredProducers(now: t0 + 9_999, expirationMs: 10_000) == 0)
        #expect(Set(log.producerState.producers.keys) == [7, 8])
        #expect(log.removeExpiredProducers(now: t0 + 10_000, expirationMs: 10_000) == 1)
        #expect(Set(log.producerState.producers.keys) == [8])
        // The expired producer's state is gone: continuing its sequence is UNKNOWN_PRODUCER_ID,
        // while the live one continues.
        do {
            _ = try log.append(makeBatch(1, producerId: 7, epoch: 0, sequence: 2), leaderEpoch: 0)
            Issue.record("an expired producer continued its sequence")
        } catch let e as StorageError { #expect(e.kafkaErrorCode == .unknownProducerId) }
        #expect(try log.append(makeBatch(1, producerId: 8, epoch: 0, sequence: 1), leaderEpoch: 0).firstOffset == 3)

        var state = ProducerStateManager()
        #expect(state.removeExpired(now: 0, expirationMs: 1) == 0)
    }
}

/// `segment.jitter.ms` and `segment.index.bytes` are honoured, not only accepted.
@Suite struct SegmentSettingsTests {
    @Test func segmentJitterRollsSegmentsBeforeSegmentMs() throws {
        var config = LogConfig()
        config.segmentMs = 10_000
        #expect(config.rollAfterMs(0) == 10_000, "no jitter by default")
        config.segmentJitterMs = 8_000
        let limits = (0..<200).map { config.rollAfterMs(Int64($0) * 1000) }
        #expect(limits.allSatisfy { $0 > 2_000 && $0 <= 10_000 })
        #expect(Set(limits).count > 100, "each segment gets its own jitter")
        #expect(config.rollAfterMs(5000) == config.rollAfterMs(5000), "stable for a segment (across restarts too)")

        // A log whose active segment's jitter is J rolls at segment.ms - J, not at segment.ms.
        let log = try openLog(temporaryDirectory(), config: config)
        let t0 = currentTimeMillis()
        _ = try log.append(makeBatch(1, timestamp: t0), leaderEpoch: 0, now: t0)
        let limit = config.rollAfterMs(0)
        #expect(limit < 10_000, "the test needs a segment with jitter")
        try log.rollIfExpired(now: t0 + limit - 1)
        #expect(log.segmentCount == 1)
        try log.rollIfExpired(now: t0 + limit)
        #expect(log.segmentCount == 2)
    }

    @Test func aFullIndexRollsTheSegment() throws {
        var config = LogConfig()
        config.indexIntervalBytes = 0  // an index entry per batch
        config.segmentIndexBytes = 8 * 4  // four offset index entries (two time index entries: 12 bytes each)
        let log = try openLog(temporaryDirectory(), config: config)
        let t0 = currentTimeMillis()
        for i in 0..<12 { _ = try log.append(makeBatch(1, timestamp: t0 + Int64(i)), leaderEpoch: 0, now: t0) }
        #expect(log.segmentCount > 1, "segment.index.bytes=32 never rolled the segment")
        log.updateHighWatermark(log.logEndOffset)
        #expect(try readAll(log).map(\.0) == Array(0..<12))
    }
}
