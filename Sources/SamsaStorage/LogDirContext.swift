#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization

/// Something about a log directory that the broker should know (and log).
public enum LogDirEvent: Sendable, Equatable {
    /// An I/O error that could not be rolled back, or a failed fsync: every log of the directory now
    /// refuses reads and writes with KAFKA_STORAGE_ERROR (Kafka's LogDirFailureChannel).
    case offline(path: String, reason: String)
    /// The file system is full: writes are refused (and rolled back), reads go on. Reported once
    /// until a write succeeds again.
    case diskFull(path: String, freeBytes: Int64)
    /// A write succeeded again after `diskFull`.
    case diskSpaceAvailable(path: String)
}

/// What the logs of one log directory share: whether the directory is still online, the listeners
/// told when it goes offline or fills up, and the background queue that does their slow file work
/// (finishing segment rolls, deleting files) away from the append lock and the event loops.
public final class LogDirContext: Sendable {
    public let path: String
    private let offlineReason = Mutex<String?>(nil)
    private let isOfflineFlag = Atomic<Bool>(false)
    private let diskFullReported = Atomic<Bool>(false)
    private let handlers = Mutex<[@Sendable (LogDirEvent) -> Void]>([])
    private let eventLog = Mutex<[LogDirEvent]>([])
    /// Serial background work (Kafka's log scheduler for this directory).
    let background: DispatchQueue

    public init(path: String) {
        self.path = path
        background = DispatchQueue(label: "samsa.storage.background")
    }

    /// Calls `handler` for every later event (from whichever thread noticed it).
    public func onEvent(_ handler: @escaping @Sendable (LogDirEvent) -> Void) {
        handlers.withLock { $0.append(handler) }
    }

    /// Every event so far, oldest first.
    public var events: [LogDirEvent] { eventLog.withLock { $0 } }

    public var isOffline: Bool { isOfflineFlag.load(ordering: .acquiring) }

    public var offlineDescription: String? { offlineReason.withLock { $0 } }

    func checkOnline() throws {
        if isOfflineFlag.load(ordering: .acquiring) { throw StorageError.logDirOffline(path: path) }
    }

    /// Takes the directory offline (once) and returns the error to throw.
    @discardableResult
    func markOffline(_ reason: String) -> StorageError {
        let first = offlineReason.withLock { r -> Bool in
            guard r == nil else { return false }
            r = reason
            return true
        }
        if first {
            isOfflineFlag.store(true, ordering: .releasing)
            emit(.offline(path: path, reason: reason))
        }
        return .logDirOffline(path: path)
    }

    /// Records that the file system is full (reported once) and returns the error to throw.
    @discardableResult
    func reportDiskFull() -> StorageError {
        let free = FS.freeBytes(path)
        if !diskFullReported.exchange(true, ordering: .acquiringAndReleasing) {
            emit(.diskFull(path: path, freeBytes: free))
        }
        return .diskFull(path: path, freeBytes: free)
    }

    /// A write went through: if the disk was reported full, say that it no longer is.
    func writeSucceeded() {
        if diskFullReported.load(ordering: .relaxed), diskFullReported.exchange(false, ordering: .acquiringAndReleasing) {
            emit(.diskSpaceAvailable(path: path))
        }
    }

    /// Whether the disk was reported full and no write has succeeded since.
    public var isDiskFull: Bool { diskFullReported.load(ordering: .acquiring) }

    /// An error from a write that was rolled back: full disk becomes `diskFull`, others pass through.
    func classify(_ error: any Error) -> any Error {
        if let e = error as? StorageError, e.isOutOfSpace { return reportDiskFull() }
        return error
    }

    /// Runs `work` on the background queue.
    func inBackground(_ work: @escaping @Sendable () -> Void) {
        background.async(execute: work)
    }

    /// Waits until the work queued so far has run (tests, shutdown).
    public func waitForBackgroundWork() {
        background.sync {}
    }

    private func emit(_ event: LogDirEvent) {
        eventLog.withLock { log in
            if log.count >= 100 { log.removeFirst() }
            log.append(event)
        }
        for handler in handlers.withLock({ $0 }) { handler(event) }
    }
}
