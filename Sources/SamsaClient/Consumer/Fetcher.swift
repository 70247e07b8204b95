import KafkaWire
import DequeModule
import KafkaProtocol
import KafkaRecords
import Logging
import NIOCore
import Synchronization

/// Fetching (Kafka's `Fetcher`): one fetch in flight per leader for the assigned, unpaused partitions with a
/// position, decoded into records that wait in the subscription state for `poll`.
extension KafkaConsumer {
    /// Starts a fetch to every leader that has fetchable partitions and no fetch in flight.
    func fetch() {
        var requests: [(Int32, [(TopicPartition, Int64, Int32)])] = []
        var missingLeader: Set<String> = []
        state.withLock { s in
            guard !s.closed, s.bufferedBytes < config.maxBufferedBytes else { return }
            var byNode: [Int32: [(TopicPartition, Int64, Int32)]] = [:]
            let buffered = Set(s.chunks.map(\.tp))
            for tp in s.order {
                guard let p = s.partitions[tp], !p.paused, !p.fetching, let offset = p.fetchPosition, !buffered.contains(tp) || s.chunks.count < 2 else { continue }
                guard let leader = cluster.leader(of: tp) else { missingLeader.insert(tp.topic); continue }
                guard !s.fetchingNodes.contains(leader) else { continue }
                byNode[leader, default: []].append((tp, offset, p.leaderEpoch))
            }
            for (node, parts) in byNode {
                s.fetchingNodes.insert(node)
                for (tp, _, _) in parts { s.partitions[tp]!.fetching = true }
                requests.append((node, parts))
            }
        }
        for (node, parts) in requests {
            Task { await self.fetch(from: node, parts) }
        }
        if !missingLeader.isEmpty {
            Task {
                _ = try? await cluster.refreshMetadata(topics: Array(missingLeader))
                try? await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000)
                fetch()
            }
        }
    }

    func fetch(from node: Int32, _ parts: [(TopicPartition, Int64, Int32)]) async {
        var refreshTopics: Set<String> = []
        var resets: [TopicPartition] = []
        do {
            let connection = try await cluster.connection(to: node)
            let version = try connection.version(.fetch, 4...12)
            var request = FetchRequest(replicaId: -1, maxWaitMs: config.fetchMaxWaitMs, minBytes: config.fetchMinBytes,
                                       maxBytes: config.fetchMaxBytes, isolationLevel: config.isolationLevel.rawValue, sessionId: 0, sessionEpoch: -1)
            let byTopic = Dictionary(grouping: parts, by: \.0.topic)
            request.topics = byTopic.keys.sorted().map { topic in
                .init(topic: topic, partitions: byTopic[topic]!.map { tp, offset, _ in
                    .init(partition: tp.partition, currentLeaderEpoch: -1, fetchOffset: offset, logStartOffset: -1,
                          partitionMaxBytes: config.maxPartitionFetchBytes)
                })
            }
            let response = try await connection.send(request, version: version)
            try KafkaClientError.check(response.errorCode, broker: node)
            var chunks: [Chunk] = []
            var nextPositions: [TopicPartition: (Int64, Int64)] = [:]
            for t in response.responses {
                for p in t.partitions {
                    let tp = TopicPartition(t.topic, p.partitionIndex)
                    let code = KafkaErrorCode(p.errorCode)
                    switch code {
                    case .none:
                        guard let from = parts.first(where: { $0.0 == tp })?.1 else { continue }
                        let (records, next, bytes) = try Self.decode(p.records, tp: tp, from: from)
                        nextPositions[tp] = (next, p.highWatermark)
                        if !records.isEmpty { chunks.append(Chunk(tp: tp, records: records, next: 0, bytes: bytes)) }
                    case .offsetOutOfRange:
                        resets.append(tp)
                    case .notLeaderOrFollower, .unknownTopicOrPartition, .leaderNotAvailable, .fencedLeaderEpoch, .unknownLeaderEpoch, .kafkaStorageError:
                        refreshTopics.insert(tp.topic)
                    default:
                        fail(.broker(code: code, message: nil, broker: node, topicPartition: tp))
                    }
                }
            }
            state.withLock { s in
                for (tp, (next, hw)) in nextPositions where s.partitions[tp] != nil {
                    // Only if nobody seeked meanwhile.
                    if s.partitions[tp]!.fetchPosition == parts.first(where: { $0.0 == tp })?.1 {
                        s.partitions[tp]!.fetchPosition = next
                        s.partitions[tp]!.highWatermark = hw
                    } else {
                        chunks.removeAll { $0.tp == tp }
                    }
                }
                for c in chunks where s.partitions[c.tp] != nil && !s.partitions[c.tp]!.paused {
                    s.chunks.append(c)
                    s.bufferedBytes += c.bytes
                }
            }
        } catch {
            config.client.logger.debug("fetch failed; refreshing metadata and retrying", metadata: ["broker": "\(node)", "error": "\(error)"])
            refreshTopics.formUnion(parts.map(\.0.topic))
            try? await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000)
        }
        state.withLock { s in
            s.fetchingNodes.remove(node)
            for (tp, _, _) in parts { s.partitions[tp]?.fetching = false }
        }
        wakeWaiters()
        if !resets.isEmpty {
            let policy = config.autoOffsetReset
            if policy == .none {
                fail(.broker(code: .offsetOutOfRange, message: "fetch offset out of range and autoOffsetReset is none", broker: node, topicPartition: resets[0]))
            } else {
                reset(resets, policy)
            }
        }
        if !refreshTopics.isEmpty {
            _ = try? await cluster.refreshMetadata(topics: Array(refreshTopics))
        }
        fetch()
    }

    /// Decodes fetched batches into records at or after `from`; returns them, the next fetch offset and the bytes.
    static func decode(_ data: ByteBuffer?, tp: TopicPartition, from: Int64) throws -> ([ConsumerRecord], Int64, Int) {
        guard let data, data.readableBytes > 0 else { return ([], from, 0) }
        var reader = RecordBatchReader(data, allowsPartialTrailingBatch: true)
        var records: [ConsumerRecord] = []
        var next = from
        while let batch = try reader.next() {
            let h = batch.header
            defer { next = max(next, h.lastOffset + 1) }
            guard h.lastOffset >= from, !h.attributes.isControl else { continue }
            let logAppend = h.attributes.timestampType == .logAppendTime
            records.reserveCapacity(records.count + Int(h.recordCount))
            try batch.forEachRecord { r in
                let offset = h.baseOffset + Int64(r.offsetDelta)
                guard offset >= from else { return }
                records.append(ConsumerRecord(topic: tp.topic, partition: tp.partition, offset: offset,
                                              timestamp: logAppend ? h.maxTimestamp : h.baseTimestamp + r.timestampDelta,
                                              timestampType: logAppend ? .logAppendTime : .createTime,
                                              key: r.key, value: r.value, headers: r.headers, leaderEpoch: h.partitionLeaderEpoch))
            }
        }
        return (records, next, data.readableBytes)
    }
}
