#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import KafkaCompression
import KafkaProtocol
import KafkaRecords
import KafkaWire
import NIOCore
import Synchronization

/// The log cleaner's settings (Kafka's `log.cleaner.*` broker configs).
public struct CleanerConfig: Sendable, Equatable {
    /// `log.cleaner.backoff.ms`: the pause when no log needs cleaning.
    public var backoffMs: Int64 = 15_000
    /// `log.cleaner.io.max.bytes.per.second`: read plus write throughput cap of the cleaner.
    public var ioMaxBytesPerSecond: Double = .greatestFiniteMagnitude
    /// `log.cleaner.dedupe.buffer.size`: memory for the key → offset map of one cleaning.
    public var dedupeBufferSize: Int = 128 * 1024 * 1024

    public init() {}
}

/// What one cleaning of one log did.
public struct CleanStats: Sendable, Equatable {
    public var segmentsBefore = 0
    public var segmentsAfter = 0
    public var bytesRead = 0
    public var bytesWritten = 0
    public var recordsRead = 0
    public var recordsRemoved = 0
    public var tombstonesRemoved = 0
    /// The first offset not cleaned (the cleaner checkpoint after this cleaning).
    public var cleanedUpTo: Int64 = 0
}

/// Kafka's log cleaner for `cleanup.policy=compact` (and `compact,delete`): keeps the latest record
/// of each key in the closed segments of a log. One background thread (a serial dispatch queue) picks
/// the dirtiest log, builds a key → last offset map over its dirty part (the closed segments after the
/// cleaner checkpoint, below the high watermark and `min.compaction.lag.ms`), then rewrites every
/// closed segment up to there, merged into groups of at most `segment.bytes`:
/// - a record is dropped when a later record has the same key, or when it has no key;
/// - a tombstone (null value) is dropped once it is older than `delete.retention.ms`;
/// - transactional and control batches are copied as they are (left for the transactions work);
/// - a batch that loses records is re-encoded with its header's producer id, epoch, base sequence,
///   base offset, last offset delta, leader epoch and codec kept (offsets never change; gaps are
///   normal), a batch that loses none is copied byte for byte, and a producer's last batch is kept
///   even when emptied so that its sequence state survives a restart;
/// - the new segment is written to `<base>.log.cleaned`, fsynced, and swapped in under the log's
///   lock (`.cleaned` → `.swap` → `.log`, the old files renamed `.deleted` and removed after);
///   a crash at any point leaves a consistent log that start-up completes.
/// Cleaning runs off the request path and is throttled by `log.cleaner.io.max.bytes.per.second`.
/// The cleaner checkpoint (first dirty offset per partition) is Kafka's `cleaner-offset-checkpoint`.
public final class LogCleaner: Sendable {
    public let config: CleanerConfig
    private let manager: LogManager
    private let queue = DispatchQueue(label: "samsa.log-cleaner")
    private let running = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let checkpoints: Mutex<[TopicPartition: Int64]>
    private let totals = Mutex<CleanStats>(CleanStats())
    /// Which log instance each partition's checkpoint was last written for (this run).
    private let cleaned = Mutex<[TopicPartition: ObjectIdentifier]>([:])
    /// Logs whose cleaning failed with an error (not an abandoned attempt): skipped until restart,
    /// as Kafka marks them uncleanable, so that one bad log does not starve the others.
    private let uncleanable = Mutex<Set<TopicPartition>>([])

    static let checkpointFile = "cleaner-offset-checkpoint"

    public init(manager: LogManager, config: CleanerConfig = CleanerConfig()) {
        self.manager = manager
        self.config = config
        let loaded = (try? CheckpointFile.readOffsets(manager.logDir + "/" + Self.checkpointFile)) ?? [:]
        checkpoints = Mutex(loaded)
    }

    /// Starts the background thread: clean while some log needs it, else wait `backoffMs`.
    /// `onError` hears about a failed cleaning (the log stays as it was, or its directory goes offline).
    public func start(onError: @escaping @Sendable (String) -> Void = { _ in }) {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
        scheduleNext(after: 0, onError: onError)
    }

    private func scheduleNext(after ms: Int64, onError: @escaping @Sendable (String) -> Void) {
        guard !stopping.load(ordering: .acquiring) else { return }
        queue.asyncAfter(deadline: .now() + .milliseconds(Int(ms))) { [self] in
            guard !stopping.load(ordering: .acquiring) else { return }
            var cleaned = false
            do { cleaned = try cleanDirtiest() != nil } catch {
                onError("\(error)")
            }
            // A backoff of 0 would spin on an idle broker: at least 10 ms between idle checks.
            scheduleNext(after: cleaned ? 0 : max(config.backoffMs, 10), onError: onError)
        }
    }

    /// Stops the thread, abandoning a cleaning in progress (its `.cleaned` file is removed).
    public func shutdown() {
        stopping.store(true, ordering: .releasing)
        queue.sync {}
    }

    /// Everything cleaned since start.
    public var totalStats: CleanStats { totals.withLock { $0 } }

    public func checkpoint(for tp: TopicPartition) -> Int64? { checkpoints.withLock { $0[tp] } }

    // MARK: Choosing

    /// How a log stands: its dirty part and whether it should be cleaned now.
    struct Plan {
        var log: PartitionLog
        var view: PartitionLog.CleanableView
        var firstDirty: Int64
        /// Index (in view.segments) past the last cleanable segment.
        var cleanableEnd: Int
        var ratio: Double
        var due: Bool
    }

    func plan(_ log: PartitionLog, now: Int64) -> Plan? {
        guard !uncleanable.withLock({ $0.contains(log.topicPartition) }),
              let view = log.cleanableView(), view.config.compact, !view.segments.isEmpty else { return nil }
        let id = ObjectIdentifier(log)
        let checkpoint = checkpoints.withLock { c -> Int64 in
            // A log deleted and created again under the same name starts from its beginning.
            if let seen = cleaned.withLock({ $0[log.topicPartition] }), seen != id { c[log.topicPartition] = nil }
            return c[log.topicPartition] ?? 0
        }
        var firstDirty = max(checkpoint, view.logStartOffset)
        if firstDirty > view.activeBaseOffset {
            firstDirty = view.logStartOffset  // checkpoint past the log (truncated): start over
        }
        // Cleanable: closed segments wholly below the high watermark and older than min.compaction.lag.ms.
        var end = 0
        for (i, segment) in view.segments.enumerated() {
            let upper = i + 1 < view.segments.count ? view.segments[i + 1].baseOffset : view.activeBaseOffset
            guard upper <= view.highWatermark else { break }
            if view.config.minCompactionLagMs > 0, segment.maxTimestamp > now - view.config.minCompactionLagMs { break }
            end = i + 1
        }
        var clean = 0, dirty = 0
        var oldestDirty = Int64.max
        for (i, segment) in view.segments.enumerated() where i < end {
            let upper = i + 1 < view.segments.count ? view.segments[i + 1].baseOffset : view.activeBaseOffset
            if upper <= firstDirty { clean += segment.size } else {
                dirty += segment.size
                if segment.size > 0 { oldestDirty = min(oldestDirty, segment.maxTimestamp) }
            }
        }
        guard dirty > 0 else { return nil }
        let ratio = Double(dirty) / Double(clean + dirty)
        let lagDue = view.config.maxCompactionLagMs != .max && oldestDirty != .max
            && now - oldestDirty > view.config.maxCompactionLagMs
        return Plan(log: log, view: view, firstDirty: firstDirty, cleanableEnd: end, ratio: ratio,
                    due: ratio >= view.config.minCleanableDirtyRatio || lagDue)
    }

    /// Cleans the dirtiest log that is due; nil when none is.
    @discardableResult
    public func cleanDirtiest(now: Int64 = currentTimeMillis()) throws -> (TopicPartition, CleanStats)? {
        let plans = manager.allLogs.compactMap { plan($0, now: now) }.filter(\.due)
        guard let best = plans.max(by: { $0.ratio < $1.ratio }) else { return nil }
        do {
            let stats = try clean(best, now: now)
            return (best.log.topicPartition, stats)
        } catch let e as Aborted {
            throw e
        } catch {
            uncleanable.withLock { _ = $0.insert(best.log.topicPartition) }
            throw UncleanableLog(topicPartition: best.log.topicPartition, error: "\(error)")
        }
    }

    /// Cleans `log` now if it has anything dirty (whatever its ratio), for tests and tools.
    @discardableResult
    public func clean(_ log: PartitionLog, now: Int64 = currentTimeMillis()) throws -> CleanStats? {
        guard let p = plan(log, now: now) else { return nil }
        return try clean(p, now: now)
    }

    // MARK: Cleaning

    struct UncleanableLog: Error, CustomStringConvertible {
        var topicPartition: TopicPartition
        var error: String
        var description: String { "cannot clean \(topicPartition) (skipped until restart): \(error)" }
    }

    struct Aborted: Error, CustomStringConvertible {
        var description: String { "cleaning abandoned (the log changed meanwhile, or the cleaner is stopping); it is retried later" }
    }

    private func clean(_ plan: Plan, now: Int64) throws -> CleanStats {
        let progress = Progress(throttle: Throttle(bytesPerSecond: config.ioMaxBytesPerSecond))
        let view = plan.view
        let segments = Array(view.segments[..<plan.cleanableEnd])
        // 1. The key → last offset map over the dirty segments (as many as fit the dedupe buffer).
        var map: [[UInt8]: Int64] = [:]
        var mapBytes = 0
        var mapEnd = plan.firstDirty
        for (i, segment) in segments.enumerated() {
            let upper = i + 1 < view.segments.count ? view.segments[i + 1].baseOffset : view.activeBaseOffset
            guard upper > plan.firstDirty else { continue }
            if mapBytes > config.dedupeBufferSize, mapEnd > plan.firstDirty { break }
            try forEachBatch(in: segment, progress) { batch in
                let h = batch.header
                guard !h.attributes.isControl, !h.attributes.isTransactional, h.lastOffset >= plan.firstDirty else { return }
                try batch.forEachRecord { record in
                    guard let key = record.key else { return }
                    let offset = h.baseOffset + Int64(record.offsetDelta)
                    guard offset >= plan.firstDirty else { return }
                    let k = Array(key.readableBytesView)
                    if map.updateValue(offset, forKey: k) == nil { mapBytes += k.count + 48 }
                }
            }
            mapEnd = upper
        }
        guard mapEnd > plan.firstDirty else { return progress.stats }
        // 2. Rewrite every segment below the map's end, in groups of at most segment.bytes.
        let toClean = segments.filter { $0.baseOffset < mapEnd }
        progress.stats.segmentsBefore = toClean.count
        let tombstoneHorizon = now - view.config.deleteRetentionMs
        var lastBatchOfProducer: [Int64: Int64] = [:]
        for (pid, entry) in view.producers.producers { lastBatchOfProducer[pid] = entry.lastOffset }
        for group in Self.groups(toClean, maxBytes: view.config.segmentBytes) {
            guard !stopping.load(ordering: .acquiring) else { throw Aborted() }
            let cleanedPath = plan.log.directory + "/" + LogSegment.fileName(group[0].baseOffset, ".log.cleaned")
            try FS.remove(cleanedPath)
            var done = false
            defer { if !done { _ = unlink(cleanedPath) } }
            let file = try FileDescriptorBox.open(cleanedPath, create: true)
            var cleaned = LogSegment(baseOffset: group[0].baseOffset, file: file, size: 0, nextOffset: group[0].baseOffset,
                                     createdAtMs: group[0].createdAtMs)
            for segment in group {
                try forEachBatch(in: segment, progress) { batch in
                    let h = batch.header
                    var out: ByteBuffer?
                    if h.attributes.isControl || h.attributes.isTransactional {
                        out = batch.bytes
                    } else {
                        var kept: [Record] = []
                        var total = 0
                        try batch.forEachRecord { record in
                            total += 1
                            let offset = h.baseOffset + Int64(record.offsetDelta)
                            let retained: Bool
                            if let key = record.key {
                                if let latest = map[Array(key.readableBytesView)], offset < latest {
                                    retained = false
                                } else if record.value == nil {
                                    let ts = h.attributes.timestampType == .logAppendTime ? h.maxTimestamp : h.baseTimestamp + record.timestampDelta
                                    retained = ts >= tombstoneHorizon
                                    if !retained { progress.stats.tombstonesRemoved += 1 }
                                } else {
                                    retained = true
                                }
                            } else {
                                retained = false  // a keyless record has no place in a compacted log
                            }
                            if retained { kept.append(record) } else { progress.stats.recordsRemoved += 1 }
                        }
                        progress.stats.recordsRead += total
                        if kept.count == total {
                            out = batch.bytes
                        } else if !kept.isEmpty {
                            out = try Self.reencode(batch, keeping: kept)
                        } else if h.producerId >= 0, lastBatchOfProducer[h.producerId] == h.lastOffset {
                            out = batch.bytes  // keeps the producer's sequence state
                        }
                    }
                    guard let bytes = out else { return }
                    let position = cleaned.size
                    try file.pwriteAll(bytes, at: position)
                    progress.stats.bytesWritten += bytes.readableBytes
                    progress.throttle.account(bytes.readableBytes)
                    let header = try RecordBatchHeader(from: bytes, at: bytes.readerIndex)
                    cleaned.didAppend(header, baseOffset: header.baseOffset, position: position, size: header.totalSize,
                                      maxTimestamp: header.maxTimestamp, indexInterval: view.config.indexIntervalBytes,
                                      now: cleaned.createdAtMs)
                }
            }
            guard !stopping.load(ordering: .acquiring) else { throw Aborted() }
            try file.sync()
            guard let deleted = try plan.log.replaceSegments(group, cleanedPath: cleanedPath, cleaned: cleaned) else {
                throw Aborted()  // the log changed (retention, truncation, deletion): try again later
            }
            done = true
            progress.stats.segmentsAfter += 1
            for path in deleted { _ = unlink(path) }
        }
        progress.stats.cleanedUpTo = mapEnd
        let all = checkpoints.withLock { c -> [TopicPartition: Int64] in
            c[plan.log.topicPartition] = mapEnd
            return c
        }
        cleaned.withLock { $0[plan.log.topicPartition] = ObjectIdentifier(plan.log) }
        let live = Set(manager.partitions)
        try? CheckpointFile.writeOffsets(manager.logDir + "/" + Self.checkpointFile, all.filter { live.contains($0.key) })
        let stats = progress.stats
        totals.withLock { t in
            t.segmentsBefore += progress.stats.segmentsBefore
            t.segmentsAfter += progress.stats.segmentsAfter
            t.bytesRead += progress.stats.bytesRead
            t.bytesWritten += progress.stats.bytesWritten
            t.recordsRead += progress.stats.recordsRead
            t.recordsRemoved += progress.stats.recordsRemoved
            t.tombstonesRemoved += progress.stats.tombstonesRemoved
        }
        return stats
    }

    /// Consecutive segments merged while their bytes fit `maxBytes` and their offsets fit a segment.
    static func groups(_ segments: [LogSegment], maxBytes: Int) -> [[LogSegment]] {
        var result: [[LogSegment]] = []
        var current: [LogSegment] = []
        var size = 0
        for segment in segments {
            if let first = current.first,
               size + segment.size > maxBytes || segment.nextOffset - first.baseOffset > Int64(Int32.max) {
                result.append(current)
                current = []
                size = 0
            }
            current.append(segment)
            size += segment.size
        }
        if !current.isEmpty { result.append(current) }
        return result
    }

    private func forEachBatch(in segment: LogSegment, _ progress: Progress, _ body: (RecordBatch) throws -> Void) throws {
        var scanner = BatchScanner(file: segment.file, from: 0, to: segment.size, chunkSize: 1 << 20)
        while let (position, header) = try scanner.next() {
            if stopping.load(ordering: .relaxed) { throw Aborted() }
            let bytes = try scanner.batchBytes(at: position, size: header.totalSize)
            progress.stats.bytesRead += header.totalSize
            progress.throttle.account(header.totalSize)
            try body(try RecordBatch(from: bytes))
        }
    }

    /// The batch with only `records`, its header otherwise kept (as Kafka's cleaner does for magic 2:
    /// base offset, last offset delta, producer id/epoch, base sequence, leader epoch, attributes).
    static func reencode(_ batch: RecordBatch, keeping records: [Record]) throws -> ByteBuffer {
        var payload = ByteBuffer()
        var h = batch.header
        var maxTimestamp = Int64.min
        for record in records {
            record.write(to: &payload)
            maxTimestamp = max(maxTimestamp, h.baseTimestamp + record.timestampDelta)
        }
        let codec = h.attributes.compression ?? .none
        let body = codec == .none ? payload : try KafkaCompression.compress(codec, payload)
        h.recordCount = Int32(records.count)
        if h.attributes.timestampType == .createTime { h.maxTimestamp = maxTimestamp }
        return RecordBatchHeader.assemble(h, body: body)
    }
}

/// One cleaning's counters and throttle.
final class Progress {
    var stats = CleanStats()
    var throttle: Throttle
    init(throttle: Throttle) { self.throttle = throttle }
}

/// Keeps the cleaner's I/O under a byte rate by sleeping.
struct Throttle {
    let bytesPerSecond: Double
    let start = monotonicMillis()
    var bytes = 0

    init(bytesPerSecond: Double) { self.bytesPerSecond = bytesPerSecond }

    mutating func account(_ n: Int) {
        bytes += n
        guard bytesPerSecond < .greatestFiniteMagnitude, bytesPerSecond > 0 else { return }
        let elapsedMs = Double(monotonicMillis() - start)
        let wantedMs = Double(bytes) / bytesPerSecond * 1000
        if wantedMs > elapsedMs + 1 { usleep(useconds_t(min(wantedMs - elapsedMs, 1000) * 1000)) }
    }
}
