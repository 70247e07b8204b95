import NIOCore
import Synchronization

/// The broker-wide bound on bytes held by requests being received or processed (Kafka's
/// `queued.max.request.bytes`). A frame's size is reserved as soon as its size prefix arrives and
/// released when its request has been answered. While the pool is exhausted, connections stop
/// reading (they are woken when memory is released), so a flood of large requests on many
/// connections waits instead of taking the broker's memory. As in Kafka, a reservation that
/// starts below the limit may pass it by one frame, so a single request of any allowed size
/// always proceeds.
public final class RequestMemoryPool: Sendable {
    /// nil: unbounded.
    public let limit: Int?
    private let used = Atomic<Int>(0)
    private let waiters = Mutex<[@Sendable () -> Void]>([])

    public init(limit: Int?) { self.limit = limit.flatMap { $0 > 0 ? $0 : nil } }

    public var usedBytes: Int { used.load(ordering: .relaxed) }

    public var isExhausted: Bool {
        guard let limit else { return false }
        return used.load(ordering: .relaxed) >= limit
    }

    public func reserve(_ bytes: Int) {
        used.wrappingAdd(bytes, ordering: .relaxed)
    }

    public func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        let now = used.wrappingSubtract(bytes, ordering: .relaxed).newValue
        if let limit, now < limit { wakeWaiters() }
    }

    /// Runs `wake` once, the next time memory is released below the limit (at once if it already is).
    public func whenAvailable(_ wake: @escaping @Sendable () -> Void) {
        waiters.withLock { $0.append(wake) }
        if !isExhausted { wakeWaiters() }
    }

    private func wakeWaiters() {
        let woken = waiters.withLock { w -> [@Sendable () -> Void] in
            let all = w
            w.removeAll()
            return all
        }
        for wake in woken { wake() }
    }
}
