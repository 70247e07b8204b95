#if canImport(Glibc)
import KafkaProtocol
import Glibc
#endif
import NIOCore
import Synchronization

/// All partition logs of one broker under its log directory, with Kafka's checkpoint files
/// (`recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`, `replication-offset-checkpoint`)
/// and a clean-shutdown marker that lets the next start skip recovery.
public final class LogManager: Sendable {
    public let logDir: String
    private let logs = Mutex<[TopicPartition: PartitionLog]>([:])
    private let cleanerBox = Mutex<LogCleaner?>(nil)
    /// Held while a log is created or deleted, so a new log never opens a folder being deleted.
    private let creation = Mutex<Void>(())
    private let lockFD: CInt
    /// Whether the previous run shut down cleanly.
    public let hadCleanShutdown: Bool
    /// The directory's shared state: online or offline, full-disk reports, background queue.
    public let context: LogDirContext

    static let cleanShutdownMarker = ".samsa_cleanshutdown"
    static let recoveryCheckpoint = "recovery-point-offset-checkpoint"
    static let logStartCheckpoint = "log-start-offset-checkpoint"
    static let highWatermarkCheckpoint = "replication-offset-checkpoint"

    /// Opens `logDir` (creating it), taking an exclusive lock so two brokers never share it.
    public init(logDir: String) throws {
        self.logDir = logDir
        try FS.makeDirectories(logDir)
        let lockPath = logDir + "/.lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageError.io(op: "open", path: lockPath, errno: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw StorageError.io(op: "lock (is another broker using this log directory?)", path: lockPath, errno: EWOULDBLOCK)
        }
        lockFD = fd
        context = LogDirContext(path: logDir)
        hadCleanShutdown = FS.exists(logDir + "/" + Self.cleanShutdownMarker)
    }

    /// Calls `handler` when the log directory goes offline (every log in it then answers
    /// KAFKA_STORAGE_ERROR), fills up or has space again. Handlers run on the thread that noticed.
    public func onEvent(_ handler: @escaping @Sendable (LogDirEvent) -> Void) {
        context.onEvent(handler)
    }

    /// Whether an unrecoverable I/O error took the log directory offline.
    public var isOffline: Bool { context.isOffline }

    deinit {
        flock(lockFD, LOCK_UN)
        close(lockFD)
    }

    /// Opens every partition folder, recovering those the last run did not close cleanly.
    /// `config` gives each partition's log config. Returns the recovery reports of logs that needed work.
    @discardableResult
    public func loadAll(config: (TopicPartition) -> LogConfig) throws -> [TopicPartition: RecoveryReport] {
        let recovery = try CheckpointFile.readOffsets(logDir + "/" + Self.recoveryCheckpoint)
        let starts = try CheckpointFile.readOffsets(logDir + "/" + Self.logStartCheckpoint)
        let hws = try CheckpointFile.readOffsets(logDir + "/" + Self.highWatermarkCheckpoint)
        var reports: [TopicPartition: RecoveryReport] = [:]
        for name in try FS.list(logDir) {
            let path = logDir + "/" + name
            if Self.isDeletedFolder(name) {
                // A partition deleted before the last stop: never loaded, removed in the background.
                context.inBackground { _ = try? FS.removeTree(path) }
                continue
            }
            guard FS.isDirectory(path), let tp = TopicPartition(directoryName: name) else { continue }
            let log = try PartitionLog.open(directory: path, topicPartition: tp, config: config(tp),
                                            recoveryPoint: recovery[tp] ?? 0, logStartOffset: starts[tp] ?? 0,
                                            highWatermark: hws[tp], cleanShutdown: hadCleanShutdown, context: context)
            if log.recoveryReport != RecoveryReport() { reports[tp] = log.recoveryReport }
            logs.withLock { $0[tp] = log }
        }
        if FS.freeBytes(logDir) == 0 { context.reportDiskFull() }
        // From here on a crash must be detected at the next start.
        try FS.remove(logDir + "/" + Self.cleanShutdownMarker)
        FS.syncDirectory(logDir)
        return reports
    }

    public func log(_ tp: TopicPartition) -> PartitionLog? { logs.withLock { $0[tp] } }

    public var allLogs: [PartitionLog] { logs.withLock { Array($0.values) } }

    public var partitions: [TopicPartition] { logs.withLock { Array($0.keys) } }

    /// The log of `tp`, created empty if it does not exist.
    public func getOrCreate(_ tp: TopicPartition, config: LogConfig) throws -> PartitionLog {
        if let existing = log(tp) { return existing }
        return try creation.withLock { _ in
            if let raced = log(tp) { return raced }
            let directory = logDir + "/" + tp.directoryName
            let existed = FS.isDirectory(directory)
            let log: PartitionLog
            do {
                log = try PartitionLog.open(directory: directory, topicPartition: tp, config: config, cleanShutdown: true, context: context)
            } catch {
                // A new partition that could not be opened (out of descriptors, disk full) leaves no folder behind.
                if !existed { try? FS.removeTree(directory) }
                throw error
            }
            logs.withLock { $0[tp] = log }
            return log
        }
    }

    /// Removes the folder of a partition that is not open (what a failed creation left behind).
    public func removeUnopened(_ tp: TopicPartition) throws {
        guard log(tp) == nil else { return }
        let directory = logDir + "/" + tp.directoryName
        if FS.isDirectory(directory) { try FS.removeTree(directory) }
    }

    static let deleteSuffix = "-delete"

    /// Kafka's name for a deleted partition's folder: `<topic>-<partition>.<32 hex digits>-delete`.
    static func isDeletedFolder(_ name: String) -> Bool {
        guard name.hasSuffix(deleteSuffix), let dot = name.lastIndex(of: ".") else { return false }
        let id = name[name.index(after: dot)...].dropLast(deleteSuffix.count)
        return id.count == 32 && id.allSatisfy(\.isHexDigit) && TopicPartition(directoryName: String(name[..<dot])) != nil
    }

    static func deletedFolderName(_ tp: TopicPartition) -> String {
        var rng = SystemRandomNumberGenerator()
        let id = [rng.next(), rng.next()].map { (n: UInt64) -> String in
            let hex = String(n, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
        return tp.directoryName + "." + id + deleteSuffix
    }

    /// Deletes the partition's log as Kafka does: the log is closed and its folder renamed to
    /// `<topic>-<partition>.<id>-delete` at once, so a new log of the same name (a topic created
    /// again, by auto-creation even) starts in a fresh folder; the renamed folder is removed on the
    /// background queue. Fetches still sending from its files keep them readable until they finish.
    public func delete(_ tp: TopicPartition) throws {
        let renamed: String? = try creation.withLock { _ in
            guard let log = logs.withLock({ $0.removeValue(forKey: tp) }) else { return nil }
            log.markDeleted()
            let target = logDir + "/" + Self.deletedFolderName(tp)
            try FS.rename(log.directory, target)
            return target
        }
        if let renamed {
            context.inBackground { [logDir] in
                FS.syncDirectory(logDir)
                _ = try? FS.removeTree(renamed)
            }
        }
    }

    /// Waits until the background work queued so far (deletions, roll completion) has run.
    public func waitForBackgroundWork() { context.waitForBackgroundWork() }

    /// Writes the offset checkpoints (done periodically). On a full disk they are skipped (the
    /// older ones stay valid; the full disk is reported once through `onEvent`, not thrown each time).
    public func checkpoint() throws {
        do { try writeCheckpoints() } catch let e as StorageError where e.isOutOfSpace {
            context.reportDiskFull()
        }
    }

    func writeCheckpoints() throws {
        var recovery: [TopicPartition: Int64] = [:], starts: [TopicPartition: Int64] = [:], hws: [TopicPartition: Int64] = [:]
        for log in allLogs {
            let o = log.offsets
            recovery[log.topicPartition] = o.recoveryPoint
            starts[log.topicPartition] = o.logStartOffset
            hws[log.topicPartition] = o.highWatermark
        }
        try CheckpointFile.writeOffsets(logDir + "/" + Self.recoveryCheckpoint, recovery)
        try CheckpointFile.writeOffsets(logDir + "/" + Self.logStartCheckpoint, starts)
        try CheckpointFile.writeOffsets(logDir + "/" + Self.highWatermarkCheckpoint, hws)
    }

    /// Starts the log cleaner for the compacted logs of this directory (stopped by `shutdown`).
    @discardableResult
    public func startCleaner(_ config: CleanerConfig, onError: @escaping @Sendable (String) -> Void = { _ in }) -> LogCleaner {
        let cleaner = cleanerBox.withLock { box -> LogCleaner in
            if let running = box { return running }
            let c = LogCleaner(manager: self, config: config)
            box = c
            return c
        }
        cleaner.start(onError: onError)
        return cleaner
    }

    /// The running log cleaner, if started.
    public var cleaner: LogCleaner? { cleanerBox.withLock { $0 } }

    /// Flushes and closes every log, writes the checkpoints and the clean-shutdown marker. Every log
    /// is closed even when one fails; then the first error is thrown and no marker is written (the
    /// next start recovers). An offline directory is never marked clean.
    public func shutdown() throws {
        if let cleaner = cleanerBox.withLock({ box -> LogCleaner? in defer { box = nil }; return box }) { cleaner.shutdown() }
        var firstError: (any Error)?
        for log in allLogs {
            do { _ = try log.close() } catch { firstError = firstError ?? error }
        }
        context.waitForBackgroundWork()
        if let firstError { throw firstError }
        try context.checkOnline()
        try writeCheckpoints()
        try FS.writeAtomically(logDir + "/" + Self.cleanShutdownMarker, "")
        // The directory is free for the next broker (in this process too) once shut down.
        flock(lockFD, LOCK_UN)
    }
}
