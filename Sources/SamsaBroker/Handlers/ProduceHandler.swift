import KafkaProtocol
import NIOCore
import KafkaRecords
import SamsaStorage
import Synchronization

/// Produce 0–11 (0–2 advertised as Kafka 4 does, answered with UNSUPPORTED_VERSION): appends each
/// partition's record batches as received, answers after the flush policy is satisfied, and not at
/// all for acks=0.
struct ProduceHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 0...11 }

    func handle(_ request: ProduceRequest, context: RequestContext) -> HandlerOutcome<ProduceResponse> {
        var response = ProduceResponse()
        var toFlush: [PartitionLog] = []
        /// acks=all appends not yet below the high watermark: (topic index, partition index, partition, last offset).
        var waits: [(Int, Int, Partition, Int64)] = []
        let acks = request.acks
        let refusal: KafkaError? =
            context.apiVersion < 3 ? KafkaError(.unsupportedVersion, "Produce v\(context.apiVersion) is no longer supported; use v3 or later (record batches)")
            : ![0, 1, -1].contains(acks) ? KafkaError(.invalidRequiredAcks, "acks must be 0, 1 or -1 (all)")
            : request.transactionalId != nil ? KafkaError(.transactionalIdNotFound, "transactions are not supported yet")
            : nil
        for topic in request.topicData {
            var topicResponse = ProduceResponse.TopicProduceResponse(name: topic.name)
            for p in topic.partitionData {
                var pr = ProduceResponse.PartitionProduceResponse(index: p.index)
                do {
                    if let refusal { throw refusal }
                    if Topics.isInternal(topic.name) {
                        throw KafkaError(.invalidTopicException, "Cannot append to internal topic \(topic.name)")
                    }
                    guard let records = p.records, records.readableBytes > 0 else {
                        throw KafkaError(.invalidRecord, "produce request for \(topic.name)-\(p.index) carries no records")
                    }
                    let (result, partition) = try services.replicas.appendToLeader(TopicPartition(topic.name, p.index), records: records, requiredAcks: acks)
                    pr.baseOffset = result.firstOffset
                    pr.logAppendTimeMs = result.logAppendTime
                    pr.logStartOffset = result.logStartOffset
                    if result.needsFlush { toFlush.append(partition.log) }
                    if acks == -1, result.lastOffset >= partition.log.highWatermark {
                        waits.append((response.responses.count, topicResponse.partitionResponses.count, partition, result.lastOffset))
                    }
                } catch {
                    let e = KafkaError.from(error)
                    pr.errorCode = e.code.rawValue
                    pr.errorMessage = e.message
                    // KIP-467 (v8+): which records of the batch were refused, and why.
                    if case let StorageError.invalidBatch(.recordErrors(_, _, errors)) = error {
                        pr.recordErrors = errors.map { .init(batchIndex: $0.batchIndex, batchIndexErrorMessage: $0.message) }
                    }
                    pr.baseOffset = -1
                    pr.logAppendTimeMs = -1
                    pr.logStartOffset = -1
                    if e.code == .notLeaderOrFollower, context.apiVersion >= 10,
                       let leader = services.currentLeader(of: TopicPartition(topic.name, p.index)) {
                        // KIP-951: name the new leader so the client moves without a metadata round trip.
                        pr.currentLeader = .init(leaderId: leader.id, leaderEpoch: leader.epoch)
                        if !response.nodeEndpoints.contains(where: { $0.nodeId == leader.id }),
                           let b = services.cache.snapshot.brokers.first(where: { $0.id == leader.id }) {
                            response.nodeEndpoints.append(.init(nodeId: b.id, host: b.host, port: b.port, rack: b.rack))
                        }
                    }
                    if e.code == .unknownServerError {
                        services.logger.error("produce to \(topic.name)-\(p.index) failed: \(error)")
                    }
                }
                topicResponse.partitionResponses.append(pr)
            }
            response.responses.append(topicResponse)
        }
        if acks == 0 && refusal == nil { return .noResponse }
        if toFlush.isEmpty && waits.isEmpty { return .respond(response) }
        let loop = context.eventLoop
        var flushed = loop.makeSucceededFuture(response)
        if !toFlush.isEmpty {
            // flush.messages reached (1: fsync before every acknowledgement); fsyncs are batched.
            let done = response
            flushed = services.replicas.flusher.flush(toFlush, on: loop).map { done }.flatMapErrorThrowing { error in
                var failed = done
                for t in failed.responses.indices {
                    for p in failed.responses[t].partitionResponses.indices where failed.responses[t].partitionResponses[p].errorCode == 0 {
                        failed.responses[t].partitionResponses[p].errorCode = KafkaErrorCode.kafkaStorageError.rawValue
                        failed.responses[t].partitionResponses[p].errorMessage = "fsync failed: \(error)"
                    }
                }
                return failed
            }
        }
        if waits.isEmpty { return .later(flushed) }
        // acks=all: answer once every in-sync replica has the records (the high watermark passed
        // them), or with REQUEST_TIMED_OUT at the request's timeout.
        let purgatory = services.replicas.producePurgatory
        let timeoutMs = Int64(max(request.timeoutMs, 0))
        return .later(flushed.flatMap { flushedResponse in
            let promise = loop.makePromise(of: ProduceResponse.self)
            let box = Mutex((response: flushedResponse, remaining: waits.count))
            for (t, p, partition, lastOffset) in waits {
                purgatory.watch(partition.topicPartition, lastOffset: lastOffset, timeoutMs: timeoutMs, on: loop,
                                currentHighWatermark: { partition.log.highWatermark }) { code in
                    let finished = box.withLock { b -> ProduceResponse? in
                        if code != .none, b.response.responses[t].partitionResponses[p].errorCode == 0 {
                            b.response.responses[t].partitionResponses[p].errorCode = code.rawValue
                            b.response.responses[t].partitionResponses[p].errorMessage = code == .requestTimedOut
                                ? "the in-sync replicas did not all acknowledge the records within the request timeout" : nil
                        }
                        b.remaining -= 1
                        return b.remaining == 0 ? b.response : nil
                    }
                    if let finished { promise.succeed(finished) }
                }
            }
            return promise.futureResult
        })
    }
}
