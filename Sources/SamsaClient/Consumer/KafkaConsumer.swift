import KafkaWire
import DequeModule
import KafkaProtocol
import KafkaRecords
import Logging
import NIOCore
import Synchronization

public struct ConsumerConfiguration: Sendable {
    public enum OffsetReset: Sendable { case earliest, latest, none }
    public enum IsolationLevel: Int8, Sendable { case readUncommitted = 0, readCommitted = 1 }

    public var client: ClientConfiguration
    /// `group.id`: needed for `subscribe` and for committing offsets.
    public var groupId: String?
    /// `group.instance.id`: static membership (KIP-345).
    public var groupInstanceId: String?
    /// `auto.offset.reset`: where to start without a committed offset.
    public var autoOffsetReset: OffsetReset = .latest
    /// `enable.auto.commit` and `auto.commit.interval.ms`.
    public var enableAutoCommit = true
    public var autoCommitIntervalMs: Int64 = 5000
    /// `session.timeout.ms`, `heartbeat.interval.ms`, `max.poll.interval.ms` (rebalance timeout).
    public var sessionTimeoutMs: Int32 = 45_000
    public var heartbeatIntervalMs: Int64 = 3000
    public var rebalanceTimeoutMs: Int32 = 300_000
    /// `fetch.min.bytes`, `fetch.max.wait.ms`, `fetch.max.bytes`, `max.partition.fetch.bytes`.
    public var fetchMinBytes: Int32 = 1
    public var fetchMaxWaitMs: Int32 = 500
    public var fetchMaxBytes: Int32 = 52_428_800
    public var maxPartitionFetchBytes: Int32 = 1_048_576
    /// `max.poll.records`
    public var maxPollRecords = 500
    public var isolationLevel: IsolationLevel = .readUncommitted
    /// `partition.assignment.strategy`, most preferred first.
    public var assignors: [any PartitionAssignor] = [RangeAssignor(), CooperativeStickyAssignor()]
    /// How many fetched bytes may wait for the application before fetching pauses.
    public var maxBufferedBytes = 64 << 20

    public init(client: ClientConfiguration = ClientConfiguration(), groupId: String? = nil) {
        self.client = client
        self.groupId = groupId
    }
}

/// A record as consumed: key, value and header values are slices of the fetched data.
public struct ConsumerRecord: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var timestamp: Int64
    public var timestampType: TimestampType
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]
    public var leaderEpoch: Int32

    public var topicPartition: TopicPartition { TopicPartition(topic, partition) }
}

/// What happens to a consumer's partitions in a rebalance.
public struct RebalanceListener: Sendable {
    public var onAssigned: @Sendable ([TopicPartition]) async -> Void
    public var onRevoked: @Sendable ([TopicPartition]) async -> Void

    public init(onAssigned: @escaping @Sendable ([TopicPartition]) async -> Void = { _ in },
                onRevoked: @escaping @Sendable ([TopicPartition]) async -> Void = { _ in }) {
        self.onAssigned = onAssigned
        self.onRevoked = onRevoked
    }
}

/// A Kafka consumer: group subscription (classic protocol; range, round-robin and
/// cooperative-sticky assignors) or manual assignment, records as an `AsyncSequence` or by `poll`,
/// commits (sync, async, automatic), seeks by offset or timestamp, pause/resume, and fetch
/// pipelining: the next fetch is in flight while the application works on the last one.
public final class KafkaConsumer: Sendable {
    let config: ConsumerConfiguration
    let cluster: ClusterClient
    let state = Mutex(State())
    private let tasks = Mutex<[Task<Void, Never>]>([])

    struct PartitionState: Sendable {
        /// The next offset to hand to the application (nil until known).
        var position: Int64?
        /// The next offset to fetch (ahead of `position` while fetched data waits).
        var fetchPosition: Int64?
        var leaderEpoch: Int32 = -1
        var paused = false
        var highWatermark: Int64 = -1
        var resetTo: ConsumerConfiguration.OffsetReset?
        var fetching = false
        var committed: Int64?
        /// Bumped by every seek and reset, so that a slower, older position lookup never wins.
        var positionEpoch: UInt64 = 0
    }

    struct Chunk: Sendable {
        var tp: TopicPartition
        var records: [ConsumerRecord]
        var next: Int
        var bytes: Int
    }

    struct Group: Sendable {
        var memberId = ""
        var generation: Int32 = -1
        var protocolName: String?
        var rejoin = true
        var leader = false
    }

    struct State: Sendable {
        var subscription: [String]?
        var partitions: [TopicPartition: PartitionState] = [:]
        var order: [TopicPartition] = []
        var chunks = Deque<Chunk>()
        var bufferedBytes = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        var fetchingNodes: Set<Int32> = []
        var group = Group()
        var listener: RebalanceListener?
        var error: KafkaClientError?
        var closed = false
        var membershipWake: CheckedContinuation<Void, Never>?
    }

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

    private func reset(_ partitions: [TopicPartition], _ to: ConsumerConfiguration.OffsetReset) {
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

    private func waitForData(untilNanos deadline: UInt64) async {
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

    private func wakeWaiters() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    /// Every record, one at a time, until the consumer is closed.
    public var records: ConsumerRecords { ConsumerRecords(consumer: self) }

    // MARK: Committing

    /// Commits the current positions of all assigned partitions and waits for the answer.
    public func commit() async throws {
        let offsets = state.withLock { s in
            Dictionary(uniqueKeysWithValues: s.partitions.compactMap { tp, p in p.position.map { (tp, $0) } })
        }
        try await commit(offsets)
    }

    /// Commits the given offsets (the next offset to read, as Kafka defines it).
    public func commit(_ offsets: [TopicPartition: Int64]) async throws {
        guard let groupId = config.groupId else { throw KafkaClientError.invalidConfiguration("committing offsets needs a groupId") }
        guard !offsets.isEmpty else { return }
        let (memberId, generation) = state.withLock { s in
            s.subscription != nil ? (s.group.memberId, s.group.generation) : ("", -1)
        }
        var request = OffsetCommitRequest(groupId: groupId, generationIdOrMemberEpoch: generation, memberId: memberId,
                                          groupInstanceId: state.withLock { $0.subscription } != nil ? config.groupInstanceId : nil)
        let byTopic = Dictionary(grouping: offsets.keys, by: \.topic)
        request.topics = byTopic.keys.sorted().map { topic in
            .init(name: topic, partitions: byTopic[topic]!.sorted().map { tp in
                .init(partitionIndex: tp.partition, committedOffset: offsets[tp]!,
                      committedLeaderEpoch: state.withLock { $0.partitions[tp]?.leaderEpoch ?? -1 }, committedMetadata: "")
            })
        }
        var attempt = 0
        while true {
            let coordinator = try await cluster.coordinator(for: groupId)
            let response = try await coordinator.send(request, range: 2...9)
            let errors = response.topics.flatMap { t in t.partitions.filter { $0.errorCode != 0 }.map { (TopicPartition(t.name, $0.partitionIndex), $0.errorCode) } }
            guard let (tp, code) = errors.first else {
                state.withLock { s in for (tp, o) in offsets { s.partitions[tp]?.committed = o } }
                return
            }
            let error = KafkaErrorCode(code)
            if error == .notCoordinator || error == .coordinatorNotAvailable || error == .coordinatorLoadInProgress, attempt < 10 {
                cluster.forgetCoordinator(groupId)
                attempt += 1
                try await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000)
                continue
            }
            if error == .rebalanceInProgress || error == .illegalGeneration || error == .unknownMemberId {
                state.withLock { $0.group.rejoin = true }
                wakeMembership()
            }
            throw KafkaClientError.broker(code: error, message: nil, broker: coordinator.nodeId, topicPartition: tp)
        }
    }

    /// Commits the current positions in the background, without waiting. `completion` gets the outcome (nil
    /// on success); without one, a failure is logged (`ClientConfiguration.logger`) and the next commit retries.
    public func commitAsync(_ completion: (@Sendable (KafkaClientError?) -> Void)? = nil) {
        Task {
            do {
                try await self.commit()
                completion?(nil)
            } catch {
                let clientError = error as? KafkaClientError ?? .malformedResponse("\(error)")
                if let completion {
                    completion(clientError)
                } else {
                    self.config.client.logger.warning("async offset commit failed", metadata: ["group": "\(self.config.groupId ?? "")", "error": "\(clientError)"])
                }
            }
        }
    }

    /// An automatic commit (auto-commit interval, before a rebalance, on close): nobody waits for it, so a
    /// failure is logged; the next one retries.
    func autoCommit(_ offsets: [TopicPartition: Int64]? = nil, reason: String) async {
        do {
            if let offsets { try await commit(offsets) } else { try await commit() }
        } catch {
            config.client.logger.warning("automatic offset commit failed", metadata: [
                "group": "\(config.groupId ?? "")", "when": "\(reason)", "error": "\(error)",
            ])
        }
    }

    /// The group's committed offsets for `partitions` (nil where none is committed).
    public func committed(_ partitions: [TopicPartition]) async throws -> [TopicPartition: Int64?] {
        guard let groupId = config.groupId else { throw KafkaClientError.invalidConfiguration("committed offsets need a groupId") }
        let coordinator = try await cluster.coordinator(for: groupId)
        let byTopic = Dictionary(grouping: partitions, by: \.topic)
        let version = try coordinator.version(.offsetFetch, 1...9)
        var request = OffsetFetchRequest()
        let topics = byTopic.keys.sorted().map { t in (t, byTopic[t]!.map(\.partition)) }
        if version >= 8 {
            request.groups = [.init(groupId: groupId, topics: topics.map { .init(name: $0.0, partitionIndexes: $0.1) })]
        } else {
            request.groupId = groupId
            request.topics = topics.map { .init(name: $0.0, partitionIndexes: $0.1) }
        }
        let response = try await coordinator.send(request, version: version)
        var result: [TopicPartition: Int64?] = [:]
        if version >= 8 {
            guard let g = response.groups.first else { throw KafkaClientError.malformedResponse("OffsetFetch without group") }
            try KafkaClientError.check(g.errorCode, broker: coordinator.nodeId)
            for t in g.topics { for p in t.partitions { result[TopicPartition(t.name, p.partitionIndex)] = p.committedOffset >= 0 ? p.committedOffset : nil } }
        } else {
            try KafkaClientError.check(response.errorCode, broker: coordinator.nodeId)
            for t in response.topics { for p in t.partitions { result[TopicPartition(t.name, p.partitionIndex)] = p.committedOffset >= 0 ? p.committedOffset : nil } }
        }
        return result
    }

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

    // MARK: Offsets lookup

    /// ListOffsets on each partition's leader: timestamps (or -1 latest, -2 earliest) → offsets.
    func listOffsets(_ wanted: [TopicPartition: Int64]) async throws -> [TopicPartition: Int64] {
        try await cluster.listOffsets(wanted, isolationLevel: config.isolationLevel.rawValue)
    }

    /// Sets positions for partitions that have none: committed offset, else the reset policy.
    func initializePositions(_ partitions: [TopicPartition]) async {
        let epochs = state.withLock { s in
            Dictionary(uniqueKeysWithValues: partitions.compactMap { tp in
                s.partitions[tp].flatMap { $0.position == nil ? (tp, $0.positionEpoch) : nil }
            })
        }
        let missing = partitions.filter { epochs[$0] != nil }
        guard !missing.isEmpty else { return }
        var committed: [TopicPartition: Int64?] = [:]
        if config.groupId != nil, state.withLock({ s in missing.contains { s.partitions[$0]?.resetTo == nil } }) {
            do {
                committed = try await self.committed(missing)
            } catch {
                // Never fall back to the reset policy because the committed offsets could not be read (a
                // coordinator still loading answers COORDINATOR_LOAD_IN_PROGRESS): retry, or tell the application.
                let clientError = error as? KafkaClientError ?? .malformedResponse("\(error)")
                guard clientError.isRetriable else {
                    fail(clientError)
                    return
                }
                config.client.logger.debug("fetching committed offsets failed; retrying", metadata: ["error": "\(clientError)"])
                try? await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000)
                if !state.withLock({ $0.closed }) { await initializePositions(partitions) }
                return
            }
        }
        var toReset: [TopicPartition: Int64] = [:]
        var noPolicy: [TopicPartition] = []
        state.withLock { s in
            for tp in missing {
                guard var p = s.partitions[tp], p.position == nil, p.positionEpoch == epochs[tp] else { continue }
                if p.resetTo == nil, let c = committed[tp] ?? nil {
                    p.position = c
                    p.fetchPosition = c
                    p.committed = c
                } else {
                    switch p.resetTo ?? config.autoOffsetReset {
                    case .earliest: toReset[tp] = -2
                    case .latest: toReset[tp] = -1
                    case .none: noPolicy.append(tp)
                    }
                }
                s.partitions[tp] = p
            }
        }
        if !noPolicy.isEmpty {
            fail(.broker(code: .offsetOutOfRange, message: "no committed offset and autoOffsetReset is none", broker: nil, topicPartition: noPolicy[0]))
        }
        guard !toReset.isEmpty else { return }
        do {
            let offsets = try await listOffsets(toReset)
            state.withLock { s in
                for (tp, o) in offsets where s.partitions[tp] != nil && s.partitions[tp]!.position == nil
                    && s.partitions[tp]!.positionEpoch == epochs[tp] {
                    s.partitions[tp]!.position = o
                    s.partitions[tp]!.fetchPosition = o
                    s.partitions[tp]!.resetTo = nil
                }
            }
        } catch {
            config.client.logger.debug("offset lookup failed; retrying", metadata: ["error": "\(error)"])
            try? await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000)
            if !state.withLock({ $0.closed }) { await initializePositions(partitions) }
        }
    }

    func fail(_ error: KafkaClientError) {
        state.withLock { $0.error = error }
        wakeWaiters()
    }

    // MARK: Fetching

    /// Starts a fetch to every leader that has fetchable partitions and no fetch in flight.
    func fetch() {
        var requests: [(Int32, [(TopicPartition, Int64, Int32)])] = []
        var missingLeader: Set<String> = []
        state.withLock { s in
            guard !s.closed, s.bufferedBytes < config.maxBufferedBytes else { return }
            var byNode: [Int32: [(TopicPartition, Int64, Int32)]] = [:]
            let buffered = Set(s.chunks.map(\.tp))
            for tp in s.order {
                guard let p = s.partitions[tp], !p.paused, !p.fetching, let offset = p.fetchPosition, !buffered.contains(tp) || s.chunks.count < 2 else { continue }
                guard let leader = cluster.leader(of: tp) else { missingLeader.insert(tp.topic); continue }
                guard !s.fetchingNodes.contains(leader) else { continue }
                byNode[leader, default: []].append((tp, offset, p.leaderEpoch))
            }
            for (node, parts) in byNode {
                s.fetchingNodes.insert(node)
                for (tp, _, _) in parts { s.partitions[tp]!.fetching = true }
                requests.append((node, parts))
            }
        }
        for (node, parts) in requests {
            Task { await self.fetch(from: node, parts) }
        }
        if !missingLeader.isEmpty {
            Task {
                _ = try? await cluster.refreshMetadata(topics: Array(missingLeader))
                try? await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000)
                fetch()
            }
        }
    }

    private func fetch(from node: Int32, _ parts: [(TopicPartition, Int64, Int32)]) async {
        var refreshTopics: Set<String> = []
        var resets: [TopicPartition] = []
        do {
            let connection = try await cluster.connection(to: node)
            let version = try connection.version(.fetch, 4...12)
            var request = FetchRequest(replicaId: -1, maxWaitMs: config.fetchMaxWaitMs, minBytes: config.fetchMinBytes,
                                       maxBytes: config.fetchMaxBytes, isolationLevel: config.isolationLevel.rawValue, sessionId: 0, sessionEpoch: -1)
            let byTopic = Dictionary(grouping: parts, by: \.0.topic)
            request.topics = byTopic.keys.sorted().map { topic in
                .init(topic: topic, partitions: byTopic[topic]!.map { tp, offset, _ in
                    .init(partition: tp.partition, currentLeaderEpoch: -1, fetchOffset: offset, logStartOffset: -1,
                          partitionMaxBytes: config.maxPartitionFetchBytes)
                })
            }
            let response = try await connection.send(request, version: version)
            try KafkaClientError.check(response.errorCode, broker: node)
            var chunks: [Chunk] = []
            var nextPositions: [TopicPartition: (Int64, Int64)] = [:]
            for t in response.responses {
                for p in t.partitions {
                    let tp = TopicPartition(t.topic, p.partitionIndex)
                    let code = KafkaErrorCode(p.errorCode)
                    switch code {
                    case .none:
                        guard let from = parts.first(where: { $0.0 == tp })?.1 else { continue }
                        let (records, next, bytes) = try Self.decode(p.records, tp: tp, from: from)
                        nextPositions[tp] = (next, p.highWatermark)
                        if !records.isEmpty { chunks.append(Chunk(tp: tp, records: records, next: 0, bytes: bytes)) }
                    case .offsetOutOfRange:
                        resets.append(tp)
                    case .notLeaderOrFollower, .unknownTopicOrPartition, .leaderNotAvailable, .fencedLeaderEpoch, .unknownLeaderEpoch, .kafkaStorageError:
                        refreshTopics.insert(tp.topic)
                    default:
                        fail(.broker(code: code, message: nil, broker: node, topicPartition: tp))
                    }
                }
            }
            state.withLock { s in
                for (tp, (next, hw)) in nextPositions where s.partitions[tp] != nil {
                    // Only if nobody seeked meanwhile.
                    if s.partitions[tp]!.fetchPosition == parts.first(where: { $0.0 == tp })?.1 {
                        s.partitions[tp]!.fetchPosition = next
                        s.partitions[tp]!.highWatermark = hw
                    } else {
                        chunks.removeAll { $0.tp == tp }
                    }
                }
                for c in chunks where s.partitions[c.tp] != nil && !s.partitions[c.tp]!.paused {
                    s.chunks.append(c)
                    s.bufferedBytes += c.bytes
                }
            }
        } catch {
            config.client.logger.debug("fetch failed; refreshing metadata and retrying", metadata: ["broker": "\(node)", "error": "\(error)"])
            refreshTopics.formUnion(parts.map(\.0.topic))
            try? await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000)
        }
        state.withLock { s in
            s.fetchingNodes.remove(node)
            for (tp, _, _) in parts { s.partitions[tp]?.fetching = false }
        }
        wakeWaiters()
        if !resets.isEmpty {
            let policy = config.autoOffsetReset
            if policy == .none {
                fail(.broker(code: .offsetOutOfRange, message: "fetch offset out of range and autoOffsetReset is none", broker: node, topicPartition: resets[0]))
            } else {
                reset(resets, policy)
            }
        }
        if !refreshTopics.isEmpty {
            _ = try? await cluster.refreshMetadata(topics: Array(refreshTopics))
        }
        fetch()
    }

    /// Decodes fetched batches into records at or after `from`; returns them, the next fetch offset and the bytes.
    static func decode(_ data: ByteBuffer?, tp: TopicPartition, from: Int64) throws -> ([ConsumerRecord], Int64, Int) {
        guard let data, data.readableBytes > 0 else { return ([], from, 0) }
        var reader = RecordBatchReader(data, allowsPartialTrailingBatch: true)
        var records: [ConsumerRecord] = []
        var next = from
        while let batch = try reader.next() {
            let h = batch.header
            defer { next = max(next, h.lastOffset + 1) }
            guard h.lastOffset >= from, !h.attributes.isControl else { continue }
            let logAppend = h.attributes.timestampType == .logAppendTime
            records.reserveCapacity(records.count + Int(h.recordCount))
            try batch.forEachRecord { r in
                let offset = h.baseOffset + Int64(r.offsetDelta)
                guard offset >= from else { return }
                records.append(ConsumerRecord(topic: tp.topic, partition: tp.partition, offset: offset,
                                              timestamp: logAppend ? h.maxTimestamp : h.baseTimestamp + r.timestampDelta,
                                              timestampType: logAppend ? .logAppendTime : .createTime,
                                              key: r.key, value: r.value, headers: r.headers, leaderEpoch: h.partitionLeaderEpoch))
            }
        }
        return (records, next, data.readableBytes)
    }

    // MARK: Group membership

    func wakeMembership() {
        let wake = state.withLock { s -> CheckedContinuation<Void, Never>? in
            defer { s.membershipWake = nil }
            return s.membershipWake
        }
        wake?.resume()
    }

    private func sleepMembership(ms: Int64) async {
        let timer = config.client.eventLoopGroup.next().scheduleTask(in: .milliseconds(ms)) { self.wakeMembership() }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let wait = state.withLock { s -> Bool in
                guard !s.closed, s.membershipWake == nil else { return false }
                s.membershipWake = c
                return true
            }
            if !wait { c.resume() }
        }
        timer.cancel()
    }

    private func membershipLoop() async {
        var lastHeartbeat: UInt64 = 0
        var lastCommit = monotonicNanos()
        while !state.withLock({ $0.closed }) {
            guard let groupId = config.groupId, let topics = state.withLock({ $0.subscription }) else {
                await sleepMembership(ms: 1000)
                continue
            }
            do {
                if state.withLock({ $0.group.rejoin }) {
                    try await rebalance(groupId: groupId, topics: topics)
                    lastHeartbeat = monotonicNanos()
                }
                let now = monotonicNanos()
                if now - lastHeartbeat >= UInt64(config.heartbeatIntervalMs) * 1_000_000 {
                    try await heartbeat(groupId: groupId)
                    lastHeartbeat = monotonicNanos()
                }
                if config.enableAutoCommit, now - lastCommit >= UInt64(config.autoCommitIntervalMs) * 1_000_000 {
                    lastCommit = now
                    await autoCommit(reason: "interval")
                }
            } catch {
                if state.withLock({ $0.closed }) { return }
                config.client.logger.warning("group membership step failed; retrying", metadata: ["group": "\(groupId)", "error": "\(error)"])
                if case let .broker(code, _, _, _) = error as? KafkaClientError, code == .notCoordinator || code == .coordinatorNotAvailable {
                    cluster.forgetCoordinator(groupId)
                }
                // Not one broker could ever be reached: tell the application (poll throws) instead of
                // retrying silently; it may keep polling to keep trying.
                if case .connectionFailed? = error as? KafkaClientError, cluster.metadata.brokers.isEmpty {
                    fail(error as! KafkaClientError)
                }
                try? await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000)
                continue
            }
            await sleepMembership(ms: min(config.heartbeatIntervalMs, 1000))
        }
    }

    private func heartbeat(groupId: String) async throws {
        let (memberId, generation) = state.withLock { ($0.group.memberId, $0.group.generation) }
        let coordinator = try await cluster.coordinator(for: groupId)
        let response = try await coordinator.send(HeartbeatRequest(groupId: groupId, generationId: generation, memberId: memberId,
                                                                   groupInstanceId: config.groupInstanceId), range: 0...4)
        switch KafkaErrorCode(response.errorCode) {
        case .none: return
        case .rebalanceInProgress:
            state.withLock { $0.group.rejoin = true }
        case .unknownMemberId, .illegalGeneration, .fencedInstanceId:
            state.withLock { s in
                s.group.rejoin = true
                s.group.generation = -1
                if response.errorCode != KafkaErrorCode.illegalGeneration.rawValue { s.group.memberId = "" }
            }
        case let code:
            throw KafkaClientError.broker(code: code, message: nil, broker: coordinator.nodeId, topicPartition: nil)
        }
    }

    private var preferredAssignor: any PartitionAssignor { config.assignors[0] }

    private func rebalance(groupId: String, topics: [String]) async throws {
        let owned = state.withLock { $0.order }
        let cooperativeOnly = config.assignors.allSatisfy(\.isCooperative)
        // Eager protocol: give everything up before joining (committing first).
        let (listener, generation) = state.withLock { ($0.listener, $0.group.generation) }
        if !cooperativeOnly, !owned.isEmpty {
            if config.enableAutoCommit { await autoCommit(reason: "rebalance") }
            await listener?.onRevoked(owned)
            state.withLock { s in
                s.partitions = [:]
                s.order = []
                s.chunks.removeAll()
                s.bufferedBytes = 0
            }
        }
        let coordinator = try await cluster.coordinator(for: groupId)
        let joinVersion = try coordinator.version(.joinGroup, 0...9)
        let stillOwned = state.withLock { $0.order }
        var joined: JoinGroupResponse?
        for _ in 0..<5 {
            let memberId = state.withLock { $0.group.memberId }
            let request = JoinGroupRequest(
                groupId: groupId, sessionTimeoutMs: config.sessionTimeoutMs, rebalanceTimeoutMs: config.rebalanceTimeoutMs, memberId: memberId,
                groupInstanceId: config.groupInstanceId, protocolType: "consumer",
                protocols: config.assignors.map { .init(name: $0.name, metadata: ConsumerProtocol.encodeSubscription(topics: topics, owned: stillOwned, generation: generation)) })
            let response = try await coordinator.send(request, version: joinVersion)
            switch KafkaErrorCode(response.errorCode) {
            case .none:
                joined = response
            case .memberIdRequired:
                state.withLock { $0.group.memberId = response.memberId }
                continue
            case .unknownMemberId:
                state.withLock { $0.group.memberId = "" }
                continue
            case .rebalanceInProgress:
                continue
            case let code:
                throw KafkaClientError.broker(code: code, message: nil, broker: coordinator.nodeId, topicPartition: nil)
            }
            break
        }
        guard let joined else { throw KafkaClientError.broker(code: .rebalanceInProgress, message: "could not join", broker: nil, topicPartition: nil) }
        state.withLock { s in
            s.group.memberId = joined.memberId
            s.group.generation = joined.generationId
            s.group.protocolName = joined.protocolName
            s.group.leader = joined.leader == joined.memberId
        }
        var assignments: [SyncGroupRequest.SyncGroupRequestAssignment] = []
        let assignorName = joined.protocolName ?? preferredAssignor.name
        let assignor = config.assignors.first { $0.name == assignorName } ?? preferredAssignor
        if joined.leader == joined.memberId && !joined.skipAssignment {
            let subscriptions = joined.members.compactMap { GroupSubscription(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, metadata: $0.metadata) }
            let allTopics = Array(Set(subscriptions.flatMap(\.topics)))
            let metadata = try await cluster.refreshMetadata(topics: allTopics)
            let counts = Dictionary(uniqueKeysWithValues: allTopics.compactMap { t in metadata.topics[t].map { (t, Int32($0.partitions.count)) } })
            let plan = assignor.assign(members: subscriptions, partitionCounts: counts)
            assignments = subscriptions.map { .init(memberId: $0.memberId, assignment: ConsumerProtocol.encodeAssignment(plan[$0.memberId] ?? [])) }
        }
        let syncVersion = try coordinator.version(.syncGroup, 0...5)
        let sync = try await coordinator.send(SyncGroupRequest(groupId: groupId, generationId: joined.generationId, memberId: joined.memberId,
                                                               groupInstanceId: config.groupInstanceId, protocolType: "consumer",
                                                               protocolName: joined.protocolName, assignments: assignments), version: syncVersion)
        switch KafkaErrorCode(sync.errorCode) {
        case .none: break
        case .rebalanceInProgress:
            return
        case .unknownMemberId, .illegalGeneration:
            state.withLock { s in s.group.memberId = ""; s.group.generation = -1 }
            return
        case let code:
            throw KafkaClientError.broker(code: code, message: nil, broker: coordinator.nodeId, topicPartition: nil)
        }
        let assigned: [TopicPartition]
        do {
            assigned = try ConsumerProtocol.decodeAssignment(sync.assignment)
        } catch {
            config.client.logger.error("the group leader's assignment cannot be decoded; taking no partitions", metadata: [
                "group": "\(groupId)", "error": "\(error)",
            ])
            assigned = []
        }
        let previous = Set(state.withLock { $0.order })
        let revoked = previous.subtracting(assigned).sorted()
        let added = assigned.filter { !previous.contains($0) }
        if !revoked.isEmpty {
            if config.enableAutoCommit {
                await autoCommit(state.withLock { s in
                    Dictionary(uniqueKeysWithValues: revoked.compactMap { tp in s.partitions[tp]?.position.map { (tp, $0) } })
                }, reason: "partitions revoked")
            }
            await listener?.onRevoked(revoked)
        }
        state.withLock { s in
            s.partitions = Dictionary(uniqueKeysWithValues: assigned.map { ($0, s.partitions[$0] ?? PartitionState()) })
            s.order = assigned
            s.chunks.removeAll { !assigned.contains($0.tp) }
            s.bufferedBytes = s.chunks.reduce(0) { $0 + $1.bytes }
            // A cooperative member that gave partitions up rejoins at once so they can move.
            s.group.rejoin = assignor.isCooperative && !revoked.isEmpty
        }
        await initializePositions(added)
        if !added.isEmpty { await listener?.onAssigned(added) }
        fetch()
    }
}

extension KafkaConsumer.State {
    mutating func dropChunks(of tp: TopicPartition) {
        let dropped = chunks.filter { $0.tp == tp }.reduce(0) { $0 + $1.bytes }
        chunks.removeAll { $0.tp == tp }
        bufferedBytes -= dropped
    }

    /// Hands out up to `max` buffered records, advancing positions.
    mutating func take(max: Int) -> [ConsumerRecord] {
        var out: [ConsumerRecord] = []
        while out.count < max, var chunk = chunks.first {
            guard let p = partitions[chunk.tp], !p.paused else {
                bufferedBytes -= chunk.bytes
                chunks.removeFirst()
                continue
            }
            let n = Swift.min(max - out.count, chunk.records.count - chunk.next)
            out.append(contentsOf: chunk.records[chunk.next..<(chunk.next + n)])
            chunk.next += n
            partitions[chunk.tp]!.position = chunk.records[chunk.next - 1].offset + 1
            partitions[chunk.tp]!.leaderEpoch = chunk.records[chunk.next - 1].leaderEpoch
            if chunk.next == chunk.records.count {
                bufferedBytes -= chunk.bytes
                chunks.removeFirst()
            } else {
                chunks[0] = chunk
            }
        }
        return out
    }
}

/// `for try await record in consumer.records`: every record until the consumer closes.
public struct ConsumerRecords: AsyncSequence, Sendable {
    public typealias Element = ConsumerRecord
    let consumer: KafkaConsumer

    public struct AsyncIterator: AsyncIteratorProtocol {
        let consumer: KafkaConsumer
        var buffer: [ConsumerRecord] = []
        var index = 0

        public mutating func next() async throws -> ConsumerRecord? {
            while index >= buffer.count {
                do {
                    buffer = try await consumer.poll(timeoutMs: 1000)
                } catch KafkaClientError.closed {
                    return nil
                }
                index = 0
            }
            defer { index += 1 }
            return buffer[index]
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(consumer: consumer) }
}
