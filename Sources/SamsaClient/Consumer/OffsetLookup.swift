import KafkaWire
import DequeModule
import KafkaProtocol
import KafkaRecords
import Logging
import NIOCore
import Synchronization

/// Finding positions for partitions that have none (Kafka's `OffsetFetcher`): the group's committed offset,
/// else ListOffsets on the partition leader by the reset policy or a timestamp.
extension KafkaConsumer {
    /// ListOffsets on each partition's leader: timestamps (or -1 latest, -2 earliest) → offsets.
    func listOffsets(_ wanted: [TopicPartition: Int64]) async throws -> [TopicPartition: Int64] {
        try await cluster.listOffsets(wanted, isolationLevel: config.isolationLevel.rawValue)
    }

    /// Sets positions for partitions that have none: committed offset, else the reset policy.
    func initializePositions(_ partitions: [TopicPartition]) async {
        let epochs = state.withLock { s in
            Dictionary(uniqueKeysWithValues: partitions.compactMap { tp in
                s.partitions[tp].flatMap { $0.position == nil ? (tp, $0.positionEpoch) : nil }
            })
        }
        let missing = partitions.filter { epochs[$0] != nil }
        guard !missing.isEmpty else { return }
        var committed: [TopicPartition: Int64?] = [:]
        if config.groupId != nil, state.withLock({ s in missing.contains { s.partitions[$0]?.resetTo == nil } }) {
            do {
                committed = try await self.committed(missing)
            } catch {
                // Never fall back to the reset policy because the committed offsets could not be read (a
                // coordinator still loading answers COORDINATOR_LOAD_IN_PROGRESS): retry, or tell the application.
                let clientError = error as? KafkaClientError ?? .malformedResponse("\(error)")
                guard clientError.isRetriable else {
                    fail(clientError)
                    return
                }
                config.client.logger.debug("fetching committed offsets failed; retrying", metadata: ["error": "\(clientError)"])
                try? await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000)
                if !state.withLock({ $0.closed }) { await initializePositions(partitions) }
                return
            }
        }
        var toReset: [TopicPartition: Int64] = [:]
        var noPolicy: [TopicPartition] = []
        state.withLock { s in
            for tp in missing {
                guard var p = s.partitions[tp], p.position == nil, p.positionEpoch == epochs[tp] else { continue }
                if p.resetTo == nil, let c = committed[tp] ?? nil {
                    p.position = c
                    p.fetchPosition = c
                    p.committed = c
                } else {
                    switch p.resetTo ?? config.autoOffsetReset {
                    case .earliest: toReset[tp] = -2
                    case .latest: toReset[tp] = -1
                    case .none: noPolicy.append(tp)
                    }
                }
                s.partitions[tp] = p
            }
        }
        if !noPolicy.isEmpty {
            fail(.broker(code: .offsetOutOfRange, message: "no committed offset and autoOffsetReset is none", broker: nil, topicPartition: noPolicy[0]))
        }
        guard !toReset.isEmpty else { return }
        do {
            let offsets = try await listOffsets(toReset)
            state.withLock { s in
                for (tp, o) in offsets where s.partitions[tp] != nil && s.partitions[tp]!.position == nil
                    && s.partitions[tp]!.positionEpoch == epochs[tp] {
                    s.partitions[tp]!.position = o
                    s.partitions[tp]!.fetchPosition = o
                    s.partitions[tp]!.resetTo = nil
                }
            }
        } catch {
            config.client.logger.debug("offset lookup failed; retrying", metadata: ["error": "\(error)"])
            try? await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000)
            if !state.withLock({ $0.closed }) { await initializePositions(partitions) }
        }
    }
}
