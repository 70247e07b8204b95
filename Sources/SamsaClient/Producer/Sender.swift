import KafkaCompression
import KafkaWire
import DequeModule
import KafkaProtocol
import KafkaRecords
import Logging
import NIOCore
import Synchronization

/// The sender (Kafka's `Sender`): drains ready batches into produce requests (per partition in order, at most
/// `max.in.flight.requests.per.connection` per broker, sequence numbers assigned when a batch first goes
/// out), handles responses, retries in sequence order, and completes batches.
extension KafkaProducer {
    // MARK: The sender

    /// Sends every batch that may go now: per partition in order, at most `maxInFlightPerConnection`
    /// requests per broker, one batch per partition per request.
    func drain() {
        var requests: [Int32: [Batch]] = [:]
        var expired: [Batch] = []
        var compressionFailures: [(Batch, KafkaClientError)] = []
        var missingLeaders: Set<String> = []
        var toConnect: [Int32] = []
        var sent: [(BrokerConnection, [Batch], Written)] = []
        let deliveryTimeout = UInt64(config.deliveryTimeoutMs) * 1_000_000
        state.withLock { s in
            guard !s.closed || s.unfinishedRecords > 0 else { return }
            let now = monotonicNanos()
            if config.lingerMs == 0 {
                for topic in s.topics.values {
                    for case let open? in topic.open where s.partitions[open.tp]?.ready.isEmpty ?? true
                        && (s.partitions[open.tp]?.inFlight ?? 0) < config.maxInFlightPerConnection {
                        s.close(open, in: topic)
                    }
                }
            }
            for tp in s.partitions.keys {
                // Mutated in place: a copy of the queue would copy its whole `ready` deque.
                guard let first = s.partitions[tp]!.ready.first else { continue }
                if first.baseSequence < 0, now > first.createdNanos, now - first.createdNanos > deliveryTimeout {
                    expired.append(s.partitions[tp]!.ready.removeFirst())
                    continue
                }
                if s.partitions[tp]!.retrying {
                    if s.partitions[tp]!.inFlight > 0 || now < s.partitions[tp]!.blockedUntil { continue }
                    s.partitions[tp]!.retrying = false
                }
                guard s.partitions[tp]!.inFlight < config.maxInFlightPerConnection else { continue }
                guard let leader = cluster.leader(of: tp) else { missingLeaders.insert(tp.topic); continue }
                guard s.inFlightPerNode[leader, default: 0] < config.maxInFlightPerConnection else { continue }
                let batch = s.partitions[tp]!.ready.removeFirst()
                if batch.bytes == nil {
                    if config.enableIdempotence {
                        batch.baseSequence = s.partitions[tp]!.nextSequence
                        s.partitions[tp]!.nextSequence &+= Int32(batch.recordCount)
                        batch.builder.header.baseSequence = batch.baseSequence
                        batch.builder.header.producerId = s.producerId
                        batch.builder.header.producerEpoch = s.producerEpoch
                    }
                    do {
                        batch.bytes = try batch.builder.build(compression: config.compression, level: config.compressionLevel)
                    } catch {
                        // Never sent uncompressed behind the application's back: the batch's records fail,
                        // and its sequence numbers go back to the next batch.
                        if batch.baseSequence >= 0 {
                            s.partitions[tp]!.nextSequence = batch.baseSequence
                            batch.baseSequence = -1
                        }
                        compressionFailures.append((batch, .compressionFailed(codec: "\(config.compression)", reason: "\(error)")))
                        continue
                    }
                }
                s.partitions[tp]!.inFlight += 1
                requests[leader, default: []].append(batch)
            }
            for (node, batches) in requests {
                if let connection = s.connections[node], connection.isActive {
                    s.inFlightPerNode[node, default: 0] += 1
                    // Written while holding the lock, so requests for a partition reach the socket
                    // in sequence order even when drains run on several threads at once. Their
                    // completions are attached after the lock is released.
                    sent.append((connection, batches, write(batches, on: connection)))
                } else {
                    // Not connected yet: put the batches back and connect.
                    for b in batches.reversed() {
                        s.partitions[b.tp]!.inFlight -= 1
                        s.partitions[b.tp]!.ready.prepend(b)
                    }
                    if s.connecting.insert(node).inserted { toConnect.append(node) }
                }
            }
        }
        for batch in expired {
            complete(batch, result: .failure(.timedOut(operation: "delivery to \(batch.tp)", milliseconds: config.deliveryTimeoutMs)))
        }
        for (batch, error) in compressionFailures {
            config.client.logger.error("producer batch failed", metadata: ["partition": "\(batch.tp)", "records": "\(batch.recordCount)", "error": "\(error)"])
            complete(batch, result: .failure(error))
        }
        for (connection, batches, written) in sent { handle(written, batches, on: connection) }
        for node in toConnect {
            Task {
                let connection: BrokerConnection?
                do {
                    connection = try await cluster.connection(to: node)
                } catch {
                    config.client.logger.debug("producer cannot connect to the partition leader; retrying", metadata: [
                        "broker": "\(node)", "error": "\(error)",
                    ])
                    connection = nil
                }
                state.withLock { s in
                    s.connecting.remove(node)
                    if let connection { s.connections[node] = connection }
                }
                if connection == nil { try? await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000) }
                drain()
            }
        }
        if !missingLeaders.isEmpty {
            Task {
                if let m = try? await cluster.refreshMetadata(topics: Array(missingLeaders)) {
                    state.withLock { s in
                        for t in missingLeaders { if let topic = m.topics[t] { s.topics[t]?.resize(Int32(topic.partitions.count)) } }
                    }
                }
                try? await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000)
                drain()
            }
        }
    }

    /// A produce request handed to a connection: its response (or, for acks=0, its write).
    enum Written {
        case response(EventLoopFuture<ProduceResponse>)
        case writeOnly(EventLoopFuture<Void>)
        case failed(KafkaClientError)
    }

    /// Encodes one produce request for `batches` and writes it (no completion handling here).
    func write(_ batches: [Batch], on connection: BrokerConnection) -> Written {
        var request = ProduceRequest(acks: config.acks.rawValue, timeoutMs: config.ackTimeoutMs)
        var byTopic: [String: [ProduceRequest.PartitionProduceData]] = [:]
        for b in batches { byTopic[b.tp.topic, default: []].append(.init(index: b.tp.partition, records: b.bytes)) }
        request.topicData = byTopic.map { .init(name: $0.key, partitionData: $0.value) }
        let version: Int16
        do { version = try connection.version(.produce, 3...11) } catch {
            return .failed(error as? KafkaClientError ?? .unsupportedVersion(api: "Produce", broker: connection.address))
        }
        if config.acks == .none { return .writeOnly(connection.sendWithoutResponse(request, version: version)) }
        return .response(connection.sendFuture(request, version: version))
    }

    func handle(_ written: Written, _ batches: [Batch], on connection: BrokerConnection) {
        switch written {
        case let .failed(e):
            finishRequest(batches, node: connection.nodeId) { _ in .fail(e) }
        case let .writeOnly(future):
            future.whenComplete { result in
                self.finishRequest(batches, node: connection.nodeId) { _ in
                    switch result {
                    case .success: return .succeed(baseOffset: -1)
                    case .failure: return .retry(.connectionClosed(broker: connection.address))
                    }
                }
            }
        case let .response(future):
            future.whenComplete { result in
                switch result {
                case let .failure(error):
                    let e = error as? KafkaClientError ?? .connectionClosed(broker: connection.address)
                    _ = self.state.withLock { $0.connections.removeValue(forKey: connection.nodeId) }
                    self.finishRequest(batches, node: connection.nodeId) { _ in e.isRetriable ? .retry(e) : .fail(e) }
                case let .success(response):
                    var results: [TopicPartition: ProduceResponse.PartitionProduceResponse] = [:]
                    for t in response.responses {
                        for p in t.partitionResponses { results[TopicPartition(t.name, p.index)] = p }
                    }
                    self.finishRequest(batches, node: connection.nodeId) { batch in
                        guard let r = results[batch.tp] else {
                            return .retry(.malformedResponse("no result for \(batch.tp)"))
                        }
                        let code = KafkaErrorCode(r.errorCode)
                        switch code {
                        case .none: return .succeed(baseOffset: r.baseOffset, logAppendTime: r.logAppendTimeMs)
                        case .duplicateSequenceNumber: return .succeed(baseOffset: -1)
                        case .outOfOrderSequenceNumber where batch.attempts < 20:
                            // An earlier batch of this partition failed and is being retried.
                            return .retry(.broker(code: code, message: r.errorMessage, broker: connection.nodeId, topicPartition: batch.tp))
                        default:
                            let e = KafkaClientError.broker(code: code, message: r.errorMessage, broker: connection.nodeId, topicPartition: batch.tp)
                            return code.isRetriable ? .retry(e) : .fail(e)
                        }
                    }
                }
            }
        }
    }

    enum Outcome {
        case succeed(baseOffset: Int64, logAppendTime: Int64 = -1)
        case retry(KafkaClientError)
        case fail(KafkaClientError)
    }

    func finishRequest(_ batches: [Batch], node: Int32, _ outcome: (Batch) -> Outcome) {
        var done: [(Batch, Result<(Int64, Int64), KafkaClientError>)] = []
        var needMetadata: Set<String> = []
        state.withLock { s in
            let now = monotonicNanos()
            s.inFlightPerNode[node, default: 1] -= 1
            for batch in batches {
                s.partitions[batch.tp]!.inFlight -= 1
                switch outcome(batch) {
                case let .succeed(offset, time):
                    done.append((batch, .success((offset, time))))
                case let .fail(e):
                    done.append((batch, .failure(e)))
                case let .retry(e):
                    batch.attempts += 1
                    if now > batch.createdNanos, now - batch.createdNanos > UInt64(config.deliveryTimeoutMs) * 1_000_000 {
                        done.append((batch, .failure(e)))
                        continue
                    }
                    if case let .broker(code, _, _, _) = e, code == .notLeaderOrFollower || code == .unknownTopicOrPartition || code == .leaderNotAvailable {
                        needMetadata.insert(batch.tp.topic)
                    }
                    // Back in sequence order, ahead of batches not sent yet.
                    let index = s.partitions[batch.tp]!.ready.firstIndex { $0.baseSequence < 0 || $0.baseSequence > batch.baseSequence }
                        ?? s.partitions[batch.tp]!.ready.endIndex
                    s.partitions[batch.tp]!.ready.insert(batch, at: index)
                    s.partitions[batch.tp]!.retrying = true
                    s.partitions[batch.tp]!.blockedUntil = now + UInt64(config.client.retryBackoffMs) * 1_000_000
                }
            }
        }
        for (batch, result) in done {
            switch result {
            case let .success((offset, time)): complete(batch, result: .success((offset, time)))
            case let .failure(e): complete(batch, result: .failure(e))
            }
        }
        if !needMetadata.isEmpty {
            Task {
                _ = try? await cluster.refreshMetadata(topics: Array(needMetadata))
                drain()
            }
        }
        if done.count < batches.count {
            config.client.eventLoopGroup.next().scheduleTask(in: .milliseconds(config.client.retryBackoffMs)) { self.drain() }
        }
        drain()
    }

    func complete(_ batch: Batch, result: Result<(Int64, Int64), KafkaClientError>) {
        let completed = monotonicNanos()
        if batch.hasCallbacks {
            for (i, callback) in batch.callbacks.enumerated() {
                guard let callback else { continue }
                switch result {
                case let .success((base, time)):
                    callback(.success(RecordMetadata(topic: batch.tp.topic, partition: batch.tp.partition,
                                                     offset: base < 0 ? -1 : base + Int64(i), timestamp: time)))
                case let .failure(e):
                    callback(.failure(e))
                }
            }
        }
        if let report = config.onBatchCompleted {
            let (base, error): (Int64, KafkaClientError?) = switch result {
            case let .success((b, _)): (b, nil)
            case let .failure(e): (-1, e)
            }
            report(BatchReport(topicPartition: batch.tp, baseOffset: base, recordCount: batch.recordCount, bytes: batch.bytes?.readableBytes ?? 0,
                               error: error, enqueueNanos: batch.enqueueNanos, completedNanos: completed))
        }
        let (flushers, spacers) = state.withLock { s -> ([CheckedContinuation<Void, Never>], [CheckedContinuation<Void, Never>]) in
            s.unfinishedRecords -= batch.recordCount
            s.bufferedBytes -= batch.size
            var f: [CheckedContinuation<Void, Never>] = [], w: [CheckedContinuation<Void, Never>] = []
            if s.unfinishedRecords == 0 { swap(&f, &s.flushWaiters) }
            if s.bufferedBytes <= config.bufferMemory { swap(&w, &s.spaceWaiters) }
            return (f, w)
        }
        for c in flushers { c.resume() }
        for c in spacers { c.resume() }
    }
}
