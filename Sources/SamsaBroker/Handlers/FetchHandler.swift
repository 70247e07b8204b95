import KafkaProtocol
import KafkaWire
import NIOCore
import SamsaStorage

/// Fetch 4–17: reads each partition from its fetch offset up to the high watermark (the last stable
/// offset for read_committed), within max_bytes and partition_max_bytes (always at least one whole
/// batch for the first partition with data, KIP-74), and long-polls up to max_wait_ms until
/// min_bytes are available. Data is sent zero-copy from the segment files. Incremental fetch
/// sessions (KIP-227) are declined: every response carries session id 0, so clients send full fetches.
struct FetchHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 4...17 }

    struct Wanted {
        var partition: Int32
        var fetchOffset: Int64
        var maxBytes: Int
        var currentLeaderEpoch: Int32
    }

    struct WantedTopic {
        var name: String?
        var topicId: KafkaUUID
        var partitions: [Wanted]
    }

    func handle(_ request: FetchRequest, context: RequestContext) -> HandlerOutcome<FetchResponse> {
        let version = context.apiVersion
        let correlationId = context.header.correlationId
        let loop = context.eventLoop
        if request.sessionId != 0 {
            return .payload(loop.makeSucceededFuture(encode(version, correlationId, error: .fetchSessionIdNotFound, topics: [])))
        }
        let wanted: [WantedTopic] = request.topics.map { t in
            let name = version >= 13 ? services.cache.topicName(id: t.topicId) : t.topic
            return WantedTopic(name: name, topicId: t.topicId, partitions: t.partitions.map {
                Wanted(partition: $0.partition, fetchOffset: $0.fetchOffset, maxBytes: Int(max($0.partitionMaxBytes, 0)),
                       currentLeaderEpoch: $0.currentLeaderEpoch)
            })
        }
        // read_committed reads up to the last stable offset; without transactions that is the high watermark.
        let maxBytes = Int(max(request.maxBytes, 0))
        let first = read(wanted, version: version, maxBytes: maxBytes)
        let partitionCount = wanted.reduce(0) { $0 + $1.partitions.count }
        if request.maxWaitMs <= 0 || first.bytes >= Int(request.minBytes) || first.hasError || partitionCount == 0 {
            return .payload(loop.makeSucceededFuture(encode(version, correlationId, error: .none, topics: first.topics)))
        }
        // Long poll: wait for min_bytes to arrive on these partitions, or for max_wait_ms.
        let promise = loop.makePromise(of: ResponsePayload.self)
        let keys = wanted.flatMap { t in t.partitions.map { TopicPartition(t.name ?? "", $0.partition) } }
        let delayed = DelayedFetch(eventLoop: loop, minBytes: Int(request.minBytes), bytesAvailable: first.bytes, keys: keys) {
            let result = read(wanted, version: version, maxBytes: maxBytes)
            promise.succeed(encode(version, correlationId, error: .none, topics: result.topics))
        }
        services.replicas.purgatory.watch(delayed, maxWaitMs: Int64(request.maxWaitMs)) {
            let again = read(wanted, version: version, maxBytes: maxBytes)
            return again.hasError ? Int.max : again.bytes
        }
        return .payload(promise.futureResult)
    }

    func encode(_ version: Int16, _ correlationId: Int32, error: KafkaErrorCode, topics: [FetchResponseEncoder.Topic]) -> ResponsePayload {
        FetchResponseEncoder.encode(version: version, correlationId: correlationId, errorCode: error, sessionId: 0, topics: topics)
    }

    func read(_ wanted: [WantedTopic], version: Int16, maxBytes: Int) -> (topics: [FetchResponseEncoder.Topic], bytes: Int, hasError: Bool) {
        var remaining = maxBytes
        var minOneBatch = true
        var total = 0
        var hasError = false
        var topics: [FetchResponseEncoder.Topic] = []
        topics.reserveCapacity(wanted.count)
        for t in wanted {
            var topic = FetchResponseEncoder.Topic(name: t.name ?? "", topicId: t.topicId, partitions: [])
            topic.partitions.reserveCapacity(t.partitions.count)
            for w in t.partitions {
                var out = FetchResponseEncoder.Partition(index: w.partition)
                do {
                    guard let name = t.name else { throw KafkaError(.unknownTopicId) }
                    let partition = try services.replicas.leaderPartition(TopicPartition(name, w.partition))
                    if let code = partition.checkLeaderEpoch(w.currentLeaderEpoch) { throw KafkaError(code) }
                    let log = partition.log
                    let offsets = log.offsets
                    out.highWatermark = offsets.highWatermark
                    out.lastStableOffset = offsets.highWatermark
                    out.logStartOffset = offsets.logStartOffset
                    let limit = min(w.maxBytes, remaining)
                    if limit > 0 || minOneBatch {
                        let result = try log.read(from: w.fetchOffset, maxBytes: max(limit, 0), upperBound: offsets.highWatermark, minOneBatch: minOneBatch)
                        if let slice = result.slice {
                            out.records = .file(slice)
                            total += slice.length
                            remaining -= slice.length
                            minOneBatch = false
                        }
                    }
                } catch {
                    let e = KafkaError.from(error)
                    out.errorCode = e.code
                    out.records = .none
                    hasError = true
                    if e.code == .notLeaderOrFollower, version >= 12, let meta = services.cache.partition(t.name ?? "", w.partition) {
                        out.currentLeader = (meta.leader, meta.leaderEpoch)
                    }
                    if e.code == .offsetOutOfRange, let log = services.replicas.partition(TopicPartition(t.name ?? "", w.partition))?.log {
                        let o = log.offsets
                        out.highWatermark = o.highWatermark
                        out.lastStableOffset = o.highWatermark
                        out.logStartOffset = o.logStartOffset
                    }
                }
                topic.partitions.append(out)
            }
            topics.append(topic)
        }
        return (topics, total, hasError)
    }
}
