import Foundation
import KafkaProtocol
import KafkaRecords
import KafkaWire
import NIOCore
import NIOPosix
import SamsaCoordinators
import Synchronization
import Testing
@testable import SamsaBroker
@testable import SamsaStorage

/// Broker-core behaviour without sockets: the group coordinator service's loading, the fetch
/// purgatory's long poll.
@Suite(.serialized) struct BrokerCoreTests {
    static let group = "load-test-group"

    /// Appends offset commits for `group` straight into its `__consumer_offsets` partition.
    static func commitOffsets(_ broker: Broker, group: String, count: Int, final: Int64, extra: GroupRecord? = nil) async throws {
        try await broker.groups.ensureOffsetsTopic()
        let p = GroupRecords.partition(for: group, partitions: broker.groups.partitions)
        let tp = TopicPartition(Topics.consumerOffsets, p)
        var written = 0
        while written < count {
            var builder = RecordBatchBuilder()
            for i in 0..<min(500, count - written) {
                let offset = written + i == count - 1 ? final : Int64(written + i)
                builder.append(key: GroupRecords.offsetKey(group: group, TopicPartition("t", Int32((written + i) % 50))),
                               value: GroupRecords.offsetValue(CommittedOffset(offset: offset, leaderEpoch: -1, metadata: "", commitTimestamp: currentTimeMillis())),
                               timestamp: currentTimeMillis())
            }
            written += min(500, count - written)
            _ = try broker.services.replicas.appendToLeader(tp, records: builder.build(), requiredAcks: -1)
        }
        if let extra {
            var builder = RecordBatchBuilder()
            builder.append(key: extra.key, value: extra.value, timestamp: currentTimeMillis())
            _ = try broker.services.replicas.appendToLeader(tp, records: builder.build(), requiredAcks: -1)
        }
    }

    static func committed(_ broker: Broker, _ group: String, partition: Int32) -> Int64? {
        broker.groups.read { $0.fetchOffsets(groupId: group, topics: [("t", [partition])]) }.first?.partitions.first?.1?.offset
    }

    /// Issue 10, item 1: right after a restart, a group whose offsets partition is not replayed yet
    /// answers COORDINATOR_LOAD_IN_PROGRESS, never "no committed offset" (-1), which would send
    /// consumers to auto.offset.reset.
    @Test func committedOffsetsAreNeverServedAsMissingWhileLoading() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let count = 40_000
        var broker = try await startBroker(dir: dir.path)
        try await Self.commitOffsets(broker, group: Self.group, count: count, final: 4242)
        let lastPartition = Int32((count - 1) % 50)
        await broker.shutdown()

        broker = try await startBroker(dir: dir.path)
        // The first thing a client could ask, as soon as the broker listens:
        let error = broker.groups.read { $0.availabilityError(for: Self.group) }
        let offset = Self.committed(broker, Self.group, partition: lastPartition)
        #expect(error == .coordinatorLoadInProgress || (error == nil && offset == 4242),
                "answered error \(String(describing: error)) with offset \(String(describing: offset))")
        #expect(eventually { broker.groups.read { $0.availabilityError(for: Self.group) } == nil })
        #expect(Self.committed(broker, Self.group, partition: lastPartition) == 4242)
        await broker.shutdown()
    }

    /// A partition whose replay fails is never served as empty: its groups keep answering an error.
    @Test func aPartitionThatFailsToLoadIsNotServedAsEmpty() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var broker = try await startBroker(dir: dir.path)
        let garbage = GroupRecord(key: GroupRecords.offsetKey(group: Self.group, TopicPartition("t", 0)), value: ByteBuffer(bytes: [0, 3, 1]))
        try await Self.commitOffsets(broker, group: Self.group, count: 10, final: 7, extra: garbage)
        await broker.shutdown()

        broker = try await startBroker(dir: dir.path)
        #expect(eventually { broker.groups.read { $0.availabilityError(for: Self.group) } != .coordinatorLoadInProgress })
        #expect(broker.groups.read { $0.availabilityError(for: Self.group) } == .coordinatorNotAvailable)
        #expect(Self.committed(broker, Self.group, partition: 9) == nil, "partly replayed groups must be dropped")
        // Another group on another partition is unaffected.
        let other = (0..<1000).map { "other-\($0)" }.first {
            GroupRecords.partition(for: $0, partitions: broker.groups.partitions) != GroupRecords.partition(for: Self.group, partitions: broker.groups.partitions)
        }!
        #expect(broker.groups.read { $0.availabilityError(for: other) } == nil)
        await broker.shutdown()
    }

    /// Issue 10, item 3: a long-poll fetch that misses an append landing between its first read
    /// and its registration in the purgatory must still wake up at once, not after max_wait_ms.
    @Test func anAppendBetweenReadAndRegistrationWakesTheFetch() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let broker = try await startBroker(dir: dir.path)
        _ = try await broker.services.topics.create(name: "lp", partitions: 1, replicationFactor: 1, assignments: nil, configs: [:], validateOnly: false)
        let tp = TopicPartition("lp", 0)
        let replicas = broker.services.replicas
        replicas.purgatory.beforeWatch.withLock {
            $0 = { _ = try? replicas.appendToLeader(tp, records: batch(["in the window"]), requiredAcks: 1) }
        }
        let handler = FetchHandler(services: broker.services)
        let request = FetchRequest(maxWaitMs: 5000, minBytes: 1, maxBytes: 1 << 20,
                                   topics: [.init(topic: "lp", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)])])
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let context = RequestContext(header: RequestHeader(requestApiKey: 1, requestApiVersion: 11, correlationId: 7, clientId: "t"),
                                     eventLoop: loop, connection: ConnectionInfo(id: 1, remoteAddress: "test", remoteHost: "/test"))
        let started = Date()
        guard case let .payload(future) = handler.handle(request, context: context) else {
            Issue.record("fetch did not answer with a payload")
            return
        }
        let payload = try await future.get()
        let elapsed = Date().timeIntervalSince(started)
        replicas.purgatory.beforeWatch.withLock { $0 = nil }
        #expect(elapsed < 2, "the fetch slept \(elapsed)s of its 5 s max wait although data had arrived")
        var bytes = try FetchResponseEncoderTests.flatten(payload)
        _ = bytes.readInteger(as: Int32.self)  // size
        _ = bytes.readInteger(as: Int32.self)  // correlation id
        let response = try FetchResponse(from: &bytes, version: 11)
        let records = response.responses.first?.partitions.first?.records
        #expect((records?.readableBytes ?? 0) > 0, "the response carries the appended batch")
        await broker.shutdown()
    }

    /// Issue 10 item 2 at the broker: an fsync failure is fatal for the log dir — the flusher's
    /// waiters fail, and every later produce to a partition there answers KAFKA_STORAGE_ERROR
    /// (clients then go elsewhere), never silently succeeds.
    @Test func anFsyncFailureTakesTheLogDirOfflineAndProducesAnswerStorageError() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let broker = try await startBroker(dir: dir.path)
        _ = try await broker.services.topics.create(name: "fs", partitions: 1, replicationFactor: 1, assignments: nil, configs: [:], validateOnly: false)
        let tp = TopicPartition("fs", 0)
        let replicas = broker.services.replicas
        let (first, partition) = try replicas.appendToLeader(tp, records: batch(["a", "b"]), requiredAcks: 1)
        #expect(first.firstOffset == 0)
        let flusher = Flusher(logger: broker.services.logger)
        try await flusher.flush([partition.log], on: MultiThreadedEventLoopGroup.singleton.next()).get()
        #expect(partition.log.offsets.recoveryPoint == 2, "a successful flush moves the recovery point")

        _ = try replicas.appendToLeader(tp, records: batch(["c"]), requiredAcks: 1)
        IOFaults.install(under: dir.path) { op, _ in op == "fdatasync" ? .init(errno: EIO, after: 0) : nil }
        defer { IOFaults.remove(under: dir.path) }
        await #expect(throws: (any Error).self) {
            try await flusher.flush([partition.log], on: MultiThreadedEventLoopGroup.singleton.next()).get()
        }
        IOFaults.remove(under: dir.path)
        #expect(broker.logManager.isOffline)
        do {
            _ = try replicas.appendToLeader(tp, records: batch(["d"]), requiredAcks: 1)
            Issue.record("an append to an offline log dir must fail")
        } catch {
            #expect(KafkaError.from(error).code == .kafkaStorageError, "\(error)")
        }
        await flusher.shutdown()
        await broker.shutdown()
    }

    /// OffsetForLeaderEpoch (KIP-101/320) served from the leader's epoch cache, with fencing.
    @Test func offsetForLeaderEpochAnswersFromTheEpochCache() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let broker = try await startBroker(dir: dir.path)
        _ = try await broker.services.topics.create(name: "ep", partitions: 1, replicationFactor: 1, assignments: nil, configs: [:], validateOnly: false)
        let tp = TopicPartition("ep", 0)
        let replicas = broker.services.replicas
        _ = try replicas.appendToLeader(tp, records: batch(["a", "b", "c"]), requiredAcks: 1)
        let partition = replicas.partition(tp)!
        var next = partition.leadership
        next.leaderEpoch = 2
        partition.update(next, minInsyncReplicas: 1)
        _ = try replicas.appendToLeader(tp, records: batch(["d", "e"]), requiredAcks: 1)

        let handler = OffsetForLeaderEpochHandler(services: broker.services)
        let context = RequestContext(header: RequestHeader(requestApiKey: 23, requestApiVersion: 4, correlationId: 1, clientId: "t"),
                                     eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                                     connection: ConnectionInfo(id: 1, remoteAddress: "test", remoteHost: "/test"))
        func ask(_ epoch: Int32, current: Int32 = -1, topic: String = "ep") -> OffsetForLeaderEpochResponse.EpochEndOffset? {
            let request = OffsetForLeaderEpochRequest(replicaId: -1, topics: [
                .init(topic: topic, partitions: [.init(partition: 0, currentLeaderEpoch: current, leaderEpoch: epoch)])])
            guard case let .respond(r) = handler.handle(request, context: context) else { return nil }
            return r.topics.first?.partitions.first
        }
        #expect(ask(0).map { [Int64($0.errorCode), Int64($0.leaderEpoch), $0.endOffset] } == [0, 0, 3])
        #expect(ask(1).map { [Int64($0.errorCode), Int64($0.leaderEpoch), $0.endOffset] } == [0, 0, 3])
        #expect(ask(2).map { [Int64($0.errorCode), Int64($0.leaderEpoch), $0.endOffset] } == [0, 2, 5])
        #expect(ask(7).map { [Int64($0.errorCode), Int64($0.leaderEpoch), $0.endOffset] } == [0, -1, -1])
        #expect(ask(2, current: 1)?.errorCode == KafkaErrorCode.fencedLeaderEpoch.rawValue)
        #expect(ask(2, current: 3)?.errorCode == KafkaErrorCode.unknownLeaderEpoch.rawValue)
        #expect(ask(0, topic: "nope")?.errorCode == KafkaErrorCode.unknownTopicOrPartition.rawValue)
        await broker.shutdown()
    }
}
