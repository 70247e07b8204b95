import KafkaProtocol
import KafkaRecords
import KafkaWire
import NIOCore

/// Opens a partition log from its folder (PartitionLog's recovery, as Kafka's LogLoader): finishes a
/// log cleaner swap that a crash interrupted, removes temporary files (`.tmp`, `.cleaned`, `.deleted`),
/// loads the segments the last run left in a trusted state (a clean shutdown, or wholly below the
/// recovery point) from their index files, and scans the others batch by batch — checking CRCs,
/// truncating a torn or corrupt tail, rebuilding indexes and the leader epochs of the batches it
/// scans — then rebuilds the producer state from the newest snapshot. On a full disk the rebuilt
/// indexes stay in memory (written later) so that a broker can start and serve reads.
struct LogLoader {
    var state: PartitionLog.State
    let checkpointedRecovery: Int64
    let checkpointedStart: Int64
    let checkpointedHW: Int64?
    let cleanShutdown: Bool
    let now: Int64

    /// Loads the folder into `state` and says what recovery did.
    mutating func load() throws -> RecoveryReport {
        var report = RecoveryReport()
        var bases: [Int64] = []
        try Self.completeInterruptedSwaps(in: state.directory)
        for name in try FS.list(state.directory) {
            if name.hasSuffix(".tmp") || name.hasSuffix(".deleted") || name.hasSuffix(".swap") || name.hasSuffix(".cleaned") {
                try FS.remove(state.directory + "/" + name)
            } else if name.hasSuffix(".log"), let base = Int64(name.dropLast(4)) {
                bases.append(base)
            }
        }
        bases.sort()
        // Epochs first: recovery adds those of the batches it scans past the checkpoint.
        if FS.exists(state.epochCheckpointPath) {
            state.epochs = try LeaderEpochCache.load(state.epochCheckpointPath)
        }
        if bases.isEmpty {
            state.segments = [try LogSegment.create(directory: state.directory, baseOffset: max(checkpointedStart, 0), now: now)]
        }
        var truncatedFrom: Int?
        // Segments scanned by recovery: their aborted-transaction indexes are rebuilt below.
        var recovered: Set<Int64> = []
        for (i, base) in bases.enumerated() {
            let path = state.directory + "/" + LogSegment.fileName(base, ".log")
            if truncatedFrom != nil {
                report.bytesTruncated += (try? FileDescriptorBox.open(path, create: false).size()) ?? 0
                try FS.remove(path)
                try FS.remove(state.directory + "/" + LogSegment.fileName(base, ".index"))
                try FS.remove(state.directory + "/" + LogSegment.fileName(base, ".timeindex"))
                try FS.remove(state.directory + "/" + LogSegment.fileName(base, ".txnindex"))
                continue
            }
            let file = try FileDescriptorBox.open(path, create: false)
            let size = try file.size()
            var segment = LogSegment(baseOffset: base, file: file, size: size, nextOffset: base, createdAtMs: now)
            let nextBase = i + 1 < bases.count ? bases[i + 1] : Int64.max
            let trusted = cleanShutdown || nextBase <= checkpointedRecovery
            if trusted, let index = try FS.readFile(segment.indexPath).flatMap({ OffsetIndex.load($0, segmentSize: size) }),
               let timeIndex = try FS.readFile(segment.timeIndexPath).flatMap({ TimeIndex.load($0) }),
               index.count == timeIndex.count,
               let txnIndex = try FS.readFile(segment.txnIndexPath).map({ TransactionIndex.load($0) }) ?? TransactionIndex() {
                segment.offsetIndex = index
                segment.timeIndex = timeIndex
                segment.txnIndex = txnIndex
                do {
                    try segment.rebuildTail()
                } catch {
                    // The tail is not what the index says: recover this segment fully.
                    recovered.insert(base)
                    if try recover(&segment, report: &report) { truncatedFrom = i }
                }
            } else {
                recovered.insert(base)
                if try recover(&segment, report: &report) { truncatedFrom = i }
            }
            if segment.size > 0 {
                var firstScanner = BatchScanner(file: file, from: 0, to: segment.size, chunkSize: RecordBatchHeader.size)
                if let first = try? firstScanner.next() {
                    segment.createdAtMs = first.1.maxTimestamp > 0 ? first.1.maxTimestamp : now
                }
            }
            state.segments.append(segment)
        }
        if truncatedFrom != nil {
            report.truncatedAt = state.segments.last?.nextOffset
        }
        // A whole empty segment can remain after a torn first batch; keep it as the active segment.
        state.logEndOffset = state.segments.last!.nextOffset
        state.logStartOffset = min(max(checkpointedStart, state.segments.first!.baseOffset), state.logEndOffset)
        state.highWatermark = min(checkpointedHW ?? state.logEndOffset, state.logEndOffset)
        state.highWatermark = max(state.highWatermark, state.logStartOffset)
        let before = state.epochs
        state.epochs.truncateFromEnd(endOffset: state.logEndOffset)
        if state.epochs != before || report.segmentsScanned > 0 { state.epochsChanged() }
        try state.rebuildTransactionIndexes(recovered: recovered)
        report.producerBatchesReplayed = try state.rebuildProducerState()
        if !cleanShutdown || truncatedFrom != nil {
            for segment in state.segments where segment.nextOffset > checkpointedRecovery { try segment.file.sync() }
        }
        state.recoveryPoint = state.logEndOffset
        return report
    }

    /// A crash while the cleaner swapped a cleaned segment in leaves `<base>.log.swap` (complete and
    /// fsynced) next to some of the segments it replaces: those (the `.log` files whose base offset
    /// lies in the swap's offset range) are deleted and the swap becomes `<base>.log`, as Kafka does.
    static func completeInterruptedSwaps(in directory: String) throws {
        let names = try FS.list(directory)
        for name in names where name.hasSuffix(".log.swap") {
            guard let base = Int64(name.dropLast(9)) else { try FS.remove(directory + "/" + name); continue }
            let swapPath = directory + "/" + name
            let file = try FileDescriptorBox.open(swapPath, create: false)
            var scanner = BatchScanner(file: file, from: 0, to: try file.size(), chunkSize: 1 << 20)
            var last = base
            while let (_, header) = try? scanner.next() { last = max(last, header.lastOffset) }
            for other in names where other.hasSuffix(".log") {
                guard let b = Int64(other.dropLast(4)), b >= base, b <= last else { continue }
                try FS.remove(directory + "/" + other)
                try FS.remove(directory + "/" + LogSegment.fileName(b, ".index"))
                try FS.remove(directory + "/" + LogSegment.fileName(b, ".timeindex"))
                try FS.remove(directory + "/" + LogSegment.fileName(b, ".txnindex"))
            }
            try FS.rename(swapPath, directory + "/" + LogSegment.fileName(base, ".log"))
            FS.syncDirectory(directory)
        }
    }

    /// Scans a whole segment checking every batch; truncates at the first bad one and rebuilds
    /// the indexes. Returns true when it truncated.
    mutating func recover(_ segment: inout LogSegment, report: inout RecoveryReport) throws -> Bool {
        report.segmentsScanned += 1
        segment.offsetIndex = OffsetIndex()
        segment.timeIndex = TimeIndex()
        segment.txnIndex = TransactionIndex()
        segment.txnIndexDirty = true
        segment.maxTimestamp = -1
        segment.offsetOfMaxTimestamp = -1
        segment.bytesSinceIndexEntry = 0
        segment.indexesDirty = true
        let fullSize = segment.size
        var scanner = BatchScanner(file: segment.file, from: 0, to: fullSize, chunkSize: 1 << 20)
        var validEnd = 0
        var next = segment.baseOffset
        var truncated = false
        while true {
            do {
                guard let (position, header) = try scanner.next(validate: true) else { break }
                guard header.baseOffset >= next || position == 0, header.recordCount > 0 else {
                    throw RecordBatchError.invalidRecord("offsets go backwards at position \(position)")
                }
                segment.size = position
                segment.didAppend(header, baseOffset: header.baseOffset, position: position, size: header.totalSize,
                                  maxTimestamp: header.maxTimestamp, indexInterval: state.config.indexIntervalBytes,
                                  now: segment.createdAtMs)
                next = header.lastOffset + 1
                validEnd = position + header.totalSize
                report.batchesScanned += 1
                state.epochs.assign(epoch: header.partitionLeaderEpoch, startOffset: header.baseOffset)
            } catch {
                truncated = true
                break
            }
        }
        if truncated || validEnd < fullSize {
            report.bytesTruncated += fullSize - validEnd
            try segment.file.truncate(to: validEnd)
            truncated = true
        }
        segment.size = validEnd
        segment.nextOffset = validEnd == 0 ? segment.baseOffset : next
        do {
            try segment.writeIndexes()
        } catch let e as StorageError where e.isOutOfSpace {
            // A full disk: the indexes live in memory and are written later. Start-up goes on.
            state.context.reportDiskFull()
        }
        return truncated
    }
}
