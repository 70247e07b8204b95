import KafkaProtocol
import KafkaWire

/// DeleteTopics 1–6: by name, or by topic id from v6.
struct DeleteTopicsHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 1...6 }
    var isBarrier: Bool { true }

    func handle(_ request: DeleteTopicsRequest, context: RequestContext) -> HandlerOutcome<DeleteTopicsResponse> {
        let version = context.apiVersion
        let services = self.services
        let targets: [(name: String?, id: KafkaUUID)] = version >= 6 ? request.topics.map { ($0.name, $0.topicId) } : request.topicNames.map { ($0, .zero) }
        return .later(context.eventLoop.makeFutureWithTask {
            var response = DeleteTopicsResponse()
            for target in targets {
                var result = DeleteTopicsResponse.DeletableTopicResult(name: target.name, topicId: target.id)
                do {
                    let name: String
                    if let n = target.name {
                        name = n
                    } else if let n = services.cache.topicName(id: target.id) {
                        name = n
                        result.name = n
                    } else {
                        throw KafkaError(.unknownTopicId, "Topic id \(target.id) does not exist")
                    }
                    if let topic = services.cache.topic(name) { result.topicId = topic.topicId }
                    try await services.topics.delete(name: name)
                    services.logger.info("deleted topic \(name)")
                } catch {
                    let e = KafkaError.from(error)
                    result.errorCode = e.code.rawValue
                    result.errorMessage = e.message
                }
                response.responses.append(result)
            }
            return response
        })
    }
}
