import KafkaProtocol
import KafkaWire
import NIOCore

public struct TransactionCoordinatorConfig: Sendable {
    /// `transaction.max.timeout.ms`
    public var maxTransactionTimeoutMs: Int32 = 900_000
    /// `transactional.id.expiration.ms`
    public var transactionalIdExpirationMs: Int64 = 604_800_000
    /// `transaction.state.log.num.partitions`
    public var transactionLogPartitions: Int32 = 50
    /// `offsets.topic.num.partitions` (AddOffsetsToTxn adds the group's `__consumer_offsets` partition)
    public var offsetsTopicPartitions: Int32 = 50

    public init() {}
}

/// What the coordinator answers a request with (the broker builds the version-specific response).
public enum TransactionReply: Sendable, Equatable {
    case initProducerId(KafkaErrorCode, producerId: Int64, producerEpoch: Int16)
    /// The error for every partition of the request (Kafka's coordinator answers one error per transaction).
    case addPartitions(KafkaErrorCode)
    case addOffsets(KafkaErrorCode)
    case endTxn(KafkaErrorCode)
}

extension TransactionReply {
    /// The answer for a request of `version`: clients older than KIP-588 (InitProducerId < v4,
    /// AddPartitionsToTxn, AddOffsetsToTxn and EndTxn < v2) do not know PRODUCER_FENCED and are
    /// told INVALID_PRODUCER_EPOCH instead, as Kafka does.
    public func forVersion(_ version: Int16) -> TransactionReply {
        func map(_ code: KafkaErrorCode, below: Int16) -> KafkaErrorCode {
            code == .producerFenced && version < below ? .invalidProducerEpoch : code
        }
        switch self {
        case let .initProducerId(code, pid, epoch): return .initProducerId(map(code, below: 4), producerId: pid, producerEpoch: epoch)
        case let .addPartitions(code): return .addPartitions(map(code, below: 2))
        case let .addOffsets(code): return .addOffsets(map(code, below: 2))
        case let .endTxn(code): return .endTxn(map(code, below: 2))
        }
    }
}

/// COMMIT or ABORT markers to write for one transaction (WriteTxnMarkers to the partitions' leaders);
/// when they are all written, call `markersWritten`.
public struct TransactionMarkers: Sendable, Hashable {
    public var transactionalId: String
    public var producerId: Int64
    public var producerEpoch: Int16
    public var commit: Bool
    public var partitions: [TopicPartition]
}

public enum TransactionAction: Sendable, Equatable {
    /// Complete the request `token` with this answer.
    case reply(RequestToken, TransactionReply)
    /// Append this record to `__transaction_state` partition `partition`, then call `appendCompleted(id, error:)`.
    case append(id: UInt64, partition: Int32, record: TransactionRecord)
    /// Write the transaction's markers, then call `markersWritten`.
    case writeMarkers(TransactionMarkers)
}

/// Kafka's transaction coordinator (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
/// timeouts, expiration, DescribeTransactions, ListTransactions) as a sans-IO state machine: every
/// operation takes the current time and returns actions — answers, records to append to
/// `__transaction_state`, markers to write. A state change takes effect when its record is appended
/// (until then the transactional id has a pending transition and other requests get
/// CONCURRENT_TRANSACTIONS, as in Kafka). The state is rebuilt by replaying the records (`replay`).
public struct TransactionCoordinator: Sendable {
    public var config: TransactionCoordinatorConfig
    var transactions: [String: TransactionMetadata] = [:]
    /// Transactional ids with a record being appended, and the append.
    private var pendingIds: [String: UInt64] = [:]
    private var pendingAppends: [UInt64: PendingAppend] = [:]
    private var nextAppendId: UInt64 = 0
    private let allocateProducerId: @Sendable () -> Int64

    enum ReplyTarget: Sendable {
        case none
        case initProducerId(RequestToken)
        /// InitProducerId that fenced an ongoing transaction: answered CONCURRENT_TRANSACTIONS once the abort is prepared.
        case fencingInit(RequestToken)
        case addPartitions(RequestToken)
        case addOffsets(RequestToken)
        case endTxn(RequestToken)
    }

    struct PendingAppend: Sendable {
        var transactionalId: String
        /// The state once appended (nil: the id is removed).
        var transit: TransactionMetadata?
        /// The state to go back to if the append fails (nil: the id did not exist).
        var previous: TransactionMetadata?
        var target: ReplyTarget
    }

    /// `allocateProducerId` hands out a new, never used producer id (Kafka's producer id manager).
    public init(config: TransactionCoordinatorConfig, allocateProducerId: @escaping @Sendable () -> Int64) {
        self.config = config
        self.allocateProducerId = allocateProducerId
    }

    public func partition(for transactionalId: String) -> Int32 {
        TransactionRecords.partition(for: transactionalId, partitions: config.transactionLogPartitions)
    }

    public func metadata(of transactionalId: String) -> TransactionMetadata? { transactions[transactionalId] }
    public func isPending(_ transactionalId: String) -> Bool { pendingIds[transactionalId] != nil }
    public var transactionalIds: [String] { transactions.keys.sorted() }

    // MARK: Partition ownership and loading

    /// `__transaction_state` partitions this coordinator leads (loaded or loading).
    public private(set) var ownedPartitions: Set<Int32> = []
    private var loadingPartitions: Set<Int32> = []
    /// Partitions whose replay failed: their ids answer COORDINATOR_NOT_AVAILABLE until a later load succeeds.
    public private(set) var failedPartitions: Set<Int32> = []

    /// This broker became the leader of `partitions`: their records are about to be replayed.
    public mutating func beginLoading(_ partitions: [Int32]) {
        ownedPartitions.formUnion(partitions)
        loadingPartitions.formUnion(partitions)
        failedPartitions.subtract(partitions)
    }

    /// The replay of `partition` is done. Transactions left in PrepareCommit/PrepareAbort get their
    /// markers written again (Kafka does the same on election).
    public mutating func finishLoading(_ partition: Int32) -> [TransactionAction] {
        loadingPartitions.remove(partition)
        return transactions.values.filter { self.partition(for: $0.transactionalId) == partition }
            .sorted { $0.transactionalId < $1.transactionalId }
            .compactMap { m in
                guard m.state == .prepareCommit || m.state == .prepareAbort else { return nil }
                return .writeMarkers(Self.markers(m))
            }
    }

    /// The replay of `partition` failed: forget what was partly replayed and refuse its ids.
    public mutating func failLoading(_ partition: Int32) {
        loadingPartitions.remove(partition)
        failedPartitions.insert(partition)
        forget(partition)
    }

    /// This broker no longer leads `partition`: its ids are forgotten and requests waiting for
    /// their appends are answered NOT_COORDINATOR.
    public mutating func unload(_ partition: Int32) -> [TransactionAction] {
        ownedPartitions.remove(partition)
        loadingPartitions.remove(partition)
        failedPartitions.remove(partition)
        var actions: [TransactionAction] = []
        for (id, pending) in pendingAppends.sorted(by: { $0.key < $1.key }) where self.partition(for: pending.transactionalId) == partition {
            pendingAppends.removeValue(forKey: id)
            if let a = Self.failureReply(pending.target, .notCoordinator) { actions.append(a) }
        }
        forget(partition)
        return actions
    }

    private mutating func forget(_ partition: Int32) {
        for id in transactions.keys where self.partition(for: id) == partition { transactions.removeValue(forKey: id) }
        for id in pendingIds.keys where self.partition(for: id) == partition { pendingIds.removeValue(forKey: id) }
    }

    public var isLoading: Bool { !loadingPartitions.isEmpty }

    /// NOT_COORDINATOR when the id's partition is not ours, COORDINATOR_LOAD_IN_PROGRESS while it is
    /// replayed, COORDINATOR_NOT_AVAILABLE when its replay failed, else nil.
    public func availabilityError(for transactionalId: String) -> KafkaErrorCode? {
        let p = partition(for: transactionalId)
        if !ownedPartitions.contains(p) { return .notCoordinator }
        if loadingPartitions.contains(p) { return .coordinatorLoadInProgress }
        if failedPartitions.contains(p) { return .coordinatorNotAvailable }
        return nil
    }

    // MARK: InitProducerId

    /// InitProducerId. `transactionalId` nil: an idempotent producer, which just gets a new producer
    /// id. `expected` is the producer id and epoch the client already has (KIP-360), nil when the
    /// request carries -1/-1.
    public mutating func initProducerId(_ token: RequestToken, transactionalId: String?, timeoutMs: Int32,
                                        expected: (producerId: Int64, epoch: Int16)?, now: Int64) -> [TransactionAction] {
        func fail(_ code: KafkaErrorCode) -> [TransactionAction] {
            [.reply(token, .initProducerId(code, producerId: -1, producerEpoch: -1))]
        }
        guard let transactionalId else {
            return [.reply(token, .initProducerId(.none, producerId: allocateProducerId(), producerEpoch: 0))]
        }
        guard !transactionalId.isEmpty else { return fail(.invalidRequest) }
        guard timeoutMs > 0, timeoutMs <= config.maxTransactionTimeoutMs else { return fail(.invalidTransactionTimeout) }
        if let error = availabilityError(for: transactionalId) { return fail(error) }
        if pendingIds[transactionalId] != nil { return fail(.concurrentTransactions) }

        let existing = transactions[transactionalId]
        let m = existing ?? TransactionMetadata(transactionalId: transactionalId, producerId: allocateProducerId(), producerEpoch: -1,
                                               timeoutMs: timeoutMs, state: .empty, lastUpdateTimestamp: now)
        if let expected, !Self.isValidProducerId(m, expected) { return fail(.producerFenced) }

        switch m.state {
        case .prepareCommit, .prepareAbort, .prepareEpochFence:
            return fail(.concurrentTransactions)
        case .dead:
            return fail(.concurrentTransactions)
        case .ongoing:
            // Fence the current producer: abort its transaction with a bumped epoch that is never
            // handed out; the client retries and gets a second bump.
            return fenceAndAbort(m, target: .fencingInit(token), now: now)
        case .empty, .completeCommit, .completeAbort:
            var t = m
            if m.isEpochExhausted && (expected == nil || expected!.epoch == m.producerEpoch) {
                // Rotate to a new producer id (Kafka's prepareProducerIdRotation).
                t.previousProducerId = m.producerId
                t.producerId = allocateProducerId()
                t.producerEpoch = 0
                t.lastProducerEpoch = expected != nil ? m.producerEpoch : -1
            } else if let expected {
                if m.producerEpoch == -1 || expected.epoch == m.producerEpoch {
                    t.producerEpoch = m.producerEpoch &+ 1
                    t.lastProducerEpoch = m.producerEpoch
                } else if expected.epoch == m.lastProducerEpoch {
                    // A retry of a bump that already happened: answer the same epoch.
                } else {
                    return fail(.producerFenced)
                }
            } else {
                t.producerEpoch = m.producerEpoch &+ 1
                t.lastProducerEpoch = -1
            }
            t.timeoutMs = timeoutMs
            t.state = .empty
            t.partitions = []
            t.startTimestamp = -1
            t.lastUpdateTimestamp = now
            return [append(t, previous: existing, target: .initProducerId(token))]
        }
    }

    /// Kafka's `isValidProducerId`: a fresh id, the current producer id, or the previous one after a
    /// rotation for an exhausted epoch.
    static func isValidProducerId(_ m: TransactionMetadata, _ expected: (producerId: Int64, epoch: Int16)) -> Bool {
        m.producerEpoch == -1 || expected.producerId == m.producerId
            || (expected.producerId == m.previousProducerId && expected.epoch >= Int16.max - 1)
    }

    /// PrepareEpochFence then PrepareAbort: the ongoing transaction of `m` is aborted with the epoch
    /// bumped so that its producer (a zombie, or one that ran past its timeout) is fenced.
    private mutating func fenceAndAbort(_ m: TransactionMetadata, target: ReplyTarget, now: Int64) -> [TransactionAction] {
        var t = m
        if m.producerEpoch < Int16.max { t.producerEpoch = m.producerEpoch + 1 }
        t.lastProducerEpoch = -1
        // Kafka's PrepareEpochFence: the bumped epoch is in force at once (the old producer is
        // fenced while the abort is appended), and the transaction moves on to PrepareAbort.
        var fencing = t
        fencing.state = .prepareEpochFence
        transactions[m.transactionalId] = fencing
        t.state = .prepareAbort
        t.lastUpdateTimestamp = now
        return [append(t, previous: m, target: target)]
    }

    // MARK: AddPartitionsToTxn, AddOffsetsToTxn

    public mutating func addPartitions(_ token: RequestToken, transactionalId: String, producerId: Int64, producerEpoch: Int16,
                                       partitions: [TopicPartition], now: Int64) -> [TransactionAction] {
        addPartitions(transactionalId: transactionalId, producerId: producerId, producerEpoch: producerEpoch, partitions: partitions,
                      target: .addPartitions(token), now: now)
    }

    /// AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the transaction.
    public mutating func addOffsets(_ token: RequestToken, transactionalId: String, producerId: Int64, producerEpoch: Int16,
                                    groupId: String, now: Int64) -> [TransactionAction] {
        guard !groupId.isEmpty else { return [.reply(token, .addOffsets(.invalidGroupId))] }
        let tp = TopicPartition("__consumer_offsets", GroupRecords.partition(for: groupId, partitions: config.offsetsTopicPartitions))
        return addPartitions(transactionalId: transactionalId, producerId: producerId, producerEpoch: producerEpoch, partitions: [tp],
                             target: .addOffsets(token), now: now)
    }

    private mutating func addPartitions(transactionalId: String, producerId: Int64, producerEpoch: Int16, partitions: [TopicPartition],
                                        target: ReplyTarget, now: Int64) -> [TransactionAction] {
        func reply(_ code: KafkaErrorCode) -> [TransactionAction] { [Self.reply(target, code)!] }
        guard !transactionalId.isEmpty else { return reply(.invalidRequest) }
        if let error = availabilityError(for: transactionalId) { return reply(error) }
        guard let m = transactions[transactionalId], m.state != .dead else { return reply(.invalidProducerIdMapping) }
        if pendingIds[transactionalId] != nil { return reply(.concurrentTransactions) }
        guard m.producerId == producerId else { return reply(.invalidProducerIdMapping) }
        guard m.producerEpoch == producerEpoch else { return reply(.producerFenced) }
        switch m.state {
        case .prepareCommit, .prepareAbort, .prepareEpochFence, .dead:
            return reply(.concurrentTransactions)
        case .ongoing where Set(partitions).isSubset(of: m.partitions):
            return reply(.none)
        case .empty, .completeCommit, .completeAbort, .ongoing:
            var t = m
            if m.state != .ongoing { t.startTimestamp = now; t.partitions = [] }
            t.state = .ongoing
            t.partitions.formUnion(partitions)
            t.lastUpdateTimestamp = now
            return [append(t, previous: m, target: target)]
        }
    }

    /// The verification form of AddPartitionsToTxn (KIP-890 part 1, sent by partition leaders before
    /// they accept a transactional batch): for each partition NONE when it is in the producer's
    /// ongoing transaction, else INVALID_TXN_STATE; an error about the transaction itself is given
    /// for every partition. Appends nothing.
    public func verifyPartitions(transactionalId: String, producerId: Int64, producerEpoch: Int16,
                                 partitions: [TopicPartition]) -> [TopicPartition: KafkaErrorCode] {
        func all(_ code: KafkaErrorCode) -> [TopicPartition: KafkaErrorCode] {
            Dictionary(partitions.map { ($0, code) }, uniquingKeysWith: { a, _ in a })
        }
        guard !transactionalId.isEmpty else { return all(.invalidRequest) }
        if let error = availabilityError(for: transactionalId) { return all(error) }
        guard let m = transactions[transactionalId], m.state != .dead else { return all(.invalidProducerIdMapping) }
        guard m.producerId == producerId else { return all(.invalidProducerIdMapping) }
        guard m.producerEpoch == producerEpoch else { return all(.producerFenced) }
        if let id = pendingIds[transactionalId], pendingAppends[id]?.transit?.state != .ongoing { return all(.concurrentTransactions) }
        let inTxn = m.state == .ongoing ? m.partitions : []
        return Dictionary(partitions.map { ($0, inTxn.contains($0) ? KafkaErrorCode.none : .invalidTxnState) }, uniquingKeysWith: { a, _ in a })
    }

    // MARK: EndTxn and markers

    public mutating func endTxn(_ token: RequestToken, transactionalId: String, producerId: Int64, producerEpoch: Int16, commit: Bool,
                                now: Int64) -> [TransactionAction] {
        func reply(_ code: KafkaErrorCode) -> [TransactionAction] { [.reply(token, .endTxn(code))] }
        guard !transactionalId.isEmpty else { return reply(.invalidRequest) }
        if let error = availabilityError(for: transactionalId) { return reply(error) }
        guard let m = transactions[transactionalId], m.state != .dead else { return reply(.invalidProducerIdMapping) }
        guard m.producerId == producerId else { return reply(.invalidProducerIdMapping) }
        guard m.producerEpoch == producerEpoch else { return reply(.producerFenced) }
        if pendingIds[transactionalId] != nil { return reply(.concurrentTransactions) }
        switch (m.state, commit) {
        case (.ongoing, _):
            var t = m
            t.state = commit ? .prepareCommit : .prepareAbort
            t.lastUpdateTimestamp = now
            return [append(t, previous: m, target: .endTxn(token))]
        case (.completeCommit, true), (.completeAbort, false):
            return reply(.none)  // a retry of an EndTxn that succeeded
        case (.prepareCommit, true), (.prepareAbort, false):
            return reply(.concurrentTransactions)
        default:
            return reply(.invalidTxnState)
        }
    }

    static func markers(_ m: TransactionMetadata) -> TransactionMarkers {
        TransactionMarkers(transactionalId: m.transactionalId, producerId: m.producerId, producerEpoch: m.producerEpoch,
                           commit: m.state == .prepareCommit, partitions: m.partitions.sorted())
    }

    /// The markers of `writeMarkers` are written: the transaction completes (CompleteCommit/CompleteAbort).
    /// Ignored when the transaction has moved on (another coordinator, a reload).
    public mutating func markersWritten(transactionalId: String, producerId: Int64, producerEpoch: Int16, now: Int64) -> [TransactionAction] {
        guard availabilityError(for: transactionalId) == nil, pendingIds[transactionalId] == nil,
              let m = transactions[transactionalId], m.producerId == producerId, m.producerEpoch == producerEpoch,
              m.state == .prepareCommit || m.state == .prepareAbort else { return [] }
        var t = m
        t.state = m.state == .prepareCommit ? .completeCommit : .completeAbort
        t.partitions = []
        t.lastUpdateTimestamp = now
        return [append(t, previous: m, target: .none)]
    }

    // MARK: Timers

    /// Aborts ongoing transactions past their timeout (with an epoch bump that fences their
    /// producer) and removes transactional ids idle longer than `transactional.id.expiration.ms`.
    public mutating func tick(now: Int64) -> [TransactionAction] {
        var actions: [TransactionAction] = []
        for id in transactions.keys.sorted() where availabilityError(for: id) == nil && pendingIds[id] == nil {
            let m = transactions[id]!
            if m.state == .ongoing, m.startTimestamp + Int64(m.timeoutMs) < now {
                actions += fenceAndAbort(m, target: .none, now: now)
            } else if m.state.isExpirable, m.lastUpdateTimestamp + config.transactionalIdExpirationMs <= now {
                actions.append(appendTombstone(id, previous: m))
            }
        }
        return actions
    }

    // MARK: Describe, list

    public func describe(_ ids: [String]) -> [DescribeTransactionsResponse.TransactionState] {
        ids.map { id in
            if let error = availabilityError(for: id) {
                return .init(errorCode: error.rawValue, transactionalId: id, transactionState: "", transactionTimeoutMs: 0,
                             transactionStartTimeMs: -1, producerId: -1, producerEpoch: -1)
            }
            guard let m = transactions[id], m.state != .dead else {
                return .init(errorCode: KafkaErrorCode.transactionalIdNotFound.rawValue, transactionalId: id, transactionState: "",
                             transactionTimeoutMs: 0, transactionStartTimeMs: -1, producerId: -1, producerEpoch: -1)
            }
            let byTopic = Dictionary(grouping: m.partitions, by: \.topic)
            return .init(errorCode: 0, transactionalId: id, transactionState: m.state.description, transactionTimeoutMs: m.timeoutMs,
                         transactionStartTimeMs: m.startTimestamp, producerId: m.producerId, producerEpoch: m.producerEpoch,
                         topics: byTopic.keys.sorted().map { .init(topic: $0, partitions: byTopic[$0]!.map(\.partition).sorted()) })
        }
    }

    /// ListTransactions: `durationFilter` >= 0 keeps transactions running longer than that many ms.
    public func list(stateFilters: [String], producerIdFilters: [Int64], durationFilter: Int64 = -1, now: Int64) -> ListTransactionsResponse {
        var response = ListTransactionsResponse()
        if isLoading { response.errorCode = KafkaErrorCode.coordinatorLoadInProgress.rawValue; return response }
        let states = Set(stateFilters.compactMap(TransactionState.init(name:)).map(\.rawValue))
        response.unknownStateFilters = stateFilters.filter { TransactionState(name: $0) == nil }
        let pids = Set(producerIdFilters)
        response.transactionStates = transactions.values.sorted { $0.transactionalId < $1.transactionalId }.compactMap { m in
            if m.state == .dead || availabilityError(for: m.transactionalId) != nil { return nil }
            if !pids.isEmpty, !pids.contains(m.producerId) { return nil }
            if !stateFilters.isEmpty, !states.contains(m.state.rawValue) { return nil }
            if durationFilter >= 0, now - m.startTimestamp <= durationFilter { return nil }
            return .init(transactionalId: m.transactionalId, producerId: m.producerId, transactionState: m.state.description)
        }
        return response
    }

    // MARK: Appends

    private mutating func append(_ transit: TransactionMetadata, previous: TransactionMetadata?, target: ReplyTarget) -> TransactionAction {
        let id = nextAppendId
        nextAppendId += 1
        pendingIds[transit.transactionalId] = id
        pendingAppends[id] = PendingAppend(transactionalId: transit.transactionalId, transit: transit, previous: previous, target: target)
        return .append(id: id, partition: partition(for: transit.transactionalId), record: TransactionRecords.record(transit))
    }

    private mutating func appendTombstone(_ transactionalId: String, previous: TransactionMetadata) -> TransactionAction {
        let id = nextAppendId
        nextAppendId += 1
        pendingIds[transactionalId] = id
        var dead = previous
        dead.state = .dead
        transactions[transactionalId] = dead
        pendingAppends[id] = PendingAppend(transactionalId: transactionalId, transit: nil, previous: previous, target: .none)
        return .append(id: id, partition: partition(for: transactionalId), record: TransactionRecords.tombstone(transactionalId))
    }

    /// The driver appended (error nil) or failed to append the record of `append(id:)`.
    public mutating func appendCompleted(_ id: UInt64, error: KafkaErrorCode?, now: Int64) -> [TransactionAction] {
        guard let pending = pendingAppends.removeValue(forKey: id) else { return [] }
        let txnId = pending.transactionalId
        if pendingIds[txnId] == id { pendingIds.removeValue(forKey: txnId) }
        if let error {
            transactions[txnId] = pending.previous
            return Self.failureReply(pending.target, GroupCoordinator.coordinatorError(for: error)).map { [$0] } ?? []
        }
        guard let t = pending.transit else {
            transactions.removeValue(forKey: txnId)
            return []
        }
        transactions[txnId] = t
        var actions: [TransactionAction] = []
        switch pending.target {
        case let .initProducerId(token):
            actions.append(.reply(token, .initProducerId(.none, producerId: t.producerId, producerEpoch: t.producerEpoch)))
        case let .fencingInit(token):
            actions.append(.reply(token, .initProducerId(.concurrentTransactions, producerId: -1, producerEpoch: -1)))
        case .addPartitions, .addOffsets, .endTxn, .none:
            if let a = Self.reply(pending.target, .none) { actions.append(a) }
        }
        if t.state == .prepareCommit || t.state == .prepareAbort { actions.append(.writeMarkers(Self.markers(t))) }
        return actions
    }

    static func reply(_ target: ReplyTarget, _ code: KafkaErrorCode) -> TransactionAction? {
        switch target {
        case .none: nil
        case let .initProducerId(t), let .fencingInit(t): .reply(t, .initProducerId(code, producerId: -1, producerEpoch: -1))
        case let .addPartitions(t): .reply(t, .addPartitions(code))
        case let .addOffsets(t): .reply(t, .addOffsets(code))
        case let .endTxn(t): .reply(t, .endTxn(code))
        }
    }

    static func failureReply(_ target: ReplyTarget, _ code: KafkaErrorCode) -> TransactionAction? { reply(target, code) }

    // MARK: Loading

    /// Applies one `__transaction_state` record while loading (in log order).
    public mutating func replay(key: ByteBuffer, value: ByteBuffer?) throws {
        let id = try TransactionRecords.decodeKey(key)
        guard let value else {
            transactions.removeValue(forKey: id)
            return
        }
        transactions[id] = try TransactionRecords.decodeValue(value, transactionalId: id)
    }
}
