import Logging
import NIOCore
import NIOPosix
import SamsaStorage
import Synchronization

/// Runs fsyncs off the event loops, batching them: every request queued while an fsync round is in
/// progress is covered by the next round, which syncs each log once for all of them (group commit).
public final class Flusher: Sendable {
    private struct Queue: Sendable {
        var logs: [ObjectIdentifier: PartitionLog] = [:]
        var waiters: [EventLoopPromise<Void>] = []
        var running = false
    }

    private let queue = Mutex(Queue())
    private let pool: NIOThreadPool
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    /// Flushes `logs`; the future completes once their data up to now is on disk.
    public func flush(_ logs: [PartitionLog], on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let start = queue.withLock { q -> Bool in
            for log in logs { q.logs[ObjectIdentifier(log)] = log }
            q.waiters.append(promise)
            if q.running { return false }
            q.running = true
            return true
        }
        if start { schedule() }
        return promise.futureResult
    }

    private func schedule() {
        pool.submit { [self] _ in drain() }
    }

    private func drain() {
        while true {
            let (logs, waiters) = queue.withLock { q -> ([PartitionLog], [EventLoopPromise<Void>]) in
                let batch = (Array(q.logs.values), q.waiters)
                q.logs.removeAll()
                q.waiters.removeAll()
                if batch.1.isEmpty { q.running = false }
                return batch
            }
            if waiters.isEmpty { return }
            var failure: (any Error)?
            for log in logs {
                do { try log.flush() } catch {
                    logger.error("flush failed", metadata: ["partition": "\(log.topicPartition)", "error": "\(error)"])
                    failure = error
                }
            }
            for w in waiters {
                if let failure { w.fail(failure) } else { w.succeed(()) }
            }
        }
    }

    public func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
