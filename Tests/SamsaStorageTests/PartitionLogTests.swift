import KafkaWire
import KafkaProtocol
import Foundation
import KafkaRecords
import NIOCore
import Testing
@testable import SamsaStorage

func temporaryDirectory(_ name: String = #function) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-storage-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A batch of `count` records with values "<prefix>-<i>", as a client would send it (base offset 0).
func makeBatch(_ count: Int, prefix: String = "v", timestamp: Int64 = currentTimeMillis(), timestampStep: Int64 = 0,
               producerId: Int64 = -1, epoch: Int16 = -1, sequence: Int32 = -1, valueSize: Int = 0) -> ByteBuffer {
    var builder = RecordBatchBuilder(producerId: producerId, producerEpoch: epoch, baseSequence: sequence)
    for i in 0..<count {
        var value = ByteBuffer(string: "\(prefix)-\(i)")
        if valueSize > 0 { value.writeRepeatingByte(UInt8(ascii: "x"), count: valueSize) }
        builder.append(key: ByteBuffer(string: "k\(i)"), value: value, timestamp: timestamp + Int64(i) * timestampStep)
    }
    return builder.build()
}

/// Every record read back from `log` from `offset`: (offset, value).
func readAll(_ log: PartitionLog, from offset: Int64 = 0) throws -> [(Int64, String)] {
    var out: [(Int64, String)] = []
    var next = max(offset, log.logStartOffset)
    while next < log.highWatermark {
        let bytes = try log.readBatches(from: next, maxBytes: 1 << 20)
        var reader = RecordBatchReader(bytes, allowsPartialTrailingBatch: true)
        var advanced = false
        while let batch = try reader.next() {
            try batch.validate()
            try batch.forEachRecord { r in
                let o = batch.header.baseOffset + Int64(r.offsetDelta)
                if o >= next { out.append((o, String(buffer: r.value!))) }
            }
            next = batch.header.lastOffset + 1
            advanced = true
        }
        if !advanced { break }
    }
    return out
}

func openLog(_ dir: String, config: LogConfig = LogConfig(), clean: Bool = false, recoveryPoint: Int64 = 0) throws -> PartitionLog {
    try PartitionLog.open(directory: dir + "/t-0", topicPartition: TopicPartition("t", 0), config: config,
                          recoveryPoint: recoveryPoint, cleanShutdown: clean)
}

@discardableResult
func appendAndCommit(_ log: PartitionLog, _ batch: ByteBuffer, epoch: Int32 = 0, now: Int64 = currentTimeMillis()) throws -> LogAppendResult {
    let r = try log.append(batch, leaderEpoch: epoch, now: now)
    log.updateHighWatermark(log.logEndOffset)
    return r
}

@Suite struct PartitionLogTests {
    @Test func appendAssignsOffsetsAndReadsBack() throws {
        let log = try openLog(temporaryDirectory())
        let r1 = try appendAndCommit(log, makeBatch(3, prefix: "a"))
        let r2 = try appendAndCommit(log, makeBatch(2, prefix: "b"))
        #expect(r1.firstOffset == 0 && r1.lastOffset == 2 && r1.recordCount == 3)
        #expect(r2.firstOffset == 3 && r2.lastOffset == 4)
        #expect(log.logEndOffset == 5)
        let all = try readAll(log)
        #expect(all.map(\.0) == [0, 1, 2, 3, 4])
        #expect(all.map(\.1) == ["a-0", "a-1", "a-2", "b-0", "b-1"])
        // Stored batches keep a valid CRC, carry their assigned base offset and the leader epoch.
        var reader = RecordBatchReader(try log.readBatches(from: 3, maxBytes: 1 << 20))
        let batch = try #require(try reader.next())
        try batch.validate()
        #expect(batch.header.baseOffset == 3 && batch.header.partitionLeaderEpoch == 0)
    }

    @Test func readsNeverPassTheHighWatermark() throws {
        let log = try openLog(temporaryDirectory())
        try log.append(makeBatch(2), leaderEpoch: 0)
        #expect(try log.read(from: 0, maxBytes: 1 << 20).slice == nil)
        log.updateHighWatermark(2)
        #expect(try log.read(from: 0, maxBytes: 1 << 20).slice != nil)
        #expect(try log.read(from: 2, maxBytes: 1 << 20).slice == nil)
        #expect(throws: StorageError.self) { try log.read(from: 3, maxBytes: 100) }
    }

    @Test func maxBytesCutsButAlwaysReturnsOneWholeBatch() throws {
        let log = try openLog(temporaryDirectory())
        let batch = makeBatch(10, valueSize: 100)
        try appendAndCommit(log, batch)
        try appendAndCommit(log, batch)
        let slice = try #require(try log.read(from: 0, maxBytes: 10).slice)
        #expect(slice.length == batch.readableBytes)
        let two = try #require(try log.read(from: 0, maxBytes: 1 << 20).slice)
        #expect(two.length == 2 * batch.readableBytes)
        let cut = try #require(try log.read(from: 0, maxBytes: batch.readableBytes + 5).slice)
        #expect(cut.length == batch.readableBytes + 5)
    }

    @Test func rollsSegmentsAndFindsOffsetsInEach() throws {
        var config = LogConfig()
        config.segmentBytes = 2000
        config.indexIntervalBytes = 300
        let log = try openLog(temporaryDirectory(), config: config)
        for i in 0..<50 { try appendAndCommit(log, makeBatch(3, prefix: "b\(i)", valueSize: 40)) }
        #expect(log.segmentCount > 5)
        #expect(log.logEndOffset == 150)
        for target in [0, 1, 2, 3, 47, 77, 100, 149] as [Int64] {
            let first = try #require(try readAll(log, from: target).first)
            #expect(first.0 == target)
            #expect(first.1.hasPrefix("b\(target / 3)-\(target % 3)x"))
        }
        #expect(try readAll(log).count == 150)
    }

    @Test func rejectsBadBatchesWithKafkaErrorCodes() throws {
        var config = LogConfig()
        config.maxMessageBytes = 500
        let log = try openLog(temporaryDirectory(), config: config)
        var corrupt = makeBatch(2)
        corrupt.setInteger(UInt8(0xFF), at: corrupt.writerIndex - 1)
        #expect(throws: StorageError.self) { try log.append(corrupt, leaderEpoch: 0) }
        do { _ = try log.append(corrupt, leaderEpoch: 0) } catch let e as StorageError { #expect(e.kafkaErrorCode == .corruptMessage) }
        do { _ = try log.append(makeBatch(20, valueSize: 50), leaderEpoch: 0) } catch let e as StorageError {
            #expect(e.kafkaErrorCode == .messageTooLarge)
        }
        var legacy = makeBatch(1)
        legacy.setInteger(Int8(1), at: legacy.readerIndex + 16)
        do { _ = try log.append(legacy, leaderEpoch: 0) } catch let e as StorageError {
            #expect(e.kafkaErrorCode == .unsupportedForMessageFormat)
        }
        #expect(log.logEndOffset == 0)
    }

    @Test func logAppendTimeStampsBatchesAndKeepsCRCValid() throws {
        var config = LogConfig()
        config.logAppendTime = true
        let log = try openLog(temporaryDirectory(), config: config)
        let r = try appendAndCommit(log, makeBatch(3), now: 1_800_000_000_000)
        #expect(r.logAppendTime == 1_800_000_000_000)
        var reader = RecordBatchReader(try log.readBatches(from: 0, maxBytes: 1 << 20))
        let batch = try #require(try reader.next())
        try batch.validate()
        #expect(batch.header.maxTimestamp == 1_800_000_000_000)
        #expect(batch.header.attributes.timestampType == .logAppendTime)
    }
}

@Suite struct RecoveryTests {
    @Test func reopensAfterCleanCloseWithoutScanning() throws {
        let dir = temporaryDirectory()
        var log: PartitionLog? = try openLog(dir)
        for i in 0..<10 { try appendAndCommit(log!, makeBatch(5, prefix: "r\(i)")) }
        _ = try log!.close()
        log = nil
        let reopened = try openLog(dir, clean: true)
        #expect(reopened.logEndOffset == 50)
        #expect(reopened.recoveryReport.segmentsScanned == 0)
        #expect(try readAll(reopened).count == 50)
    }

    @Test func truncatesATornTail() throws {
        let dir = temporaryDirectory()
        var log: PartitionLog? = try openLog(dir)
        for i in 0..<4 { try appendAndCommit(log!, makeBatch(5, prefix: "r\(i)")) }
        log = nil  // crash: no close
        // Half a batch at the end, as a crash in the middle of a write leaves it.
        let path = dir + "/t-0/" + LogSegment.fileName(0, ".log")
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        let partial = makeBatch(5, prefix: "torn")
        handle.write(Data(partial.getBytes(at: partial.readerIndex, length: partial.readableBytes / 2)!))
        try handle.close()
        let recovered = try openLog(dir)
        #expect(recovered.logEndOffset == 20)
        #expect(recovered.recoveryReport.bytesTruncated == partial.readableBytes / 2)
        #expect(try readAll(recovered).map(\.1).last == "r3-4")
        // Appends continue at the right offset after recovery.
        let r = try appendAndCommit(recovered, makeBatch(1, prefix: "after"))
        #expect(r.firstOffset == 20)
    }

    @Test func truncatesAtACorruptBatchAndDropsLaterSegments() throws {
        let dir = temporaryDirectory()
        var config = LogConfig()
        config.segmentBytes = 1000
        var log: PartitionLog? = try openLog(dir, config: config)
        for i in 0..<30 { try appendAndCommit(log!, makeBatch(3, prefix: "c\(i)", valueSize: 30)) }
        let bases = log!.segmentBaseOffsets
        #expect(bases.count >= 4)
        log = nil
        // Flip a byte inside the second segment's first batch's records.
        let path = dir + "/t-0/" + LogSegment.fileName(bases[1], ".log")
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        handle.seek(toFileOffset: 80)
        handle.write(Data([0xAB]))
        try handle.close()
        let recovered = try openLog(dir, config: config)
        #expect(recovered.logEndOffset == bases[1])
        #expect(recovered.recoveryReport.truncatedAt == bases[1])
        #expect(try readAll(recovered).count == Int(bases[1]))
    }

    @Test func recoveryPointSkipsTrustedSegments() throws {
        let dir = temporaryDirectory()
        var config = LogConfig()
        config.segmentBytes = 1000
        var log: PartitionLog? = try openLog(dir, config: config)
        for i in 0..<30 { try appendAndCommit(log!, makeBatch(3, prefix: "p\(i)", valueSize: 30)) }
        let count = log!.segmentCount
        let flushed = try log!.flush()
        log = nil
        let recovered = try openLog(dir, config: config, recoveryPoint: flushed)
        #expect(recovered.recoveryReport.segmentsScanned == 1)
        #expect(recovered.segmentCount == count)
        #expect(try readAll(recovered).count == 90)
    }
}

@Suite struct RetentionTests {
    @Test func sizeRetentionDeletesWholeOldSegments() throws {
        var config = LogConfig()
        config.segmentBytes = 1000
        config.retentionBytes = 3000
        let log = try openLog(temporaryDirectory(), config: config)
        for i in 0..<40 { try appendAndCommit(log, makeBatch(3, prefix: "s\(i)", valueSize: 30)) }
        let before = log.segmentBaseOffsets
        let deleted = try log.applyRetention()
        #expect(deleted > 0)
        #expect(log.sizeInBytes <= 3000 + 1000)
        #expect(log.logStartOffset == log.segmentBaseOffsets.first)
        #expect(log.logStartOffset == before[deleted])
        #expect(throws: StorageError.self) { try log.read(from: 0, maxBytes: 100) }
        do { _ = try log.read(from: 0, maxBytes: 100) } catch let e as StorageError { #expect(e.kafkaErrorCode == .offsetOutOfRange) }
        #expect(try readAll(log).first?.0 == log.logStartOffset)
    }

    @Test func timeRetentionDeletesSegmentsWithOnlyOldRecords() throws {
        var config = LogConfig()
        config.segmentBytes = 1000
        config.retentionMs = 60_000
        let log = try openLog(temporaryDirectory(), config: config)
        let now: Int64 = 1_800_000_000_000
        for i in 0..<20 { try appendAndCommit(log, makeBatch(3, prefix: "old\(i)", timestamp: now - 3_600_000, valueSize: 30), now: now) }
        for i in 0..<3 { try appendAndCommit(log, makeBatch(3, prefix: "new\(i)", timestamp: now, valueSize: 30), now: now) }
        try log.applyRetention(now: now)
        let remaining = try readAll(log)
        #expect(remaining.allSatisfy { !$0.1.hasPrefix("old") || $0.0 >= log.logStartOffset })
        #expect(remaining.contains { $0.1.hasPrefix("new2-2") })
        #expect(log.logStartOffset > 0)
        #expect(log.segmentBaseOffsets.first == log.logStartOffset)
    }

    @Test func everythingExpiredRollsAndKeepsTheLogEnd() throws {
        var config = LogConfig()
        config.retentionMs = 1000
        let log = try openLog(temporaryDirectory(), config: config)
        let now: Int64 = 1_800_000_000_000
        try appendAndCommit(log, makeBatch(3, timestamp: now - 10_000), now: now)
        #expect(try log.applyRetention(now: now) == 1)
        #expect(log.logStartOffset == 3 && log.logEndOffset == 3)
        #expect(try appendAndCommit(log, makeBatch(1)).firstOffset == 3)
    }

    @Test func deleteRecordsMovesLogStart() throws {
        var config = LogConfig()
        config.segmentBytes = 1000
        let log = try openLog(temporaryDirectory(), config: config)
        for i in 0..<30 { try appendAndCommit(log, makeBatch(3, prefix: "d\(i)", valueSize: 30)) }
        let segments = log.segmentCount
        #expect(try log.deleteRecords(before: 50) == 50)
        #expect(log.segmentCount < segments)
        #expect(try readAll(log).first?.0 == 50)
        #expect(throws: StorageError.self) { try log.deleteRecords(before: 1000) }
    }
}

@Suite struct IdempotenceTests {
    @Test func duplicatesAreAcknowledgedWithoutAppending() throws {
        let log = try openLog(temporaryDirectory())
        let b0 = makeBatch(3, producerId: 7, epoch: 0, sequence: 0)
        let b1 = makeBatch(2, producerId: 7, epoch: 0, sequence: 3)
        try appendAndCommit(log, b0)
        let r1 = try appendAndCommit(log, b1)
        let dup = try appendAndCommit(log, b1)
        #expect(dup.isDuplicate && dup.firstOffset == r1.firstOffset && dup.lastOffset == r1.lastOffset)
        #expect(try appendAndCommit(log, b0).isDuplicate)
        #expect(log.logEndOffset == 5)
    }

    @Test func sequenceGapsAndStaleEpochsAreRefused() throws {
        let log = try openLog(temporaryDirectory())
        try appendAndCommit(log, makeBatch(3, producerId: 7, epoch: 1, sequence: 0))
        func code(_ batch: ByteBuffer) -> KafkaErrorCodeName? {
            do { _ = try log.append(batch, leaderEpoch: 0); return nil } catch let e as StorageError {
                return KafkaErrorCodeName(e.kafkaErrorCode.name)
            } catch { return nil }
        }
        #expect(code(makeBatch(1, producerId: 7, epoch: 1, sequence: 5)) == "OUT_OF_ORDER_SEQUENCE_NUMBER")
        #expect(code(makeBatch(1, producerId: 7, epoch: 0, sequence: 3)) == "INVALID_PRODUCER_EPOCH")
        #expect(code(makeBatch(1, producerId: 7, epoch: 2, sequence: 1)) == "OUT_OF_ORDER_SEQUENCE_NUMBER")
        #expect(code(makeBatch(1, producerId: 99, epoch: 0, sequence: 4)) == "UNKNOWN_PRODUCER_ID")
        #expect(code(makeBatch(1, producerId: 7, epoch: 2, sequence: 0)) == nil)  // new epoch restarts at 0
        #expect(code(makeBatch(1, producerId: 7, epoch: 2, sequence: 1)) == nil)
    }

    @Test func producerStateSurvivesRestartAndCrash() throws {
        let dir = temporaryDirectory()
        var log: PartitionLog? = try openLog(dir)
        try appendAndCommit(log!, makeBatch(3, producerId: 7, epoch: 0, sequence: 0))
        _ = try log!.close()
        log = try openLog(dir, clean: true)
        let b = makeBatch(2, producerId: 7, epoch: 0, sequence: 3)
        try appendAndCommit(log!, b)
        log = nil  // crash: the snapshot predates this batch; replay must find it
        let recovered = try openLog(dir)
        #expect(try recovered.append(b, leaderEpoch: 0).isDuplicate)
        #expect(try recovered.append(makeBatch(1, producerId: 7, epoch: 0, sequence: 5), leaderEpoch: 0).firstOffset == 5)
    }
}

typealias KafkaErrorCodeName = String

@Suite struct LookupTests {
    @Test func offsetForTimestampFindsTheFirstRecordAtOrAfter() throws {
        var config = LogConfig()
        config.segmentBytes = 2000
        config.indexIntervalBytes = 200
        let log = try openLog(temporaryDirectory(), config: config)
        // 40 batches of 5 records, record timestamps 1000, 1010, 1020, ... (10 ms apart).
        for i in 0..<40 { try appendAndCommit(log, makeBatch(5, prefix: "t\(i)", timestamp: 1000 + Int64(i) * 50, timestampStep: 10)) }
        #expect(try log.offsetForTimestamp(0)?.offset == 0)
        #expect(try log.offsetForTimestamp(1000)?.offset == 0)
        #expect(try log.offsetForTimestamp(1001)?.offset == 1)
        #expect(try log.offsetForTimestamp(1500)?.offset == 50)
        let hit = try #require(try log.offsetForTimestamp(1555))
        #expect(hit.offset == 56 && hit.timestamp == 1560)
        #expect(try log.offsetForTimestamp(1000 + 40 * 50) == nil)
        let max = try #require(try log.offsetOfMaxTimestamp())
        #expect(max.offset == 199 && max.timestamp == 1000 + 39 * 50 + 40)
    }

    @Test func truncateRemovesTheTailAndEpochs() throws {
        var config = LogConfig()
        config.segmentBytes = 1000
        let log = try openLog(temporaryDirectory(), config: config)
        for i in 0..<10 { try appendAndCommit(log, makeBatch(3, prefix: "e\(i)", valueSize: 30), epoch: 1) }
        for i in 0..<10 { try appendAndCommit(log, makeBatch(3, prefix: "f\(i)", valueSize: 30), epoch: 2) }
        #expect(log.leaderEpochCache.entries.map(\.epoch) == [1, 2])
        try log.truncate(to: 31)  // mid-batch: the log ends at that batch's start
        #expect(log.logEndOffset == 30)
        #expect(log.leaderEpochCache.entries.map(\.epoch) == [1])
        #expect(try appendAndCommit(log, makeBatch(1), epoch: 3).firstOffset == 30)
        #expect(try readAll(log).count == 31)
        try log.truncate(to: 0)
        #expect(log.logEndOffset == 0 && log.segmentCount == 1)
    }
}

@Suite struct LogManagerTests {
    @Test func checkpointsAndCleanShutdownMarker() throws {
        let dir = temporaryDirectory()
        do {
            let manager = try LogManager(logDir: dir)
            try manager.loadAll { _ in LogConfig() }
            #expect(!manager.hadCleanShutdown)
            let log = try manager.getOrCreate(TopicPartition("orders", 3), config: LogConfig())
            try appendAndCommit(log, makeBatch(4))
            // A second broker on the same folder is refused.
            #expect(throws: StorageError.self) { try LogManager(logDir: dir) }
            try manager.shutdown()
        }
        let manager = try LogManager(logDir: dir)
        #expect(manager.hadCleanShutdown)
        try manager.loadAll { _ in LogConfig() }
        let log = try #require(manager.log(TopicPartition("orders", 3)))
        #expect(log.logEndOffset == 4 && log.highWatermark == 4)
        #expect(log.recoveryReport.segmentsScanned == 0)
    }
}
