import Foundation
import KafkaWire
import Testing
@testable import SamsaMetadata

@Suite struct EmbeddedStoreTests {
    func tempFile() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("samsa-coord-\(UUID().uuidString).json").path
    }

    @Test func treeOperationsAndVersions() async throws {
        let store = try EmbeddedCoordinationStore(file: nil)
        try await store.create("/a/b/c", data: [1], ephemeral: false)
        #expect(try await store.children("/a") == ["b"])
        #expect(try await store.get("/a/b/c") == CoordinationNode(data: [1], version: 0))
        #expect(try await store.set("/a/b/c", data: [2], expectedVersion: 0) == 1)
        await #expect(throws: CoordinationError.badVersion("/a/b/c")) { try await store.set("/a/b/c", data: [3], expectedVersion: 0) }
        await #expect(throws: CoordinationError.nodeExists("/a/b/c")) { try await store.create("/a/b/c", data: [], ephemeral: false) }
        await #expect(throws: CoordinationError.notEmpty("/a")) { try await store.delete("/a", recursive: false) }
        // A failing multi changes nothing.
        await #expect(throws: CoordinationError.self) {
            try await store.multi([.create("/x", []), .set("/missing", [], expectedVersion: nil)])
        }
        #expect(try await store.get("/x") == nil)
        try await store.delete("/a", recursive: true)
        #expect(try await store.get("/a/b") == nil)
    }

    @Test func persistentNodesSurviveReopenEphemeralDoNot() async throws {
        let file = tempFile()
        do {
            let store = try EmbeddedCoordinationStore(file: file)
            try await store.create("/keep", data: Array("x".utf8), ephemeral: false)
            try await store.create("/brokers/ids/0", data: [], ephemeral: true)
        }
        let reopened = try EmbeddedCoordinationStore(file: file)
        #expect(try await reopened.get("/keep")?.data == Array("x".utf8))
        #expect(try await reopened.get("/brokers/ids/0") == nil)
    }

    @Test func topicsInKafkaLayout() async throws {
        let store = try EmbeddedCoordinationStore(file: nil)
        let meta = ClusterMetadataStore(store: store)
        let id = KafkaUUID.random()
        try await meta.createTopic(name: "orders", topicId: id, replicas: [[0], [0], [0]], configs: ["retention.ms": "1000"])
        await #expect(throws: CoordinationError.self) {
            try await meta.createTopic(name: "orders", topicId: id, replicas: [[0]], configs: [:])
        }
        let topic = try #require(try await meta.topic("orders"))
        #expect(topic.topicId == id && topic.replicas.count == 3 && topic.configs == ["retention.ms": "1000"])
        #expect(topic.partitions[2] == PartitionLeadership(partition: 2, leader: 0, leaderEpoch: 0, replicas: [0], isr: [0]))
        let json = String(decoding: try #require(try await store.get("/brokers/topics/orders")).data, as: UTF8.self)
        #expect(json.contains("\"topic_id\":\"\(id)\"") && json.contains("\"partitions\":{\"0\":[0],\"1\":[0],\"2\":[0]}"))
        try await meta.addPartitions("orders", newReplicas: [[0]])
        #expect(try await meta.topic("orders")?.replicas.count == 4)
        try await meta.deleteTopic("orders")
        #expect(try await meta.topicNames().isEmpty)
    }

    @Test func producerIdBlocksNeverOverlap() async throws {
        let meta = ClusterMetadataStore(store: try EmbeddedCoordinationStore(file: nil))
        let a = try await meta.allocateProducerIdBlock(broker: 0)
        let b = try await meta.allocateProducerIdBlock(broker: 1)
        #expect(a == 0...999 && b == 1000...1999)
        let id1 = try await meta.clusterId(), id2 = try await meta.clusterId()
        #expect(id1 == id2 && id1.count == 22)
    }
}
