import KafkaProtocol
import KafkaWire
import Synchronization

/// A partition inside a fetch session: by topic id for Fetch v13+ (`topic` is empty), by topic
/// name for v7–12 (`topicId` is zero), as Kafka's `CachedPartition` equality does.
public struct FetchSessionKey: Hashable, Sendable, CustomStringConvertible {
    public var topicId: KafkaUUID
    public var topic: String
    public var partition: Int32

    public static func id(_ topicId: KafkaUUID, _ partition: Int32) -> FetchSessionKey { FetchSessionKey(topicId: topicId, topic: "", partition: partition) }
    public static func name(_ topic: String, _ partition: Int32) -> FetchSessionKey { FetchSessionKey(topicId: .zero, topic: topic, partition: partition) }

    public var description: String { topicId == .zero ? "\(topic)-\(partition)" : "\(topicId)-\(partition)" }
}

/// What a fetcher asks of one partition (kept in the session between requests).
public struct FetchPartitionRequest: Sendable, Equatable {
    public var fetchOffset: Int64
    public var maxBytes: Int32
    public var currentLeaderEpoch: Int32
    public var lastFetchedEpoch: Int32
    public var logStartOffset: Int64

    public init(fetchOffset: Int64, maxBytes: Int32, currentLeaderEpoch: Int32 = -1, lastFetchedEpoch: Int32 = -1, logStartOffset: Int64 = -1) {
        self.fetchOffset = fetchOffset
        self.maxBytes = maxBytes
        self.currentLeaderEpoch = currentLeaderEpoch
        self.lastFetchedEpoch = lastFetchedEpoch
        self.logStartOffset = logStartOffset
    }
}

/// What a read of one partition produced, as far as the session needs to know (Kafka's
/// `maybeUpdateResponseData` inputs).
public struct FetchPartitionOutcome: Sendable, Equatable {
    public var recordBytes: Int
    public var highWatermark: Int64
    public var logStartOffset: Int64
    public var errorCode: KafkaErrorCode
    public var hasPreferredReadReplica: Bool
    public var hasDivergingEpoch: Bool

    public init(recordBytes: Int, highWatermark: Int64, logStartOffset: Int64, errorCode: KafkaErrorCode = .none,
                hasPreferredReadReplica: Bool = false, hasDivergingEpoch: Bool = false) {
        self.recordBytes = recordBytes
        self.highWatermark = highWatermark
        self.logStartOffset = logStartOffset
        self.errorCode = errorCode
        self.hasPreferredReadReplica = hasPreferredReadReplica
        self.hasDivergingEpoch = hasDivergingEpoch
    }
}

/// How one fetch request is to be served, decided before any partition is read.
public struct FetchPlan: Sendable {
    public enum Kind: Sendable, Equatable {
        /// A session error: answer this top-level error with session id 0 and no partitions.
        case error(KafkaErrorCode)
        /// A full fetch without a session (epoch -1, Fetch v4–6, or a session emptied by forgetting).
        case sessionless
        /// A full fetch (epoch 0) that creates a session once the response is known.
        case full(privileged: Bool, usesTopicIds: Bool)
        /// An incremental fetch in session `id`; `epoch` is the session's epoch after this request.
        case incremental(id: Int32, epoch: Int32)
    }

    public var kind: Kind
    /// The partitions to read, in the order to read them (the `fetch.max.bytes` budget goes to
    /// the first ones): the session's order for an incremental fetch, otherwise the request's
    /// partitions with those that got data least recently on this connection first.
    public var partitions: [(key: FetchSessionKey, request: FetchPartitionRequest)]
    /// For full and sessionless fetches: indices into `partitions` in the request's order (the
    /// response lists the partitions in the order they were asked for).
    public var requestOrder: [Int]
}

/// What to answer once the partitions have been read.
public struct FetchCompletion: Sendable, Equatable {
    public var errorCode: KafkaErrorCode
    public var sessionId: Int32
    /// Indices into the plan's `partitions`, in response order.
    public var include: [Int]
}

/// Kafka's incremental fetch sessions (KIP-227): `FetchSessionCache` + `FetchManager` +
/// the fetch contexts of Kafka's FetchSession.scala, as a sans-IO value (the caller passes the
/// time and does the reads).
///
/// - Epoch -1 (FINAL_EPOCH) is a full fetch without a session; epoch 0 (INITIAL_EPOCH) is a
///   full fetch that creates a session (closing the one named by `session_id`, if any); a
///   positive epoch continues session `session_id`: it must exist (FETCH_SESSION_ID_NOT_FOUND),
///   be at that epoch (INVALID_FETCH_SESSION_EPOCH) and use topic ids iff the request does
///   (FETCH_SESSION_TOPIC_ID_ERROR). Partitions in the request are added or updated,
///   `forgotten_topics_data` removed; a session left empty is closed and the fetch is sessionless.
/// - An incremental response carries only the partitions with news: records, a changed high
///   watermark or log start offset, an error, a preferred read replica or a diverging epoch.
/// - Rotation: a partition that returned records moves to the end of the session's order, so the
///   next fetch reads the others first and a small `fetch.max.bytes` cannot starve them.
/// - The cache holds `maxEntries` sessions (`max.incremental.fetch.session.cache.slots`). When
///   full, a new session may evict one unused for `evictionMs`, else the least valuable one among
///   those older than `evictionMs` (followers' sessions are worth more than consumers', then more
///   partitions, then a higher id), if it is worth no more than the new one — Kafka's `tryEvict`.
///
/// Two additions to Kafka, both invisible to clients' session logic:
/// - a session's first (full) response already moves the partitions that returned records to the
///   end of the order (Kafka starts rotating with the first incremental response);
/// - sessionless and full fetches read the partitions that got records least recently on the same
///   connection first (the response keeps the request's order). Kafka relies on clients rotating
///   their request; this keeps a client that does not (a fixed partition order with a small
///   `fetch.max.bytes`) from starving all partitions but the first. The memory is bounded:
///   the partitions of the last request of at most `rotationConnections` connections.
public struct FetchSessionCache: Sendable {
    public static let invalidSessionId: Int32 = 0
    public static let initialEpoch: Int32 = 0
    public static let finalEpoch: Int32 = -1
    /// Kafka's MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS.
    public static let defaultEvictionMs: Int64 = 120_000

    public static func nextEpoch(_ epoch: Int32) -> Int32 {
        if epoch < 0 { return finalEpoch }
        return epoch == Int32.max ? 1 : epoch + 1
    }

    struct CachedPartition: Sendable {
        var request: FetchPartitionRequest
        var highWatermark: Int64 = -1
        var localLogStartOffset: Int64 = -1
        var seq: UInt64 = 0

        /// Kafka's `CachedPartition.maybeUpdateResponseData(respData, updateResponseData = true)`.
        mutating func mustRespond(_ o: FetchPartitionOutcome) -> Bool {
            var must = o.recordBytes > 0
            if highWatermark != o.highWatermark {
                must = true
                highWatermark = o.highWatermark
            }
            if localLogStartOffset != o.logStartOffset {
                must = true
                localLogStartOffset = o.logStartOffset
            }
            if o.hasPreferredReadReplica || o.hasDivergingEpoch { must = true }
            if o.errorCode != .none {
                // Re-sent once the error goes away.
                highWatermark = -1
                must = true
            }
            return must
        }
    }

    /// A session's partitions in fetch order, with O(1) amortised move-to-end.
    struct OrderedPartitions: Sendable {
        private(set) var entries: [FetchSessionKey: CachedPartition] = [:]
        private var order: [(key: FetchSessionKey, seq: UInt64)] = []
        private var nextSeq: UInt64 = 0

        var count: Int { entries.count }
        var isEmpty: Bool { entries.isEmpty }

        subscript(key: FetchSessionKey) -> CachedPartition? {
            get { entries[key] }
        }

        mutating func update(_ key: FetchSessionKey, _ body: (inout CachedPartition) -> Void) {
            guard var c = entries[key] else { return }
            body(&c)
            entries[key] = c
        }

        /// Adds `key` at the end (or updates it in place when present); true if it was added.
        @discardableResult
        mutating func add(_ key: FetchSessionKey, _ partition: CachedPartition) -> Bool {
            if var existing = entries[key] {
                existing.request = partition.request
                entries[key] = existing
                return false
            }
            var p = partition
            p.seq = nextSeq
            order.append((key, nextSeq))
            nextSeq += 1
            entries[key] = p
            return true
        }

        mutating func moveToEnd(_ key: FetchSessionKey) {
            guard var p = entries[key] else { return }
            p.seq = nextSeq
            order.append((key, nextSeq))
            nextSeq += 1
            entries[key] = p
            compactIfNeeded()
        }

        @discardableResult
        mutating func remove(_ key: FetchSessionKey) -> Bool {
            guard entries.removeValue(forKey: key) != nil else { return false }
            compactIfNeeded()
            return true
        }

        var keys: [FetchSessionKey] {
            order.compactMap { entry in entries[entry.key]?.seq == entry.seq ? entry.key : nil }
        }

        private mutating func compactIfNeeded() {
            guard order.count > 2 * entries.count + 16 else { return }
            order = order.filter { entries[$0.key]?.seq == $0.seq }
        }
    }

    struct Session: Sendable {
        let id: Int32
        let privileged: Bool
        let usesTopicIds: Bool
        let creationMs: Int64
        var lastUsedMs: Int64
        var epoch: Int32
        var partitions: OrderedPartitions
        /// Size and evictability as of the last touch (Kafka's `cachedSize` and the evictable maps).
        var cachedSize = 0
        var evictableByAll = false
        var evictableByPrivileged = false
    }

    /// Kafka's `EvictableKey` order: (privileged, size, id).
    struct EvictableKey: Comparable {
        var privileged: Bool
        var size: Int
        var id: Int32
        static func < (a: EvictableKey, b: EvictableKey) -> Bool {
            if a.privileged != b.privileged { return !a.privileged }
            if a.size != b.size { return a.size < b.size }
            return a.id < b.id
        }
    }

    public let maxEntries: Int
    public let evictionMs: Int64
    /// Connections whose sessionless rotation history is kept.
    public let rotationConnections: Int
    private var sessions: [Int32: Session] = [:]
    private(set) public var evictions = 0

    /// Sessionless rotation: per connection, when each partition last returned records.
    private var served: [UInt64: (lastUse: UInt64, partitions: [FetchSessionKey: UInt64])] = [:]
    private var tick: UInt64 = 0

    public init(maxEntries: Int, evictionMs: Int64 = FetchSessionCache.defaultEvictionMs, rotationConnections: Int = 1024) {
        self.maxEntries = max(maxEntries, 0)
        self.evictionMs = evictionMs
        self.rotationConnections = max(rotationConnections, 0)
    }

    public var count: Int { sessions.count }
    /// Connections whose sessionless rotation history is kept (at most `rotationConnections`).
    public var rotationHistoryCount: Int { served.count }
    public var totalPartitions: Int { sessions.values.reduce(0) { $0 + $1.cachedSize } }
    public func contains(_ id: Int32) -> Bool { sessions[id] != nil }
    public mutating func connectionClosed(_ connection: UInt64) { served.removeValue(forKey: connection) }
    public func epoch(of id: Int32) -> Int32? { sessions[id]?.epoch }
    /// The session's partitions in fetch order.
    public func partitions(of id: Int32) -> [FetchSessionKey]? { sessions[id]?.partitions.keys }
    public func request(of id: Int32, _ key: FetchSessionKey) -> FetchPartitionRequest? { sessions[id]?.partitions[key]?.request }

    // MARK: - FetchManager.newContext

    /// Decides how a fetch is served. `fetchData` are the request's partitions in request order,
    /// `forgotten` its `forgotten_topics_data`; `connection` identifies the client connection (for
    /// the sessionless rotation).
    public mutating func plan(sessionId: Int32, epoch: Int32, usesTopicIds: Bool, isFollower: Bool,
                              fetchData: [(key: FetchSessionKey, request: FetchPartitionRequest)],
                              forgotten: [FetchSessionKey], connection: UInt64, now: Int64) -> FetchPlan {
        if epoch == Self.initialEpoch || epoch == Self.finalEpoch {
            // Any session named in a full fetch is closed.
            if sessionId != Self.invalidSessionId { remove(sessionId) }
            let kind: FetchPlan.Kind = epoch == Self.finalEpoch ? .sessionless : .full(privileged: isFollower, usesTopicIds: usesTopicIds)
            return rotated(kind: kind, fetchData: fetchData, connection: connection)
        }
        guard var session = sessions[sessionId] else {
            return FetchPlan(kind: .error(.fetchSessionIdNotFound), partitions: [], requestOrder: [])
        }
        if session.epoch != epoch {
            return FetchPlan(kind: .error(.invalidFetchSessionEpoch), partitions: [], requestOrder: [])
        }
        if session.usesTopicIds != usesTopicIds {
            return FetchPlan(kind: .error(.fetchSessionTopicIdError), partitions: [], requestOrder: [])
        }
        for (key, request) in fetchData {
            session.partitions.add(key, CachedPartition(request: request))
        }
        for key in forgotten { session.partitions.remove(key) }
        if session.partitions.isEmpty {
            remove(sessionId)
            return rotated(kind: .sessionless, fetchData: fetchData, connection: connection)
        }
        session.epoch = Self.nextEpoch(session.epoch)
        sessions[sessionId] = session
        touch(sessionId, now: now)
        let keys = session.partitions.keys
        let partitions = keys.map { (key: $0, request: session.partitions[$0]!.request) }
        return FetchPlan(kind: .incremental(id: sessionId, epoch: session.epoch), partitions: partitions, requestOrder: [])
    }

    /// Deduplicates the request (first position, last value, as Kafka's map does) and orders the
    /// reads least-recently-served first on this connection.
    private func rotated(kind: FetchPlan.Kind, fetchData: [(key: FetchSessionKey, request: FetchPartitionRequest)], connection: UInt64) -> FetchPlan {
        var position: [FetchSessionKey: Int] = [:]
        var unique: [(key: FetchSessionKey, request: FetchPartitionRequest)] = []
        unique.reserveCapacity(fetchData.count)
        for item in fetchData {
            if let i = position[item.key] {
                unique[i].request = item.request
            } else {
                position[item.key] = unique.count
                unique.append(item)
            }
        }
        let history = served[connection]?.partitions ?? [:]
        // Stable: ties keep the request's order.
        let readOrder = unique.indices.sorted { a, b in
            let sa = history[unique[a].key] ?? 0, sb = history[unique[b].key] ?? 0
            return sa != sb ? sa < sb : a < b
        }
        var requestOrder = [Int](repeating: 0, count: unique.count)
        for (readIndex, requestIndex) in readOrder.enumerated() { requestOrder[requestIndex] = readIndex }
        return FetchPlan(kind: kind, partitions: readOrder.map { unique[$0] }, requestOrder: requestOrder)
    }

    // MARK: - FetchContext.updateAndGenerateResponseData

    /// Records what the reads returned (`outcomes` aligned with `plan.partitions`) and says what
    /// to answer: the session id (new, continued or 0) and which partitions the response carries.
    public mutating func complete(_ plan: FetchPlan, outcomes: [FetchPartitionOutcome], connection: UInt64, now: Int64) -> FetchCompletion {
        precondition(outcomes.count == plan.partitions.count, "one outcome per planned partition")
        switch plan.kind {
        case let .error(code):
            return FetchCompletion(errorCode: code, sessionId: Self.invalidSessionId, include: [])
        case .sessionless:
            remember(plan, outcomes, connection: connection)
            return FetchCompletion(errorCode: .none, sessionId: Self.invalidSessionId, include: plan.requestOrder)
        case let .full(privileged, usesTopicIds):
            remember(plan, outcomes, connection: connection)
            var partitions = OrderedPartitions()
            for i in plan.requestOrder {
                let (key, request) = plan.partitions[i]
                partitions.add(key, CachedPartition(request: request, highWatermark: outcomes[i].highWatermark,
                                                    localLogStartOffset: outcomes[i].logStartOffset))
            }
            for i in plan.requestOrder where outcomes[i].recordBytes > 0 { partitions.moveToEnd(plan.partitions[i].key) }
            let id = maybeCreateSession(now: now, privileged: privileged, usesTopicIds: usesTopicIds, partitions: partitions)
            return FetchCompletion(errorCode: .none, sessionId: id, include: plan.requestOrder)
        case let .incremental(id, expectedEpoch):
            guard var session = sessions[id] else {
                // Evicted while this fetch waited: answer every partition read (a superset the
                // client accepts); its next request gets FETCH_SESSION_ID_NOT_FOUND.
                return FetchCompletion(errorCode: .none, sessionId: id, include: Array(plan.partitions.indices))
            }
            guard session.epoch == expectedEpoch else {
                // Another request of this session overtook this one (a duplicate).
                return FetchCompletion(errorCode: .invalidFetchSessionEpoch, sessionId: id, include: [])
            }
            var include: [Int] = []
            for (i, item) in plan.partitions.enumerated() {
                guard session.partitions[item.key] != nil else { continue }
                var must = false
                session.partitions.update(item.key) { must = $0.mustRespond(outcomes[i]) }
                if must {
                    include.append(i)
                    if outcomes[i].recordBytes > 0 { session.partitions.moveToEnd(item.key) }
                }
            }
            sessions[id] = session
            return FetchCompletion(errorCode: .none, sessionId: id, include: include)
        }
    }

    private mutating func remember(_ plan: FetchPlan, _ outcomes: [FetchPartitionOutcome], connection: UInt64) {
        guard rotationConnections > 0, !plan.partitions.isEmpty else { return }
        var previous = served[connection]?.partitions ?? [:]
        var next: [FetchSessionKey: UInt64] = [:]
        next.reserveCapacity(plan.partitions.count)
        for (i, item) in plan.partitions.enumerated() {
            if outcomes[i].recordBytes > 0 {
                tick += 1
                next[item.key] = tick
            } else if let t = previous.removeValue(forKey: item.key) {
                next[item.key] = t
            }
        }
        tick += 1
        served[connection] = (tick, next)
        if served.count > rotationConnections {
            // Forget the connections used least recently (down to 3/4 so this runs rarely).
            let keep = max(rotationConnections * 3 / 4, 1)
            let oldest = served.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(served.count - keep)
            for (c, _) in oldest { served.removeValue(forKey: c) }
        }
    }

    // MARK: - FetchSessionCache

    private mutating func maybeCreateSession(now: Int64, privileged: Bool, usesTopicIds: Bool, partitions: OrderedPartitions) -> Int32 {
        guard maxEntries > 0 else { return Self.invalidSessionId }
        guard sessions.count < maxEntries || tryEvict(privileged: privileged, key: EvictableKey(privileged: privileged, size: partitions.count, id: 0), now: now) else {
            return Self.invalidSessionId
        }
        let id = newSessionId()
        sessions[id] = Session(id: id, privileged: privileged, usesTopicIds: usesTopicIds, creationMs: now, lastUsedMs: now,
                               epoch: Self.nextEpoch(Self.initialEpoch), partitions: partitions)
        touch(id, now: now)
        return id
    }

    private func newSessionId() -> Int32 {
        while true {
            let id = Int32.random(in: 1...Int32.max)
            if sessions[id] == nil { return id }
        }
    }

    /// Kafka's `tryEvict`: a stale session (unused for longer than `evictionMs`) goes first;
    /// otherwise the least valuable evictable one, if the new entry is worth at least as much.
    private mutating func tryEvict(privileged: Bool, key: EvictableKey, now: Int64) -> Bool {
        guard let lru = sessions.values.min(by: { ($0.lastUsedMs, $0.id) < ($1.lastUsedMs, $1.id) }) else { return false }
        if now - lru.lastUsedMs > evictionMs {
            remove(lru.id)
            evictions += 1
            return true
        }
        let candidates = sessions.values.filter { privileged ? $0.evictableByPrivileged : $0.evictableByAll }
        guard let victim = candidates.min(by: { Self.evictableKey($0) < Self.evictableKey($1) }) else { return false }
        if key < Self.evictableKey(victim) { return false }
        remove(victim.id)
        evictions += 1
        return true
    }

    private static func evictableKey(_ s: Session) -> EvictableKey {
        EvictableKey(privileged: s.privileged, size: s.cachedSize, id: s.id)
    }

    /// Kafka's `touch`: last use, size and evictability as of now.
    private mutating func touch(_ id: Int32, now: Int64) {
        guard var s = sessions[id] else { return }
        s.lastUsedMs = now
        s.cachedSize = s.partitions.count
        let old = now - s.creationMs > evictionMs
        s.evictableByPrivileged = !s.privileged || old
        s.evictableByAll = old
        sessions[id] = s
    }

    @discardableResult
    public mutating func remove(_ id: Int32) -> Bool { sessions.removeValue(forKey: id) != nil }
}

/// The broker's shared fetch session cache: `FetchSessionCache` behind a lock, with the clock.
public final class FetchSessionManager: Sendable {
    private let state: Mutex<FetchSessionCache>
    private let clock: @Sendable () -> Int64

    public init(maxEntries: Int, evictionMs: Int64 = FetchSessionCache.defaultEvictionMs, clock: @escaping @Sendable () -> Int64) {
        state = Mutex(FetchSessionCache(maxEntries: maxEntries, evictionMs: evictionMs))
        self.clock = clock
    }

    public func plan(sessionId: Int32, epoch: Int32, usesTopicIds: Bool, isFollower: Bool,
                     fetchData: [(key: FetchSessionKey, request: FetchPartitionRequest)], forgotten: [FetchSessionKey], connection: UInt64) -> FetchPlan {
        let now = clock()
        return state.withLock {
            $0.plan(sessionId: sessionId, epoch: epoch, usesTopicIds: usesTopicIds, isFollower: isFollower,
                    fetchData: fetchData, forgotten: forgotten, connection: connection, now: now)
        }
    }

    public func complete(_ plan: FetchPlan, outcomes: [FetchPartitionOutcome], connection: UInt64) -> FetchCompletion {
        let now = clock()
        return state.withLock { $0.complete(plan, outcomes: outcomes, connection: connection, now: now) }
    }

    public func read<T: Sendable>(_ body: (FetchSessionCache) -> T) -> T { state.withLock { body($0) } }

    /// The client connection closed: its sessionless rotation history goes with it.
    public func connectionClosed(_ connection: UInt64) { state.withLock { $0.connectionClosed(connection) } }
}
