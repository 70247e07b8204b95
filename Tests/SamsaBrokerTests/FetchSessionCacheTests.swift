import KafkaProtocol
import KafkaWire
import Testing
@testable import SamsaBroker

/// Kafka's fetch sessions (KIP-227) as a sans-IO value: every session error, full vs incremental
/// requests, what an incremental response carries, rotation and the cache's eviction rules.
@Suite struct FetchSessionCacheTests {
    typealias Data = [(key: FetchSessionKey, request: FetchPartitionRequest)]
    static let a = FetchSessionKey.name("t", 0), b = FetchSessionKey.name("t", 1), c = FetchSessionKey.name("u", 0), d = FetchSessionKey.name("u", 1)
    static let conn: UInt64 = 1

    static func data(_ keys: [FetchSessionKey], offset: Int64 = 0) -> Data {
        keys.map { ($0, FetchPartitionRequest(fetchOffset: offset, maxBytes: 1 << 20)) }
    }

    static func out(_ bytes: Int = 0, hw: Int64 = 10, lso: Int64 = 0, error: KafkaErrorCode = .none) -> FetchPartitionOutcome {
        FetchPartitionOutcome(recordBytes: bytes, highWatermark: hw, logStartOffset: lso, errorCode: error)
    }

    /// A full fetch (epoch 0) whose reads all return `outcome`; returns the new session id.
    static func createSession(_ cache: inout FetchSessionCache, _ keys: [FetchSessionKey], now: Int64 = 0, follower: Bool = false,
                              topicIds: Bool = false, outcomes: [FetchPartitionOutcome]? = nil) -> Int32 {
        let plan = cache.plan(sessionId: 0, epoch: 0, usesTopicIds: topicIds, isFollower: follower, fetchData: data(keys), forgotten: [], connection: conn, now: now)
        #expect(plan.kind == .full(privileged: follower, usesTopicIds: topicIds))
        let completion = cache.complete(plan, outcomes: outcomes ?? plan.partitions.map { _ in out() }, connection: conn, now: now)
        #expect(completion.errorCode == .none)
        return completion.sessionId
    }

    /// An incremental fetch; `outcome(key)` is what reading each partition returns.
    static func incremental(_ cache: inout FetchSessionCache, _ id: Int32, epoch: Int32, add: Data = [], forget: [FetchSessionKey] = [], now: Int64 = 0,
                            topicIds: Bool = false, outcome: (FetchSessionKey) -> FetchPartitionOutcome = { _ in out() })
        -> (plan: FetchPlan, completion: FetchCompletion) {
        let plan = cache.plan(sessionId: id, epoch: epoch, usesTopicIds: topicIds, isFollower: false, fetchData: add, forgotten: forget, connection: conn, now: now)
        let completion = cache.complete(plan, outcomes: plan.partitions.map { outcome($0.key) }, connection: conn, now: now)
        return (plan, completion)
    }

    static func included(_ r: (plan: FetchPlan, completion: FetchCompletion)) -> [FetchSessionKey] {
        r.completion.include.map { r.plan.partitions[$0].key }
    }

    @Test func epochsFollowKafka() {
        #expect(FetchSessionCache.nextEpoch(0) == 1)
        #expect(FetchSessionCache.nextEpoch(41) == 42)
        #expect(FetchSessionCache.nextEpoch(Int32.max) == 1)
        #expect(FetchSessionCache.nextEpoch(-1) == -1)
    }

    @Test func aSessionlessFetchCreatesNoSession() {
        var cache = FetchSessionCache(maxEntries: 10)
        let plan = cache.plan(sessionId: 0, epoch: -1, usesTopicIds: false, isFollower: false, fetchData: Self.data([Self.a, Self.b]), forgotten: [], connection: Self.conn, now: 0)
        #expect(plan.kind == .sessionless)
        let completion = cache.complete(plan, outcomes: [Self.out(), Self.out()], connection: Self.conn, now: 0)
        #expect(completion == FetchCompletion(errorCode: .none, sessionId: 0, include: [0, 1]))
        #expect(cache.count == 0)
    }

    @Test func aFullFetchCreatesASessionAtEpochOne() {
        var cache = FetchSessionCache(maxEntries: 10)
        let id = Self.createSession(&cache, [Self.a, Self.b, Self.c])
        #expect(id > 0)
        #expect(cache.epoch(of: id) == 1)
        #expect(cache.partitions(of: id) == [Self.a, Self.b, Self.c])
        let other = Self.createSession(&cache, [Self.a])
        #expect(other > 0 && other != id)
        #expect(cache.count == 2)
    }

    @Test func anUnknownSessionIdIsNotFound() {
        var cache = FetchSessionCache(maxEntries: 10)
        for (id, epoch): (Int32, Int32) in [(12345, 1), (0, 1), (7, 5)] {
            let r = Self.incremental(&cache, id, epoch: epoch)
            #expect(r.plan.kind == .error(.fetchSessionIdNotFound))
            #expect(r.completion == FetchCompletion(errorCode: .fetchSessionIdNotFound, sessionId: 0, include: []))
        }
    }

    @Test func aWrongEpochIsInvalidAndKeepsTheSession() {
        var cache = FetchSessionCache(maxEntries: 10)
        let id = Self.createSession(&cache, [Self.a, Self.b])
        for wrong: Int32 in [2, 7, -5] {
            let r = Self.incremental(&cache, id, epoch: wrong)
            #expect(r.completion == FetchCompletion(errorCode: .invalidFetchSessionEpoch, sessionId: 0, include: []))
        }
        #expect(cache.epoch(of: id) == 1)
        #expect(Self.incremental(&cache, id, epoch: 1).completion.errorCode == .none)
        #expect(cache.epoch(of: id) == 2)
        // The same epoch again (a retried request) is refused.
        #expect(Self.incremental(&cache, id, epoch: 1).completion.errorCode == .invalidFetchSessionEpoch)
        #expect(Self.incremental(&cache, id, epoch: 2).completion.errorCode == .none)
    }

    @Test func aSessionOvertakenWhileWaitingAnswersInvalidEpochWithItsId() {
        var cache = FetchSessionCache(maxEntries: 10)
        let id = Self.createSession(&cache, [Self.a])
        let slow = cache.plan(sessionId: id, epoch: 1, usesTopicIds: false, isFollower: false, fetchData: [], forgotten: [], connection: Self.conn, now: 0)
        _ = Self.incremental(&cache, id, epoch: 2)
        let completion = cache.complete(slow, outcomes: [Self.out(100)], connection: Self.conn, now: 0)
        #expect(completion == FetchCompletion(errorCode: .invalidFetchSessionEpoch, sessionId: id, include: []))
    }

    @Test func topicIdsAndNamesDoNotMix() {
        var cache = FetchSessionCache(maxEntries: 10)
        let x = KafkaUUID.random()
        let idSession = Self.createSession(&cache, [.id(x, 0), .id(x, 1)], topicIds: true)
        #expect(Self.incremental(&cache, idSession, epoch: 1, topicIds: false).completion.errorCode == .fetchSessionTopicIdError)
        let nameSession = Self.createSession(&cache, [Self.a])
        #expect(Self.incremental(&cache, nameSession, epoch: 1, topicIds: true).completion.errorCode == .fetchSessionTopicIdError)
        // Both still usable with the right kind of request.
        let r = Self.incremental(&cache, idSession, epoch: 1, forget: [.id(x, 1)], topicIds: true)
        #expect(r.completion.errorCode == .none)
        #expect(cache.partitions(of: idSession) == [.id(x, 0)])
        #expect(Self.incremental(&cache, nameSession, epoch: 1).completion.errorCode == .none)
    }

    @Test func anIncrementalResponseCarriesOnlyPartitionsWithNews() {
        var cache = FetchSessionCache(maxEntries: 10)
        let id = Self.createSession(&cache, [Self.a, Self.b, Self.c])  // all hw 10, log start 0
        // Nothing changed.
        #expect(Self.included(Self.incremental(&cache, id, epoch: 1)).isEmpty)
        // A new high watermark on b, a new log start offset on c.
        let r = Self.incremental(&cache, id, epoch: 2) { k in k == Self.b ? Self.out(hw: 11) : k == Self.c ? Self.out(lso: 3) : Self.out() }
        #expect(Self.included(r) == [Self.b, Self.c])
        #expect(Self.included(Self.incremental(&cache, id, epoch: 3) { k in k == Self.b ? Self.out(hw: 11) : k == Self.c ? Self.out(lso: 3) : Self.out() }).isEmpty)
        // From here on b's high watermark is 11 and c's log start offset 3.
        let steady: (FetchSessionKey) -> FetchPartitionOutcome = { k in Self.out(hw: k == Self.b ? 11 : 10, lso: k == Self.c ? 3 : 0) }
        let aFails: (FetchSessionKey) -> FetchPartitionOutcome = { k in k == Self.a ? Self.out(hw: -1, lso: -1, error: .notLeaderOrFollower) : steady(k) }
        // An error is always sent; once it clears the partition is sent again (hw forgotten).
        #expect(Self.included(Self.incremental(&cache, id, epoch: 4, outcome: aFails)) == [Self.a])
        #expect(Self.included(Self.incremental(&cache, id, epoch: 5, outcome: aFails)) == [Self.a])
        #expect(Self.included(Self.incremental(&cache, id, epoch: 6, outcome: steady)) == [Self.a])
        #expect(Self.included(Self.incremental(&cache, id, epoch: 7, outcome: steady)).isEmpty)
        // A preferred read replica is always sent.
        let preferred = Self.incremental(&cache, id, epoch: 8) { k in
            var o = steady(k)
            o.hasPreferredReadReplica = k == Self.c
            return o
        }
        #expect(Self.included(preferred) == [Self.c])
    }

    @Test func partitionsThatReturnedRecordsRotateToTheEnd() {
        var cache = FetchSessionCache(maxEntries: 10)
        let id = Self.createSession(&cache, [Self.a, Self.b, Self.c])
        #expect(cache.partitions(of: id) == [Self.a, Self.b, Self.c])
        // a returns records: it is read last next time.
        var r = Self.incremental(&cache, id, epoch: 1) { k in k == Self.a ? Self.out(100) : Self.out() }
        #expect(r.plan.partitions.map(\.key) == [Self.a, Self.b, Self.c])
        #expect(Self.included(r) == [Self.a])
        #expect(cache.partitions(of: id) == [Self.b, Self.c, Self.a])
        // b and c return records: read order b, c, a; next a, b, c.
        r = Self.incremental(&cache, id, epoch: 2) { k in k == Self.a ? Self.out() : Self.out(50) }
        #expect(r.plan.partitions.map(\.key) == [Self.b, Self.c, Self.a])
        #expect(Self.included(r) == [Self.b, Self.c])
        #expect(cache.partitions(of: id) == [Self.a, Self.b, Self.c])
        // A changed high watermark without records does not rotate.
        r = Self.incremental(&cache, id, epoch: 3) { k in k == Self.a ? Self.out(hw: 12) : Self.out() }
        #expect(Self.included(r) == [Self.a])
        #expect(cache.partitions(of: id) == [Self.a, Self.b, Self.c])
        // Many rounds keep the order consistent (the order array is compacted).
        for epoch in Int32(4)..<200 {
            let first = cache.partitions(of: id)!.first!
            r = Self.incremental(&cache, id, epoch: epoch) { k in k == first ? Self.out(10, hw: 12) : Self.out(hw: k == Self.a ? 12 : 10) }
            #expect(cache.partitions(of: id)!.last == first)
            #expect(cache.partitions(of: id)!.count == 3)
        }
    }

    @Test func theFirstFullResponseAlreadyRotates() {
        var cache = FetchSessionCache(maxEntries: 10)
        let id = Self.createSession(&cache, [Self.a, Self.b, Self.c], outcomes: [Self.out(100), Self.out(), Self.out()])
        #expect(cache.partitions(of: id) == [Self.b, Self.c, Self.a])
    }

    @Test func incrementalRequestsAddUpdateAndForgetPartitions() {
        var cache = FetchSessionCache(maxEntries: 10)
        let id = Self.createSession(&cache, [Self.a, Self.b])
        // d added (at the end, sent since its high watermark is new to the session), b updated in place.
        let add: Data = [(Self.b, FetchPartitionRequest(fetchOffset: 42, maxBytes: 100)), (Self.d, FetchPartitionRequest(fetchOffset: 7, maxBytes: 200))]
        let r = Self.incremental(&cache, id, epoch: 1, add: add, forget: [Self.a])
        #expect(cache.partitions(of: id) == [Self.b, Self.d])
        #expect(r.plan.partitions.map(\.key) == [Self.b, Self.d])
        #expect(r.plan.partitions[0].request == FetchPartitionRequest(fetchOffset: 42, maxBytes: 100))
        #expect(Self.included(r) == [Self.d])
        #expect(cache.request(of: id, Self.d)?.fetchOffset == 7)
        // Partitions not named in a request keep their last request.
        let next = Self.incremental(&cache, id, epoch: 2)
        #expect(next.plan.partitions.map(\.request.fetchOffset) == [42, 7])
        // Forgetting a partition that is not in the session is harmless.
        #expect(Self.incremental(&cache, id, epoch: 3, forget: [Self.c]).completion.errorCode == .none)
    }

    @Test func forgettingEveryPartitionClosesTheSession() {
        var cache = FetchSessionCache(maxEntries: 10)
        let id = Self.createSession(&cache, [Self.a, Self.b])
        let r = Self.incremental(&cache, id, epoch: 1, forget: [Self.a, Self.b])
        #expect(r.plan.kind == .sessionless)
        #expect(r.completion == FetchCompletion(errorCode: .none, sessionId: 0, include: []))
        #expect(!cache.contains(id))
    }

    @Test func aFullFetchClosesTheSessionItNames() {
        var cache = FetchSessionCache(maxEntries: 10)
        let id = Self.createSession(&cache, [Self.a])
        // Epoch 0 with the id: closed, and a new one made.
        let plan = cache.plan(sessionId: id, epoch: 0, usesTopicIds: false, isFollower: false, fetchData: Self.data([Self.b]), forgotten: [], connection: Self.conn, now: 0)
        #expect(!cache.contains(id))
        let renewed = cache.complete(plan, outcomes: [Self.out()], connection: Self.conn, now: 0).sessionId
        #expect(renewed > 0 && renewed != id)
        #expect(cache.partitions(of: renewed) == [Self.b])
        // Epoch -1 with the id: closed, none made.
        let final = cache.plan(sessionId: renewed, epoch: -1, usesTopicIds: false, isFollower: false, fetchData: Self.data([Self.b]), forgotten: [], connection: Self.conn, now: 0)
        #expect(final.kind == .sessionless)
        #expect(cache.complete(final, outcomes: [Self.out()], connection: Self.conn, now: 0).sessionId == 0)
        #expect(cache.count == 0)
    }

    @Test func aFullRequestNamingAPartitionTwiceKeepsOneEntry() {
        var cache = FetchSessionCache(maxEntries: 10)
        let data: Data = [(Self.a, FetchPartitionRequest(fetchOffset: 1, maxBytes: 10)), (Self.b, FetchPartitionRequest(fetchOffset: 0, maxBytes: 10)),
                          (Self.a, FetchPartitionRequest(fetchOffset: 5, maxBytes: 10))]
        let plan = cache.plan(sessionId: 0, epoch: 0, usesTopicIds: false, isFollower: false, fetchData: data, forgotten: [], connection: Self.conn, now: 0)
        #expect(plan.partitions.map(\.key) == [Self.a, Self.b])
        #expect(plan.partitions[0].request.fetchOffset == 5)
        let id = cache.complete(plan, outcomes: [Self.out(), Self.out()], connection: Self.conn, now: 0).sessionId
        #expect(cache.partitions(of: id) == [Self.a, Self.b])
    }

    @Test func noSlotsMeansNoSessions() {
        var cache = FetchSessionCache(maxEntries: 0)
        #expect(Self.createSession(&cache, [Self.a]) == 0)
        #expect(cache.count == 0)
    }

    @Test func aStaleSessionIsEvictedFirst() {
        var cache = FetchSessionCache(maxEntries: 2, evictionMs: 100)
        let s1 = Self.createSession(&cache, [Self.a, Self.b, Self.c], now: 0)
        let s2 = Self.createSession(&cache, [Self.a], now: 0)
        // Full and nothing evictable yet (both new, both used within evictionMs).
        #expect(Self.createSession(&cache, [Self.a, Self.b, Self.c, Self.d], now: 50) == 0)
        #expect(cache.count == 2)
        _ = Self.incremental(&cache, s2, epoch: 1, now: 150)
        // s1 has been unused for more than evictionMs: it goes, even though it is bigger.
        let s3 = Self.createSession(&cache, [Self.a], now: 200)
        #expect(s3 > 0)
        #expect(!cache.contains(s1) && cache.contains(s2) && cache.contains(s3))
        #expect(cache.evictions == 1)
    }

    @Test func biggerAndPrivilegedSessionsWinWhenNoneIsStale() {
        var cache = FetchSessionCache(maxEntries: 2, evictionMs: 100)
        let small = Self.createSession(&cache, [Self.a], now: 0)
        let big = Self.createSession(&cache, [Self.a, Self.b, Self.c], now: 0)
        // Both used at 150 (so older than evictionMs since creation: evictable), none stale at 200.
        _ = Self.incremental(&cache, small, epoch: 1, now: 150)
        _ = Self.incremental(&cache, big, epoch: 1, now: 150)
        // A 2-partition session evicts the 1-partition one.
        let two = Self.createSession(&cache, [Self.a, Self.b], now: 200)
        #expect(two > 0 && !cache.contains(small) && cache.contains(big))
        // A 1-partition consumer session evicts nothing: `two` is new, `big` is bigger.
        #expect(Self.createSession(&cache, [Self.a], now: 210) == 0)
        // A follower's session is worth more than any consumer session that is evictable by
        // privileged sessions (consumers' always are).
        let follower = Self.createSession(&cache, [Self.a], now: 220, follower: true)
        #expect(follower > 0)
        #expect(cache.contains(follower) && cache.count == 2)
        #expect(!cache.contains(two), "the smallest consumer session goes first")
        // A consumer cannot evict a new follower session.
        _ = Self.incremental(&cache, big, epoch: 2, now: 230)
        #expect(Self.createSession(&cache, [Self.a, Self.b, Self.c, Self.d], now: 240) > 0, "big (evictable, 3 partitions) yields to 4")
        #expect(cache.contains(follower))
        #expect(Self.createSession(&cache, [Self.a, Self.b, Self.c, Self.d, FetchSessionKey.name("v", 0)], now: 250) == 0)
    }

    @Test func aSessionEvictedWhileAFetchWaitedAnswersEverythingItRead() {
        var cache = FetchSessionCache(maxEntries: 10)
        let id = Self.createSession(&cache, [Self.a, Self.b])
        let plan = cache.plan(sessionId: id, epoch: 1, usesTopicIds: false, isFollower: false, fetchData: [], forgotten: [], connection: Self.conn, now: 0)
        cache.remove(id)
        let completion = cache.complete(plan, outcomes: [Self.out(), Self.out()], connection: Self.conn, now: 0)
        #expect(completion == FetchCompletion(errorCode: .none, sessionId: id, include: [0, 1]))
        #expect(Self.incremental(&cache, id, epoch: 2).completion.errorCode == .fetchSessionIdNotFound)
    }

    /// Sessionless fetches in a fixed order: the partition that got records is read last next
    /// time, on the same connection only; the response keeps the request's order.
    @Test func sessionlessFetchesReadTheLeastRecentlyServedFirst() {
        var cache = FetchSessionCache(maxEntries: 10)
        func fetch(_ keys: [FetchSessionKey], connection: UInt64 = Self.conn, data withData: Set<FetchSessionKey>) -> [FetchSessionKey] {
            let plan = cache.plan(sessionId: 0, epoch: -1, usesTopicIds: false, isFollower: false, fetchData: Self.data(keys), forgotten: [], connection: connection, now: 0)
            let completion = cache.complete(plan, outcomes: plan.partitions.map { withData.contains($0.key) ? Self.out(10) : Self.out() }, connection: connection, now: 0)
            #expect(completion.include.map { plan.partitions[$0].key } == keys, "response in request order")
            return plan.partitions.map(\.key)
        }
        #expect(fetch([Self.a, Self.b, Self.c], data: [Self.a]) == [Self.a, Self.b, Self.c])
        #expect(fetch([Self.a, Self.b, Self.c], data: [Self.b]) == [Self.b, Self.c, Self.a])
        #expect(fetch([Self.a, Self.b, Self.c], data: [Self.c]) == [Self.c, Self.a, Self.b])
        #expect(fetch([Self.a, Self.b, Self.c], data: []) == [Self.a, Self.b, Self.c])
        // Another connection has its own history.
        #expect(fetch([Self.a, Self.b, Self.c], connection: 2, data: []) == [Self.a, Self.b, Self.c])
        // Partitions absent from a request are forgotten.
        #expect(fetch([Self.c], data: []) == [Self.c])
        #expect(fetch([Self.a, Self.b, Self.c], data: []) == [Self.a, Self.b, Self.c])
    }

    @Test func theSessionlessHistoryIsBounded() {
        var cache = FetchSessionCache(maxEntries: 10, rotationConnections: 8)
        for connection in UInt64(0)..<100 {
            let plan = cache.plan(sessionId: 0, epoch: -1, usesTopicIds: false, isFollower: false, fetchData: Self.data([Self.a, Self.b]), forgotten: [], connection: connection, now: 0)
            _ = cache.complete(plan, outcomes: [Self.out(10), Self.out()], connection: connection, now: 0)
            #expect(cache.rotationHistoryCount <= 8)
        }
        // The most recent connection still rotates.
        let plan = cache.plan(sessionId: 0, epoch: -1, usesTopicIds: false, isFollower: false, fetchData: Self.data([Self.a, Self.b]), forgotten: [], connection: 99, now: 0)
        #expect(plan.partitions.map(\.key) == [Self.b, Self.a])
    }
}
