import KafkaProtocol
import KafkaRecords
import KafkaWire
import Logging
import NIOCore
import SamsaCoordinators
import SamsaStorage
import Synchronization

/// Runs the `GroupCoordinator` state machine for this broker: executes its actions (answers,
/// appends to `__consumer_offsets` through the replica manager, like any produce), ticks its
/// timers, creates the offsets topic on first use and replays it at start.
public final class GroupCoordinatorService: Sendable {
    private struct State: Sendable {
        var coordinator: GroupCoordinator
        var promises: [RequestToken: EventLoopPromise<GroupReply>] = [:]
        var nextToken: RequestToken = 0
    }

    private let state: Mutex<State>
    private let services: BrokerServices
    private let logger: Logger
    public let partitions: Int32

    /// Where timeouts of writes waiting for replication run.
    private let eventLoop: any EventLoop
    private let commitTimeoutMs: Int64

    init(services: BrokerServices, config: GroupCoordinatorConfig, eventLoop: any EventLoop) {
        self.services = services
        self.eventLoop = eventLoop
        self.commitTimeoutMs = services.config.int64("offsets.commit.timeout.ms") ?? 5000
        self.logger = services.logger
        self.partitions = config.offsetsTopicPartitions
        self.state = Mutex(State(coordinator: GroupCoordinator(config: config) { clientId in
            "\(clientId)-\(KafkaUUID.random().uuidString)"
        }))
    }

    static func config(from broker: BrokerConfig) -> GroupCoordinatorConfig {
        var c = GroupCoordinatorConfig()
        c.minSessionTimeoutMs = Int32(broker.int("group.min.session.timeout.ms") ?? 6000)
        c.maxSessionTimeoutMs = Int32(broker.int("group.max.session.timeout.ms") ?? 1_800_000)
        c.initialRebalanceDelayMs = Int32(broker.int("group.initial.rebalance.delay.ms") ?? 3000)
        c.offsetsRetentionMs = Int64(broker.int("offsets.retention.minutes") ?? 10080) * 60_000
        c.offsetMetadataMaxBytes = broker.int("offset.metadata.max.bytes") ?? 4096
        c.groupMaxSize = broker.int("group.max.size") ?? Int(Int32.max)
        c.offsetsTopicPartitions = broker.offsetsTopicPartitions
        return c
    }

    // MARK: The offsets topic

    /// Creates `__consumer_offsets` if it does not exist yet (Kafka does this on first FindCoordinator).
    func ensureOffsetsTopic() async throws(KafkaError) {
        guard services.cache.topic(Topics.consumerOffsets) == nil else { return }
        let rf = min(Int16(services.config.int("offsets.topic.replication.factor") ?? 1), Int16(services.cache.snapshot.brokers.count))
        do {
            _ = try await services.topics.create(
                name: Topics.consumerOffsets, partitions: partitions, replicationFactor: max(rf, 1), assignments: nil,
                configs: ["cleanup.policy": "compact", "compression.type": "producer",
                          "segment.bytes": services.config.string("offsets.topic.segment.bytes") ?? "104857600"],
                validateOnly: false)
            logger.info("created \(Topics.consumerOffsets) with \(partitions) partitions")
        } catch let e where e.code == .topicAlreadyExists {
            return
        }
    }

    /// Marks every `__consumer_offsets` partition this broker leads as loading. Called before the
    /// broker listens, so that no request can see a group before its partition is replayed.
    func prepareLoading() {
        guard let topic = services.cache.topic(Topics.consumerOffsets) else { return }
        let led = topic.partitions.filter { $0.leader == services.brokerId }.map(\.partition)
        state.withLock { $0.coordinator.beginLoading(led) }
    }

    /// Replays every `__consumer_offsets` partition this broker leads (groups answer
    /// COORDINATOR_LOAD_IN_PROGRESS meanwhile). A partition whose replay fails is logged and
    /// answers COORDINATOR_NOT_AVAILABLE until `retryFailedLoads` succeeds.
    func loadAll() {
        guard let topic = services.cache.topic(Topics.consumerOffsets) else { return }
        let led = topic.partitions.filter { $0.leader == services.brokerId }.map(\.partition)
        state.withLock { $0.coordinator.beginLoading(led) }
        load(led)
    }

    /// Loads again the partitions whose replay failed (run periodically by the broker).
    func retryFailedLoads() {
        let failed = state.withLock { s -> [Int32] in
            let f = s.coordinator.failedPartitions.sorted()
            s.coordinator.beginLoading(f)
            return f
        }
        if !failed.isEmpty { load(failed) }
    }

    private func load(_ partitions: [Int32]) {
        var records = 0
        let started = monotonicMillis()
        for p in partitions {
            do {
                records += try load(partition: p)
                state.withLock { $0.coordinator.finishLoading(p) }
            } catch {
                logger.error("cannot load consumer groups from \(Topics.consumerOffsets)-\(p); its groups answer COORDINATOR_NOT_AVAILABLE until a retry succeeds: \(error)")
                state.withLock { $0.coordinator.failLoading(p) }
            }
        }
        if records > 0 {
            logger.info("loaded consumer groups", metadata: ["records": "\(records)", "groups": "\(state.withLock { $0.coordinator.groupIds.count })",
                                                               "ms": "\(monotonicMillis() - started)"])
        }
    }

    /// Test seam: called before each partition is replayed (a throw makes that replay fail).
    let beforeLoad = Mutex<(@Sendable (Int32) throws -> Void)?>(nil)

    private func load(partition p: Int32) throws -> Int {
        try beforeLoad.withLock { $0 }?(p)
        guard let log = services.replicas.partition(TopicPartition(Topics.consumerOffsets, p))?.log else {
            throw KafkaError(.notLeaderOrFollower, "no local replica of \(Topics.consumerOffsets)-\(p)")
        }
        var offset = log.logStartOffset
        // Up to the log end: a new leader's records above its high watermark are the ones its
        // followers will copy (they truncate to this log), commits acknowledged by the old leader included.
        let end = log.logEndOffset
        var count = 0
        let now = currentTimeMillis()
        while offset < end {
            let bytes = try log.readBatches(from: offset, maxBytes: 4 << 20)
            var reader = RecordBatchReader(bytes, allowsPartialTrailingBatch: true)
            var advanced = false
            while let batch = try reader.next() {
                defer { offset = batch.header.lastOffset + 1 }
                advanced = true
                guard !batch.header.attributes.isControl else { continue }
                try batch.forEachRecord { record in
                    guard let key = record.key else { return }
                    try state.withLock { try $0.coordinator.replay(key: key, value: record.value, now: now) }
                    count += 1
                }
            }
            if !advanced { break }
        }
        return count
    }

    // MARK: Running operations

    /// Runs `operation` on the state machine with a fresh token whose answer completes the future.
    func run(on loop: any EventLoop, _ operation: (inout GroupCoordinator, RequestToken) -> [GroupAction]) -> EventLoopFuture<GroupReply> {
        let promise = loop.makePromise(of: GroupReply.self)
        let actions = state.withLock { s -> [GroupAction] in
            let token = s.nextToken
            s.nextToken += 1
            s.promises[token] = promise
            return operation(&s.coordinator, token)
        }
        perform(actions)
        return promise.futureResult
    }

    /// Runs an operation that answers at once (Heartbeat, LeaveGroup, reads).
    func withCoordinator<T>(_ body: (inout GroupCoordinator) -> (T, [GroupAction])) -> T {
        let (result, actions) = state.withLock { body(&$0.coordinator) }
        perform(actions)
        return result
    }

    func read<T>(_ body: (GroupCoordinator) -> T) -> T { state.withLock { body($0.coordinator) } }

    private func perform(_ actions: [GroupAction]) {
        var queue = actions[...]
        while let action = queue.popFirst() {
            switch action {
            case let .reply(token, reply):
                state.withLock { $0.promises.removeValue(forKey: token) }?.succeed(reply)
            case let .append(id, partition, records):
                // Acknowledged once replicated: when the high watermark passes the records (at
                // once on a single node), or with the error of the wait.
                let tp = TopicPartition(Topics.consumerOffsets, partition)
                switch append(partition: partition, records: records) {
                case .failure(let e):
                    queue.append(contentsOf: state.withLock { $0.coordinator.appendCompleted(id, error: e.code, now: currentTimeMillis()) })
                case .success(let (lastOffset, log)) where log.highWatermark > lastOffset:
                    queue.append(contentsOf: state.withLock { $0.coordinator.appendCompleted(id, error: nil, now: currentTimeMillis()) })
                case .success(let (lastOffset, log)):
                    services.replicas.producePurgatory.watch(tp, lastOffset: lastOffset, timeoutMs: commitTimeoutMs, on: eventLoop,
                                                              currentHighWatermark: { log.highWatermark }) { [self] code in
                        let error: KafkaErrorCode? = code == .none ? nil : code
                        perform(state.withLock { $0.coordinator.appendCompleted(id, error: error, now: currentTimeMillis()) })
                    }
                }
            }
        }
    }

    /// Appends coordinator records through the same path as produce (acks=all): the last offset
    /// written and the log, or the error.
    private func append(partition: Int32, records: [GroupRecord]) -> Result<(Int64, PartitionLog), KafkaError> {
        var builder = RecordBatchBuilder()
        let now = currentTimeMillis()
        for r in records { builder.append(key: r.key, value: r.value, timestamp: now) }
        do {
            let (result, p) = try services.replicas.appendToLeader(TopicPartition(Topics.consumerOffsets, partition), records: builder.build(), requiredAcks: -1)
            return .success((result.lastOffset, p.log))
        } catch {
            let e = KafkaError.from(error)
            logger.warning("cannot write to \(Topics.consumerOffsets)-\(partition): \(e)")
            return .failure(e)
        }
    }

    /// A cluster moved the leadership of a `__consumer_offsets` partition to or from this broker:
    /// its groups are loaded (COORDINATOR_LOAD_IN_PROGRESS meanwhile) or dropped (NOT_COORDINATOR).
    func leadershipChanged(_ tp: TopicPartition, isLeader: Bool) {
        guard tp.topic == Topics.consumerOffsets else { return }
        let p = tp.partition
        if isLeader {
            state.withLock { $0.coordinator.beginLoading([p]) }
            Task.detached { [self] in load([p]) }
        } else {
            perform(state.withLock { $0.coordinator.unloadPartition(p) })
        }
    }

    /// Session, join and sync timers.
    func tick() {
        let now = currentTimeMillis()
        perform(state.withLock { $0.coordinator.tick(now: now) })
    }

    func expireOffsets() {
        let now = currentTimeMillis()
        perform(state.withLock { $0.coordinator.expireOffsets(now: now) })
    }

    /// Whether this broker coordinates `groupId` (it leads the group's offsets partition).
    func coordinates(_ groupId: String) -> Bool {
        let p = GroupRecords.partition(for: groupId, partitions: partitions)
        return services.replicas.partition(TopicPartition(Topics.consumerOffsets, p))?.isLeader ?? false
    }
}
