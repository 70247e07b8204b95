import Foundation
import KafkaProtocol
import KafkaWire
import SamsaMetadata
import Testing
@testable import SamsaBroker

/// DescribeTopicPartitions (KIP-966) through its handler on a single-node broker, responses decoded
/// as a client reads them: every field of a partition, topics sorted by name, unknown topics,
/// pagination by `responsePartitionLimit` and the cursor, and a bad cursor.
@Suite(.serialized) struct DescribeTopicPartitionsTests {
    typealias Request = DescribeTopicPartitionsRequest
    typealias Cursor = DescribeTopicPartitionsRequest.Cursor

    static func describe(_ broker: Broker, _ topics: [String], limit: Int32 = 2000, cursor: Cursor? = nil) async throws
        -> DescribeTopicPartitionsResponse {
        try await SettingsAndValidationTests.call(DescribeTopicPartitionsHandler(services: broker.services),
                                                  Request(topics: topics.map { .init(name: $0) }, responsePartitionLimit: limit, cursor: cursor),
                                                  version: 0)
    }

    /// A single-node broker for `body`, shut down afterwards whatever happens.
    static func withBroker(_ body: (Broker) async throws -> Void) async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let broker = try await startBroker(dir: dir.path)
        do {
            try await body(broker)
        } catch {
            await broker.shutdown()
            throw error
        }
        await broker.shutdown()
    }

    /// (topic, partition indexes) of a page, for short expectations.
    static func page(_ r: DescribeTopicPartitionsResponse) -> [String] {
        r.topics.map { t in "\(t.name ?? "null"):\(t.errorCode):" + t.partitions.map { String($0.partitionIndex) }.joined(separator: ",") }
    }

    static func nextCursor(_ r: DescribeTopicPartitionsResponse) -> String? {
        r.nextCursor.map { "\($0.topicName)/\($0.partitionIndex)" }
    }

    @Test func describesEveryPartitionOfEveryTopic() async throws {
        try await Self.withBroker { broker in
            let topics = broker.services.topics
            _ = try await topics.create(name: "dtp-b", partitions: 1, replicationFactor: 1, assignments: nil, configs: [:], validateOnly: false)
            _ = try await topics.create(name: "dtp-a", partitions: 3, replicationFactor: 1, assignments: nil, configs: [:], validateOnly: false)
            let node = broker.services.cache.snapshot.brokers[0].id

            // No topics named: all of them, sorted, within one page.
            let all = try await Self.describe(broker, [])
            #expect(all.nextCursor == nil)
            let names = all.topics.compactMap(\.name)
            #expect(names == names.sorted())
            #expect(names.filter { $0.hasPrefix("dtp-") } == ["dtp-a", "dtp-b"])

            let a = try #require(all.topics.first { $0.name == "dtp-a" })
            #expect(a.errorCode == 0 && !a.isInternal)
            #expect(a.topicId == broker.services.cache.topic("dtp-a")?.topicId && a.topicId != .zero)
            #expect(a.topicAuthorizedOperations == AclOperations.allTopic)
            #expect(a.partitions.map(\.partitionIndex) == [0, 1, 2])
            for p in a.partitions {
                let cached = try #require(broker.services.cache.partition("dtp-a", p.partitionIndex))
                #expect(p.errorCode == 0 && p.leaderId == node && p.leaderEpoch == cached.leaderEpoch)
                #expect(p.replicaNodes == [node] && p.isrNodes == [node] && p.offlineReplicas.isEmpty)
                #expect(p.eligibleLeaderReplicas == [] && p.lastKnownElr == [])
            }

            // Named topics: sorted, duplicates once, an unknown topic with its error and no partitions.
            let named = try await Self.describe(broker, ["dtp-b", "dtp-missing", "dtp-a", "dtp-b"])
            #expect(Self.page(named) == ["dtp-a:0:0,1,2", "dtp-b:0:0", "dtp-missing:3:"])
            #expect(named.topics[2].topicId == .zero && named.nextCursor == nil)
        }
    }

    @Test func paginatesWithTheLimitAndTheCursor() async throws {
        try await Self.withBroker { broker in
            let topics = broker.services.topics
            _ = try await topics.create(name: "pg-a", partitions: 3, replicationFactor: 1, assignments: nil, configs: [:], validateOnly: false)
            _ = try await topics.create(name: "pg-b", partitions: 1, replicationFactor: 1, assignments: nil, configs: [:], validateOnly: false)
            let wanted = ["pg-b", "pg-missing", "pg-a"]

            // Page 1: the limit cuts pg-a after two partitions.
            let p1 = try await Self.describe(broker, wanted, limit: 2)
            #expect(Self.page(p1) == ["pg-a:0:0,1"])
            #expect(Self.nextCursor(p1) == "pg-a/2")

            // Page 2: from pg-a's partition 2; the limit is reached exactly at pg-b's end, so the next
            // page starts at the next topic.
            let p2 = try await Self.describe(broker, wanted, limit: 2, cursor: .init(topicName: "pg-a", partitionIndex: 2))
            #expect(Self.page(p2) == ["pg-a:0:2", "pg-b:0:0"])
            #expect(Self.nextCursor(p2) == "pg-missing/0")

            // Page 3: the unknown topic, and no further page.
            let p3 = try await Self.describe(broker, wanted, limit: 2, cursor: .init(topicName: "pg-missing", partitionIndex: 0))
            #expect(Self.page(p3) == ["pg-missing:3:"])
            #expect(p3.nextCursor == nil)

            // Paging through all topics (none named) visits every partition once.
            var seen: [String] = []
            var cursor: Cursor?
            var pages = 0
            repeat {
                let r = try await Self.describe(broker, [], limit: 2, cursor: cursor)
                #expect(r.topics.reduce(0) { $0 + $1.partitions.count } <= 2)
                seen += r.topics.flatMap { t in t.partitions.map { "\(t.name!)/\($0.partitionIndex)" } }
                cursor = r.nextCursor.map { Cursor(topicName: $0.topicName, partitionIndex: $0.partitionIndex) }
                pages += 1
            } while cursor != nil && pages < 100
            #expect(seen.filter { $0.hasPrefix("pg-") } == ["pg-a/0", "pg-a/1", "pg-a/2", "pg-b/0"])
            #expect(Set(seen).count == seen.count)

            // A limit above Kafka's cap is capped; a single page still holds these few partitions.
            let big = try await Self.describe(broker, ["pg-a"], limit: Int32.max)
            #expect(Self.page(big) == ["pg-a:0:0,1,2"] && big.nextCursor == nil)
        }
    }

    @Test func aBadCursorFailsTheRequestedTopics() async throws {
        try await Self.withBroker { broker in
            _ = try await broker.services.topics.create(name: "bc", partitions: 2, replicationFactor: 1, assignments: nil, configs: [:], validateOnly: false)
            let invalid = KafkaErrorCode.invalidRequest.rawValue

            let notListed = try await Self.describe(broker, ["bc"], cursor: .init(topicName: "other", partitionIndex: 0))
            #expect(Self.page(notListed) == ["bc:\(invalid):"])
            let negative = try await Self.describe(broker, ["bc"], cursor: .init(topicName: "bc", partitionIndex: -1))
            #expect(Self.page(negative) == ["bc:\(invalid):"])
            let fromOne = try await Self.describe(broker, ["bc"], cursor: .init(topicName: "bc", partitionIndex: 1))
            #expect(Self.page(fromOne) == ["bc:0:1"])
        }
    }

    /// Replicas outside the live brokers are offline; a leader that is not live (or none) is
    /// LEADER_NOT_AVAILABLE with leader -1, as Kafka answers.
    @Test func offlineReplicasAndLeaders() {
        var snapshot = MetadataCache.Snapshot()
        snapshot.brokers = [BrokerRegistration(id: 1, host: "h1", port: 9092, rack: nil), BrokerRegistration(id: 3, host: "h3", port: 9092, rack: nil)]
        snapshot.topics["t"] = TopicRecord(name: "t", topicId: .zero, configs: [:], partitions: [
            PartitionLeadership(partition: 0, leader: 1, leaderEpoch: 4, replicas: [1, 2, 3], isr: [1, 3]),
            PartitionLeadership(partition: 1, leader: 2, leaderEpoch: 7, replicas: [2, 3], isr: [2]),
            PartitionLeadership(partition: 2, leader: -1, leaderEpoch: 9, replicas: [2], isr: []),
        ])
        let r = DescribeTopicPartitionsHandler.describe(Request(topics: [.init(name: "t")]), snapshot: snapshot)
        let p = r.topics[0].partitions
        #expect(p.map(\.errorCode) == [0, KafkaErrorCode.leaderNotAvailable.rawValue, KafkaErrorCode.leaderNotAvailable.rawValue])
        #expect(p.map(\.leaderId) == [1, -1, -1])
        #expect(p.map(\.leaderEpoch) == [4, 7, 9])
        #expect(p.map(\.offlineReplicas) == [[2], [2], [2]])
        #expect(p.map(\.isrNodes) == [[1, 3], [2], []])
    }

    /// The limit is capped at Kafka's default max.request.partition.size.limit (2000).
    @Test func theLimitIsCappedAt2000() {
        var snapshot = MetadataCache.Snapshot()
        snapshot.brokers = [BrokerRegistration(id: 0, host: "h", port: 9092, rack: nil)]
        snapshot.topics["wide"] = TopicRecord(name: "wide", topicId: .zero, configs: [:], partitions: (0..<2500).map {
            PartitionLeadership(partition: $0, leader: 0, leaderEpoch: 0, replicas: [0], isr: [0])
        })
        for limit: Int32 in [2001, Int32.max] {
            let r = DescribeTopicPartitionsHandler.describe(Request(topics: [], responsePartitionLimit: limit), snapshot: snapshot)
            #expect(r.topics[0].partitions.count == 2000)
            #expect(r.nextCursor?.topicName == "wide" && r.nextCursor?.partitionIndex == 2000)
        }
    }
}
