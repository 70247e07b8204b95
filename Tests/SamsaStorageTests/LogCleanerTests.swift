import Foundation
import KafkaProtocol
import KafkaRecords
import KafkaWire
import NIOCore
import Testing
@testable import SamsaStorage

/// A batch of keyed records (nil value: a tombstone).
func keyedBatch(_ records: [(String, String?)], timestamp: Int64 = currentTimeMillis(), codec: CompressionCodec = .none,
                producerId: Int64 = -1, epoch: Int16 = -1, sequence: Int32 = -1, transactional: Bool = false) -> ByteBuffer {
    var builder = RecordBatchBuilder(attributes: RecordBatchAttributes(rawValue: transactional ? 0x10 : 0),
                                     producerId: producerId, producerEpoch: epoch, baseSequence: sequence)
    for (k, v) in records {
        builder.append(key: ByteBuffer(string: k), value: v.map { ByteBuffer(string: $0) }, timestamp: timestamp)
    }
    return codec == .none ? builder.build() : try! builder.build(compression: codec)
}

struct StoredRecord: Equatable {
    var offset: Int64
    var key: String?
    var value: String?
}

/// Every record of the log with its key (tombstones included), and the batch headers.
func readRecords(_ log: PartitionLog) throws -> (records: [StoredRecord], headers: [RecordBatchHeader]) {
    var records: [StoredRecord] = [], headers: [RecordBatchHeader] = []
    var next = log.logStartOffset
    while next < log.highWatermark {
        let bytes = try log.readBatches(from: next, maxBytes: 1 << 20)
        var reader = RecordBatchReader(bytes, allowsPartialTrailingBatch: true)
        var advanced = false
        while let batch = try reader.next() {
            try batch.validate()
            headers.append(batch.header)
            try batch.forEachRecord { r in
                records.append(StoredRecord(offset: batch.header.baseOffset + Int64(r.offsetDelta),
                                            key: r.key.map { String(buffer: $0) }, value: r.value.map { String(buffer: $0) }))
            }
            next = batch.header.lastOffset + 1
            advanced = true
        }
        if !advanced { break }
    }
    return (records, headers)
}

func compactConfig(segmentBytes: Int = 600) -> LogConfig {
    var c = LogConfig()
    c.compact = true
    c.retentionMs = -1
    c.segmentBytes = segmentBytes
    c.minCleanableDirtyRatio = 0.01
    return c
}

@Suite struct LogCleanerTests {
    func setUp(_ config: LogConfig) throws -> (String, LogManager, PartitionLog) {
        let dir = temporaryDirectory()
        let manager = try LogManager(logDir: dir)
        try manager.loadAll { _ in config }
        return (dir, manager, try manager.getOrCreate(TopicPartition("c", 0), config: config))
    }

    @Test func keepsTheLatestRecordPerKeyWithOffsetsAndHeadersPreserved() throws {
        let (_, manager, log) = try setUp(compactConfig(segmentBytes: 400))
        // 12 rounds over 5 keys, every other batch gzip-compressed, from an idempotent producer.
        var latest: [String: (Int64, String)] = [:]
        var seq: Int32 = 0
        for round in 0..<12 {
            let recs = (0..<5).map { ("key\($0)", Optional("r\(round)-k\($0)")) }
            let r = try appendAndCommit(log, keyedBatch(recs, codec: round % 2 == 0 ? .gzip : .none,
                                                        producerId: 42, epoch: 3, sequence: seq))
            seq += 5
            for (i, rec) in recs.enumerated() { latest[rec.0] = (r.firstOffset + Int64(i), rec.1!) }
        }
        let before = try readRecords(log)
        let segmentsBefore = log.segmentCount
        #expect(segmentsBefore > 4)
        let cleaner = LogCleaner(manager: manager)
        let stats = try #require(try cleaner.clean(log))
        #expect(stats.recordsRemoved > 0)
        let after = try readRecords(log)
        // Fewer records, and every record kept sits at its original offset with its value.
        #expect(after.records.count < before.records.count)
        for r in after.records { #expect(before.records.contains(r)) }
        #expect(zip(after.records, after.records.dropFirst()).allSatisfy { $0.offset < $1.offset })
        // Below the active segment each key appears once; the latest value of every key is there.
        let active = log.segmentBaseOffsets.last!
        let cleanedKeys = after.records.filter { $0.offset < active }.compactMap(\.key)
        #expect(Set(cleanedKeys).count == cleanedKeys.count)
        for (key, (offset, value)) in latest {
            #expect(after.records.last(where: { $0.key == key }) == StoredRecord(offset: offset, key: key, value: value))
        }
        // Re-encoded batches keep the producer fields, base offset and offset range of the original.
        for h in after.headers {
            #expect(h.producerId == 42 && h.producerEpoch == 3)
            let original = try #require(before.headers.first { $0.baseOffset == h.baseOffset })
            #expect(h.baseSequence == original.baseSequence && h.lastOffsetDelta == original.lastOffsetDelta)
            #expect(h.attributes == original.attributes)
        }
        // The producer's state survives a restart (its last batch is still there): a retry is a duplicate.
        log.waitForBackgroundWork()
        let retry = try log.append(keyedBatch((0..<5).map { ("key\($0)", Optional("r11-k\($0)")) }, codec: .none,
                                              producerId: 42, epoch: 3, sequence: seq - 5), leaderEpoch: 0)
        #expect(retry.isDuplicate)
        #expect(cleaner.checkpoint(for: log.topicPartition) == active)
        // The next cleaning merges the now small cleaned segments (groups up to segment.bytes).
        let small = log.segmentCount
        for round in 12..<16 {
            try appendAndCommit(log, keyedBatch((0..<5).map { ("key\($0)", Optional("r\(round)-k\($0)")) }))
        }
        let more = log.segmentCount
        #expect(more > small)
        try cleaner.clean(log)
        #expect(log.segmentCount < more)
        #expect(try readRecords(log).records.last { $0.key == "key4" }?.value == "r15-k4")
    }

    @Test func tombstonesStayForDeleteRetentionThenGo() throws {
        var config = compactConfig()
        config.deleteRetentionMs = 60_000
        let (_, manager, log) = try setUp(config)
        let t0: Int64 = 1_800_000_000_000
        try appendAndCommit(log, keyedBatch([("a", "1"), ("b", "1")], timestamp: t0), now: t0)
        try appendAndCommit(log, keyedBatch([("a", nil)], timestamp: t0), now: t0)  // delete a
        for i in 0..<12 { try appendAndCommit(log, keyedBatch([("b", "\(i)"), ("c", "\(i)")], timestamp: t0), now: t0) }
        let cleaner = LogCleaner(manager: manager)
        try cleaner.clean(log, now: t0 + 1000)
        var records = try readRecords(log).records
        #expect(!records.contains { $0.key == "a" && $0.value != nil })
        #expect(records.contains { $0.key == "a" && $0.value == nil })  // consumers still see the delete
        // More data, and later than delete.retention.ms: the tombstone is gone too.
        for i in 0..<12 { try appendAndCommit(log, keyedBatch([("c", "x\(i)")], timestamp: t0 + 100_000), now: t0 + 100_000) }
        let stats = try #require(try cleaner.clean(log, now: t0 + 100_000))
        #expect(stats.tombstonesRemoved == 1)
        records = try readRecords(log).records
        #expect(!records.contains { $0.key == "a" })
        #expect(records.last { $0.key == "b" }?.value == "11")
    }

    @Test func transactionalAndControlBatchesAreLeftAlone() throws {
        let (_, manager, log) = try setUp(compactConfig())
        try appendAndCommit(log, keyedBatch([("t", "txn-1"), ("t", "txn-2")], producerId: 9, epoch: 0, sequence: 0, transactional: true))
        for i in 0..<15 { try appendAndCommit(log, keyedBatch([("t", "plain-\(i)"), ("u", "\(i)")])) }
        try LogCleaner(manager: manager).clean(log)
        let records = try readRecords(log).records
        #expect(records.filter { $0.value?.hasPrefix("txn") == true }.map(\.value) == ["txn-1", "txn-2"])
        #expect(records.filter { $0.value?.hasPrefix("plain") == true }.count < 15)
    }

    @Test func dirtyRatioAndCompactionLagDecideWhatIsCleaned() throws {
        var config = compactConfig()
        config.minCleanableDirtyRatio = 0.9
        let (_, manager, log) = try setUp(config)
        let now: Int64 = 1_800_000_000_000
        for i in 0..<20 { try appendAndCommit(log, keyedBatch([("k\(i)", "\(i)"), ("j", "\(i)")], timestamp: now), now: now) }
        let cleaner = LogCleaner(manager: manager)
        // All dirty: ratio 1 ≥ 0.9.
        #expect(try cleaner.cleanDirtiest(now: now)?.0 == log.topicPartition)
        // A little new data over a cleaned log is below the ratio: nothing to do.
        try appendAndCommit(log, keyedBatch([("k0", "n"), ("j", "n")], timestamp: now), now: now)
        try log.rollIfExpired(now: now + config.segmentMs)
        #expect(try cleaner.cleanDirtiest(now: now) == nil)
        // ... unless the oldest dirty record is older than max.compaction.lag.ms.
        var lagged = config
        lagged.maxCompactionLagMs = 1000
        log.updateConfig(lagged)
        #expect(try cleaner.cleanDirtiest(now: now + 5000)?.0 == log.topicPartition)
        // min.compaction.lag.ms keeps recent segments out of cleaning.
        for i in 0..<20 { try appendAndCommit(log, keyedBatch([("k", "m\(i)")], timestamp: now + 10_000), now: now + 10_000) }
        var young = config
        young.minCompactionLagMs = 60_000
        young.minCleanableDirtyRatio = 0
        log.updateConfig(young)
        #expect(try cleaner.clean(log, now: now + 20_000) == nil)
        #expect(try readRecords(log).records.filter { $0.value?.hasPrefix("m") == true }.count == 20)
    }

    @Test func aCrashDuringCleaningLeavesAConsistentLog() throws {
        for failing in ["swap", "old"] {
            let (dir, manager, log) = try setUp(compactConfig())
            defer { IOFaults.remove(under: dir) }
            for round in 0..<12 { try appendAndCommit(log, keyedBatch((0..<4).map { ("k\($0)", Optional("r\(round)")) })) }
            let expected = try readRecords(log).records
            let bases = log.segmentBaseOffsets
            // The swap dies half-way: renaming the swap file, or renaming the second old segment away.
            IOFaults.install(under: dir) { op, path in
                guard op == "rename" else { return nil }
                if failing == "swap", path.hasSuffix(".log.swap") { return .init(errno: EIO) }
                if failing == "old", path.hasSuffix(LogSegment.fileName(bases[1], ".log")) { return .init(errno: EIO) }
                return nil
            }
            #expect(throws: StorageError.logDirOffline(path: dir)) { try LogCleaner(manager: manager).clean(log) }
            IOFaults.remove(under: dir)
            // Start again from the files: the swap is completed (or the old segments kept), and the log
            // reads back consistently: ascending unique offsets, every record an original one, the
            // latest value of each key present.
            let reopened = try PartitionLog.open(directory: log.directory, topicPartition: log.topicPartition,
                                                 config: compactConfig(), recoveryPoint: 0)
            reopened.updateHighWatermark(reopened.logEndOffset)
            #expect(reopened.logEndOffset == log.logEndOffset)
            let records = try readRecords(reopened).records
            #expect(zip(records, records.dropFirst()).allSatisfy { $0.offset < $1.offset })
            for r in records { #expect(expected.contains(r)) }
            for k in 0..<4 { #expect(records.last { $0.key == "k\(k)" }?.value == "r11") }
            #expect(try FS.list(log.directory).allSatisfy { !$0.hasSuffix(".swap") && !$0.hasSuffix(".cleaned") && !$0.hasSuffix(".deleted") })
        }
    }

    @Test func aCompactedLogReadsTheSameAfterACleanOrUncleanRestart() throws {
        for clean in [true, false] {
            let dir = temporaryDirectory()
            let tp = TopicPartition("c", 0)
            var expected: [StoredRecord] = []
            do {
                let manager = try LogManager(logDir: dir)
                try manager.loadAll { _ in compactConfig() }
                let log = try manager.getOrCreate(tp, config: compactConfig())
                for round in 0..<15 {
                    try appendAndCommit(log, keyedBatch((0..<3).map { ("k\($0)", Optional("r\(round)")) }, codec: .gzip))
                }
                try LogCleaner(manager: manager).clean(log)
                expected = try readRecords(log).records
                if clean { try manager.shutdown() } else { log.waitForBackgroundWork() }
            }
            let manager = try LogManager(logDir: dir)
            try manager.loadAll { _ in compactConfig() }
            let log = try #require(manager.log(tp))
            log.updateHighWatermark(log.logEndOffset)
            #expect(log.recoveryReport.bytesTruncated == 0)
            #expect(try readRecords(log).records == expected)
            // A read at an offset inside a gap returns the batches from the next record on.
            let gap = try #require((1..<log.logEndOffset).first { o in !expected.contains { $0.offset == o } })
            var reader = RecordBatchReader(try log.readBatches(from: gap, maxBytes: 1 << 20), allowsPartialTrailingBatch: true)
            var firstRead: Int64?
            while firstRead == nil, let batch = try reader.next() {
                try batch.forEachRecord { r in
                    let o = batch.header.baseOffset + Int64(r.offsetDelta)
                    if firstRead == nil, o >= gap { firstRead = o }
                }
            }
            #expect(firstRead == expected.first { $0.offset >= gap }?.offset)
            #expect(try log.append(keyedBatch([("k0", "after")]), leaderEpoch: 0).firstOffset == 45)
        }
    }

    @Test func compactAndDeleteAppliesRetentionToo() throws {
        var config = compactConfig()
        config.retentionMs = 60_000
        let (_, manager, log) = try setUp(config)
        let now: Int64 = 1_800_000_000_000
        for i in 0..<10 { try appendAndCommit(log, keyedBatch([("old\(i)", "v")], timestamp: now - 3_600_000), now: now) }
        try log.rollIfExpired(now: now + config.segmentMs)
        for i in 0..<10 { try appendAndCommit(log, keyedBatch([("k", "\(i)")], timestamp: now), now: now) }
        try LogCleaner(manager: manager).clean(log, now: now)
        try log.applyRetention(now: now)
        let records = try readRecords(log).records
        #expect(!records.contains { $0.key?.hasPrefix("old") == true })
        #expect(records.filter { $0.key == "k" }.last?.value == "9")
        #expect(log.logStartOffset > 0)
    }

    @Test func anAbandonedCleanedFileIsRemovedAtStart() throws {
        let (_, manager, log) = try setUp(compactConfig())
        for round in 0..<6 { try appendAndCommit(log, keyedBatch([("k", "r\(round)")])) }
        let expected = try readRecords(log).records
        try manager.shutdown()
        let cleanedPath = log.directory + "/" + LogSegment.fileName(0, ".log.cleaned")
        FileManager.default.createFile(atPath: cleanedPath, contents: Data(repeating: 7, count: 100))
        let reopened = try PartitionLog.open(directory: log.directory, topicPartition: log.topicPartition, config: compactConfig())
        reopened.updateHighWatermark(reopened.logEndOffset)
        #expect(!FS.exists(cleanedPath))
        #expect(try readRecords(reopened).records == expected)
    }

    @Test func theBackgroundCleanerCompactsWithoutBeingAsked() throws {
        let (_, manager, log) = try setUp(compactConfig())
        for round in 0..<20 { try appendAndCommit(log, keyedBatch([("only", "r\(round)")])) }
        var config = CleanerConfig()
        config.backoffMs = 20
        let cleaner = LogCleaner(manager: manager, config: config)
        cleaner.start()
        defer { cleaner.shutdown() }
        let deadline = monotonicMillis() + 10_000
        while cleaner.totalStats.recordsRemoved == 0, monotonicMillis() < deadline { usleep(10_000) }
        #expect(cleaner.totalStats.recordsRemoved > 0)
        cleaner.shutdown()
        #expect(try readRecords(log).records.last?.value == "r19")
    }
}
