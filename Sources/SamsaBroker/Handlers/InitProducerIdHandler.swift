import KafkaProtocol

/// InitProducerId 0–5 for idempotent producers: a new producer id with epoch 0 (Kafka does the
/// same for a null transactional id, whatever id and epoch the producer sends).
struct InitProducerIdHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 0...5 }

    func handle(_ request: InitProducerIdRequest, context: RequestContext) -> HandlerOutcome<InitProducerIdResponse> {
        guard request.transactionalId == nil else {
            // Transactions come later; until then a transactional producer is told plainly.
            return .respond(InitProducerIdResponse(errorCode: KafkaErrorCode.transactionalIdAuthorizationFailed.rawValue, producerId: -1, producerEpoch: -1))
        }
        let producerIds = services.producerIds
        return .later(context.eventLoop.makeFutureWithTask {
            do {
                return InitProducerIdResponse(errorCode: 0, producerId: try await producerIds.nextProducerId(), producerEpoch: 0)
            } catch {
                return InitProducerIdResponse(errorCode: KafkaErrorCode.coordinatorNotAvailable.rawValue, producerId: -1, producerEpoch: -1)
            }
        })
    }
}
