#if canImport(Glibc)
import Glibc
#endif
import KafkaProtocol

/// AlterReplicaLogDirs 0–2: move replicas between this broker's log directories. A Samsa broker has
/// one log directory, so a replica can only be "moved" to where it already is (NONE); any other path
/// is LOG_DIR_NOT_FOUND, and a partition this broker does not hold is REPLICA_NOT_AVAILABLE — the
/// answers Kafka gives for those cases, so tools get a clear per-partition error.
struct AlterReplicaLogDirsHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 0...2 }

    func handle(_ request: AlterReplicaLogDirsRequest, context: RequestContext) -> HandlerOutcome<AlterReplicaLogDirsResponse> {
        let logDir = absolutePath(services.replicas.logManager.logDir)
        var byTopic: [String: [AlterReplicaLogDirsResponse.AlterReplicaLogDirPartitionResult]] = [:]
        var order: [String] = []
        for dir in request.dirs {
            let sameDir = absolutePath(dir.path) == logDir
            for t in dir.topics {
                if byTopic[t.name] == nil { order.append(t.name) }
                for p in t.partitions {
                    let code: KafkaErrorCode
                    if services.replicas.partition(TopicPartition(t.name, p)) == nil {
                        code = .replicaNotAvailable
                    } else {
                        code = sameDir ? .none : .logDirNotFound
                    }
                    byTopic[t.name, default: []].append(.init(partitionIndex: p, errorCode: code.rawValue))
                }
            }
        }
        return .respond(AlterReplicaLogDirsResponse(results: order.map { .init(topicName: $0, partitions: byTopic[$0]!) }))
    }
}
