import KafkaProtocol
import KafkaWire
import NIOCore
import Testing
@testable import SamsaCoordinators

/// Drives the transaction coordinator like a broker would, without sockets: appends succeed at once
/// (unless `failAppends` or `holdAppends`), appended records are kept for replay, answers are
/// collected by token and marker requests in `markers`.
struct TxnHarness {
    var coordinator: TransactionCoordinator
    var now: Int64 = 1_000_000
    var replies: [RequestToken: TransactionReply] = [:]
    var records: [TransactionRecord] = []
    var markers: [TransactionMarkers] = []
    var held: [UInt64] = []
    var nextToken: RequestToken = 0
    var failAppends: KafkaErrorCode?
    var holdAppends = false

    static let firstProducerId: Int64 = 1000

    init(config: TransactionCoordinatorConfig = TransactionCoordinatorConfig(), loaded: Bool = true) {
        let ids = Counter(Self.firstProducerId)
        coordinator = TransactionCoordinator(config: config) { ids.next() }
        if loaded {
            let all = Array(0..<config.transactionLogPartitions)
            coordinator.beginLoading(all)
            for p in all { #expect(coordinator.finishLoading(p).isEmpty) }
        }
    }

    final class Counter: @unchecked Sendable {
        var n: Int64
        init(_ start: Int64) { n = start }
        func next() -> Int64 { defer { n += 1 }; return n }
    }

    mutating func run(_ actions: [TransactionAction]) {
        var queue = actions
        while !queue.isEmpty {
            switch queue.removeFirst() {
            case let .reply(token, reply): replies[token] = reply
            case let .writeMarkers(m): markers.append(m)
            case let .append(id, partition, record):
                #expect(partition == coordinator.partition(for: try! TransactionRecords.decodeKey(record.key)))
                if holdAppends { held.append(id); continue }
                if failAppends == nil { records.append(record) }
                queue += coordinator.appendCompleted(id, error: failAppends, now: now)
            }
        }
    }

    mutating func releaseHeld(error: KafkaErrorCode? = nil) {
        holdAppends = false
        let ids = held
        held = []
        for id in ids { run(coordinator.appendCompleted(id, error: error, now: now)) }
    }

    mutating func token() -> RequestToken { nextToken += 1; return nextToken }

    /// InitProducerId; returns the answer (nil while its append is held).
    @discardableResult
    mutating func initPid(_ id: String? = "tx", timeout: Int32 = 60_000, expected: (Int64, Int16)? = nil) -> TransactionReply? {
        let t = token()
        run(coordinator.initProducerId(t, transactionalId: id, timeoutMs: timeout, expected: expected.map { (producerId: $0.0, epoch: $0.1) },
                                       now: now))
        return replies[t]
    }

    @discardableResult
    mutating func add(_ id: String = "tx", pid: Int64, epoch: Int16, _ partitions: [TopicPartition]) -> TransactionReply? {
        let t = token()
        run(coordinator.addPartitions(t, transactionalId: id, producerId: pid, producerEpoch: epoch, partitions: partitions, now: now))
        return replies[t]
    }

    @discardableResult
    mutating func addOffsets(_ id: String = "tx", pid: Int64, epoch: Int16, group: String) -> TransactionReply? {
        let t = token()
        run(coordinator.addOffsets(t, transactionalId: id, producerId: pid, producerEpoch: epoch, groupId: group, now: now))
        return replies[t]
    }

    @discardableResult
    mutating func end(_ id: String = "tx", pid: Int64, epoch: Int16, commit: Bool) -> TransactionReply? {
        let t = token()
        run(coordinator.endTxn(t, transactionalId: id, producerId: pid, producerEpoch: epoch, commit: commit, now: now))
        return replies[t]
    }

    mutating func markersDone(_ id: String = "tx") {
        let m = markers.removeLast()
        #expect(m.transactionalId == id)
        run(coordinator.markersWritten(transactionalId: id, producerId: m.producerId, producerEpoch: m.producerEpoch, now: now))
    }

    mutating func tick() { run(coordinator.tick(now: now)) }

    func state(_ id: String = "tx") -> TransactionState? { coordinator.metadata(of: id)?.state }
    func epoch(_ id: String = "tx") -> Int16? { coordinator.metadata(of: id)?.producerEpoch }

    /// A coordinator rebuilt from this one's records, and what it asked for when the loads finished.
    func replayed(config: TransactionCoordinatorConfig = TransactionCoordinatorConfig()) throws -> (TransactionCoordinator, [TransactionAction]) {
        var c = TransactionCoordinator(config: config) { 99_999 }
        let all = Array(0..<config.transactionLogPartitions)
        c.beginLoading(all)
        for r in records { try c.replay(key: r.key, value: r.value) }
        let actions = all.flatMap { c.finishLoading($0) }
        return (c, actions)
    }
}

func initOK(_ r: TransactionReply?) -> (pid: Int64, epoch: Int16)? {
    if case let .initProducerId(code, pid, epoch)? = r, code == .none { return (pid, epoch) }
    return nil
}

let t0 = TopicPartition("t", 0)
let t1 = TopicPartition("t", 1)
let u0 = TopicPartition("u", 0)

@Suite struct TransactionRecordsTests {
    @Test func keyAndValueAreKafkasFormat() throws {
        let m = TransactionMetadata(transactionalId: "my-txn", producerId: 42, previousProducerId: 7, producerEpoch: 3, lastProducerEpoch: 2,
                                    timeoutMs: 60_000, state: .ongoing, partitions: [t1, u0, t0], startTimestamp: 100, lastUpdateTimestamp: 200)
        let r = TransactionRecords.record(m)
        // Decoded with the generated types directly.
        var k = r.key
        #expect(try k.readKafkaInt16() == 0)
        #expect(try TransactionLogKey(from: &k, version: 0).transactionalId == "my-txn")
        #expect(k.readableBytes == 0)
        var v = r.value!
        #expect(try v.readKafkaInt16() == 1)
        let value = try TransactionLogValue(from: &v, version: 1)
        #expect(v.readableBytes == 0)
        #expect(value.producerId == 42)
        #expect(value.previousProducerId == 7)
        #expect(value.producerEpoch == 3)
        #expect(value.transactionTimeoutMs == 60_000)
        #expect(value.transactionStatus == 1)
        #expect(value.transactionPartitions?.map(\.topic) == ["t", "u"])
        #expect(value.transactionPartitions?.map(\.partitionIds) == [[0, 1], [0]])
        #expect(value.transactionStartTimestampMs == 100)
        #expect(value.transactionLastUpdateTimestampMs == 200)
        // And back: everything but the in-memory last epoch.
        var expected = m
        expected.lastProducerEpoch = -1
        #expect(try TransactionRecords.decodeKey(r.key) == "my-txn")
        #expect(try TransactionRecords.decodeValue(r.value!, transactionalId: "my-txn") == expected)
        #expect(TransactionRecords.tombstone("my-txn").value == nil)
    }

    @Test func readsVersionZeroValues() throws {
        // Kafka before KIP-915 writes version 0 (not flexible, no previous producer id).
        var b = ByteBuffer()
        b.writeInteger(Int16(0), endianness: .big)
        TransactionLogValue(producerId: 5, producerEpoch: 1, transactionTimeoutMs: 10_000, transactionStatus: 4, transactionPartitions: [],
                            transactionLastUpdateTimestampMs: 9, transactionStartTimestampMs: 8).write(to: &b, version: 0)
        let m = try TransactionRecords.decodeValue(b, transactionalId: "x")
        #expect(m.state == .completeCommit)
        #expect(m.producerId == 5 && m.producerEpoch == 1 && m.previousProducerId == -1 && m.timeoutMs == 10_000)
    }

    @Test func badRecordsThrow() {
        var b = ByteBuffer()
        b.writeInteger(Int16(1), endianness: .big)
        TransactionLogValue(transactionStatus: 9).write(to: &b, version: 1)
        #expect(throws: TransactionRecordError.unknownState(9)) { try TransactionRecords.decodeValue(b, transactionalId: "x") }
        var k = ByteBuffer()
        k.writeInteger(Int16(3), endianness: .big)
        #expect(throws: TransactionRecordError.unknownKeyVersion(3)) { try TransactionRecords.decodeKey(k) }
        #expect(throws: (any Error).self) { try TransactionRecords.decodeKey(ByteBuffer(bytes: [0])) }
    }

    @Test func partitionIsJavaHashCodeModuloPartitions() {
        #expect(TransactionRecords.partition(for: "my-txn", partitions: 50) == 45)  // hashCode -1061187895
        #expect(TransactionRecords.partition(for: "txn-1", partitions: 50) == 10)
        #expect(TransactionRecords.partition(for: "transactional-id-abc", partitions: 50) == 6)
    }

    @Test func stateNames() {
        #expect(TransactionState.allCases.map(\.rawValue) == Array(0...7))
        #expect(TransactionState(name: "PrepareEpochFence") == .prepareEpochFence)
        #expect(TransactionState(name: "Ongoing") == .ongoing)
        #expect(TransactionState(name: "ongoing") == nil)
    }
}

@Suite struct TransactionCoordinatorTests {
    @Test func initProducerIdCreatesAndBumps() throws {
        var h = TxnHarness()
        let first = try #require(initOK(h.initPid()))
        #expect(first.pid == TxnHarness.firstProducerId && first.epoch == 0)
        #expect(h.state() == .empty)
        #expect(h.records.count == 1)
        // Without the client's producer id (a restarted producer): the epoch is bumped.
        let second = try #require(initOK(h.initPid()))
        #expect(second.pid == first.pid && second.epoch == 1)
        #expect(h.coordinator.metadata(of: "tx")?.lastProducerEpoch == -1)
        // A new timeout is taken.
        _ = h.initPid(timeout: 5000)
        #expect(h.coordinator.metadata(of: "tx")?.timeoutMs == 5000)
    }

    @Test func initProducerIdRejectsBadRequests() {
        var config = TransactionCoordinatorConfig()
        config.maxTransactionTimeoutMs = 100_000
        var h = TxnHarness(config: config)
        #expect(h.initPid(timeout: 0) == .initProducerId(.invalidTransactionTimeout, producerId: -1, producerEpoch: -1))
        #expect(h.initPid(timeout: -5) == .initProducerId(.invalidTransactionTimeout, producerId: -1, producerEpoch: -1))
        #expect(h.initPid(timeout: 100_001) == .initProducerId(.invalidTransactionTimeout, producerId: -1, producerEpoch: -1))
        #expect(initOK(h.initPid(timeout: 100_000)) != nil)
        #expect(h.initPid("") == .initProducerId(.invalidRequest, producerId: -1, producerEpoch: -1))
    }

    @Test func idempotentProducerGetsAFreshIdWithoutRecords() {
        var h = TxnHarness()
        #expect(h.initPid(nil) == .initProducerId(.none, producerId: 1000, producerEpoch: 0))
        #expect(h.initPid(nil) == .initProducerId(.none, producerId: 1001, producerEpoch: 0))
        #expect(h.records.isEmpty)
    }

    @Test func commitGoesThroughPrepareAndComplete() throws {
        var h = TxnHarness()
        let p = try #require(initOK(h.initPid()))
        #expect(h.add(pid: p.pid, epoch: p.epoch, [t0, t1]) == .addPartitions(.none))
        #expect(h.state() == .ongoing)
        #expect(h.coordinator.metadata(of: "tx")?.startTimestamp == h.now)
        let recordsBefore = h.records.count
        // Partitions already in the transaction: no record.
        #expect(h.add(pid: p.pid, epoch: p.epoch, [t0]) == .addPartitions(.none))
        #expect(h.records.count == recordsBefore)
        h.now += 10
        #expect(h.addOffsets(pid: p.pid, epoch: p.epoch, group: "g") == .addOffsets(.none))
        let offsets = TopicPartition("__consumer_offsets", 3)  // "g".hashCode = 103
        #expect(h.coordinator.metadata(of: "tx")?.partitions == [t0, t1, offsets])
        #expect(h.coordinator.metadata(of: "tx")?.startTimestamp == h.now - 10)

        #expect(h.end(pid: p.pid, epoch: p.epoch, commit: true) == .endTxn(.none))
        #expect(h.state() == .prepareCommit)
        #expect(h.markers == [TransactionMarkers(transactionalId: "tx", producerId: p.pid, producerEpoch: p.epoch, commit: true,
                                                 partitions: [offsets, t0, t1])])
        // While the markers are written.
        #expect(h.end(pid: p.pid, epoch: p.epoch, commit: true) == .endTxn(.concurrentTransactions))
        #expect(h.end(pid: p.pid, epoch: p.epoch, commit: false) == .endTxn(.invalidTxnState))
        #expect(h.add(pid: p.pid, epoch: p.epoch, [u0]) == .addPartitions(.concurrentTransactions))
        #expect(h.initPid() == .initProducerId(.concurrentTransactions, producerId: -1, producerEpoch: -1))

        h.markersDone()
        #expect(h.state() == .completeCommit)
        #expect(h.coordinator.metadata(of: "tx")?.partitions == [])
        // A retried EndTxn succeeds; the other outcome is refused.
        #expect(h.end(pid: p.pid, epoch: p.epoch, commit: true) == .endTxn(.none))
        #expect(h.end(pid: p.pid, epoch: p.epoch, commit: false) == .endTxn(.invalidTxnState))
        // The next transaction starts from CompleteCommit.
        h.now += 100
        #expect(h.add(pid: p.pid, epoch: p.epoch, [u0]) == .addPartitions(.none))
        #expect(h.coordinator.metadata(of: "tx")?.partitions == [u0])
        #expect(h.coordinator.metadata(of: "tx")?.startTimestamp == h.now)
    }

    @Test func abortGoesThroughPrepareAndComplete() throws {
        var h = TxnHarness()
        let p = try #require(initOK(h.initPid()))
        #expect(h.add(pid: p.pid, epoch: p.epoch, [t0]) == .addPartitions(.none))
        #expect(h.end(pid: p.pid, epoch: p.epoch, commit: false) == .endTxn(.none))
        #expect(h.state() == .prepareAbort)
        #expect(h.markers.last?.commit == false)
        #expect(h.end(pid: p.pid, epoch: p.epoch, commit: false) == .endTxn(.concurrentTransactions))
        #expect(h.end(pid: p.pid, epoch: p.epoch, commit: true) == .endTxn(.invalidTxnState))
        h.markersDone()
        #expect(h.state() == .completeAbort)
        #expect(h.end(pid: p.pid, epoch: p.epoch, commit: false) == .endTxn(.none))
        #expect(h.end(pid: p.pid, epoch: p.epoch, commit: true) == .endTxn(.invalidTxnState))
        // Stale marker completions are ignored.
        #expect(h.coordinator.markersWritten(transactionalId: "tx", producerId: p.pid, producerEpoch: p.epoch, now: h.now).isEmpty)
    }

    @Test func requestErrors() throws {
        var h = TxnHarness()
        let p = try #require(initOK(h.initPid()))
        #expect(h.end(pid: p.pid, epoch: p.epoch, commit: true) == .endTxn(.invalidTxnState))  // Empty
        #expect(h.end(pid: p.pid + 1, epoch: p.epoch, commit: true) == .endTxn(.invalidProducerIdMapping))
        #expect(h.end("nope", pid: p.pid, epoch: p.epoch, commit: true) == .endTxn(.invalidProducerIdMapping))
        #expect(h.end("", pid: p.pid, epoch: p.epoch, commit: true) == .endTxn(.invalidRequest))
        #expect(h.add(pid: p.pid + 1, epoch: p.epoch, [t0]) == .addPartitions(.invalidProducerIdMapping))
        #expect(h.add("nope", pid: p.pid, epoch: p.epoch, [t0]) == .addPartitions(.invalidProducerIdMapping))
        #expect(h.add("", pid: p.pid, epoch: p.epoch, [t0]) == .addPartitions(.invalidRequest))
        #expect(h.add(pid: p.pid, epoch: p.epoch + 1, [t0]) == .addPartitions(.producerFenced))
        #expect(h.addOffsets(pid: p.pid, epoch: p.epoch, group: "") == .addOffsets(.invalidGroupId))
        #expect(h.addOffsets(pid: p.pid, epoch: 7, group: "g") == .addOffsets(.producerFenced))
        #expect(h.state() == .empty)
    }

    @Test func verificationFormChecksPartitionsWithoutAppending() throws {
        var h = TxnHarness()
        let p = try #require(initOK(h.initPid()))
        func verify(_ id: String = "tx", pid: Int64 = p.pid, epoch: Int16 = p.epoch, _ parts: [TopicPartition] = [t0, t1]) -> [TopicPartition: KafkaErrorCode] {
            h.coordinator.verifyPartitions(transactionalId: id, producerId: pid, producerEpoch: epoch, partitions: parts)
        }
        #expect(verify() == [t0: .invalidTxnState, t1: .invalidTxnState])  // Empty: nothing in a transaction
        #expect(h.add(pid: p.pid, epoch: p.epoch, [t0]) == .addPartitions(.none))
        let records = h.records.count
        #expect(verify() == [t0: .none, t1: .invalidTxnState])
        #expect(h.records.count == records)
        #expect(verify(epoch: p.epoch + 1) == [t0: .producerFenced, t1: .producerFenced])
        #expect(verify(pid: p.pid + 1) == [t0: .invalidProducerIdMapping, t1: .invalidProducerIdMapping])
        #expect(verify("nope") == [t0: .invalidProducerIdMapping, t1: .invalidProducerIdMapping])
        #expect(verify("") == [t0: .invalidRequest, t1: .invalidRequest])
        // While more partitions are being added the committed ones still verify; during EndTxn they do not.
        h.holdAppends = true
        _ = h.add(pid: p.pid, epoch: p.epoch, [t1])
        #expect(verify() == [t0: .none, t1: .invalidTxnState])
        h.releaseHeld()
        #expect(verify() == [t0: .none, t1: .none])
        h.holdAppends = true
        _ = h.end(pid: p.pid, epoch: p.epoch, commit: true)
        #expect(verify() == [t0: .concurrentTransactions, t1: .concurrentTransactions])
        h.releaseHeld()
        #expect(verify() == [t0: .invalidTxnState, t1: .invalidTxnState])  // PrepareCommit
    }

    @Test func olderClientsAreToldInvalidProducerEpoch() throws {
        var h = TxnHarness()
        let p = try #require(initOK(h.initPid()))
        _ = try #require(initOK(h.initPid()))  // p.epoch is now stale
        let endReply = h.end(pid: p.pid, epoch: p.epoch, commit: true)
        let fenced = try #require(endReply)
        #expect(fenced == .endTxn(.producerFenced))
        #expect(fenced.forVersion(1) == .endTxn(.invalidProducerEpoch))
        #expect(fenced.forVersion(2) == .endTxn(.producerFenced))
        let addReply = h.add(pid: p.pid, epoch: p.epoch, [t0])
        let added = try #require(addReply)
        #expect(added.forVersion(0) == .addPartitions(.invalidProducerEpoch))
        #expect(added.forVersion(3) == .addPartitions(.producerFenced))
        let offsetsReply = h.addOffsets(pid: p.pid, epoch: p.epoch, group: "g")
        let offsets = try #require(offsetsReply)
        #expect(offsets.forVersion(1) == .addOffsets(.invalidProducerEpoch))
        let initReply = h.initPid(expected: (p.pid, 42))
        let initFenced = try #require(initReply)
        #expect(initFenced.forVersion(3) == .initProducerId(.invalidProducerEpoch, producerId: -1, producerEpoch: -1))
        #expect(initFenced.forVersion(4) == .initProducerId(.producerFenced, producerId: -1, producerEpoch: -1))
        // Other errors are left alone.
        #expect(TransactionReply.endTxn(.invalidTxnState).forVersion(0) == .endTxn(.invalidTxnState))
    }

    @Test func zombieIsFencedAndItsTransactionAborted() throws {
        var h = TxnHarness()
        let zombie = try #require(initOK(h.initPid()))
        #expect(h.add(pid: zombie.pid, epoch: zombie.epoch, [t0, u0]) == .addPartitions(.none))
        // A new instance with the same transactional id: the open transaction is aborted with a bumped epoch.
        #expect(h.initPid() == .initProducerId(.concurrentTransactions, producerId: -1, producerEpoch: -1))
        #expect(h.state() == .prepareAbort)
        #expect(h.epoch() == zombie.epoch + 1)
        #expect(h.markers == [TransactionMarkers(transactionalId: "tx", producerId: zombie.pid, producerEpoch: zombie.epoch + 1, commit: false,
                                                 partitions: [t0, u0])])
        // The zombie can neither add nor commit.
        #expect(h.add(pid: zombie.pid, epoch: zombie.epoch, [t1]) == .addPartitions(.producerFenced))
        #expect(h.end(pid: zombie.pid, epoch: zombie.epoch, commit: true) == .endTxn(.producerFenced))
        // Retried before the markers are written: still busy.
        #expect(h.initPid() == .initProducerId(.concurrentTransactions, producerId: -1, producerEpoch: -1))
        h.markersDone()
        #expect(h.state() == .completeAbort)
        let fresh = try #require(initOK(h.initPid()))
        #expect(fresh.pid == zombie.pid && fresh.epoch == zombie.epoch + 2)
        #expect(h.add(pid: zombie.pid, epoch: zombie.epoch, [t1]) == .addPartitions(.producerFenced))
        #expect(h.end(pid: zombie.pid, epoch: zombie.epoch + 1, commit: false) == .endTxn(.producerFenced))
        #expect(h.add(pid: fresh.pid, epoch: fresh.epoch, [t1]) == .addPartitions(.none))
    }

    @Test func fencingPendsTheNewEpochWhileTheAbortIsAppended() throws {
        var h = TxnHarness()
        let zombie = try #require(initOK(h.initPid()))
        #expect(h.add(pid: zombie.pid, epoch: zombie.epoch, [t0]) == .addPartitions(.none))
        h.holdAppends = true
        #expect(h.initPid() == nil)
        let token = h.nextToken
        #expect(h.state() == .prepareEpochFence)
        #expect(h.coordinator.isPending("tx"))
        #expect(h.end(pid: zombie.pid, epoch: zombie.epoch, commit: true) == .endTxn(.producerFenced))
        // The append fails: back to the zombie's transaction, the client is told to find the coordinator.
        h.releaseHeld(error: .notLeaderOrFollower)
        #expect(h.replies[token] == .initProducerId(.notCoordinator, producerId: -1, producerEpoch: -1))
        #expect(h.state() == .ongoing)
        #expect(h.epoch() == zombie.epoch)
        #expect(h.markers.isEmpty)
    }

    @Test func kip360EpochBumpWithExpectedProducerIdAndEpoch() throws {
        var h = TxnHarness()
        let p = try #require(initOK(h.initPid()))
        let bumped = try #require(initOK(h.initPid(expected: (p.pid, p.epoch))))
        #expect(bumped.pid == p.pid && bumped.epoch == p.epoch + 1)
        #expect(h.coordinator.metadata(of: "tx")?.lastProducerEpoch == p.epoch)
        // The same request retried (its answer was lost): the same epoch again, no second bump.
        let retried = try #require(initOK(h.initPid(expected: (p.pid, p.epoch))))
        #expect(retried.epoch == bumped.epoch)
        // An epoch that is neither the current nor the last one, or another producer id: fenced.
        #expect(h.initPid(expected: (p.pid, 17)) == .initProducerId(.producerFenced, producerId: -1, producerEpoch: -1))
        #expect(h.initPid(expected: (p.pid + 5, bumped.epoch)) == .initProducerId(.producerFenced, producerId: -1, producerEpoch: -1))
        // A new transactional id accepts any expected producer (a client upgraded to KIP-360).
        #expect(initOK(h.initPid("other", expected: (77, 3))) != nil)
    }

    @Test func exhaustedEpochRotatesTheProducerId() throws {
        var h = TxnHarness()
        let old = TransactionMetadata(transactionalId: "tx", producerId: 500, producerEpoch: Int16.max - 1, timeoutMs: 60_000,
                                      state: .completeCommit, lastUpdateTimestamp: h.now)
        try h.coordinator.replay(key: TransactionRecords.key("tx"), value: TransactionRecords.value(old))
        let rotated = try #require(initOK(h.initPid(expected: (500, Int16.max - 1))))
        #expect(rotated.pid == TxnHarness.firstProducerId && rotated.epoch == 0)
        #expect(h.coordinator.metadata(of: "tx")?.previousProducerId == 500)
        // The retry (with the old producer id, exhausted epoch) gets the same answer.
        #expect(initOK(h.initPid(expected: (500, Int16.max - 1)))! == rotated)
    }

    @Test func expiredTransactionIsAbortedWithAnEpochBump() throws {
        var h = TxnHarness()
        let p = try #require(initOK(h.initPid(timeout: 60_000)))
        #expect(h.add(pid: p.pid, epoch: p.epoch, [t0]) == .addPartitions(.none))
        h.now += 60_000
        h.tick()
        #expect(h.state() == .ongoing)
        h.now += 1
        h.tick()
        #expect(h.state() == .prepareAbort)
        #expect(h.epoch() == p.epoch + 1)
        #expect(h.markers.last == TransactionMarkers(transactionalId: "tx", producerId: p.pid, producerEpoch: p.epoch + 1, commit: false,
                                                      partitions: [t0]))
        // The producer that let it expire is fenced.
        #expect(h.end(pid: p.pid, epoch: p.epoch, commit: true) == .endTxn(.producerFenced))
        h.markersDone()
        #expect(h.state() == .completeAbort)
        h.tick()
        #expect(h.state() == .completeAbort)
    }

    @Test func idleTransactionalIdsExpire() throws {
        var config = TransactionCoordinatorConfig()
        config.transactionalIdExpirationMs = 10_000
        var h = TxnHarness(config: config)
        let p = try #require(initOK(h.initPid()))
        let busy = try #require(initOK(h.initPid("busy", timeout: 900_000)))
        #expect(h.add("busy", pid: busy.pid, epoch: busy.epoch, [t0]) == .addPartitions(.none))
        h.now += 9_999
        h.tick()
        #expect(h.state() == .empty)
        h.now += 1
        h.tick()
        #expect(h.coordinator.metadata(of: "tx") == nil)
        #expect(h.records.last == TransactionRecords.tombstone("tx"))
        #expect(h.state("busy") == .ongoing)  // ongoing transactions do not expire
        #expect(h.coordinator.describe(["tx"]).first?.errorCode == KafkaErrorCode.transactionalIdNotFound.rawValue)
        #expect(h.end(pid: p.pid, epoch: p.epoch, commit: true) == .endTxn(.invalidProducerIdMapping))
        // Replay honours the tombstone.
        let (replayed, _) = try h.replayed(config: config)
        #expect(replayed.metadata(of: "tx") == nil)
        #expect(replayed.metadata(of: "busy")?.state == .ongoing)
        // A new producer starts over with a new producer id.
        let again = try #require(initOK(h.initPid()))
        #expect(again.pid != p.pid && again.epoch == 0)
    }

    @Test func pendingAppendsMakeOtherRequestsWait() throws {
        var h = TxnHarness()
        let p = try #require(initOK(h.initPid()))
        h.holdAppends = true
        #expect(h.add(pid: p.pid, epoch: p.epoch, [t0]) == nil)
        #expect(h.add(pid: p.pid, epoch: p.epoch, [t1]) == .addPartitions(.concurrentTransactions))
        #expect(h.initPid() == .initProducerId(.concurrentTransactions, producerId: -1, producerEpoch: -1))
        #expect(h.end(pid: p.pid, epoch: p.epoch, commit: true) == .endTxn(.concurrentTransactions))
        #expect(h.state() == .empty)  // not before the record is appended
        h.releaseHeld()
        #expect(h.state() == .ongoing)
        #expect(h.replies[h.nextToken - 3] == .addPartitions(.none))
    }

    @Test func failedAppendsLeaveTheStateAndMapErrors() throws {
        var h = TxnHarness()
        let p = try #require(initOK(h.initPid()))
        h.failAppends = .notEnoughReplicas
        #expect(h.add(pid: p.pid, epoch: p.epoch, [t0]) == .addPartitions(.coordinatorNotAvailable))
        #expect(h.state() == .empty)
        h.failAppends = .notLeaderOrFollower
        #expect(h.initPid("new") == .initProducerId(.notCoordinator, producerId: -1, producerEpoch: -1))
        #expect(h.coordinator.metadata(of: "new") == nil)
        h.failAppends = nil
        #expect(h.add(pid: p.pid, epoch: p.epoch, [t0]) == .addPartitions(.none))
        h.failAppends = .requestTimedOut
        #expect(h.end(pid: p.pid, epoch: p.epoch, commit: true) == .endTxn(.coordinatorNotAvailable))
        #expect(h.state() == .ongoing)
        #expect(h.markers.isEmpty)
    }

    @Test func partitionOwnershipAndLoading() throws {
        var source = TxnHarness()
        let p = try #require(initOK(source.initPid()))
        #expect(source.add(pid: p.pid, epoch: p.epoch, [t0]) == .addPartitions(.none))
        #expect(source.end(pid: p.pid, epoch: p.epoch, commit: true) == .endTxn(.none))

        var h = TxnHarness(loaded: false)
        let partition = h.coordinator.partition(for: "tx")
        #expect(h.initPid() == .initProducerId(.notCoordinator, producerId: -1, producerEpoch: -1))
        h.coordinator.beginLoading([partition])
        #expect(h.initPid() == .initProducerId(.coordinatorLoadInProgress, producerId: -1, producerEpoch: -1))
        #expect(h.end(pid: p.pid, epoch: p.epoch, commit: true) == .endTxn(.coordinatorLoadInProgress))
        #expect(h.coordinator.list(stateFilters: [], producerIdFilters: [], now: h.now).errorCode
                == KafkaErrorCode.coordinatorLoadInProgress.rawValue)
        for r in source.records { try h.coordinator.replay(key: r.key, value: r.value) }
        // A transaction left in PrepareCommit gets its markers written again.
        h.run(h.coordinator.finishLoading(partition))
        #expect(h.markers == [TransactionMarkers(transactionalId: "tx", producerId: p.pid, producerEpoch: p.epoch, commit: true, partitions: [t0])])
        h.markersDone()
        #expect(h.state() == .completeCommit)

        // Unloaded: forgotten, waiting requests told NOT_COORDINATOR.
        h.holdAppends = true
        #expect(h.initPid() == nil)
        let waiting = h.nextToken
        h.run(h.coordinator.unload(partition))
        #expect(h.replies[waiting] == .initProducerId(.notCoordinator, producerId: -1, producerEpoch: -1))
        #expect(h.coordinator.metadata(of: "tx") == nil)
        h.releaseHeld()  // the late append completion is ignored
        #expect(h.coordinator.metadata(of: "tx") == nil)
        #expect(h.initPid() == .initProducerId(.notCoordinator, producerId: -1, producerEpoch: -1))

        // A failed load refuses its ids until a later load succeeds.
        h.coordinator.beginLoading([partition])
        try h.coordinator.replay(key: source.records[0].key, value: source.records[0].value)
        h.coordinator.failLoading(partition)
        #expect(h.coordinator.metadata(of: "tx") == nil)
        #expect(h.initPid() == .initProducerId(.coordinatorNotAvailable, producerId: -1, producerEpoch: -1))
        h.coordinator.beginLoading([partition])
        #expect(h.coordinator.finishLoading(partition).isEmpty)
        #expect(initOK(h.initPid()) != nil)
    }

    @Test func replayRebuildsTheSameState() throws {
        var h = TxnHarness()
        let a = try #require(initOK(h.initPid("a")))
        _ = h.add("a", pid: a.pid, epoch: a.epoch, [t0, t1])
        _ = h.addOffsets("a", pid: a.pid, epoch: a.epoch, group: "g")
        _ = h.end("a", pid: a.pid, epoch: a.epoch, commit: true)
        h.markersDone("a")
        let b = try #require(initOK(h.initPid("b")))
        _ = h.add("b", pid: b.pid, epoch: b.epoch, [u0])
        h.now += 5
        let c = try #require(initOK(h.initPid("c", timeout: 1000)))
        _ = h.add("c", pid: c.pid, epoch: c.epoch, [t0])
        _ = h.end("c", pid: c.pid, epoch: c.epoch, commit: false)
        let d = try #require(initOK(h.initPid("d", timeout: 1000)))
        _ = h.add("d", pid: d.pid, epoch: d.epoch, [t1])
        h.now += 2000
        h.tick()  // d times out (PrepareAbort with a bumped epoch)
        #expect(h.state("d") == .prepareAbort)

        let (replayed, actions) = try h.replayed()
        // The two transactions left in PrepareAbort get their markers again.
        #expect(Set(actions.compactMap { if case let .writeMarkers(m) = $0 { m } else { nil } }) == Set(h.markers))
        #expect(actions.count == 2)
        #expect(replayed.transactionalIds == h.coordinator.transactionalIds)
        for id in h.coordinator.transactionalIds {
            var expected = try #require(h.coordinator.metadata(of: id))
            expected.lastProducerEpoch = -1  // not in the log, as in Kafka
            #expect(replayed.metadata(of: id) == expected)
        }
        #expect(replayed.describe(["a", "b", "c", "d"]) == h.coordinator.describe(["a", "b", "c", "d"]))
    }

    @Test func describeAndList() throws {
        var h = TxnHarness()
        let a = try #require(initOK(h.initPid("a", timeout: 30_000)))
        _ = h.add("a", pid: a.pid, epoch: a.epoch, [u0, t1, t0])
        let b = try #require(initOK(h.initPid("b")))
        h.now += 1000

        let described = h.coordinator.describe(["a", "b", "missing"])
        #expect(described[0] == .init(errorCode: 0, transactionalId: "a", transactionState: "Ongoing", transactionTimeoutMs: 30_000,
                                      transactionStartTimeMs: h.now - 1000, producerId: a.pid, producerEpoch: a.epoch,
                                      topics: [.init(topic: "t", partitions: [0, 1]), .init(topic: "u", partitions: [0])]))
        #expect(described[1].transactionState == "Empty" && described[1].transactionStartTimeMs == -1 && described[1].topics.isEmpty)
        #expect(described[2].errorCode == KafkaErrorCode.transactionalIdNotFound.rawValue)

        func ids(_ r: ListTransactionsResponse) -> [String] { r.transactionStates.map(\.transactionalId) }
        let all = h.coordinator.list(stateFilters: [], producerIdFilters: [], now: h.now)
        #expect(all.errorCode == 0)
        #expect(all.transactionStates == [.init(transactionalId: "a", producerId: a.pid, transactionState: "Ongoing"),
                                          .init(transactionalId: "b", producerId: b.pid, transactionState: "Empty")])
        let filtered = h.coordinator.list(stateFilters: ["Ongoing", "Bogus"], producerIdFilters: [], now: h.now)
        #expect(ids(filtered) == ["a"])
        #expect(filtered.unknownStateFilters == ["Bogus"])
        #expect(ids(h.coordinator.list(stateFilters: [], producerIdFilters: [b.pid], now: h.now)) == ["b"])
        #expect(ids(h.coordinator.list(stateFilters: ["Ongoing"], producerIdFilters: [b.pid], now: h.now)) == [])
        // Running longer than 999 ms: a (started 1000 ms ago); not longer than 1000 ms.
        #expect(ids(h.coordinator.list(stateFilters: ["Ongoing"], producerIdFilters: [], durationFilter: 999, now: h.now)) == ["a"])
        #expect(ids(h.coordinator.list(stateFilters: ["Ongoing"], producerIdFilters: [], durationFilter: 1000, now: h.now)) == [])
    }
}
