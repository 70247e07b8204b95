import KafkaRecords
import NIOCore

// Transactions in a partition log (Kafka's ProducerStateManager transaction tracking,
// UnifiedLog.lastStableOffset and collectAbortedTransactions, LogSegment.updateTxnIndex).
//
// - Every append (leader, follower, and the replay of recovery and truncation) tells the producer
//   state about transactional batches and transaction markers: a producer's first transactional
//   batch opens its transaction at that batch's offset; a COMMIT/ABORT marker (a control batch,
//   written only by the coordinator: clients' control batches are refused) completes it.
// - The last stable offset is the earliest first offset of a transaction that is open or whose
//   marker the high watermark has not passed yet, bounded by the high watermark (and never below
//   the log start offset).
// - An ABORT marker that completes a transaction adds an entry to the `.txnindex` of the segment
//   the marker is in: (producer id, first offset, marker offset, last stable offset after it).

extension PartitionLog {
    /// The last stable offset (LSO): the end of what a read_committed consumer may read.
    /// min(first offset of any open transaction, high watermark); a committed or aborted
    /// transaction holds it back until the high watermark passes its marker, as in Kafka.
    public var lastStableOffset: Int64 { state.withLock { $0.lastStableOffset } }

    /// The aborted transactions a read_committed fetch of [`from`, `upTo`) must report (Kafka's
    /// `collectAbortedTransactions`): those whose ABORT marker is at or after `from` and whose
    /// first offset is below `upTo`, from the `.txnindex` of the segment holding `from` onwards
    /// (stopping at the first entry whose last stable offset reaches `upTo`). `upTo` is the offset
    /// after the last record returned (Kafka: the fetched data's end, else the next segment's base
    /// or the log end).
    public func abortedTransactions(from: Int64, upTo: Int64) -> [(producerId: Int64, firstOffset: Int64)] {
        abortedTransactionEntries(from: from, upTo: upTo).map { ($0.producerId, $0.firstOffset) }
    }

    /// A read_committed fetch at `offset` in one step under the log's lock (Kafka's
    /// `LocalLog.read` with `FetchIsolation.TXN_COMMITTED` plus `addAbortedTransactions`): the
    /// bytes from `offset` up to the last stable offset (as `read(from:maxBytes:upperBound:minOneBatch:)`),
    /// and the aborted transactions overlapping them, collected up to a bound past the returned data
    /// (the first offset-index entry after the slice, else the next segment's base or the log end,
    /// never past the LSO), as Kafka's `fetchUpperBoundOffset` does. `result.lastStableOffset` is
    /// the LSO the read was bounded by.
    public func readCommitted(from offset: Int64, maxBytes: Int, minOneBatch: Bool = true) throws
        -> (result: LogReadResult, abortedTransactions: [(producerId: Int64, firstOffset: Int64)]) {
        try context.checkOnline()
        return try state.withLock { s in
            let lso = s.lastStableOffset
            let result = try s.read(from: offset, maxBytes: maxBytes, upperBound: lso, minOneBatch: minOneBatch)
            guard let slice = result.slice else { return (result, []) }
            let upTo = min(s.fetchUpperBound(slice), lso)
            let aborted = s.collectAbortedTransactions(from: offset, upTo: upTo).map { ($0.producerId, $0.firstOffset) }
            return (result, aborted)
        }
    }

    /// `abortedTransactions(from:upTo:)` with whole index entries.
    public func abortedTransactionEntries(from: Int64, upTo: Int64) -> [AbortedTxn] {
        state.withLock { $0.collectAbortedTransactions(from: from, upTo: upTo) }
    }

    /// Every segment's aborted-transaction index: (segment base offset, entries), for tests and tools.
    public var transactionIndexes: [(baseOffset: Int64, entries: [AbortedTxn])] {
        state.withLock { $0.segments.map { ($0.baseOffset, $0.txnIndex.entries) } }
    }

    /// The open transactions: producer id and first offset, by first offset.
    public var ongoingTransactions: [(producerId: Int64, firstOffset: Int64)] {
        state.withLock { $0.producers.ongoingTxns.map { ($0.producerId, $0.firstOffset) } }
    }
}

extension PartitionLog.State {
    func collectAbortedTransactions(from: Int64, upTo: Int64) -> [AbortedTxn] {
        guard !segments.isEmpty else { return [] }
        var found: [AbortedTxn] = []
        for segment in segments[segmentIndex(for: from)...] {
            let result = segment.txnIndex.collect(fetchOffset: from, upperBound: upTo)
            found += result.entries
            if result.isComplete { break }
        }
        return found
    }

    /// An offset past every record of `slice` (Kafka's `fetchUpperBoundOffset`): the offset of the
    /// first offset-index entry at or after the slice's end in its segment, else the next
    /// segment's base offset, else the log end.
    func fetchUpperBound(_ slice: FileSlice) -> Int64 {
        guard let i = segments.firstIndex(where: { $0.file === slice.file }) else { return logEndOffset }
        let segment = segments[i]
        let end = slice.position + slice.length
        let positions = segment.offsetIndex.positions
        var lo = 0, hi = positions.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if Int(positions[mid]) < end { lo = mid + 1 } else { hi = mid }
        }
        if lo < positions.count { return segment.baseOffset + Int64(segment.offsetIndex.relativeOffsets[lo]) }
        return i + 1 < segments.count ? segments[i + 1].baseOffset : logEndOffset
    }

    var lastStableOffset: Int64 {
        var lso = highWatermark
        if let first = producers.firstUnstableOffset, first < lso { lso = first }
        return max(lso, logStartOffset)
    }

    /// Records an appended batch in the producer state; an ABORT completing a transaction is
    /// added to the `.txnindex` of `segments[segment]` (the segment the marker was written to).
    mutating func updateProducers(_ header: RecordBatchHeader, firstOffset: Int64, marker: EndTxnMarker?, segment: Int) {
        guard header.producerId >= 0 else { return }
        if let completed = producers.update(header, firstOffset: firstOffset, marker: marker), completed.isAborted {
            segments[segment].txnIndex.append(AbortedTxn(producerId: completed.producerId, firstOffset: completed.firstOffset,
                                                         lastOffset: completed.lastOffset, lastStableOffset: completed.lastStableOffset))
            segments[segment].txnIndexDirty = true
        }
    }

    /// Replays the batch headers of `segment` from `from` into `producers` (control batches are
    /// read to parse their marker). `onCompleted` hears about each transaction a marker completes.
    /// Returns how many batches with a producer id were replayed.
    static func replayProducers(_ producers: inout ProducerStateManager, segment: LogSegment, from: Int64,
                                onCompleted: (ProducerStateManager.CompletedTxn) -> Void = { _ in }) throws -> Int {
        var replayed = 0
        var scanner = BatchScanner(file: segment.file, from: segment.scanStart(for: from), to: segment.size, chunkSize: 256 * 1024)
        while let (position, header) = try scanner.next() {
            guard header.baseOffset >= from, header.producerId >= 0 else { continue }
            var marker: EndTxnMarker?
            if header.attributes.isControl {
                let bytes = try scanner.batchBytes(at: position, size: header.totalSize)
                // A marker that cannot be parsed completes nothing (the batch was checked when appended).
                marker = (try? RecordBatch(from: bytes)).flatMap { try? EndTxnMarker.parse($0) }
            }
            if let completed = producers.update(header, firstOffset: header.baseOffset, marker: marker) {
                onCompleted(completed)
            }
            replayed += 1
        }
        return replayed
    }

    /// Rebuilds the `.txnindex` of the segments recovery scanned (`recovered`, by base offset), as
    /// Kafka's LogLoader does: the producer state at the first of them is rebuilt (the newest
    /// snapshot at or below its base, then the batches after it), then every batch from there is
    /// replayed and the ABORT markers in recovered segments indexed. Segments loaded from their
    /// files keep the `.txnindex` they had.
    mutating func rebuildTransactionIndexes(recovered: Set<Int64>) throws {
        guard let first = segments.firstIndex(where: { recovered.contains($0.baseOffset) }) else { return }
        let base = segments[first].baseOffset
        var replay = ProducerStateManager()
        var from = logStartOffset
        for offset in snapshotOffsets.reversed() where offset <= base {
            let path = directory + "/" + LogSegment.fileName(offset, ".snapshot")
            if let bytes = try FS.readFile(path), let loaded = ProducerStateManager.load(snapshot: bytes) {
                replay = loaded
                from = max(offset, logStartOffset)
                break
            }
        }
        for i in segments.indices where segments[i].nextOffset > from {
            let rebuild = i >= first && recovered.contains(segments[i].baseOffset)
            if rebuild {
                segments[i].txnIndex = TransactionIndex()
                segments[i].txnIndexDirty = true
            }
            var entries: [AbortedTxn] = []
            _ = try Self.replayProducers(&replay, segment: segments[i], from: from) { completed in
                guard rebuild, completed.isAborted else { return }
                entries.append(AbortedTxn(producerId: completed.producerId, firstOffset: completed.firstOffset,
                                          lastOffset: completed.lastOffset, lastStableOffset: completed.lastStableOffset))
            }
            if rebuild {
                for e in entries { segments[i].txnIndex.append(e) }
            }
        }
        for i in segments.indices where segments[i].txnIndexDirty && i < segments.count - 1 {
            do {
                try segments[i].writeTxnIndex()
            } catch let e as StorageError where e.isOutOfSpace {
                context.reportDiskFull()
            }
        }
        // The active segment's index is written by the next flush or at close (a crash before
        // then recovers it again).
        if let last = segments.indices.last, segments[last].txnIndexDirty {
            try? segments[last].writeTxnIndex()
        }
    }
}
