import KafkaProtocol
import NIOCore
import Synchronization

/// acks=all waits here (Kafka's DelayedProduce): an append is acknowledged once the partition's
/// high watermark has passed its last offset, which follower fetches move. Nothing polls: the
/// high watermark moving, the leadership moving away, or the request's timeout completes a wait.
public final class ProducePurgatory: Sendable {
    private struct Waiter: Sendable {
        var id: UInt64
        /// The wait is over once the high watermark is above this offset.
        var requiredOffset: Int64
        var complete: @Sendable (KafkaErrorCode) -> Void
    }

    private struct State: Sendable {
        var waiters: [TopicPartition: [Waiter]] = [:]
        var nextId: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Calls `complete` once the high watermark of `tp` passes `lastOffset` (`.none`), the
    /// leadership moves (NOT_LEADER_OR_FOLLOWER) or `timeoutMs` passes (REQUEST_TIMED_OUT).
    /// `currentHighWatermark` is read after registering, so a move in between is never missed.
    public func watch(_ tp: TopicPartition, lastOffset: Int64, timeoutMs: Int64, on loop: any EventLoop,
                      currentHighWatermark: () -> Int64, complete: @escaping @Sendable (KafkaErrorCode) -> Void) {
        let done = Atomic<Bool>(false)
        let once: @Sendable (KafkaErrorCode) -> Void = { code in
            if !done.exchange(true, ordering: .acquiringAndReleasing) { complete(code) }
        }
        let id = state.withLock { s -> UInt64 in
            let id = s.nextId
            s.nextId += 1
            s.waiters[tp, default: []].append(Waiter(id: id, requiredOffset: lastOffset, complete: once))
            return id
        }
        if currentHighWatermark() > lastOffset {
            remove(tp, id)
            once(.none)
            return
        }
        loop.scheduleTask(in: .milliseconds(max(timeoutMs, 0))) { [weak self] in
            self?.remove(tp, id)
            once(.requestTimedOut)
        }
    }

    private func remove(_ tp: TopicPartition, _ id: UInt64) {
        state.withLock { s in
            s.waiters[tp]?.removeAll { $0.id == id }
            if s.waiters[tp]?.isEmpty == true { s.waiters[tp] = nil }
        }
    }

    /// The high watermark of `tp` is now `hw`: every wait below it completes.
    public func highWatermarkMoved(_ tp: TopicPartition, to hw: Int64) {
        let ready = state.withLock { s -> [Waiter] in
            guard let all = s.waiters[tp] else { return [] }
            let (done, rest) = (all.filter { $0.requiredOffset < hw }, all.filter { $0.requiredOffset >= hw })
            s.waiters[tp] = rest.isEmpty ? nil : rest
            return done
        }
        for w in ready { w.complete(.none) }
    }

    /// This broker no longer leads `tp`: its waits fail with NOT_LEADER_OR_FOLLOWER (the client retries on the new leader).
    public func leadershipLost(_ tp: TopicPartition) {
        let all = state.withLock { $0.waiters.removeValue(forKey: tp) ?? [] }
        for w in all { w.complete(.notLeaderOrFollower) }
    }

    /// Shutdown: every wait fails with NOT_LEADER_OR_FOLLOWER, so clients retry on the new leaders
    /// instead of waiting for their request timeout.
    public func failAll() {
        let all = state.withLock { s -> [Waiter] in
            defer { s.waiters = [:] }
            return s.waiters.values.flatMap { $0 }
        }
        for w in all { w.complete(.notLeaderOrFollower) }
    }

    var waitingCount: Int { state.withLock { $0.waiters.values.reduce(0) { $0 + $1.count } } }
}
