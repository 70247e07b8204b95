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
    private let lockFD: CInt
    /// Whether the previous run shut down cleanly.
    public let hadCleanShutdown: Bool

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
        hadCleanShutdown = FS.exists(logDir + "/" + Self.cleanShutdownMarker)
    }

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
            if name.hasSuffix("-delete") { try FS.removeTree(path); continue }
            guard FS.isDirectory(path), let tp = TopicPartition(directoryName: name) else { continue }
            let log = try PartitionLog.open(directory: path, topicPartition: tp, config: config(tp),
                                            recoveryPoint: recovery[tp] ?? 0, logStartOffset: starts[tp] ?? 0,
                                            highWatermark: hws[tp], cleanShutdown: hadCleanShutdown)
            if log.recoveryReport != RecoveryReport() { reports[tp] = log.recoveryReport }
            logs.withLock { $0[tp] = log }
        }
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
        let directory = logDir + "/" + tp.directoryName
        let existed = FS.isDirectory(directory)
        let log: PartitionLog
        do {
            log = try PartitionLog.open(directory: directory, topicPartition: tp, config: config, cleanShutdown: true)
        } catch {
            // A new partition that could not be opened (out of descriptors, disk full) leaves no folder behind.
            if !existed { try? FS.removeTree(directory) }
            throw error
        }
        return logs.withLock { current in
            if let raced = current[tp] { return raced }
            current[tp] = log
            return log
        }
    }

    /// Removes the folder of a partition that is not open (what a failed creation left behind).
    public func removeUnopened(_ tp: TopicPartition) throws {
        guard log(tp) == nil else { return }
        let directory = logDir + "/" + tp.directoryName
        if FS.isDirectory(directory) { try FS.removeTree(directory) }
    }

    /// Deletes the partition's log and folder.
    public func delete(_ tp: TopicPartition) throws {
        guard let log = logs.withLock({ $0.removeValue(forKey: tp) }) else { return }
        try log.delete()
    }

    /// Writes the offset checkpoints (done periodically and at shutdown).
    public func checkpoint() throws {
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

    /// Flushes and closes every log, writes the checkpoints and the clean-shutdown marker.
    public func shutdown() throws {
        for log in allLogs { _ = try log.close() }
        try checkpoint()
        try FS.writeAtomically(logDir + "/" + Self.cleanShutdownMarker, "")
        // The directory is free for the next broker (in this process too) once shut down.
        flock(lockFD, LOCK_UN)
    }
}
