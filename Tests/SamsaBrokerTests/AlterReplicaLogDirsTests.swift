import Foundation
import KafkaProtocol
import Testing
@testable import SamsaBroker

/// AlterReplicaLogDirs on a broker with one log directory: "moving" a replica to where it is
/// succeeds, another path is LOG_DIR_NOT_FOUND, a partition not held here REPLICA_NOT_AVAILABLE.
@Suite(.serialized) struct AlterReplicaLogDirsTests {
    @Test func answersPerPartitionForTheOneLogDirectory() async throws {
        try await DescribeTopicPartitionsTests.withBroker { broker in
            _ = try await broker.services.topics.create(name: "dirs", partitions: 2, replicationFactor: 1, assignments: nil,
                                                        configs: [:], validateOnly: false)
            let here = broker.logManager.logDir
            let request = AlterReplicaLogDirsRequest(dirs: [
                .init(path: here, topics: [.init(name: "dirs", partitions: [0, 1]), .init(name: "nowhere", partitions: [0])]),
                .init(path: "/no/such/dir", topics: [.init(name: "dirs", partitions: [1])]),
            ])
            let response = try await SettingsAndValidationTests.call(AlterReplicaLogDirsHandler(services: broker.services), request, version: 2)
            let codes = response.results.flatMap { t in t.partitions.map { "\(t.topicName)-\($0.partitionIndex):\($0.errorCode)" } }
            #expect(codes == ["dirs-0:0", "dirs-1:0", "dirs-1:\(KafkaErrorCode.logDirNotFound.rawValue)",
                              "nowhere-0:\(KafkaErrorCode.replicaNotAvailable.rawValue)"])
        }
    }
}
