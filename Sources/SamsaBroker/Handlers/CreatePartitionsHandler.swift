import KafkaProtocol

/// CreatePartitions 0–3: grows a topic to `count` partitions.
struct CreatePartitionsHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 0...3 }
    var isBarrier: Bool { true }

    func handle(_ request: CreatePartitionsRequest, context: RequestContext) -> HandlerOutcome<CreatePartitionsResponse> {
        let services = self.services
        return .later(context.eventLoop.makeFutureWithTask {
            var response = CreatePartitionsResponse()
            for t in request.topics {
                var result = CreatePartitionsResponse.CreatePartitionsTopicResult(name: t.name)
                do {
                    try await services.topics.createPartitions(name: t.name, count: t.count, assignments: t.assignments?.map(\.brokerIds),
                                                               validateOnly: request.validateOnly)
                } catch {
                    let e = KafkaError.from(error)
                    result.errorCode = e.code.rawValue
                    result.errorMessage = e.message
                }
                response.results.append(result)
            }
            return response
        })
    }
}
