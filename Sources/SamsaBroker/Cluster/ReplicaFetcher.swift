import KafkaProtocol
import KafkaWire
import Logging
import NIOCore
import SamsaMetadata
import SamsaStorage
import Synchronization

/// Where a follower stands with one partition it copies.
struct FollowerFetchState: Sendable {
    var partition: Partition
    var leaderEpoch: Int32
    /// Before fetching, the follower asks the leader where its log diverges (OffsetForLeaderEpoch)
    /// and truncates there (KIP-101/279).
    var needsTruncation = true
    /// After an error the partition waits (Kafka's fetch back-off) instead of spinning.
    var delayedUntilMs: Int64 = 0
}

/// The fetchers of a follower broker: one per source broker (Kafka's ReplicaFetcherManager with
/// `num.replica.fetchers=1`), each copying every partition this broker follows from that leader.
final class ReplicaFetcherManager: Sendable {
    private let brokerId: Int32
    private let cache: MetadataCache
    private let replicas: ReplicaManager
    private let group: any EventLoopGroup
    private let logger: Logger
    private let settings: ReplicaFetcher.Settings
    private let fetchers = Mutex<[Int32: ReplicaFetcher]>([:])

    init(brokerId: Int32, cache: MetadataCache, replicas: ReplicaManager, group: any EventLoopGroup, settings: ReplicaFetcher.Settings, logger: Logger) {
        self.brokerId = brokerId
        self.cache = cache
        self.replicas = replicas
        self.group = group
        self.settings = settings
        self.logger = logger
    }

    /// Starts (or restarts, after truncation) copying `partition` from `leader`.
    func add(_ partition: Partition, leader: Int32, leaderEpoch: Int32) {
        remove([partition.topicPartition])
        guard leader >= 0, leader != brokerId else { return }
        let fetcher = fetchers.withLock { all -> ReplicaFetcher in
            if let f = all[leader] { return f }
            let f = ReplicaFetcher(leaderId: leader, brokerId: brokerId, cache: cache, replicas: replicas, group: group, settings: settings, logger: logger)
            all[leader] = f
            f.start()
            return f
        }
        fetcher.add(FollowerFetchState(partition: partition, leaderEpoch: leaderEpoch))
    }

    func remove(_ tps: [TopicPartition]) {
        for f in fetchers.withLock({ Array($0.values) }) { f.remove(tps) }
    }

    /// Partitions each fetcher copies (tests, DescribeLogDirs).
    var assignments: [Int32: [TopicPartition]] { fetchers.withLock { $0.mapValues { $0.partitions } } }

    func shutdown() {
        let all = fetchers.withLock { f -> [ReplicaFetcher] in
            defer { f.removeAll() }
            return Array(f.values)
        }
        for f in all { f.stop() }
    }
}

/// Copies partitions from one leader: a loop of Fetch requests with this broker's replica id
/// (long polls, as a consumer's), appending the batches exactly as received.
final class ReplicaFetcher: Sendable {
    struct Settings: Sendable {
        var maxWaitMs: Int32 = 500
        var minBytes: Int32 = 1
        var maxBytes: Int32 = 10 << 20
        var partitionMaxBytes: Int32 = 1 << 20
        var backoffMs: Int64 = 1000
    }

    let leaderId: Int32
    private let brokerId: Int32
    private let cache: MetadataCache
    private let replicas: ReplicaManager
    private let group: any EventLoopGroup
    private let settings: Settings
    private let logger: Logger
    private let states = Mutex<[TopicPartition: FollowerFetchState]>([:])
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let channel = Mutex<InterBrokerChannel?>(nil)

    init(leaderId: Int32, brokerId: Int32, cache: MetadataCache, replicas: ReplicaManager, group: any EventLoopGroup, settings: Settings, logger: Logger) {
        self.leaderId = leaderId
        self.brokerId = brokerId
        self.cache = cache
        self.replicas = replicas
        self.group = group
        self.settings = settings
        self.logger = logger
    }

    var partitions: [TopicPartition] { states.withLock { Array($0.keys) } }

    func add(_ state: FollowerFetchState) { states.withLock { $0[state.partition.topicPartition] = state } }
    func remove(_ tps: [TopicPartition]) { states.withLock { s in for tp in tps { s.removeValue(forKey: tp) } } }

    func start() {
        task.withLock { $0 = Task { [self] in await run() } }
    }

    func stop() {
        task.withLock { $0 }?.cancel()
        channel.withLock { $0 }?.close()
    }

    private func run() async {
        while !Task.isCancelled {
            do {
                let snapshot = states.withLock { $0 }
                if snapshot.isEmpty {
                    try await Task.sleep(for: .milliseconds(50))
                    continue
                }
                let connection = try await connect()
                let now = monotonicMillis()
                let truncating = snapshot.values.filter { $0.needsTruncation && $0.delayedUntilMs <= now }
                if !truncating.isEmpty { try await truncate(truncating, over: connection) }
                let ready = states.withLock { $0.values.filter { !$0.needsTruncation && $0.delayedUntilMs <= now } }
                if ready.isEmpty {
                    try await Task.sleep(for: .milliseconds(50))
                    continue
                }
                try await fetch(ready, over: connection)
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                logger.debug("replica fetcher for leader \(leaderId): \(error)")
                channel.withLock { c in
                    c?.close()
                    c = nil
                }
                try? await Task.sleep(for: .milliseconds(settings.backoffMs))
            }
        }
    }

    private func connect() async throws -> InterBrokerChannel {
        if let c = channel.withLock({ $0 }), c.isActive { return c }
        guard let broker = cache.snapshot.brokers.first(where: { $0.id == leaderId }) else {
            throw InterBrokerError(description: "leader \(leaderId) is not a live broker")
        }
        let c = try await InterBrokerChannel.connect(host: broker.host, port: Int(broker.port), clientId: "samsa-replica-fetcher-\(brokerId)", group: group)
        channel.withLock { $0 = c }
        return c
    }

    /// KIP-279: ask the leader where our latest epoch ends; truncate a divergent tail there.
    private func truncate(_ partitions: [FollowerFetchState], over connection: InterBrokerChannel) async throws {
        var request = OffsetForLeaderEpochRequest(replicaId: brokerId)
        var byTopic: [String: [OffsetForLeaderEpochRequest.OffsetForLeaderPartition]] = [:]
        var noEpoch: [FollowerFetchState] = []
        for s in partitions {
            guard let latest = s.partition.log.leaderEpochCache.latestEpoch else {
                noEpoch.append(s)  // an empty log (or one without epochs): nothing to truncate
                continue
            }
            byTopic[s.partition.topicPartition.topic, default: []].append(
                .init(partition: s.partition.topicPartition.partition, currentLeaderEpoch: s.leaderEpoch, leaderEpoch: latest))
        }
        for s in noEpoch { truncationDone(s, leaderEpoch: s.leaderEpoch) }
        guard !byTopic.isEmpty else { return }
        request.topics = byTopic.map { .init(topic: $0.key, partitions: $0.value) }
        let response = try await connection.send(request, version: 4, timeoutMs: 30_000)
        for t in response.topics {
            for r in t.partitions {
                let tp = TopicPartition(t.topic, r.partition)
                guard let s = states.withLock({ $0[tp] }), s.needsTruncation else { continue }
                let code = KafkaErrorCode(rawValue: r.errorCode)
                guard code == .none else {
                    // The leader is not ready (an older or newer epoch): try again after a pause.
                    logger.debug("OffsetForLeaderEpoch for \(tp) from \(leaderId): \(code)")
                    delay(tp)
                    continue
                }
                let log = s.partition.log
                var target: Int64
                if r.endOffset < 0 {
                    // The leader knows no epoch this old: keep what is committed (Kafka truncates to the high watermark).
                    target = log.highWatermark
                } else {
                    target = r.endOffset
                    // KIP-279: our own end for the epoch the leader answered with, if lower.
                    let (ownEpoch, ownEnd) = log.endOffset(forLeaderEpoch: r.leaderEpoch)
                    if ownEpoch == r.leaderEpoch, ownEnd >= 0 { target = min(target, ownEnd) }
                }
                if target < log.logEndOffset {
                    do {
                        let before = log.logEndOffset
                        try log.truncate(to: target)
                        logger.info("truncated \(tp) from \(before) to \(log.logEndOffset) to match leader \(leaderId) (epoch \(r.leaderEpoch) ends at \(r.endOffset))")
                    } catch {
                        logger.error("cannot truncate \(tp) to \(target): \(error)")
                        continue
                    }
                }
                truncationDone(s, leaderEpoch: s.leaderEpoch)
            }
        }
    }

    private func delay(_ tp: TopicPartition) {
        let until = monotonicMillis() + min(settings.backoffMs, 500)
        states.withLock { if $0[tp] != nil { $0[tp]!.delayedUntilMs = until } }
    }

    private func truncationDone(_ s: FollowerFetchState, leaderEpoch: Int32) {
        states.withLock { all in
            let tp = s.partition.topicPartition
            if var current = all[tp], current.leaderEpoch == leaderEpoch {
                current.needsTruncation = false
                all[tp] = current
            }
        }
    }

    private func fetch(_ partitions: [FollowerFetchState], over connection: InterBrokerChannel) async throws {
        var request = FetchRequest(replicaId: brokerId, maxWaitMs: settings.maxWaitMs, minBytes: settings.minBytes, maxBytes: settings.maxBytes,
                                   isolationLevel: 0, sessionId: 0, sessionEpoch: -1)
        var byTopic: [String: [FetchRequest.FetchPartition]] = [:]
        for s in partitions {
            let log = s.partition.log
            byTopic[s.partition.topicPartition.topic, default: []].append(.init(
                partition: s.partition.topicPartition.partition, currentLeaderEpoch: s.leaderEpoch, fetchOffset: log.logEndOffset,
                lastFetchedEpoch: log.leaderEpochCache.latestEpoch ?? -1, logStartOffset: log.logStartOffset, partitionMaxBytes: settings.partitionMaxBytes))
        }
        request.topics = byTopic.map { .init(topic: $0.key, partitions: $0.value) }
        let response = try await connection.send(request, version: 12, timeoutMs: Int64(settings.maxWaitMs) + 30_000)
        if response.errorCode != 0 {
            throw InterBrokerError(description: "fetch from leader \(leaderId) failed: \(KafkaErrorCode(rawValue: response.errorCode))")
        }
        for t in response.responses {
            for p in t.partitions {
                let tp = TopicPartition(t.topic, p.partitionIndex)
                guard let s = states.withLock({ $0[tp] }) else { continue }
                let code = KafkaErrorCode(rawValue: p.errorCode)
                let log = s.partition.log
                switch code {
                case .none:
                    if let records = p.records, records.readableBytes > 0 {
                        do {
                            if let result = try log.appendAsFollower(records) {
                                if result.needsFlush { _ = try? log.flush() }
                            }
                        } catch {
                            logger.error("cannot append replicated batches to \(tp): \(error)")
                            delay(tp)
                            continue
                        }
                    }
                    log.updateHighWatermark(min(p.highWatermark, log.logEndOffset))
                    replicas.purgatory.notify(tp, bytes: 1)
                case .offsetOutOfRange:
                    if log.logEndOffset > p.highWatermark, p.highWatermark >= 0 {
                        // Our log end is beyond the leader's (an unclean election): cut back to its high watermark.
                        try? log.truncate(to: p.highWatermark)
                        logger.warning("\(tp): fetch offset out of range on leader \(leaderId); truncated to its high watermark \(p.highWatermark)")
                    } else if p.logStartOffset > log.logEndOffset {
                        // The leader deleted what we miss (retention): start again at its log start.
                        do {
                            try log.truncateFullyAndStartAt(p.logStartOffset)
                            logger.warning("\(tp): behind leader \(leaderId)'s log start; restarted the replica at \(p.logStartOffset)")
                        } catch {
                            logger.error("\(tp): cannot restart the replica at \(p.logStartOffset): \(error)")
                            delay(tp)
                        }
                    } else {
                        delay(tp)
                    }
                case .fencedLeaderEpoch, .unknownLeaderEpoch, .notLeaderOrFollower, .unknownTopicOrPartition:
                    // Metadata moved (or the leader has not heard yet): the next LeaderAndIsr tells
                    // this broker where to fetch; meanwhile the partition waits.
                    delay(tp)
                default:
                    logger.warning("fetch of \(tp) from leader \(leaderId): \(code)")
                    delay(tp)
                }
            }
        }
    }
}
