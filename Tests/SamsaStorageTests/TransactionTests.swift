import Foundation
import KafkaProtocol
import KafkaRecords
import KafkaWire
import NIOCore
import Testing
@testable import SamsaStorage

/// A transactional batch of `count` records from producer `pid` (as a transactional client sends it).
func txnBatch(_ count: Int, pid: Int64, epoch: Int16 = 0, sequence: Int32, prefix: String = "t", valueSize: Int = 0) -> ByteBuffer {
    var builder = RecordBatchBuilder(attributes: RecordBatchAttributes(isTransactional: true),
                                     producerId: pid, producerEpoch: epoch, baseSequence: sequence)
    for i in 0..<count {
        var value = ByteBuffer(string: "\(prefix)-\(i)")
        if valueSize > 0 { value.writeRepeatingByte(UInt8(ascii: "x"), count: valueSize) }
        builder.append(key: ByteBuffer(string: "k\(i)"), value: value, timestamp: currentTimeMillis())
    }
    return builder.build()
}

/// Writes a COMMIT/ABORT marker as the transaction coordinator does (WriteTxnMarkers); returns its offset.
@discardableResult
func writeMarker(_ log: PartitionLog, commit: Bool, pid: Int64, epoch: Int16 = 0, coordinatorEpoch: Int32 = 0,
                 commitHW: Bool = true) throws -> Int64 {
    let batch = EndTxnMarker.batch(isCommit: commit, producerId: pid, producerEpoch: epoch,
                                   coordinatorEpoch: coordinatorEpoch, timestamp: currentTimeMillis())
    let r = try log.append(batch, leaderEpoch: 0, origin: .coordinator)
    if commitHW { log.updateHighWatermark(log.logEndOffset) }
    return r.firstOffset
}

func fileBytes(_ path: String) -> [UInt8]? {
    FileManager.default.contents(atPath: path).map { [UInt8]($0) }
}

func expectedTxnIndexBytes(_ entries: [AbortedTxn]) -> [UInt8] {
    var out: [UInt8] = []
    func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.bigEndian) { out += $0 } }
    for e in entries {
        put(Int16(0)); put(e.producerId); put(e.firstOffset); put(e.lastOffset); put(e.lastStableOffset)
    }
    return out
}

@Suite struct TransactionTests {
    @Test func openTransactionHoldsTheLastStableOffsetAndMarkersReleaseIt() throws {
        let log = try openLog(temporaryDirectory())
        try appendAndCommit(log, makeBatch(3))                                  // 0...2
        #expect(log.lastStableOffset == 3)
        try appendAndCommit(log, txnBatch(2, pid: 1, sequence: 0))              // 3...4, txn of 1 opens at 3
        #expect(log.lastStableOffset == 3)
        try appendAndCommit(log, txnBatch(2, pid: 2, sequence: 0))              // 5...6, txn of 2 opens at 5
        try appendAndCommit(log, txnBatch(1, pid: 1, sequence: 2))              // 7
        try appendAndCommit(log, makeBatch(1))                                  // 8
        #expect(log.lastStableOffset == 3)
        #expect(log.ongoingTransactions.map(\.producerId) == [1, 2])
        #expect(log.ongoingTransactions.map(\.firstOffset) == [3, 5])
        // The COMMIT of 1 (at 9): not yet replicated, the LSO stays until the high watermark passes it.
        let commit = try writeMarker(log, commit: true, pid: 1, commitHW: false)
        #expect(commit == 9)
        #expect(log.lastStableOffset == 3)
        log.updateHighWatermark(log.logEndOffset)
        #expect(log.lastStableOffset == 5)                                      // 2 still open
        #expect(log.offsets.lastStableOffset == 5)
        // The high watermark bounds the LSO.
        try log.append(makeBatch(1), leaderEpoch: 0)                            // 10
        try writeMarker(log, commit: false, pid: 2, commitHW: false)            // 11
        log.updateHighWatermark(5)
        #expect(log.lastStableOffset == 5)
        log.updateHighWatermark(11)
        #expect(log.lastStableOffset == 5)                                      // marker at 11 not below the HW
        log.updateHighWatermark(12)
        #expect(log.lastStableOffset == 12)
        #expect(log.ongoingTransactions.isEmpty)
        #expect(try log.read(from: 0, maxBytes: 100).lastStableOffset == 12)
        // The COMMIT added no index entry; the ABORT one.
        #expect(log.abortedTransactionEntries(from: 0, upTo: 12)
                == [AbortedTxn(producerId: 2, firstOffset: 5, lastOffset: 11, lastStableOffset: 12)])
    }

    @Test func abortWritesAKafkaTxnIndexEntry() throws {
        let log = try openLog(temporaryDirectory())
        try appendAndCommit(log, txnBatch(2, pid: 7, epoch: 3, sequence: 0))    // 0...1
        try appendAndCommit(log, txnBatch(1, pid: 8, sequence: 0))              // 2
        let abort = try writeMarker(log, commit: false, pid: 7, epoch: 3, coordinatorEpoch: 5)
        #expect(abort == 3)
        // The LSO after the abort is the first offset of 8's open transaction.
        let entry = AbortedTxn(producerId: 7, firstOffset: 0, lastOffset: 3, lastStableOffset: 2)
        #expect(log.abortedTransactionEntries(from: 0, upTo: 4) == [entry])
        #expect(log.lastStableOffset == 2)
        try log.flush()
        let path = log.directory + "/" + LogSegment.fileName(0, ".txnindex")
        let bytes = try #require(fileBytes(path))
        #expect(bytes.count == 34)
        #expect(bytes == [0, 0,  0, 0, 0, 0, 0, 0, 0, 7,  0, 0, 0, 0, 0, 0, 0, 0,  0, 0, 0, 0, 0, 0, 0, 3,  0, 0, 0, 0, 0, 0, 0, 2])
        // A COMMIT adds nothing; a second ABORT appends after the first.
        try writeMarker(log, commit: true, pid: 8)                              // 4
        try appendAndCommit(log, txnBatch(1, pid: 7, epoch: 3, sequence: 2))    // 5
        try writeMarker(log, commit: false, pid: 7, epoch: 3, coordinatorEpoch: 5)  // 6
        let second = AbortedTxn(producerId: 7, firstOffset: 5, lastOffset: 6, lastStableOffset: 7)
        try log.flush()
        #expect(fileBytes(path) == expectedTxnIndexBytes([entry, second]))
        // The producer's entry remembers the coordinator epoch; an older coordinator is fenced.
        #expect(log.producerState.producers[7]?.coordinatorEpoch == 5)
        #expect(throws: StorageError.self) { try writeMarker(log, commit: false, pid: 7, epoch: 3, coordinatorEpoch: 4) }
        // No index file for a segment without aborted transactions.
        #expect(!FileManager.default.fileExists(atPath: log.directory + "/" + LogSegment.fileName(99, ".txnindex")))
    }

    @Test func nonTransactionalWriteDuringATransactionIsRefused() throws {
        let log = try openLog(temporaryDirectory())
        try appendAndCommit(log, txnBatch(1, pid: 4, sequence: 0))
        do {
            try log.append(makeBatch(1, producerId: 4, epoch: 0, sequence: 1), leaderEpoch: 0)
            Issue.record("a non-transactional batch was accepted during a transaction")
        } catch let e as StorageError {
            #expect(e.kafkaErrorCode == .invalidTxnState)
        }
        #expect(log.logEndOffset == 1)
        // Clients may not write markers.
        let marker = EndTxnMarker.batch(isCommit: true, producerId: 4, producerEpoch: 0, coordinatorEpoch: 0, timestamp: 0)
        #expect(throws: StorageError.self) { try log.append(marker, leaderEpoch: 0) }
        try writeMarker(log, commit: true, pid: 4)
        try appendAndCommit(log, makeBatch(1, producerId: 4, epoch: 0, sequence: 1))
        #expect(log.lastStableOffset == log.logEndOffset)
    }

    /// Three segments or more: aborted transactions, one of which spans segments.
    func multiSegmentLog(_ dir: String) throws -> (PartitionLog, LogConfig) {
        var config = LogConfig()
        config.segmentBytes = 400
        let log = try openLog(dir, config: config)
        try appendAndCommit(log, txnBatch(2, pid: 1, sequence: 0, valueSize: 100))       // 0...1
        try writeMarker(log, commit: false, pid: 1)                                       // 2
        try appendAndCommit(log, txnBatch(2, pid: 2, sequence: 0, valueSize: 100))       // 3...4 (2 spans segments)
        try appendAndCommit(log, txnBatch(2, pid: 3, sequence: 0, valueSize: 100))       // 5...6
        try writeMarker(log, commit: true, pid: 3)                                        // 7
        try appendAndCommit(log, makeBatch(2, valueSize: 150))                            // 8...9
        try appendAndCommit(log, txnBatch(1, pid: 4, sequence: 0, valueSize: 100))       // 10
        try writeMarker(log, commit: false, pid: 2)                                       // 11
        try writeMarker(log, commit: false, pid: 4)                                       // 12
        try appendAndCommit(log, makeBatch(2, valueSize: 150))                            // 13...14
        try appendAndCommit(log, txnBatch(1, pid: 5, sequence: 0, valueSize: 100))       // 15, stays open
        return (log, config)
    }

    static let multiSegmentEntries = [
        AbortedTxn(producerId: 1, firstOffset: 0, lastOffset: 2, lastStableOffset: 3),
        AbortedTxn(producerId: 2, firstOffset: 3, lastOffset: 11, lastStableOffset: 10),
        AbortedTxn(producerId: 4, firstOffset: 10, lastOffset: 12, lastStableOffset: 13),
    ]

    @Test func abortedTransactionsAcrossSegments() throws {
        let (log, _) = try multiSegmentLog(temporaryDirectory())
        #expect(log.segmentCount >= 4)
        #expect(log.lastStableOffset == 15)
        let all = log.transactionIndexes.flatMap(\.entries)
        #expect(all == Self.multiSegmentEntries)
        // Each entry sits in the segment of its marker.
        for e in all {
            let base = log.segmentBaseOffsets.last { $0 <= e.lastOffset }!
            #expect(log.transactionIndexes.first { $0.baseOffset == base }!.entries.contains(e))
        }
        #expect(log.abortedTransactions(from: 0, upTo: 16).map(\.producerId) == [1, 2, 4])
        #expect(log.abortedTransactions(from: 0, upTo: 16).map(\.firstOffset) == [0, 3, 10])
        // From past the first marker: 2 (which started in an earlier segment) and 4.
        #expect(log.abortedTransactions(from: 3, upTo: 16).map(\.producerId) == [2, 4])
        #expect(log.abortedTransactions(from: 8, upTo: 10).map(\.producerId) == [2])
        // The upper bound excludes transactions starting at or after it.
        #expect(log.abortedTransactions(from: 0, upTo: 3).map(\.producerId) == [1])
        #expect(log.abortedTransactions(from: 13, upTo: 16).isEmpty)
    }

    @Test func readCommittedStopsAtTheLastStableOffsetWithTheAbortedTransactionsOfTheData() throws {
        let (log, _) = try multiSegmentLog(temporaryDirectory())
        // Reads stay in one segment: [0, 3) holds 1's aborted transaction.
        let first = try log.readCommitted(from: 0, maxBytes: 1 << 20)
        #expect(first.result.slice?.firstOffset == 0)
        #expect(first.result.lastStableOffset == 15)
        #expect(first.abortedTransactions.map(\.producerId) == [1])
        // [3, 5): 2's transaction starts there (its marker is in a later segment).
        let second = try log.readCommitted(from: 3, maxBytes: 1 << 20)
        #expect(second.abortedTransactions.map(\.producerId) == [2])
        #expect(second.abortedTransactions.map(\.firstOffset) == [3])
        // Nothing past the LSO (15: 5's transaction is open).
        let last = try log.readCommitted(from: 15, maxBytes: 1 << 20)
        #expect(last.result.slice == nil && last.abortedTransactions.isEmpty)
        let bytes = try log.readBatches(from: 13, maxBytes: 1 << 20, upperBound: log.lastStableOffset)
        var reader = RecordBatchReader(bytes)
        var lastOffset: Int64 = -1
        while let batch = try reader.next() { lastOffset = batch.header.lastOffset }
        #expect(lastOffset == 14)
    }

    @Test func recoveryRebuildsTheIndexAndTheLastStableOffset() throws {
        let dir = temporaryDirectory()
        let (built, config) = try multiSegmentLog(dir)
        var log: PartitionLog? = built
        let indexes = log!.transactionIndexes.map { "\($0.baseOffset) \($0.entries)" }
        let end = log!.logEndOffset
        log!.waitForBackgroundWork()
        // Crash: no close. Every segment is scanned again (recovery point 0), its index rebuilt.
        for name in try FileManager.default.contentsOfDirectory(atPath: dir + "/t-0") where name.hasSuffix(".txnindex") {
            try FileManager.default.removeItem(atPath: dir + "/t-0/" + name)
        }
        log = nil
        let recovered = try openLog(dir, config: config)
        #expect(recovered.logEndOffset == end)
        #expect(recovered.transactionIndexes.map { "\($0.baseOffset) \($0.entries)" } == indexes)
        #expect(recovered.lastStableOffset == 15)
        #expect(recovered.ongoingTransactions.map(\.producerId) == [5])
        // The rebuilt indexes of closed segments are on disk in Kafka's format.
        for (base, entries) in recovered.transactionIndexes.dropLast() {
            let bytes = fileBytes(dir + "/t-0/" + LogSegment.fileName(base, ".txnindex"))
            #expect(bytes == (entries.isEmpty ? nil : expectedTxnIndexBytes(entries)))
        }
        // Appends go on: the open transaction of 5 completes.
        try writeMarker(recovered, commit: false, pid: 5)
        #expect(recovered.lastStableOffset == recovered.logEndOffset)
        #expect(recovered.abortedTransactions(from: 15, upTo: 17).map(\.producerId) == [5])
    }

    @Test func recoveryFromTheRecoveryPointKeepsTrustedIndexesAndUsesSnapshots() throws {
        let dir = temporaryDirectory()
        let (built, config) = try multiSegmentLog(dir)
        var log: PartitionLog? = built
        let flushed = try log!.flush()
        log!.waitForBackgroundWork()
        // More after the flush: a transaction opened before it is aborted after it.
        try appendAndCommit(log!, txnBatch(1, pid: 6, sequence: 0, valueSize: 100))
        try writeMarker(log!, commit: false, pid: 5)
        let indexes = log!.transactionIndexes.map { "\($0.baseOffset) \($0.entries)" }
        let lso = log!.lastStableOffset
        log = nil
        let recovered = try openLog(dir, config: config, recoveryPoint: flushed)
        #expect(recovered.recoveryReport.segmentsScanned >= 1)
        #expect(recovered.transactionIndexes.map { "\($0.baseOffset) \($0.entries)" } == indexes)
        #expect(recovered.lastStableOffset == lso)
        #expect(recovered.ongoingTransactions.map(\.producerId) == [6])
    }

    @Test func cleanShutdownKeepsOpenTransactionsInTheSnapshot() throws {
        let dir = temporaryDirectory()
        let log = try openLog(dir)
        try appendAndCommit(log, makeBatch(2))
        try appendAndCommit(log, txnBatch(2, pid: 9, sequence: 0))             // 2...3
        try appendAndCommit(log, txnBatch(1, pid: 10, sequence: 0))            // 4
        try writeMarker(log, commit: false, pid: 10, coordinatorEpoch: 2)      // 5
        _ = try log.close()
        let reopened = try openLog(dir, clean: true)
        #expect(reopened.recoveryReport.producerBatchesReplayed == 0)           // all from the snapshot
        #expect(reopened.lastStableOffset == 2)
        #expect(reopened.producerState.producers[9]?.currentTxnFirstOffset == 2)
        #expect(reopened.producerState.producers[10]?.coordinatorEpoch == 2)
        #expect(reopened.abortedTransactions(from: 0, upTo: 6).map(\.producerId) == [10])
        try writeMarker(reopened, commit: true, pid: 9)
        #expect(reopened.lastStableOffset == 7)
    }

    @Test func theSnapshotAtTheActiveSegmentBaseSurvivesCleanRestarts() throws {
        let dir = temporaryDirectory()
        var config = LogConfig()
        config.segmentBytes = 700
        var log: PartitionLog? = try openLog(dir, config: config)
        for i in 0..<4 { try appendAndCommit(log!, txnBatch(1, pid: 1, sequence: Int32(i), valueSize: 350)) }
        let base = log!.segmentBaseOffsets.last!
        #expect(base > 0)
        for round in 0..<3 {
            try appendAndCommit(log!, makeBatch(1, prefix: "r\(round)"))
            _ = try log!.close()
            log = try openLog(dir, config: config, clean: true)
        }
        #expect(log!.segmentBaseOffsets.last == base)
        let snapshots = PartitionLog.State.snapshotOffsets(in: dir + "/t-0")
        #expect(snapshots.contains(base))
        // A crash now: the active segment's index is rebuilt from the snapshot at its base.
        try writeMarker(log!, commit: false, pid: 1)
        let entries = log!.transactionIndexes.flatMap(\.entries)
        #expect(entries == [AbortedTxn(producerId: 1, firstOffset: 0, lastOffset: 7, lastStableOffset: 8)])
        log = nil
        let recovered = try openLog(dir, config: config, recoveryPoint: base)
        #expect(recovered.transactionIndexes.flatMap(\.entries) == entries)
        #expect(recovered.lastStableOffset == 8)
    }

    @Test func snapshotFormatRoundTripsAndReadsTheOldFormat() throws {
        var state = ProducerStateManager()
        var h = RecordBatchHeader(baseOffset: 0, partitionLeaderEpoch: 0, attributes: RecordBatchAttributes(isTransactional: true),
                                  producerId: 3, producerEpoch: 1, baseSequence: 0)
        h.lastOffsetDelta = 1
        h.recordCount = 2
        state.update(h, firstOffset: 10)
        var plain = RecordBatchHeader(baseOffset: 0, partitionLeaderEpoch: 0, attributes: RecordBatchAttributes(),
                                      producerId: 4, producerEpoch: 0, baseSequence: 0)
        plain.recordCount = 1
        state.update(plain, firstOffset: 12)
        let loaded = try #require(ProducerStateManager.load(snapshot: state.snapshot()))
        #expect(loaded == state)
        #expect(loaded.firstUnstableOffset == 10)
        // "SPS1" (before transactions): same producers, no open transaction.
        var old = ByteBuffer()
        old.writeString("SPS1")
        old.writeInteger(Int32(1), endianness: .big)
        old.writeInteger(Int64(4), endianness: .big)
        old.writeInteger(Int16(0), endianness: .big)
        old.writeInteger(Int64(77), endianness: .big)
        old.writeInteger(Int8(0))
        old.writeInteger(CRC32C.checksum(old), endianness: .big)
        let v1 = try #require(ProducerStateManager.load(snapshot: old))
        #expect(v1.producers[4]?.lastTimestamp == 77 && v1.producers[4]?.currentTxnFirstOffset == nil)
        #expect(v1.firstUnstableOffset == nil)
    }

    @Test func truncationRemovesIndexEntriesAboveAndReopensTransactions() throws {
        let dir = temporaryDirectory()
        let (log, config) = try multiSegmentLog(dir)
        try log.flush()
        // Cut at the marker of 4 (offset 12): its entry goes, its transaction is open again.
        try log.truncate(to: 12)
        #expect(log.logEndOffset == 12)
        #expect(log.transactionIndexes.flatMap(\.entries) == Array(Self.multiSegmentEntries.prefix(2)))
        #expect(log.ongoingTransactions.map(\.producerId) == [4])
        #expect(log.lastStableOffset == 10)
        // Cut inside the transaction of 2, before its marker: only 1's entry stays, 2 is open from 3.
        try log.truncate(to: 9)
        #expect(log.transactionIndexes.flatMap(\.entries) == Array(Self.multiSegmentEntries.prefix(1)))
        #expect(log.ongoingTransactions.map(\.producerId) == [2])
        #expect(log.lastStableOffset == 3)
        try log.flush()
        // The files follow: a restart (clean) sees the same.
        _ = try log.close()
        let reopened = try openLog(dir, config: config, clean: true)
        #expect(reopened.transactionIndexes.flatMap(\.entries) == Array(Self.multiSegmentEntries.prefix(1)))
        #expect(reopened.lastStableOffset == 3)
        var onDisk: [AbortedTxn] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: dir + "/t-0").sorted() where name.hasSuffix(".txnindex") {
            onDisk += TransactionIndex.load(ByteBuffer(bytes: fileBytes(dir + "/t-0/" + name)!))!.entries
        }
        #expect(onDisk == Array(Self.multiSegmentEntries.prefix(1)))
    }

    @Test func followerBuildsTheSameIndexAsTheLeader() throws {
        let (leader, config) = try multiSegmentLog(temporaryDirectory())
        let follower = try openLog(temporaryDirectory(), config: config)
        while follower.logEndOffset < leader.logEndOffset {
            let bytes = try leader.readBatches(from: follower.logEndOffset, maxBytes: 300, upperBound: leader.logEndOffset)
            #expect(try follower.appendAsFollower(bytes) != nil)
        }
        follower.updateHighWatermark(follower.logEndOffset)
        #expect(follower.segmentBaseOffsets == leader.segmentBaseOffsets)
        #expect(follower.transactionIndexes.map { "\($0.baseOffset) \($0.entries)" }
                == leader.transactionIndexes.map { "\($0.baseOffset) \($0.entries)" })
        #expect(follower.lastStableOffset == leader.lastStableOffset)
        #expect(follower.ongoingTransactions.map(\.producerId) == [5])
        try leader.flush()
        try follower.flush()
        for base in leader.segmentBaseOffsets {
            let name = LogSegment.fileName(base, ".txnindex")
            #expect(fileBytes(follower.directory + "/" + name) == fileBytes(leader.directory + "/" + name))
        }
    }

    @Test func segmentDeletionRemovesItsIndex() throws {
        let dir = temporaryDirectory()
        let (log, _) = try multiSegmentLog(dir)
        try log.flush()
        let first = LogSegment.fileName(0, ".txnindex")
        #expect(fileBytes(dir + "/t-0/" + first) != nil)
        _ = try log.deleteRecords(before: log.segmentBaseOffsets[1])
        #expect(fileBytes(dir + "/t-0/" + first) == nil)
        #expect(log.abortedTransactions(from: log.logStartOffset, upTo: 16).map(\.producerId) == [2, 4])
    }

    @Test func compactionKeepsMarkersAndTheIndex() throws {
        for cleanRestart in [true, false] {
            let dir = temporaryDirectory()
            let tp = TopicPartition("c", 0)
            var entries: [AbortedTxn] = []
            var records: [StoredRecord] = []
            do {
                let manager = try LogManager(logDir: dir)
                try manager.loadAll { _ in compactConfig() }
                let log = try manager.getOrCreate(tp, config: compactConfig())
                for round in 0..<6 {
                    try appendAndCommit(log, txnBatch(2, pid: 100 + Int64(round), sequence: 0))
                    for i in 0..<3 { try appendAndCommit(log, keyedBatch([("k", "r\(round)-\(i)"), ("u", "\(i)")])) }
                    try writeMarker(log, commit: round % 2 == 1, pid: 100 + Int64(round))
                }
                try appendAndCommit(log, keyedBatch([("k", "last")]))
                entries = log.transactionIndexes.flatMap(\.entries)
                #expect(entries.map(\.producerId) == [100, 102, 104])
                let before = try readRecords(log).records.count
                let stats = try #require(try LogCleaner(manager: manager).clean(log))
                #expect(stats.recordsRemoved > 0)
                records = try readRecords(log).records
                #expect(records.count < before)
                // Every transactional record and every marker is still there; the index is the same.
                #expect(records.filter { $0.value?.hasPrefix("t-") == true }.count == 12)
                #expect(log.transactionIndexes.flatMap(\.entries) == entries)
                #expect(log.abortedTransactions(from: 0, upTo: log.logEndOffset).map(\.producerId) == [100, 102, 104])
                try log.flush()
                var onDisk: [AbortedTxn] = []
                for name in try FileManager.default.contentsOfDirectory(atPath: log.directory).sorted() where name.hasSuffix(".txnindex") {
                    onDisk += TransactionIndex.load(ByteBuffer(bytes: fileBytes(log.directory + "/" + name)!))!.entries
                }
                #expect(onDisk == entries)
                if cleanRestart { try manager.shutdown() } else { log.waitForBackgroundWork() }
            }
            let manager = try LogManager(logDir: dir)
            try manager.loadAll { _ in compactConfig() }
            let log = try #require(manager.log(tp))
            log.updateHighWatermark(log.logEndOffset)
            #expect(try readRecords(log).records == records)
            #expect(log.transactionIndexes.flatMap(\.entries) == entries)
            #expect(log.lastStableOffset == log.logEndOffset)
        }
    }
}
