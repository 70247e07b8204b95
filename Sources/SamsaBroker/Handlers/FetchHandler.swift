import KafkaProtocol
import KafkaWire
import NIOCore
import SamsaStorage

/// Fetch 4–17: reads each partition from its fetch offset up to the high watermark (the last stable
/// offset for read_committed), within max_bytes and partition_max_bytes (always at least one whole
/// batch for the first partition with data, KIP-74), and long-polls up to max_wait_ms until
/// min_bytes are available. Data is sent zero-copy from the segment files.
///
/// Incremental fetch sessions (KIP-227, v7+): `FetchSessionCache` decides from the session id and
/// epoch whether the fetch is sessionless, full (creating a session) or incremental, in which
/// order the partitions are read (a session rotates the partitions that returned records to the
/// end) and which partitions an incremental response carries (only those with news). Sessions
/// are keyed by topic id from v13 and by topic name for v7–12.
struct FetchHandler: APIHandler {
    let services: BrokerServices
    let sessions: FetchSessionManager
    var versions: ClosedRange<Int16> { 4...17 }

    init(services: BrokerServices, sessions: FetchSessionManager? = nil) {
        self.services = services
        self.sessions = sessions ?? FetchSessionManager(
            maxEntries: services.config.int("max.incremental.fetch.session.cache.slots") ?? 1000,
            clock: { monotonicMillis() })
    }

    /// One partition to read: its session key, the topic name it resolves to now (nil: unknown
    /// topic id) and what the fetcher asks.
    struct Item {
        var key: FetchSessionKey
        var name: String?
        var request: FetchPartitionRequest
    }

    func handle(_ request: FetchRequest, context: RequestContext) -> HandlerOutcome<FetchResponse> {
        let version = context.apiVersion
        let correlationId = context.header.correlationId
        let loop = context.eventLoop
        let connection = context.connection.id
        let manager = self.sessions
        context.connection.whenClosed("fetch-rotation") { manager.connectionClosed(connection) }
        let usesTopicIds = version >= 13
        var fetchData: [(key: FetchSessionKey, request: FetchPartitionRequest)] = []
        fetchData.reserveCapacity(request.topics.reduce(0) { $0 + $1.partitions.count })
        for t in request.topics {
            for p in t.partitions {
                fetchData.append((usesTopicIds ? .id(t.topicId, p.partition) : .name(t.topic, p.partition),
                                  FetchPartitionRequest(fetchOffset: p.fetchOffset, maxBytes: p.partitionMaxBytes, currentLeaderEpoch: p.currentLeaderEpoch,
                                                        lastFetchedEpoch: p.lastFetchedEpoch, logStartOffset: p.logStartOffset)))
            }
        }
        let forgotten = version >= 7 ? request.forgottenTopicsData.flatMap { f in
            f.partitions.map { usesTopicIds ? FetchSessionKey.id(f.topicId, $0) : .name(f.topic, $0) }
        } : []
        let replicaId = version >= 15 ? request.replicaState.replicaId : request.replicaId
        let isFollower = replicaId >= 0
        let plan = sessions.plan(sessionId: version >= 7 ? request.sessionId : 0, epoch: version >= 7 ? request.sessionEpoch : FetchSessionCache.finalEpoch,
                                 usesTopicIds: usesTopicIds, isFollower: isFollower, fetchData: fetchData, forgotten: forgotten, connection: connection)
        if case let .error(code) = plan.kind {
            return .payload(loop.makeSucceededFuture(FetchResponseEncoder.encode(version: version, correlationId: correlationId, errorCode: code,
                                                                                 sessionId: FetchSessionCache.invalidSessionId, topics: [])))
        }
        var names: [KafkaUUID: String?] = [:]
        let items: [Item] = plan.partitions.map { entry in
            let name: String?
            if usesTopicIds {
                if let known = names[entry.key.topicId] {
                    name = known
                } else {
                    name = services.cache.topicName(id: entry.key.topicId)
                    names[entry.key.topicId] = name
                }
            } else {
                name = entry.key.topic
            }
            return Item(key: entry.key, name: name, request: entry.request)
        }
        // read_committed reads up to the last stable offset; without transactions that is the high watermark.
        let maxBytes = Int(max(request.maxBytes, 0))
        let sessions = self.sessions
        let respond: @Sendable ([FetchResponseEncoder.Partition]) -> ResponsePayload = { partitions in
            let outcomes = partitions.map {
                FetchPartitionOutcome(recordBytes: $0.recordBytes, highWatermark: $0.highWatermark, logStartOffset: $0.logStartOffset,
                                      errorCode: $0.errorCode, hasPreferredReadReplica: $0.preferredReadReplica >= 0)
            }
            let completion = sessions.complete(plan, outcomes: outcomes, connection: connection)
            return FetchResponseEncoder.encode(version: version, correlationId: correlationId, errorCode: completion.errorCode,
                                               sessionId: completion.sessionId, topics: Self.group(items, partitions, completion.include))
        }
        let first = read(items, version: version, maxBytes: maxBytes, replicaId: replicaId)
        if request.maxWaitMs <= 0 || first.bytes >= Int(request.minBytes) || first.hasError || items.isEmpty {
            return .payload(loop.makeSucceededFuture(respond(first.partitions)))
        }
        // Long poll: wait for min_bytes to arrive on these partitions, or for max_wait_ms. The
        // session is updated once, with what the final read returns.
        let promise = loop.makePromise(of: ResponsePayload.self)
        let keys = items.map { TopicPartition($0.name ?? "", $0.key.partition) }
        let delayed = DelayedFetch(eventLoop: loop, minBytes: Int(request.minBytes), bytesAvailable: first.bytes, keys: keys) {
            let result = read(items, version: version, maxBytes: maxBytes, replicaId: replicaId)
            promise.succeed(respond(result.partitions))
        }
        services.replicas.purgatory.watch(delayed, maxWaitMs: Int64(request.maxWaitMs)) {
            let again = read(items, version: version, maxBytes: maxBytes, replicaId: replicaId)
            return again.hasError ? Int.max : again.bytes
        }
        return .payload(promise.futureResult)
    }

    /// The response's topics: the included partitions in order, consecutive partitions of one
    /// topic under one topic entry (as Kafka's `FetchResponse.of` groups them).
    static func group(_ items: [Item], _ partitions: [FetchResponseEncoder.Partition], _ include: [Int]) -> [FetchResponseEncoder.Topic] {
        var topics: [FetchResponseEncoder.Topic] = []
        var lastKey: FetchSessionKey?
        for i in include {
            let key = items[i].key
            if let last = lastKey, last.topicId == key.topicId, last.topic == key.topic {
                topics[topics.count - 1].partitions.append(partitions[i])
            } else {
                topics.append(FetchResponseEncoder.Topic(name: items[i].name ?? key.topic, topicId: key.topicId, partitions: [partitions[i]]))
                lastKey = key
            }
        }
        return topics
    }

    /// Reads `items` in order within `maxBytes`; the partitions come back aligned with `items`.
    func read(_ items: [Item], version: Int16, maxBytes: Int, replicaId: Int32 = -1) -> (partitions: [FetchResponseEncoder.Partition], bytes: Int, hasError: Bool) {
        var remaining = maxBytes
        var minOneBatch = true
        var total = 0
        var hasError = false
        var partitions: [FetchResponseEncoder.Partition] = []
        partitions.reserveCapacity(items.count)
        for item in items {
            var out = FetchResponseEncoder.Partition(index: item.key.partition)
            do {
                guard let name = item.name else { throw KafkaError(.unknownTopicId) }
                let partition = try services.replicas.leaderPartition(TopicPartition(name, item.key.partition))
                if let code = partition.checkLeaderEpoch(item.request.currentLeaderEpoch) { throw KafkaError(code) }
                let log = partition.log
                if replicaId >= 0, item.request.fetchOffset <= log.logEndOffset {
                    // A follower: its fetch offset is its log end; that may move the high watermark.
                    services.replicas.followerFetched(partition, replica: replicaId, fetchOffset: item.request.fetchOffset)
                }
                let offsets = log.offsets
                out.highWatermark = offsets.highWatermark
                out.lastStableOffset = offsets.highWatermark
                out.logStartOffset = offsets.logStartOffset
                let limit = min(Int(max(item.request.maxBytes, 0)), remaining)
                if limit > 0 || minOneBatch {
                    // Consumers read up to the high watermark, followers up to the log end.
                    let upper = replicaId >= 0 ? offsets.logEndOffset : offsets.highWatermark
                    let result = try log.read(from: item.request.fetchOffset, maxBytes: max(limit, 0), upperBound: upper, minOneBatch: minOneBatch)
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
                if e.code == .notLeaderOrFollower, version >= 12, let name = item.name,
                   let leader = services.currentLeader(of: TopicPartition(name, item.key.partition)) {
                    out.currentLeader = leader
                }
                if e.code == .offsetOutOfRange, let name = item.name, let log = services.replicas.partition(TopicPartition(name, item.key.partition))?.log {
                    let o = log.offsets
                    out.highWatermark = o.highWatermark
                    out.lastStableOffset = o.highWatermark
                    out.logStartOffset = o.logStartOffset
                }
            }
            partitions.append(out)
        }
        return (partitions, total, hasError)
    }
}
