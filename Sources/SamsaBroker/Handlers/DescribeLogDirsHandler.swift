import KafkaProtocol
import SamsaStorage
#if canImport(Glibc)
import Glibc
#endif

/// DescribeLogDirs 0–4: every log directory of this broker with its state (KAFKA_STORAGE_ERROR
/// when offline), the size of each partition's log and its lag behind the high watermark, and the
/// volume's total and usable bytes (v4) — how an operator sees a full or failed disk.
struct DescribeLogDirsHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 0...4 }

    func handle(_ request: DescribeLogDirsRequest, context: RequestContext) -> HandlerOutcome<DescribeLogDirsResponse> {
        let logManager = services.replicas.logManager
        let wanted: [String: Set<Int32>]? = request.topics.map { topics in
            Dictionary(topics.map { ($0.topic, Set($0.partitions)) }, uniquingKeysWith: { $0.union($1) })
        }
        var byTopic: [String: [DescribeLogDirsResponse.DescribeLogDirsPartition]] = [:]
        for partition in services.replicas.allPartitions {
            let tp = partition.topicPartition
            if let wanted, !(wanted[tp.topic]?.contains(tp.partition) ?? false) { continue }
            let log = partition.log
            let offsets = log.offsets
            byTopic[tp.topic, default: []].append(.init(partitionIndex: tp.partition, partitionSize: log.sizeInBytes,
                                                        offsetLag: max(0, offsets.logEndOffset - offsets.highWatermark), isFutureKey: false))
        }
        var result = DescribeLogDirsResponse.DescribeLogDirsResult(
            errorCode: logManager.isOffline ? KafkaErrorCode.kafkaStorageError.rawValue : 0,
            logDir: absolutePath(logManager.logDir),
            topics: byTopic.keys.sorted().map { name in
                .init(name: name, partitions: byTopic[name]!.sorted { $0.partitionIndex < $1.partitionIndex })
            })
        var fs = statvfs()
        if statvfs(logManager.logDir, &fs) == 0 {
            result.totalBytes = Int64(fs.f_blocks) * Int64(fs.f_frsize)
            result.usableBytes = Int64(fs.f_bavail) * Int64(fs.f_frsize)
        }
        if logManager.isOffline { result.topics = [] }
        return .respond(DescribeLogDirsResponse(results: [result]))
    }
}

/// `path` with symbolic links and relative parts resolved (as the log dirs are reported).
func absolutePath(_ path: String) -> String {
    guard let resolved = realpath(path, nil) else { return path }
    defer { free(resolved) }
    return String(cString: resolved)
}
