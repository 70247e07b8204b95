#if canImport(Glibc)
import KafkaWire
import KafkaProtocol
import Glibc
#endif
import KafkaRecords
import NIOCore
import Synchronization

/// What an append did.
public struct LogAppendResult: Sendable, Equatable {
    /// Offset of the first record appended (of the original batch for a duplicate).
    public var firstOffset: Int64
    public var lastOffset: Int64
    /// The broker's timestamp when the log uses LogAppendTime, else -1.
    public var logAppendTime: Int64
    public var logStartOffset: Int64
    public var recordCount: Int
    public var bytes: Int
    /// The batch repeated one already appended (idempotent retry): nothing was written.
    public var isDuplicate: Bool
    /// The log's flush policy asks for an fsync now (`flush.messages`).
    public var needsFlush: Bool
}

/// A byte range of a segment file, to be sent as it is (sendfile).
public struct FileSlice: Sendable {
    public let file: FileDescriptorBox
    public let position: Int
    public let length: Int
    public let firstOffset: Int64
}

public struct LogReadResult: Sendable {
    /// nil when there is nothing to read at the requested offset yet.
    public var slice: FileSlice?
    public var highWatermark: Int64
    public var logStartOffset: Int64
    public var logEndOffset: Int64
    /// The last stable offset when the read was made (the bound of a read_committed fetch).
    public var lastStableOffset: Int64
}

/// The offsets that describe a log's extent.
public struct LogOffsets: Sendable, Equatable {
    public var logStartOffset: Int64
    public var logEndOffset: Int64
    public var highWatermark: Int64
    public var recoveryPoint: Int64
    /// The last stable offset (see `PartitionLog.lastStableOffset`).
    public var lastStableOffset: Int64
}

/// One partition's log: an ordered list of segments in one folder. Thread-safe: every operation
/// runs under the log's lock; appends write with one `pwritev` straight from the request's buffer
/// (base offset and leader epoch patched in small header copies, the rest of each batch untouched).
///
/// An append either happens completely or not at all: the only writes under the append lock are the
/// batch bytes (and the creation of a new segment file on a roll, before them); when they fail, the
/// segment is cut back to where it was and nothing in memory has moved. If the cut itself fails, or
/// an fsync fails, the log directory goes offline (`StorageError.logDirOffline`). Everything slower —
/// fsyncs, index files, producer snapshots, the leader-epoch checkpoint — is written by `flush`,
/// on the flusher's thread or the log directory's background queue, never under the append lock.
public final class PartitionLog: Sendable {
    public let topicPartition: TopicPartition
    public let directory: String
    /// The log directory this log lives in (offline state, events, background queue).
    public let context: LogDirContext
    let state: Mutex<State>
    /// Serialises flushes (fsync, index, snapshot and checkpoint files); appends never take it.
    private let ioLock = Mutex<Void>(())

    /// What recovery found when the log was opened (for logs and tests).
    public let recoveryReport: RecoveryReport

    private init(topicPartition: TopicPartition, directory: String, context: LogDirContext, state: State, report: RecoveryReport) {
        self.topicPartition = topicPartition
        self.directory = directory
        self.context = context
        self.state = Mutex(state)
        self.recoveryReport = report
    }

    /// Opens (creating if needed) the log in `directory`, recovering it. Without a clean shutdown,
    /// every segment from the one holding `recoveryPoint` on is scanned, CRCs checked, a torn tail
    /// truncated at the last valid batch and indexes rebuilt.
    public static func open(directory: String, topicPartition: TopicPartition, config: LogConfig,
                            recoveryPoint: Int64 = 0, logStartOffset: Int64 = 0, highWatermark: Int64? = nil,
                            cleanShutdown: Bool = false, context: LogDirContext? = nil,
                            now: Int64 = currentTimeMillis()) throws -> PartitionLog {
        let context = context ?? LogDirContext(path: String(directory[..<(directory.lastIndex(of: "/") ?? directory.endIndex)]))
        try context.checkOnline()
        try FS.makeDirectories(directory)
        var loader = LogLoader(state: State(name: topicPartition.description, directory: directory, config: config, context: context),
                               checkpointedRecovery: recoveryPoint, checkpointedStart: logStartOffset,
                               checkpointedHW: highWatermark, cleanShutdown: cleanShutdown, now: now)
        let report = try loader.load()
        return PartitionLog(topicPartition: topicPartition, directory: directory, context: context, state: loader.state, report: report)
    }

    public var config: LogConfig { state.withLock { $0.config } }

    public func updateConfig(_ config: LogConfig) { state.withLock { $0.config = config } }

    public var offsets: LogOffsets {
        state.withLock { LogOffsets(logStartOffset: $0.logStartOffset, logEndOffset: $0.logEndOffset,
                                    highWatermark: $0.highWatermark, recoveryPoint: $0.recoveryPoint,
                                    lastStableOffset: $0.lastStableOffset) }
    }

    public var logEndOffset: Int64 { state.withLock { $0.logEndOffset } }
    public var logStartOffset: Int64 { state.withLock { $0.logStartOffset } }
    public var highWatermark: Int64 { state.withLock { $0.highWatermark } }
    public var segmentCount: Int { state.withLock { $0.segments.count } }
    public var sizeInBytes: Int64 { state.withLock { $0.segments.reduce(0) { $0 + Int64($1.size) } } }
    public var leaderEpochCache: LeaderEpochCache { state.withLock { $0.epochs } }
    /// OffsetForLeaderEpoch: where `epoch` ends in this log (see `LeaderEpochCache.endOffset`).
    public func endOffset(forLeaderEpoch epoch: Int32) -> (epoch: Int32, endOffset: Int64) {
        state.withLock { $0.epochs.endOffset(for: epoch, logEndOffset: $0.logEndOffset) }
    }
    public var producerState: ProducerStateManager { state.withLock { $0.producers } }
    public var segmentBaseOffsets: [Int64] { state.withLock { $0.segments.map(\.baseOffset) } }

    /// Validates and appends the record batches in `records` (a produce request's `records` field).
    /// Offsets are assigned from the log end; every batch is stamped with `leaderEpoch`.
    /// Throws `diskFull` when the file system is full (the log is left as it was) and
    /// `logDirOffline` once the directory is offline.
    ///
    /// Every batch is validated as Kafka's LogValidator does (`AppendOrigin.client` adds the checks
    /// Kafka makes on produced batches) and, when the topic's `compression.type` names a codec,
    /// batches in another codec are re-compressed (header fields kept).
    public func append(_ records: ByteBuffer, leaderEpoch: Int32, now: Int64 = currentTimeMillis(),
                       origin: AppendOrigin = .client) throws -> LogAppendResult {
        try context.checkOnline()
        // Validation, decompression and re-compression happen before the append lock is taken.
        let prepared = try State.prepare(records, config: config, name: topicPartition.description, now: now, origin: origin)
        let (result, followUp) = try state.withLock { try $0.append(prepared, leaderEpoch: leaderEpoch, now: now) }
        context.writeSucceeded()
        if let followUp { scheduleFlush(upTo: followUp) }
        return result
    }

    /// Appends record batches copied from the leader (a follower's fetch), as they are: offsets,
    /// leader epochs and every byte kept, so replicas are byte-identical. Only the batch framing
    /// and CRCs are checked (no per-record work); batches below the log end (already here) are
    /// skipped. The leader-epoch cache follows the batches' epochs. Returns nil when nothing new
    /// was appended.
    public func appendAsFollower(_ records: ByteBuffer, now: Int64 = currentTimeMillis()) throws -> LogAppendResult? {
        try context.checkOnline()
        var batches: [(header: RecordBatchHeader, at: Int)] = []
        var markers: [Int64: EndTxnMarker] = [:]
        var reader = RecordBatchReader(records, allowsPartialTrailingBatch: true)
        do {
            var position = 0
            while let batch = try reader.next() {
                try batch.validate()
                if batch.header.attributes.isControl, batch.header.producerId >= 0, let marker = try EndTxnMarker.parse(batch) {
                    markers[batch.header.baseOffset] = marker
                }
                batches.append((batch.header, position))
                position += batch.header.totalSize
            }
        } catch let e as RecordBatchError {
            throw StorageError.invalidBatch(e)
        }
        guard !batches.isEmpty else { return nil }
        let (result, followUp) = try state.withLock { try $0.appendReplicated(records, batches: batches, markers: markers, now: now) }
        context.writeSucceeded()
        if let followUp { scheduleFlush(upTo: followUp) }
        return result
    }

    /// After a roll or a new leader epoch: flush up to `offset` (the old segment's fsync, its index
    /// files, a producer snapshot, the leader-epoch checkpoint) on the background queue.
    private func scheduleFlush(upTo offset: Int64) {
        context.inBackground { [self] in _ = try? flush(upTo: offset) }
    }

    /// Waits until the background work queued so far (roll completion, file deletion) has run.
    public func waitForBackgroundWork() { context.waitForBackgroundWork() }

    /// Sets the high watermark (clamped to the log end): the end of what consumers may read.
    public func updateHighWatermark(_ offset: Int64) {
        state.withLock {
            $0.highWatermark = min(max(offset, $0.logStartOffset), $0.logEndOffset)
            $0.producers.onHighWatermarkUpdated($0.highWatermark)
        }
    }

    /// The bytes to send for a fetch at `offset`: whole batches from the one holding `offset`, up to
    /// `maxBytes` (at least one whole batch when `minOneBatch`) and never past `upperBound`
    /// (the high watermark when nil). Throws `offsetOutOfRange` outside [log start, log end].
    public func read(from offset: Int64, maxBytes: Int, upperBound: Int64? = nil, minOneBatch: Bool = true) throws -> LogReadResult {
        try context.checkOnline()
        return try state.withLock { try $0.read(from: offset, maxBytes: maxBytes, upperBound: upperBound, minOneBatch: minOneBatch) }
    }

    /// Reads batches into memory (for internal readers such as coordinators and tests).
    public func readBatches(from offset: Int64, maxBytes: Int, upperBound: Int64? = nil) throws -> ByteBuffer {
        let result = try read(from: offset, maxBytes: maxBytes, upperBound: upperBound)
        guard let slice = result.slice else { return ByteBuffer() }
        return try slice.file.pread(length: slice.length, at: slice.position)
    }

    /// The first offset whose record timestamp is at least `timestamp`, with that record's timestamp
    /// (ListOffsets by time); nil when every record is older.
    /// The segments are scanned (and compressed batches decompressed) outside the log's lock,
    /// on a copy of the segment list: appends go on meanwhile.
    public func offsetForTimestamp(_ timestamp: Int64) throws -> (offset: Int64, timestamp: Int64)? {
        try context.checkOnline()
        let (segments, start) = state.withLock { ($0.segments, $0.logStartOffset) }
        return try State.offsetForTimestamp(timestamp, segments: segments, logStartOffset: start)
    }

    /// The record with the largest timestamp (ListOffsets MAX_TIMESTAMP); nil for an empty log.
    public func offsetOfMaxTimestamp() throws -> (offset: Int64, timestamp: Int64)? {
        try context.checkOnline()
        let (segments, start) = state.withLock { ($0.segments, $0.logStartOffset) }
        return try State.offsetOfMaxTimestamp(segments: segments, logStartOffset: start)
    }

    /// Moves the log start offset to `offset` (DeleteRecords), deleting segments wholly below it.
    /// `offset` may not pass the high watermark. Returns the new log start offset.
    public func deleteRecords(before offset: Int64) throws -> Int64 {
        let (start, removed) = try state.withLock { s -> (Int64, [LogSegment]) in
            var removed: [LogSegment] = []
            let start = try s.deleteRecords(before: offset, removed: &removed)
            return (start, removed)
        }
        deleteFiles(of: removed)
        return start
    }

    /// Unlinks the files of segments already taken out of the log, outside its lock (a fetch still
    /// sending from one keeps its descriptor).
    private func deleteFiles(of segments: [LogSegment]) {
        for segment in segments {
            do { try State.deleteFiles(of: segment) } catch {
                // The segment is out of the log; a file left behind is below the log start offset
                // and removed by a later retention pass or ignored at load.
            }
        }
    }

    /// Deletes segments past `retention.ms` / `retention.bytes` and below the log start offset.
    /// Returns how many segments were deleted.
    @discardableResult
    public func applyRetention(now: Int64 = currentTimeMillis()) throws -> Int {
        let (removed, rolled) = try state.withLock { s -> ([LogSegment], Bool) in
            var removed: [LogSegment] = []
            let rolled = try s.applyRetention(now: now, removed: &removed)
            return (removed, rolled)
        }
        deleteFiles(of: removed)
        if rolled { scheduleFlush(upTo: logEndOffset) }
        return removed.count
    }

    /// Forgets the state of producers idle for `expirationMs` (`producer.id.expiration.ms`).
    /// Returns how many were removed.
    @discardableResult
    public func removeExpiredProducers(now: Int64 = currentTimeMillis(), expirationMs: Int64) -> Int {
        state.withLock { $0.producers.removeExpired(now: now, expirationMs: expirationMs) }
    }

    /// Rolls the active segment if it is too old (`segment.ms`), without waiting for an append.
    public func rollIfExpired(now: Int64 = currentTimeMillis()) throws {
        let rolled = try state.withLock { s -> Bool in
            if let active = s.segments.last, active.size > 0, now - active.createdAtMs >= s.config.rollAfterMs(active.baseOffset) {
                try s.roll(now: now)
                return true
            }
            return false
        }
        if rolled { scheduleFlush(upTo: logEndOffset) }
    }

    /// Removes everything at and after `offset` (a follower diverging from its leader). The log
    /// ends at the start of the batch holding `offset`.
    public func truncate(to offset: Int64) throws {
        // Under the flush lock too: the truncation writes the leader-epoch checkpoint itself.
        try ioLock.withLock { _ in try state.withLock { try $0.truncate(to: offset) } }
    }

    /// Empties the log and restarts it at `offset` (a follower far behind its leader's log start).
    public func truncateFullyAndStartAt(_ offset: Int64) throws {
        try ioLock.withLock { _ in try state.withLock { try $0.truncateFullyAndStartAt(offset) } }
    }

    /// Whether the flush policy (`flush.messages`, `flush.ms`) asks for an fsync.
    public func needsFlush(now: Int64 = monotonicMillis()) -> Bool {
        state.withLock { $0.needsFlush(now: now) }
    }

    /// Writes every appended byte up to `offset` (the log end when nil) to disk and moves the
    /// recovery point: fdatasync of the segments, then the index files of closed segments, a pending
    /// producer snapshot and the leader-epoch checkpoint (the checkpoint before the recovery point
    /// moves, since recovery rebuilds epochs only past it). All of it outside the append lock.
    /// A failed fsync takes the log directory offline. Returns the offset now durable.
    @discardableResult
    public func flush(upTo offset: Int64? = nil) throws -> Int64 {
        try ioLock.withLock { _ in
            try context.checkOnline()
            guard let job = state.withLock({ $0.deleted ? nil : $0.flushJob(upTo: offset) }) else {
                throw StorageError.logClosed(topicPartition.description)
            }
            do {
                for file in job.files { try file.sync() }
            } catch {
                throw context.markOffline("fsync of \(topicPartition) failed: \(error)")
            }
            // The aborted-transaction indexes first: a segment whose `.txnindex` could not be written
            // loses its offset index file too, so that the next start recovers (and rebuilds) it.
            var writtenTxnIndexes: [Int64] = []
            var txnFailed: Set<Int64> = []
            for txn in job.txnIndexes {
                do {
                    try LogSegment.writeTxnIndex(txn.index, path: txn.path)
                    writtenTxnIndexes.append(txn.baseOffset)
                } catch let e as StorageError where e.isOutOfSpace {
                    context.reportDiskFull()
                    txnFailed.insert(txn.baseOffset)
                    try? FS.remove(String(txn.path.dropLast(9)) + ".index")
                }
            }
            var writtenIndexes: [Int64] = []
            for index in job.indexes where !txnFailed.contains(index.baseOffset) {
                do {
                    try FS.writeAtomically(index.indexPath, index.offsetIndex.serialized(), sync: false)
                    try FS.writeAtomically(index.timeIndexPath, index.timeIndex.serialized(), sync: false)
                    writtenIndexes.append(index.baseOffset)
                } catch let e as StorageError where e.isOutOfSpace {
                    // Indexes stay in memory and are written later.
                    context.reportDiskFull()
                }
            }
            if let (at, producers) = job.snapshot {
                do { try State.writeProducerSnapshot(producers, at: at, directory: directory) } catch let e as StorageError where e.isOutOfSpace {
                    context.reportDiskFull()
                }
            }
            if let lines = job.epochLines {
                do {
                    try CheckpointFile.write(directory + "/" + State.epochCheckpointName, lines: lines)
                } catch let e as StorageError where e.isOutOfSpace {
                    throw context.reportDiskFull()
                } catch {
                    throw context.markOffline("writing the leader-epoch checkpoint of \(topicPartition) failed: \(error)")
                }
            }
            state.withLock { $0.flushed(job, writtenIndexes: writtenIndexes, writtenTxnIndexes: writtenTxnIndexes) }
            return job.target
        }
    }

    /// Flushes, writes the indexes and a producer-state snapshot, and closes the log for writes.
    /// On a full disk the index files and the snapshot are skipped (the next start rebuilds them).
    public func close() throws -> LogOffsets {
        try flush()
        return try ioLock.withLock { _ in
            try state.withLock { s in
                try s.closeForShutdown()
                return LogOffsets(logStartOffset: s.logStartOffset, logEndOffset: s.logEndOffset,
                                  highWatermark: s.highWatermark, recoveryPoint: s.recoveryPoint,
                                  lastStableOffset: s.lastStableOffset)
            }
        }
    }

    /// Closes the log and removes its folder (the topic was deleted). Fetches still sending from
    /// its files keep them readable until they finish. (`LogManager.delete` renames the folder
    /// first and removes it in the background.)
    public func delete() throws {
        markDeleted()
        try FS.removeTree(directory)
    }

    /// Closes the log for good: no flush (or background work still queued) touches its folder after this.
    func markDeleted() {
        ioLock.withLock { _ in
            state.withLock { $0.closed = true; $0.deleted = true; $0.segments.removeAll(); $0.pendingSnapshot = nil }
        }
    }
}

// MARK: Cleaning (the log cleaner's view of a log)

extension PartitionLog {
    /// What the cleaner needs to plan a cleaning: the closed segments and the offsets around them.
    struct CleanableView {
        /// Every segment but the active one.
        var segments: [LogSegment]
        var logStartOffset: Int64
        var activeBaseOffset: Int64
        var highWatermark: Int64
        var producers: ProducerStateManager
        var config: LogConfig
    }

    func cleanableView() -> CleanableView? {
        state.withLock { s in
            guard !s.closed, !context.isOffline else { return nil }
            return CleanableView(segments: Array(s.segments.dropLast()), logStartOffset: s.logStartOffset,
                                 activeBaseOffset: s.segments.last!.baseOffset, highWatermark: s.highWatermark,
                                 producers: s.producers, config: s.config)
        }
    }

    /// Swaps the cleaned segment written at `cleanedPath` (fsynced, Kafka's `.cleaned`) in for the
    /// consecutive segments `old` (identified by their files), as Kafka does: `.cleaned` → `.swap`,
    /// the old `.log` files → `.deleted`, `.swap` → `.log`. A crash anywhere in between is finished
    /// at the next start (a `.swap` replaces the segments in its offset range). Returns the files to
    /// delete (outside the lock), or nil when the log changed meanwhile (nothing was done).
    /// An I/O error half-way takes the log directory offline (the next start completes the swap).
    func replaceSegments(_ old: [LogSegment], cleanedPath: String, cleaned: LogSegment) throws -> [String]? {
        try ioLock.withLock { _ in
            try state.withLock { s -> [String]? in
                guard !s.closed, let first = old.first,
                      let i = s.segments.firstIndex(where: { $0.baseOffset == first.baseOffset }),
                      i + old.count < s.segments.count,
                      zip(s.segments[i..<(i + old.count)], old).allSatisfy({ $0.file === $1.file })
                else { return nil }
                let swapPath = directory + "/" + LogSegment.fileName(first.baseOffset, ".log.swap")
                let finalPath = directory + "/" + LogSegment.fileName(first.baseOffset, ".log")
                do {
                    try FS.rename(cleanedPath, swapPath)
                    FS.syncDirectory(directory)
                    var deleted: [String] = []
                    for segment in old {
                        try FS.rename(segment.logPath, segment.logPath + ".deleted")
                        deleted.append(segment.logPath + ".deleted")
                        try FS.remove(segment.indexPath)
                        try FS.remove(segment.timeIndexPath)
                        try FS.remove(segment.txnIndexPath)
                    }
                    try FS.rename(swapPath, finalPath)
                    FS.syncDirectory(directory)
                    let file = try FileDescriptorBox.open(finalPath, create: false)
                    var segment = LogSegment(baseOffset: first.baseOffset, file: file, size: cleaned.size,
                                             nextOffset: cleaned.nextOffset, createdAtMs: cleaned.createdAtMs)
                    segment.offsetIndex = cleaned.offsetIndex
                    segment.timeIndex = cleaned.timeIndex
                    segment.maxTimestamp = cleaned.maxTimestamp
                    segment.offsetOfMaxTimestamp = cleaned.offsetOfMaxTimestamp
                    segment.bytesSinceIndexEntry = cleaned.bytesSinceIndexEntry
                    segment.indexesDirty = true
                    // The cleaner keeps every control and transactional batch: the aborted
                    // transactions of the old segments stay as they were (written by the next flush;
                    // until then the missing offset index makes a restart recover the segment).
                    for old in s.segments[i..<(i + old.count)] { segment.txnIndex.append(contentsOf: old.txnIndex) }
                    segment.txnIndexDirty = true
                    s.segments.replaceSubrange(i..<(i + old.count), with: [segment])
                    return deleted
                } catch {
                    s.closed = true
                    throw context.markOffline("swapping the cleaned segment of \(topicPartition) failed: \(error)")
                }
            }
        }
    }
}

/// What recovery did when a log was opened.
public struct RecoveryReport: Sendable, Equatable {
    public var segmentsScanned = 0
    public var batchesScanned = 0
    /// Bytes cut from a torn or corrupt tail (including whole segments after it).
    public var bytesTruncated = 0
    public var truncatedAt: Int64?
    public var producerBatchesReplayed = 0
}

extension PartitionLog {
    struct State: Sendable {
        let name: String
        let directory: String
        var config: LogConfig
        var segments: [LogSegment] = []
        var logStartOffset: Int64 = 0
        var logEndOffset: Int64 = 0
        var highWatermark: Int64 = 0
        var recoveryPoint: Int64 = 0
        var producers = ProducerStateManager()
        var epochs = LeaderEpochCache()
        var unflushedMessages: Int64 = 0
        var oldestUnflushedMs: Int64?
        var closed = false
        /// The log was deleted: its folder is being removed (flushes do nothing).
        var deleted = false
        let context: LogDirContext
        /// Bumped on every change of `epochs`; the checkpoint file holds `epochsWrittenVersion`.
        var epochsVersion = 0
        var epochsWrittenVersion = 0
        /// The producer state at the base of the segment last rolled, for the next flush to write.
        var pendingSnapshot: (offset: Int64, producers: ProducerStateManager)?

        init(name: String, directory: String, config: LogConfig, context: LogDirContext) {
            self.name = name
            self.directory = directory
            self.config = config
            self.context = context
        }

        static let epochCheckpointName = "leader-epoch-checkpoint"
        var epochCheckpointPath: String { directory + "/" + Self.epochCheckpointName }

        mutating func epochsChanged() { epochsVersion &+= 1 }

        // MARK: Flush

        struct IndexJob {
            var baseOffset: Int64
            var indexPath: String
            var timeIndexPath: String
            var offsetIndex: OffsetIndex
            var timeIndex: TimeIndex
        }

        struct FlushJob {
            var files: [FileDescriptorBox]
            var target: Int64
            var indexes: [IndexJob]
            var snapshot: (Int64, ProducerStateManager)?
            var epochLines: [String]?
            var epochsVersion: Int
            /// `.txnindex` files that lag (any segment, the active one too).
            var txnIndexes: [(baseOffset: Int64, path: String, index: TransactionIndex)] = []
        }

        /// What a flush up to `limit` must write (taken under the lock, written outside it).
        mutating func flushJob(upTo limit: Int64?) -> FlushJob {
            let target = min(limit ?? logEndOffset, logEndOffset)
            let files = segments.filter { $0.nextOffset > recoveryPoint && $0.baseOffset < target && $0.size > 0 }.map(\.file)
            if limit == nil || target >= logEndOffset {
                unflushedMessages = 0
                oldestUnflushedMs = nil
            }
            let indexes = segments.dropLast().filter(\.indexesDirty).map {
                IndexJob(baseOffset: $0.baseOffset, indexPath: $0.indexPath, timeIndexPath: $0.timeIndexPath,
                         offsetIndex: $0.offsetIndex, timeIndex: $0.timeIndex)
            }
            let snapshot = pendingSnapshot.map { ($0.offset, $0.producers) }
            pendingSnapshot = nil
            let txnIndexes = segments.filter(\.txnIndexDirty).map { ($0.baseOffset, $0.txnIndexPath, $0.txnIndex) }
            return FlushJob(files: files, target: target, indexes: indexes, snapshot: snapshot,
                            epochLines: epochsVersion != epochsWrittenVersion ? epochs.lines() : nil, epochsVersion: epochsVersion,
                            txnIndexes: txnIndexes)
        }

        /// Records what a flush wrote.
        mutating func flushed(_ job: FlushJob, writtenIndexes: [Int64], writtenTxnIndexes: [Int64] = []) {
            for base in writtenTxnIndexes {
                if let i = segments.firstIndex(where: { $0.baseOffset == base }),
                   let written = job.txnIndexes.first(where: { $0.baseOffset == base }), segments[i].txnIndex == written.index {
                    segments[i].txnIndexDirty = false
                }
            }
            recoveryPoint = max(recoveryPoint, min(job.target, logEndOffset))
            if job.epochLines != nil, epochsWrittenVersion != epochsVersion { epochsWrittenVersion = job.epochsVersion }
            for base in writtenIndexes {
                if let i = segments.firstIndex(where: { $0.baseOffset == base }), i < segments.count - 1,
                   let written = job.indexes.first(where: { $0.baseOffset == base }),
                   segments[i].offsetIndex.count == written.offsetIndex.count, segments[i].timeIndex.count == written.timeIndex.count {
                    segments[i].indexesDirty = false
                }
            }
        }

        // MARK: Append

        /// Batches validated (and re-compressed for `compression.type`) before the append lock is
        /// taken: the bytes to write and each batch's header and position in them.
        struct PreparedAppend {
            var records: ByteBuffer
            var batches: [(header: RecordBatchHeader, at: Int)]
            var totalBytes: Int
            var recordCount: Int
            /// The transaction markers of control batches, by batch index.
            var markers: [Int: EndTxnMarker] = [:]
        }

        /// Validates every batch as Kafka's LogValidator does (decompressing compressed ones) and
        /// re-compresses those whose codec differs from `compression.type`. Needs no log state, so
        /// it runs outside the log's lock.
        static func prepare(_ input: ByteBuffer, config: LogConfig, name: String, now: Int64, origin: AppendOrigin) throws -> PreparedAppend {
            var batches: [(header: RecordBatchHeader, at: Int)] = []
            var totalBytes = 0, recordCount = 0
            var reader = RecordBatchReader(input)
            let policy = RecordValidationPolicy(now: now, compacted: config.compact, logAppendTime: config.logAppendTime,
                                                timestampBeforeMaxMs: config.timestampBeforeMaxMs,
                                                timestampAfterMaxMs: config.timestampAfterMaxMs,
                                                fromClient: origin == .client, topicPartition: name)
            // Batches re-compressed for `compression.type` (by index); the others are written as received.
            var converted: [Int: ByteBuffer] = [:]
            var markers: [Int: EndTxnMarker] = [:]
            do {
                while var batch = try reader.next() {
                    // Where the batch starts in `input` (a batch's `bytes` is a slice with its own indices).
                    let at = input.readableBytes - reader.remaining.readableBytes - batch.bytes.readableBytes
                    guard batch.bytes.readableBytes <= config.maxMessageBytes else {
                        throw StorageError.messageTooLarge(size: batch.bytes.readableBytes, max: config.maxMessageBytes)
                    }
                    try batch.validate()
                    try batch.validateBatchHeader(policy)
                    let uncompressed = try batch.validateRecords(policy)
                    if let target = config.compression, let source = batch.header.attributes.compression, source != target,
                       !(source == .none && batch.header.attributes.isControl) {
                        let bytes: ByteBuffer
                        do {
                            bytes = try batch.recompressed(to: target, level: config.compressionLevel, uncompressed: uncompressed)
                        } catch {
                            throw StorageError.invalidBatch(.decompressionFailed("cannot compress records with \(target): \(error)"))
                        }
                        guard bytes.readableBytes <= config.maxMessageBytes else {
                            throw StorageError.messageTooLarge(size: bytes.readableBytes, max: config.maxMessageBytes)
                        }
                        converted[batches.count] = bytes
                        batch = try RecordBatch(from: bytes)
                    }
                    if batch.header.attributes.isControl, batch.header.producerId >= 0, let marker = try EndTxnMarker.parse(batch) {
                        markers[batches.count] = marker
                    }
                    batches.append((batch.header, at))
                    totalBytes += batch.bytes.readableBytes
                    recordCount += Int(batch.header.recordCount)
                }
            } catch let e as RecordBatchError {
                throw StorageError.invalidBatch(e)
            }
            guard !batches.isEmpty else { throw StorageError.invalidBatch(.invalidRecord("no record batches")) }
            guard !converted.isEmpty else {
                return PreparedAppend(records: input, batches: batches, totalBytes: totalBytes, recordCount: recordCount, markers: markers)
            }
            // Some batches were re-compressed: write from one buffer holding every batch in order.
            var combined = ByteBuffer()
            combined.reserveCapacity(totalBytes)
            for (i, batch) in batches.enumerated() {
                let at = combined.writerIndex
                if let bytes = converted[i] {
                    combined.writeImmutableBuffer(bytes)
                } else {
                    combined.writeImmutableBuffer(input.getSlice(at: input.readerIndex + batch.at, length: batch.header.totalSize)!)
                }
                batches[i].at = at
            }
            return PreparedAppend(records: combined, batches: batches, totalBytes: totalBytes, recordCount: recordCount, markers: markers)
        }

        /// Appends prepared batches, returning what happened and, after a roll or a new leader
        /// epoch, the offset up to which the caller should flush in the background.
        mutating func append(_ prepared: PreparedAppend, leaderEpoch: Int32, now: Int64) throws -> (LogAppendResult, Int64?) {
            guard !closed else { throw StorageError.logClosed(name) }
            let records = prepared.records, batches = prepared.batches
            let totalBytes = prepared.totalBytes, recordCount = prepared.recordCount
            for (i, batch) in batches.enumerated() where batch.header.producerId >= 0 {
                let h = batch.header
                let previous = batches[..<i].last(where: { $0.header.producerId == h.producerId })?.header
                if let dup = try producers.check(h, previous: previous, partition: name) {
                    return (LogAppendResult(firstOffset: dup.firstOffset, lastOffset: dup.lastOffset, logAppendTime: -1,
                                            logStartOffset: logStartOffset, recordCount: 0, bytes: 0,
                                            isDuplicate: true, needsFlush: false), nil)
                }
                try producers.checkTransactional(h, marker: prepared.markers[i], partition: name)
            }

            var followUp: Int64?
            if needsRoll(adding: totalBytes, lastOffset: logEndOffset + Int64(recordCount), now: now) {
                // Only the new (empty) segment file is created here; nothing has moved if it fails.
                do { try roll(now: now) } catch { throw context.classify(error) }
                followUp = logEndOffset
            }

            let last = segments.count - 1
            let position = segments[last].size
            let file = segments[last].file
            let stampTime = config.logAppendTime
            let patchLength = stampTime ? RecordBatchHeader.size : 16
            var scratch = [UInt8](repeating: 0, count: batches.count * RecordBatchHeader.size)
            do {
                try records.withUnsafeReadableBytes { rec in
                    try scratch.withUnsafeMutableBytes { scr in
                        var iov: [iovec] = []
                        iov.reserveCapacity(batches.count * 2)
                        var offset = logEndOffset
                        for (i, batch) in batches.enumerated() {
                            let src = rec.baseAddress! + batch.at
                            let hdr = scr.baseAddress! + i * RecordBatchHeader.size
                            hdr.copyMemory(from: src, byteCount: patchLength)
                            hdr.storeBytes(of: offset.bigEndian, toByteOffset: 0, as: Int64.self)
                            hdr.storeBytes(of: leaderEpoch.bigEndian, toByteOffset: 12, as: Int32.self)
                            if stampTime {
                                let attributes = batch.header.attributes.rawValue | 0x08
                                hdr.storeBytes(of: attributes.bigEndian, toByteOffset: RecordBatchHeader.attributesOffset, as: Int16.self)
                                hdr.storeBytes(of: now.bigEndian, toByteOffset: RecordBatchHeader.maxTimestampOffset, as: Int64.self)
                                var crc = CRC32C.update(0, UnsafeRawBufferPointer(start: hdr + RecordBatchHeader.attributesOffset,
                                                                                   count: RecordBatchHeader.size - RecordBatchHeader.attributesOffset))
                                crc = CRC32C.update(crc, UnsafeRawBufferPointer(start: src + RecordBatchHeader.size,
                                                                                count: batch.header.totalSize - RecordBatchHeader.size))
                                hdr.storeBytes(of: crc.bigEndian, toByteOffset: RecordBatchHeader.crcOffset, as: UInt32.self)
                            }
                            iov.append(iovec(iov_base: hdr, iov_len: patchLength))
                            iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: src + patchLength),
                                             iov_len: batch.header.totalSize - patchLength))
                            offset += Int64(batch.header.lastOffsetDelta) + 1
                        }
                        try file.pwritevAll(&iov, at: position)
                    }
                }
            } catch {
                throw rollBack(file, to: position, after: error, what: "append")
            }
            // From here on nothing can fail: the batches are in the file.

            let firstOffset = logEndOffset
            var offset = firstOffset, at = position
            for (i, batch) in batches.enumerated() {
                var h = batch.header
                if stampTime { h.maxTimestamp = now }
                segments[last].didAppend(h, baseOffset: offset, position: at, size: h.totalSize,
                                         maxTimestamp: stampTime ? now : h.maxTimestamp,
                                         indexInterval: config.indexIntervalBytes, now: now)
                updateProducers(h, firstOffset: offset, marker: prepared.markers[i], segment: last)
                at += h.totalSize
                offset += Int64(h.lastOffsetDelta) + 1
            }
            if epochs.assign(epoch: leaderEpoch, startOffset: firstOffset) {
                // The checkpoint file is written by the next flush (scheduled below), before the
                // recovery point passes this offset; recovery rebuilds epochs from batch headers after it.
                epochsChanged()
                followUp = followUp ?? firstOffset
            }
            logEndOffset = offset
            unflushedMessages += Int64(recordCount)
            if oldestUnflushedMs == nil { oldestUnflushedMs = monotonicMillis() }
            return (LogAppendResult(firstOffset: firstOffset, lastOffset: offset - 1, logAppendTime: stampTime ? now : -1,
                                    logStartOffset: logStartOffset, recordCount: recordCount, bytes: totalBytes,
                                    isDuplicate: false, needsFlush: unflushedMessages >= config.flushMessages), followUp)
        }

        /// A follower's append: the batches' bytes written unchanged after the log end.
        mutating func appendReplicated(_ records: ByteBuffer, batches all: [(header: RecordBatchHeader, at: Int)],
                                       markers: [Int64: EndTxnMarker] = [:], now: Int64) throws -> (LogAppendResult?, Int64?) {
            guard !closed else { throw StorageError.logClosed(name) }
            let batches = all.filter { $0.header.lastOffset >= logEndOffset }
            guard let first = batches.first else { return (nil, nil) }
            guard first.header.baseOffset >= logEndOffset else {
                throw StorageError.invalidBatch(.invalidRecord("replicated batch at offset \(first.header.baseOffset) overlaps the log end \(logEndOffset)"))
            }
            let last = batches[batches.count - 1]
            let start = first.at, end = last.at + last.header.totalSize
            let totalBytes = end - start
            let recordCount = batches.reduce(0) { $0 + Int($1.header.recordCount) }
            var followUp: Int64?
            if needsRoll(adding: totalBytes, lastOffset: last.header.lastOffset, now: now) {
                do { try roll(now: now, at: first.header.baseOffset) } catch { throw context.classify(error) }
                followUp = first.header.baseOffset
            } else if let active = segments.last, active.size == 0, active.baseOffset != first.header.baseOffset, segments.count == 1 || first.header.baseOffset > logEndOffset {
                // An empty active segment whose name no longer matches (a gap after compaction or a
                // truncation to the leader's start): start it again at the batch's offset.
                do { try roll(now: now, at: first.header.baseOffset, replacingEmpty: true) } catch { throw context.classify(error) }
            }
            let index = segments.count - 1
            let position = segments[index].size
            let file = segments[index].file
            do {
                try records.withUnsafeReadableBytes { rec in
                    var iov = [iovec(iov_base: UnsafeMutableRawPointer(mutating: rec.baseAddress! + start), iov_len: totalBytes)]
                    try file.pwritevAll(&iov, at: position)
                }
            } catch {
                throw rollBack(file, to: position, after: error, what: "replicated append")
            }
            var at = position
            for batch in batches {
                let h = batch.header
                segments[index].didAppend(h, baseOffset: h.baseOffset, position: at, size: h.totalSize, maxTimestamp: h.maxTimestamp,
                                          indexInterval: config.indexIntervalBytes, now: now)
                updateProducers(h, firstOffset: h.baseOffset, marker: markers[h.baseOffset], segment: index)
                if h.partitionLeaderEpoch >= 0, epochs.assign(epoch: h.partitionLeaderEpoch, startOffset: h.baseOffset) {
                    epochsChanged()
                    followUp = followUp ?? h.baseOffset
                }
                at += h.totalSize
            }
            logEndOffset = last.header.lastOffset + 1
            unflushedMessages += Int64(recordCount)
            if oldestUnflushedMs == nil { oldestUnflushedMs = monotonicMillis() }
            return (LogAppendResult(firstOffset: first.header.baseOffset, lastOffset: logEndOffset - 1, logAppendTime: -1,
                                    logStartOffset: logStartOffset, recordCount: recordCount, bytes: totalBytes,
                                    isDuplicate: false, needsFlush: unflushedMessages >= config.flushMessages), followUp)
        }

        /// Whether the active segment must roll before `adding` bytes whose last offset is `lastOffset`
        /// (size, age, full indexes, or offsets beyond the 32-bit relative range).
        func needsRoll(adding bytes: Int, lastOffset: Int64, now: Int64) -> Bool {
            guard let active = segments.last, active.size > 0 else { return false }
            return active.size + bytes > config.segmentBytes
                || now - active.createdAtMs >= config.rollAfterMs(active.baseOffset)
                || active.offsetIndex.count >= config.maxIndexEntries || active.timeIndex.count >= config.maxTimeIndexEntries
                || lastOffset - active.baseOffset > Int64(Int32.max)
        }

        /// A failed write: the segment is cut back to where it ended. If even that fails, the log can
        /// no longer be trusted and its directory goes offline. Returns the error to throw.
        mutating func rollBack(_ file: FileDescriptorBox, to position: Int, after error: any Error, what: String) -> any Error {
            do {
                try file.truncate(to: position)
            } catch let truncateError {
                closed = true
                return context.markOffline("\(what) to \(name) failed (\(error)) and could not be rolled back: \(truncateError)")
            }
            return context.classify(error)
        }

        func needsFlush(now: Int64) -> Bool {
            guard unflushedMessages > 0 else { return false }
            if unflushedMessages >= config.flushMessages { return true }
            if config.flushMs != .max, let oldest = oldestUnflushedMs, now - oldest >= config.flushMs { return true }
            return false
        }

        /// Starts a new active segment at the log end. The old segment's fsync, its index files and a
        /// producer snapshot at the new base are left to the next flush (`flush(upTo:)`, scheduled
        /// on the background queue by the caller).
        mutating func roll(now: Int64, at base: Int64? = nil, replacingEmpty: Bool = false) throws {
            let baseOffset = base ?? logEndOffset
            if replacingEmpty, let empty = segments.last, empty.size == 0 {
                let created = try LogSegment.create(directory: directory, baseOffset: baseOffset, now: now)
                segments[segments.count - 1] = created
                try? FS.remove(empty.logPath)
                try? FS.remove(empty.indexPath)
                try? FS.remove(empty.timeIndexPath)
                try? FS.remove(empty.txnIndexPath)
                return
            }
            segments.append(try LogSegment.create(directory: directory, baseOffset: baseOffset, now: now))
            pendingSnapshot = (baseOffset, producers)
        }

        // MARK: Read

        mutating func read(from offset: Int64, maxBytes: Int, upperBound: Int64?, minOneBatch: Bool) throws -> LogReadResult {
            guard !closed else { throw StorageError.logClosed(name) }
            var result = LogReadResult(slice: nil, highWatermark: highWatermark, logStartOffset: logStartOffset, logEndOffset: logEndOffset,
                                       lastStableOffset: lastStableOffset)
            guard offset >= logStartOffset, offset <= logEndOffset else {
                throw StorageError.offsetOutOfRange(requested: offset, logStart: logStartOffset, logEnd: logEndOffset)
            }
            let bound = min(upperBound ?? highWatermark, logEndOffset)
            guard offset < bound, maxBytes > 0 || minOneBatch else { return result }
            var i = segmentIndex(for: offset)
            while i < segments.count {
                let segment = segments[i]
                if let (start, header) = try segment.locate(offset) {
                    guard header.baseOffset < bound else { return result }
                    var end = segment.size
                    if bound < segment.nextOffset, let (boundAt, _) = try segment.locate(bound) { end = boundAt }
                    var length = min(end - start, maxBytes)
                    if minOneBatch, length < header.totalSize { length = min(header.totalSize, end - start) }
                    if length > 0 {
                        result.slice = FileSlice(file: segment.file, position: start, length: length, firstOffset: header.baseOffset)
                    }
                    return result
                }
                i += 1
            }
            return result
        }

        /// The index of the segment that holds `offset` (the last with base offset at or below it).
        func segmentIndex(for offset: Int64) -> Int {
            var lo = 0, hi = segments.count - 1, found = 0
            while lo <= hi {
                let mid = (lo + hi) / 2
                if segments[mid].baseOffset <= offset { found = mid; lo = mid + 1 } else { hi = mid - 1 }
            }
            return found
        }

        static func offsetForTimestamp(_ timestamp: Int64, segments: [LogSegment], logStartOffset: Int64) throws -> (offset: Int64, timestamp: Int64)? {
            for segment in segments where segment.maxTimestamp >= timestamp {
                var start = 0
                if let rel = segment.timeIndex.startForTimestamp(timestamp) {
                    start = segment.scanStart(for: segment.baseOffset + Int64(rel))
                }
                var scanner = BatchScanner(file: segment.file, from: start, to: segment.size, chunkSize: 64 * 1024)
                while let (position, header) = try scanner.next() {
                    guard header.lastOffset >= logStartOffset else { continue }
                    guard header.maxTimestamp >= timestamp else { continue }
                    let bytes = try scanner.batchBytes(at: position, size: header.totalSize)
                    if let found = try Self.firstRecord(in: bytes, header: header, from: logStartOffset, where: { $0 >= timestamp }) {
                        return found
                    }
                }
            }
            return nil
        }

        static func offsetOfMaxTimestamp(segments: [LogSegment], logStartOffset: Int64) throws -> (offset: Int64, timestamp: Int64)? {
            guard let segment = segments.filter({ $0.maxTimestamp >= 0 }).max(by: { $0.maxTimestamp < $1.maxTimestamp }),
                  let (position, header) = try segment.locate(max(segment.offsetOfMaxTimestamp, logStartOffset))
            else { return nil }
            var scanner = BatchScanner(file: segment.file, from: position, to: segment.size, chunkSize: header.totalSize)
            let bytes = try scanner.batchBytes(at: position, size: header.totalSize)
            let target = segment.maxTimestamp
            return try Self.firstRecord(in: bytes, header: header, from: logStartOffset, where: { $0 == target })
                ?? (max(header.lastOffset, logStartOffset), header.maxTimestamp)
        }

        /// The first record of a batch at or after `from` whose timestamp satisfies `matches`
        /// (compressed batches are decompressed, as Kafka does).
        static func firstRecord(in bytes: ByteBuffer, header: RecordBatchHeader, from: Int64,
                                where matches: (Int64) -> Bool) throws -> (offset: Int64, timestamp: Int64)? {
            if header.attributes.timestampType == .logAppendTime {
                return matches(header.maxTimestamp) ? (max(header.baseOffset, from), header.maxTimestamp) : nil
            }
            let batch = try RecordBatch(from: bytes)
            var found: (Int64, Int64)?
            try batch.forEachRecord { record in
                guard found == nil else { return }
                let offset = header.baseOffset + Int64(record.offsetDelta)
                let ts = header.baseTimestamp + record.timestampDelta
                if offset >= from, matches(ts) { found = (offset, ts) }
            }
            return found
        }

        // MARK: Retention and truncation

        mutating func deleteRecords(before offset: Int64, removed: inout [LogSegment]) throws -> Int64 {
            guard !closed else { throw StorageError.logClosed(name) }
            let target = offset < 0 ? highWatermark : offset
            guard target <= highWatermark else {
                throw StorageError.offsetOutOfRange(requested: offset, logStart: logStartOffset, logEnd: highWatermark)
            }
            if target > logStartOffset {
                logStartOffset = target
                removed += removeSegmentsBelowLogStart()
                producers.removeBefore(logStartOffset)
                epochs.truncateFromStart(startOffset: logStartOffset)
                epochsChanged()
            }
            return logStartOffset
        }

        /// Takes the segments past retention out of the log (into `removed`; the caller deletes their
        /// files outside the lock). Returns whether the active segment had to roll.
        mutating func applyRetention(now: Int64, removed: inout [LogSegment]) throws -> Bool {
            guard !closed else { return false }
            var deletable = 0
            // Only segments wholly below the high watermark may go; an empty active segment stays.
            func upperBound(_ i: Int) -> Int64 { i + 1 < segments.count ? segments[i + 1].baseOffset : logEndOffset }
            if config.retentionMs >= 0 {
                while deletable < segments.count, segments[deletable].size > 0 || deletable < segments.count - 1,
                      upperBound(deletable) <= highWatermark,
                      now - segments[deletable].maxTimestamp > config.retentionMs {
                    deletable += 1
                }
            }
            if config.retentionBytes >= 0 {
                var excess = segments.reduce(0) { $0 + Int64($1.size) } - config.retentionBytes
                var bySize = 0
                while bySize < segments.count, segments[bySize].size > 0 || bySize < segments.count - 1, upperBound(bySize) <= highWatermark,
                      excess >= Int64(segments[bySize].size) {
                    excess -= Int64(segments[bySize].size)
                    bySize += 1
                }
                deletable = max(deletable, bySize)
            }
            guard deletable > 0 else {
                removed += removeSegmentsBelowLogStart()
                return false
            }
            var rolled = false
            if deletable == segments.count {
                try roll(now: now)
                rolled = true
            }
            logStartOffset = max(logStartOffset, segments[deletable].baseOffset)
            removed += removeSegmentsBelowLogStart()
            producers.removeBefore(logStartOffset)
            epochs.truncateFromStart(startOffset: logStartOffset)
            epochsChanged()
            return rolled
        }

        /// Takes out the segments that end at or before the log start offset (files not yet deleted).
        mutating func removeSegmentsBelowLogStart() -> [LogSegment] {
            var removed: [LogSegment] = []
            while segments.count > 1, segments[1].baseOffset <= logStartOffset {
                removed.append(segments.removeFirst())
            }
            return removed
        }

        static func deleteFiles(of segment: LogSegment) throws {
            try FS.remove(segment.logPath)
            try FS.remove(segment.indexPath)
            try FS.remove(segment.timeIndexPath)
            try FS.remove(segment.txnIndexPath)
        }

        mutating func truncate(to offset: Int64) throws {
            guard !closed else { throw StorageError.logClosed(name) }
            guard offset < logEndOffset else { return }
            let now = currentTimeMillis()
            do {
                while segments.count > 1, segments[segments.count - 1].baseOffset >= offset {
                    try Self.deleteFiles(of: segments.removeLast())
                }
                var last = segments[segments.count - 1]
                if last.baseOffset >= offset {
                    try Self.deleteFiles(of: last)
                    last = try LogSegment.create(directory: directory, baseOffset: max(offset, logStartOffset), now: now)
                    segments[segments.count - 1] = last
                    logEndOffset = last.baseOffset
                } else {
                    if let (position, header) = try last.locate(offset) {
                        try last.truncate(toPosition: position, nextOffset: header.baseOffset)
                    }
                    segments[segments.count - 1] = last
                    logEndOffset = last.nextOffset
                }
            } catch {
                // Half-truncated: the log can no longer be trusted (the next start recovers it).
                closed = true
                throw context.markOffline("truncating \(name) to \(offset) failed: \(error)")
            }
            highWatermark = min(highWatermark, logEndOffset)
            recoveryPoint = min(recoveryPoint, logEndOffset)
            epochs.truncateFromEnd(endOffset: logEndOffset)
            epochsChanged()
            // A truncation must not come back after a crash with epochs of the removed records.
            do {
                try CheckpointFile.write(epochCheckpointPath, lines: epochs.lines())
                epochsWrittenVersion = epochsVersion
            } catch {
                closed = true
                throw context.markOffline("writing the leader-epoch checkpoint of \(name) failed: \(error)")
            }
            try rebuildProducerState()
        }

        /// Kafka's truncateFullyAndStartAt: every segment goes and the log restarts, empty, at `offset`
        /// (a follower whose log end is below its leader's log start).
        mutating func truncateFullyAndStartAt(_ offset: Int64) throws {
            guard !closed else { throw StorageError.logClosed(name) }
            for segment in segments { try Self.deleteFiles(of: segment) }
            segments = [try LogSegment.create(directory: directory, baseOffset: offset, now: currentTimeMillis())]
            logStartOffset = offset
            logEndOffset = offset
            highWatermark = offset
            recoveryPoint = offset
            epochs.truncateFromEnd(endOffset: offset)
            epochs.truncateFromStart(startOffset: offset)
            epochsChanged()
            do {
                try CheckpointFile.write(epochCheckpointPath, lines: epochs.lines())
                epochsWrittenVersion = epochsVersion
            } catch {
                closed = true
                throw context.markOffline("writing the leader-epoch checkpoint of \(name) failed: \(error)")
            }
            producers = ProducerStateManager()
        }

        // MARK: Snapshots and shutdown

        var snapshotOffsets: [Int64] { Self.snapshotOffsets(in: directory) }

        mutating func writeProducerSnapshot() throws {
            try Self.writeProducerSnapshot(producers, at: logEndOffset, directory: directory, keepAtOrBelow: segments.last?.baseOffset)
        }

        static func snapshotOffsets(in directory: String) -> [Int64] {
            ((try? FS.list(directory)) ?? []).compactMap { name in
                name.hasSuffix(".snapshot") ? Int64(name.dropLast(9)) : nil
            }.sorted()
        }

        /// Writes a snapshot at `offset` and keeps the two newest, and also the newest at or below
        /// `keepAtOrBelow` (the active segment's base: recovery rebuilds that segment's transaction
        /// index from the producer state at its base, which would otherwise need a replay from the
        /// log start after a few clean restarts without a roll).
        static func writeProducerSnapshot(_ producers: ProducerStateManager, at offset: Int64, directory: String,
                                          keepAtOrBelow: Int64? = nil) throws {
            let path = directory + "/" + LogSegment.fileName(offset, ".snapshot")
            try FS.writeAtomically(path, producers.snapshot(), sync: false)
            let all = snapshotOffsets(in: directory)
            let kept = keepAtOrBelow.flatMap { base in all.last { $0 <= base } }
            for old in all.dropLast(2) where old != kept {
                try FS.remove(directory + "/" + LogSegment.fileName(old, ".snapshot"))
            }
        }

        /// Loads the newest usable producer snapshot and replays batch headers after it.
        @discardableResult
        mutating func rebuildProducerState() throws -> Int {
            var from = logStartOffset
            producers.removeAll()
            for offset in snapshotOffsets.reversed() {
                let path = directory + "/" + LogSegment.fileName(offset, ".snapshot")
                if offset > logEndOffset { try FS.remove(path); continue }
                if let bytes = try FS.readFile(path), let loaded = ProducerStateManager.load(snapshot: bytes) {
                    producers = loaded
                    from = max(offset, logStartOffset)
                    break
                }
            }
            var replayed = 0
            for segment in segments where segment.nextOffset > from {
                replayed += try Self.replayProducers(&producers, segment: segment, from: from)
            }
            producers.removeBefore(logStartOffset)
            producers.onHighWatermarkUpdated(highWatermark)
            return replayed
        }

        /// Writes the indexes and a producer snapshot. On a full disk they are skipped: the next
        /// start rebuilds them (and `writeAtomically` leaves no temporary file behind).
        mutating func closeForShutdown() throws {
            guard !closed else { return }
            do {
                for i in segments.indices { try segments[i].writeIndexes() }
                try writeProducerSnapshot()
            } catch let e as StorageError where e.isOutOfSpace {
                context.reportDiskFull()
            }
            closed = true
        }

    }
}
