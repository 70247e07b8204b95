import KafkaWire
import DequeModule
import KafkaProtocol
import KafkaRecords
import Logging
import NIOCore
import Synchronization

/// A Kafka consumer: group subscription (classic protocol; range, round-robin and
/// cooperative-sticky assignors) or manual assignment, records as an `AsyncSequence` or by `poll`,
/// commits (sync, async, automatic), seeks by offset or timestamp, pause/resume, and fetch
/// pipelining: the next fetch is in flight while the application works on the last one.
public final class KafkaConsumer: Sendable {
    let config: ConsumerConfiguration
    let cluster: ClusterClient
    let state = Mutex(SubscriptionState())
    let tasks = Mutex<[Task<Void, Never>]>([])

    public init(configuration: ConsumerConfiguration) throws {
        guard !configuration.assignors.isEmpty else { throw KafkaClientError.invalidConfiguration("at least one assignor is needed") }
        self.config = configuration
        self.cluster = ClusterClient(config: configuration.client)
        let membership = Task { [self] in await membershipLoop() }
        tasks.withLock { $0.append(membership) }
    }

    // MARK: Subscription and assignment

    /// Joins the consumer group (`groupId`) for `topics`; partitions arrive with the rebalance.
    public func subscribe(_ topics: [String], listener: RebalanceListener? = nil) throws {
        guard config.groupId != nil else { throw KafkaClientError.invalidConfiguration("subscribe needs a groupId") }
        let wake = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.subscription = topics
            s.listener = listener
            s.group.rejoin = true
            defer { s.membershipWake = nil }
            return s.membershipWake
        }
        wake?.resume()
    }

    /// Reads exactly these partitions, without a group (positions from committed offsets when a
    /// groupId is set, else from `autoOffsetReset`).
    public func assign(_ partitions: [TopicPartition]) {
        state.withLock { s in
            s.subscription = nil
            s.partitions = Dictionary(uniqueKeysWithValues: partitions.map { ($0, s.partitions[$0] ?? PartitionState()) })
            s.order = partitions
            s.chunks.removeAll { !partitions.contains($0.tp) }
        }
        Task { await initializePositions(partitions); fetch() }
    }

    public var assignment: [TopicPartition] { state.withLock { $0.order } }

    // MARK: Positions

    public func position(_ tp: TopicPartition) -> Int64? { state.withLock { $0.partitions[tp]?.position } }

    /// Next `poll` of `tp` starts at `offset`.
    public func seek(_ tp: TopicPartition, to offset: Int64) {
        state.withLock { s in
            guard s.partitions[tp] != nil else { return }
            s.partitions[tp]!.position = offset
            s.partitions[tp]!.fetchPosition = offset
            s.partitions[tp]!.resetTo = nil
            s.partitions[tp]!.positionEpoch += 1
            s.dropChunks(of: tp)
        }
        fetch()
    }

    /// Seeks to the first offset whose timestamp is at least `timestamp` (the end when none is).
    public func seek(_ tp: TopicPartition, toTimestamp timestamp: Int64) async throws {
        let offsets = try await listOffsets([tp: timestamp])
        seek(tp, to: offsets[tp] ?? -1)
    }

    public func seekToBeginning(_ partitions: [TopicPartition]) { reset(partitions, .earliest) }
    public func seekToEnd(_ partitions: [TopicPartition]) { reset(partitions, .latest) }

    func reset(_ partitions: [TopicPartition], _ to: ConsumerConfiguration.OffsetReset) {
        state.withLock { s in
            for tp in partitions where s.partitions[tp] != nil {
                s.partitions[tp]!.position = nil
                s.partitions[tp]!.fetchPosition = nil
                s.partitions[tp]!.resetTo = to
                s.partitions[tp]!.positionEpoch += 1
                s.dropChunks(of: tp)
            }
        }
        Task { await initializePositions(partitions); fetch() }
    }

    public func pause(_ partitions: [TopicPartition]) {
        state.withLock { s in
            for tp in partitions where s.partitions[tp] != nil {
                s.partitions[tp]!.paused = true
                s.dropChunks(of: tp)
            }
        }
    }

    public func resume(_ partitions: [TopicPartition]) {
        state.withLock { s in for tp in partitions where s.partitions[tp] != nil { s.partitions[tp]!.paused = false } }
        fetch()
    }

    // MARK: Polling

    /// Up to `maxPollRecords` records, waiting up to `timeoutMs` for some to arrive.
    public func poll(timeoutMs: Int64 = 1000) async throws -> [ConsumerRecord] {
        let deadline = monotonicNanos() + UInt64(max(timeoutMs, 0)) * 1_000_000
        while true {
            let (records, error, freed) = state.withLock { s -> ([ConsumerRecord], KafkaClientError?, Bool) in
                if let e = s.error { s.error = nil; return ([], e, false) }
                return (s.take(max: config.maxPollRecords), nil, true)
            }
            if let error { throw error }
            if !records.isEmpty {
                if freed { fetch() }
                return records
            }
            if state.withLock({ $0.closed }) { throw KafkaClientError.closed }
            let now = monotonicNanos()
            guard now < deadline else { return [] }
            fetch()
            await waitForData(untilNanos: deadline)
        }
    }

    func waitForData(untilNanos deadline: UInt64) async {
        let timer = config.client.eventLoopGroup.next().scheduleTask(in: .nanoseconds(Int64(deadline - min(deadline, monotonicNanos())))) {
            self.wakeWaiters()
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let wait = state.withLock { s -> Bool in
                guard s.chunks.isEmpty, s.error == nil, !s.closed else { return false }
                s.waiters.append(c)
                return true
            }
            if !wait { c.resume() }
        }
        timer.cancel()
    }

    func wakeWaiters() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    /// Every record, one at a time, until the consumer is closed.
    public var records: ConsumerRecords { ConsumerRecords(consumer: self) }

    // MARK: Closing

    /// Commits (with auto-commit), leaves the group and closes connections.
    public func close() async {
        if state.withLock({ $0.closed }) { return }
        if config.enableAutoCommit, config.groupId != nil { await autoCommit(reason: "closing") }
        let (wasMember, memberId) = state.withLock { s -> (Bool, String) in
            s.closed = true
            return (s.subscription != nil && !s.group.memberId.isEmpty, s.group.memberId)
        }
        wakeMembership()
        wakeWaiters()
        for t in tasks.withLock({ $0 }) { t.cancel() }
        if wasMember, config.groupInstanceId == nil, let groupId = config.groupId,
           let coordinator = try? await cluster.coordinator(for: groupId) {
            let version = (try? coordinator.version(.leaveGroup, 0...5)) ?? 0
            var request = LeaveGroupRequest(groupId: groupId, memberId: memberId)
            if version >= 3 { request.members = [.init(memberId: memberId, reason: "the consumer is being closed")] }
            _ = try? await coordinator.send(request, version: version)
        }
        await cluster.close()
    }

    func fail(_ error: KafkaClientError) {
        state.withLock { $0.error = error }
        wakeWaiters()
    }
}
