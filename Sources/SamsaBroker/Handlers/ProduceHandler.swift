import KafkaProtocol
import NIOCore
import KafkaRecords
import SamsaStorage

/// Produce 0–11 (0–2 advertised as Kafka 4 does, answered with UNSUPPORTED_VERSION): appends each
/// partition's record batches as received, answers after the flush policy is satisfied, and not at
/// all for acks=0.
struct ProduceHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 0...11 }

    func handle(_ request: ProduceRequest, context: RequestContext) -> HandlerOutcome<ProduceResponse> {
        var response = ProduceResponse()
        var toFlush: [PartitionLog] = []
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
                    if e.code == .unknownServerError {
                        services.logger.error("produce to \(topic.name)-\(p.index) failed: \(error)")
                    }
                }
                topicResponse.partitionResponses.append(pr)
            }
            response.responses.append(topicResponse)
        }
        if acks == 0 && refusal == nil { return .noResponse }
        if toFlush.isEmpty { return .respond(response) }
        // flush.messages reached (1: fsync before every acknowledgement); fsyncs are batched.
        let done = response
        return .later(services.replicas.flusher.flush(toFlush, on: context.eventLoop).map { done }.flatMapErrorThrowing { error in
            var failed = done
            for t in failed.responses.indices {
                for p in failed.responses[t].partitionResponses.indices where failed.responses[t].partitionResponses[p].errorCode == 0 {
                    failed.responses[t].partitionResponses[p].errorCode = KafkaErrorCode.kafkaStorageError.rawValue
                    failed.responses[t].partitionResponses[p].errorMessage = "fsync failed: \(error)"
                }
            }
            return failed
        })
    }
}
