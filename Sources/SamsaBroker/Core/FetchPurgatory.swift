import KafkaProtocol
import NIOCore
import SamsaStorage
import Synchronization

/// A fetch waiting for data (long poll): completes when enough bytes have arrived on its
/// partitions (`min_bytes`) or when its `max_wait_ms` timer fires, whichever comes first.
public final class DelayedFetch: Sendable {
    public let eventLoop: any EventLoop
    let minBytes: Int
    let keys: [TopicPartition]
    private let accumulated: Atomic<Int>
    private let completed = Atomic<Bool>(false)
    private let onComplete: @Sendable () -> Void
    private let timer = Mutex<Scheduled<Void>?>(nil)

    public init(eventLoop: any EventLoop, minBytes: Int, bytesAvailable: Int, keys: [TopicPartition], onComplete: @escaping @Sendable () -> Void) {
        self.eventLoop = eventLoop
        self.minBytes = minBytes
        self.keys = keys
        self.accumulated = Atomic(bytesAvailable)
        self.onComplete = onComplete
    }

    var isCompleted: Bool { completed.load(ordering: .acquiring) }

    func dataArrived(_ bytes: Int) -> Bool {
        let (_, total) = accumulated.wrappingAdd(bytes == Int.max ? minBytes : bytes, ordering: .relaxed)
        if total >= minBytes || bytes == Int.max { return forceComplete() }
        return false
    }

    /// Completes the fetch (once): runs its completion on its event loop.
    @discardableResult
    func forceComplete() -> Bool {
        guard completed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return false }
        timer.withLock { $0?.cancel() }
        eventLoop.execute(onComplete)
        return true
    }

    func setTimer(_ scheduled: Scheduled<Void>) { timer.withLock { $0 = scheduled } }
}

/// Where delayed fetches wait, keyed by partition. Appends call `notify`.
public final class FetchPurgatory: Sendable {
    private let watchers = Mutex<[TopicPartition: [DelayedFetch]]>([:])
    /// Runs between a fetch's first read and its registration (tests use it to append in that window).
    let beforeWatch = Mutex<(@Sendable () -> Void)?>(nil)

    public init() {}

    /// Parks `fetch` until data arrives or `maxWaitMs` passes. Registration comes first and the
    /// caller's `recheck` (bytes available now) second, so an append that lands between the
    /// caller's first read and the registration is seen by the re-check rather than missed
    /// (it would otherwise sleep the whole `max_wait_ms`).
    public func watch(_ fetch: DelayedFetch, maxWaitMs: Int64, recheck: () -> Int) {
        beforeWatch.withLock { $0 }?()
        watchers.withLock { w in
            for key in fetch.keys { w[key, default: []].append(fetch) }
        }
        let scheduled = fetch.eventLoop.scheduleTask(in: .milliseconds(maxWaitMs)) { [weak self] in
            if fetch.forceComplete() { self?.remove(fetch) }
        }
        fetch.setTimer(scheduled)
        let available = recheck()
        if available >= fetch.minBytes, fetch.forceComplete() { remove(fetch) }
    }

    /// `bytes` were appended to `tp` (Int.max: the partition went away; wake everyone).
    public func notify(_ tp: TopicPartition, bytes: Int) {
        let waiting = watchers.withLock { $0[tp] }
        guard let waiting, !waiting.isEmpty else { return }
        for fetch in waiting where fetch.dataArrived(bytes) { remove(fetch) }
    }

    private func remove(_ fetch: DelayedFetch) {
        watchers.withLock { w in
            for key in fetch.keys {
                w[key]?.removeAll { $0 === fetch || $0.isCompleted }
                if w[key]?.isEmpty == true { w.removeValue(forKey: key) }
            }
        }
    }

    public var waitingCount: Int { watchers.withLock { $0.values.reduce(0) { $0 + $1.count } } }
}
