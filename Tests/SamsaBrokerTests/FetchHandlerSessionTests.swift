import Foundation
import KafkaProtocol
import KafkaWire
import NIOCore
import NIOPosix
import Testing
@testable import SamsaBroker

/// The fetch handler with sessions, against an in-process broker (no sockets): session id
/// assignment, incremental responses with only the changed partitions, rotation with a small
/// `max_bytes`, the session errors, and the long poll of an incremental fetch.
@Suite(.serialized) struct FetchHandlerSessionTests {
    struct Fixture {
        let broker: Broker
        let dir: TempDir
        let handler: FetchHandler
        let topicId: KafkaUUID
        var connection: ConnectionInfo = ConnectionInfo(id: 1, remoteAddress: "test", remoteHost: "/test")
        var correlationId: Int32 = 0

        /// Topic `fs` with 2 partitions and 3 one-record batches in each.
        static func make() async throws -> Fixture {
            let dir = TempDir()
            let broker = try await startBroker(dir: dir.path)
            _ = try await broker.services.topics.create(name: "fs", partitions: 2, replicationFactor: 1, assignments: nil, configs: [:], validateOnly: false)
            for p: Int32 in [0, 1] {
                for i in 0..<3 {
                    _ = try broker.services.replicas.appendToLeader(TopicPartition("fs", p), records: batch(["p\(p)-\(i)"]), requiredAcks: 1)
                }
            }
            let id = try #require(broker.services.cache.topic("fs")?.topicId)
            return Fixture(broker: broker, dir: dir, handler: FetchHandler(services: broker.services), topicId: id)
        }

        func close() async {
            await broker.shutdown()
            dir.cleanup()
        }

        func topic(_ version: Int16, _ partitions: [(Int32, Int64)]) -> FetchRequest.FetchTopic {
            FetchRequest.FetchTopic(topic: version >= 13 ? "" : "fs", topicId: version >= 13 ? topicId : .zero,
                                    partitions: partitions.map { .init(partition: $0.0, fetchOffset: $0.1, partitionMaxBytes: 1 << 20) })
        }

        mutating func fetch(_ version: Int16, session: Int32, epoch: Int32, _ partitions: [(Int32, Int64)], forget: [Int32] = [],
                            maxBytes: Int32 = 1, maxWaitMs: Int32 = 0, minBytes: Int32 = 1) async throws -> FetchResponse {
            correlationId += 1
            let forgotten = forget.isEmpty ? [] : [FetchRequest.ForgottenTopic(topic: version >= 13 ? "" : "fs", topicId: version >= 13 ? topicId : .zero, partitions: forget)]
            let request = FetchRequest(maxWaitMs: maxWaitMs, minBytes: minBytes, maxBytes: maxBytes, sessionId: session, sessionEpoch: epoch,
                                       topics: partitions.isEmpty ? [] : [topic(version, partitions)], forgottenTopicsData: forgotten)
            let context = RequestContext(header: RequestHeader(requestApiKey: 1, requestApiVersion: version, correlationId: correlationId, clientId: "t"),
                                         eventLoop: MultiThreadedEventLoopGroup.singleton.next(), connection: connection)
            guard case let .payload(future) = handler.handle(request, context: context) else {
                Issue.record("fetch did not answer with a payload")
                throw CancellationError()
            }
            let (cid, response) = try FetchHandlerSessionTests.decode(try await future.get(), version: version)
            #expect(cid == correlationId)
            return response
        }
    }

    static func withFixture(_ body: (inout Fixture) async throws -> Void) async throws {
        var f = try await Fixture.make()
        do {
            try await body(&f)
        } catch {
            await f.close()
            throw error
        }
        await f.close()
    }

    static func decode(_ payload: ResponsePayload, version: Int16) throws -> (Int32, FetchResponse) {
        var bytes = try FetchResponseEncoderTests.flatten(payload)
        let size = bytes.readInteger(as: Int32.self) ?? -1
        #expect(Int(size) == bytes.readableBytes)
        let (cid, response) = try FetchResponse.decodeFrame(bytes, version: version)
        return (cid, response)
    }

    /// (partition, records bytes) for every partition in the response, in order.
    static func partitions(_ r: FetchResponse) -> [(Int32, Int)] {
        r.responses.flatMap { t in t.partitions.map { ($0.partitionIndex, $0.records?.readableBytes ?? 0) } }
    }

    @Test(arguments: [Int16(7), 11, 12, 13, 17])
    func sessionsRotateAndSendOnlyChanges(version: Int16) async throws {
        try await Self.withFixture { f in
            // Full fetch, epoch 0: a session is created; max_bytes 1 gives one batch of partition 0.
            let full = try await f.fetch(version, session: 0, epoch: 0, [(0, 0), (1, 0)])
            #expect(full.errorCode == 0)
            #expect(full.sessionId > 0)
            let first = Self.partitions(full)
            #expect(first.map(\.0) == [0, 1], "a full response lists every partition")
            #expect(first[0].1 > 0 && first[1].1 == 0)
            if version >= 13 { #expect(full.responses.first?.topicId == f.topicId) } else { #expect(full.responses.first?.topic == "fs") }
            let id = full.sessionId
            // Incremental, epoch 1, partition 0 moved on: partition 1 is read first now (rotation),
            // partition 0 (nothing new, same high watermark) is left out.
            let second = try await f.fetch(version, session: id, epoch: 1, [(0, 1)])
            #expect(second.errorCode == 0 && second.sessionId == id)
            let s = Self.partitions(second)
            #expect(s.map(\.0) == [1] && s[0].1 > 0, "got \(s)")
            // Epoch 2: partition 1 moved on; partition 0's turn.
            let third = try await f.fetch(version, session: id, epoch: 2, [(1, 1)])
            let t = Self.partitions(third)
            #expect(t.map(\.0) == [0] && t[0].1 > 0, "got \(t)")
            // The same epoch again: INVALID_FETCH_SESSION_EPOCH, no partitions.
            let duplicate = try await f.fetch(version, session: id, epoch: 2, [])
            #expect(duplicate.errorCode == KafkaErrorCode.invalidFetchSessionEpoch.rawValue)
            #expect(duplicate.responses.isEmpty)
            // Caught up on both: an incremental fetch answers no partitions at all.
            _ = try await f.fetch(version, session: id, epoch: 3, [(0, 3), (1, 3)], maxBytes: 1 << 20)
            let idle = try await f.fetch(version, session: id, epoch: 4, [])
            #expect(idle.errorCode == 0 && idle.sessionId == id && idle.responses.isEmpty)
            // A new high watermark on partition 1 is news.
            _ = try f.broker.services.replicas.appendToLeader(TopicPartition("fs", 1), records: batch(["more"]), requiredAcks: 1)
            let news = try await f.fetch(version, session: id, epoch: 5, [], maxBytes: 1 << 20)
            #expect(Self.partitions(news).map(\.0) == [1])
            #expect(news.responses.first?.partitions.first?.highWatermark == 4)
            // Forget partition 0, then partition 1: the session closes and the answer is sessionless.
            let forgot = try await f.fetch(version, session: id, epoch: 6, [], forget: [0])
            #expect(forgot.errorCode == 0 && forgot.sessionId == id)
            let closed = try await f.fetch(version, session: id, epoch: 7, [], forget: [1])
            #expect(closed.errorCode == 0 && closed.sessionId == 0)
            let gone = try await f.fetch(version, session: id, epoch: 8, [])
            #expect(gone.errorCode == KafkaErrorCode.fetchSessionIdNotFound.rawValue && gone.sessionId == 0)
        }
    }

    @Test func sessionErrors() async throws {
        try await Self.withFixture { f in
            let unknown = try await f.fetch(12, session: 424242, epoch: 1, [(0, 0)])
            #expect(unknown.errorCode == KafkaErrorCode.fetchSessionIdNotFound.rawValue)
            #expect(unknown.sessionId == 0 && unknown.responses.isEmpty)
            // A session made with topic ids (v13) cannot go on with names (v12), and the reverse.
            let byId = try await f.fetch(13, session: 0, epoch: 0, [(0, 0)]).sessionId
            let mixed = try await f.fetch(12, session: byId, epoch: 1, [])
            #expect(mixed.errorCode == KafkaErrorCode.fetchSessionTopicIdError.rawValue)
            let byName = try await f.fetch(12, session: 0, epoch: 0, [(0, 0)]).sessionId
            #expect(try await f.fetch(13, session: byName, epoch: 1, []).errorCode == KafkaErrorCode.fetchSessionTopicIdError.rawValue)
            // Sessionless (epoch -1): session id 0, every partition listed.
            let sessionless = try await f.fetch(12, session: 0, epoch: -1, [(0, 3), (1, 3)])
            #expect(sessionless.sessionId == 0 && Self.partitions(sessionless).map(\.0) == [0, 1])
            // Fetch v4 (no session fields) is sessionless.
            let v4 = try await f.fetch(4, session: 0, epoch: -1, [(0, 0)])
            #expect(Self.partitions(v4).map(\.0) == [0])
            // An unknown topic id in a v13 session: UNKNOWN_TOPIC_ID for that partition, the session lives on.
            f.correlationId += 1
            let stray = KafkaUUID.random()
            let request = FetchRequest(maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, sessionId: 0, sessionEpoch: 0,
                                       topics: [.init(topicId: stray, partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 100)])])
            let context = RequestContext(header: RequestHeader(requestApiKey: 1, requestApiVersion: 13, correlationId: f.correlationId, clientId: "t"),
                                         eventLoop: MultiThreadedEventLoopGroup.singleton.next(), connection: f.connection)
            guard case let .payload(future) = f.handler.handle(request, context: context) else { throw CancellationError() }
            let (_, response) = try Self.decode(try await future.get(), version: 13)
            #expect(response.responses.first?.partitions.first?.errorCode == KafkaErrorCode.unknownTopicId.rawValue)
            #expect(response.sessionId > 0)
        }
    }

    /// Sessionless fetches that always list the partitions in the same order still reach the
    /// second partition with max_bytes 1 (the broker reads the least recently served first).
    @Test func sessionlessFixedOrderDoesNotStarve() async throws {
        try await Self.withFixture { f in
            var offsets: [Int64] = [0, 0]
            var served: [Int32] = []
            for _ in 0..<4 {
                let r = try await f.fetch(11, session: 0, epoch: -1, [(0, offsets[0]), (1, offsets[1])])
                #expect(Self.partitions(r).map(\.0) == [0, 1], "the response keeps the request's order")
                for (p, bytes) in Self.partitions(r) where bytes > 0 {
                    served.append(p)
                    offsets[Int(p)] += 1
                }
            }
            #expect(served == [0, 1, 0, 1])
        }
    }

    /// An incremental fetch that is caught up long-polls and wakes with only the partition that
    /// got data.
    @Test func anIncrementalFetchLongPolls() async throws {
        try await Self.withFixture { f in
            let id = try await f.fetch(12, session: 0, epoch: 0, [(0, 3), (1, 3)]).sessionId
            #expect(id > 0)
            let broker = f.broker
            let started = Date()
            Task {
                try await Task.sleep(for: .milliseconds(300))
                _ = try broker.services.replicas.appendToLeader(TopicPartition("fs", 1), records: batch(["late"]), requiredAcks: 1)
            }
            let r = try await f.fetch(12, session: id, epoch: 1, [], maxBytes: 1 << 20, maxWaitMs: 10_000, minBytes: 1)
            let elapsed = Date().timeIntervalSince(started)
            #expect(elapsed >= 0.25 && elapsed < 5, "waited \(elapsed)s")
            let p = Self.partitions(r)
            #expect(p.map(\.0) == [1] && p[0].1 > 0, "got \(p)")
            #expect(r.sessionId == id)
        }
    }
}
