import KafkaProtocol

/// AlterConfigs 0–2: replaces a topic's config overrides with the given set.
struct AlterConfigsHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 0...2 }
    var isBarrier: Bool { true }

    func handle(_ request: AlterConfigsRequest, context: RequestContext) -> HandlerOutcome<AlterConfigsResponse> {
        let services = self.services
        return .later(context.eventLoop.makeFutureWithTask {
            var response = AlterConfigsResponse()
            for resource in request.resources {
                var result = AlterConfigsResponse.AlterConfigsResourceResponse(errorMessage: nil, resourceType: resource.resourceType,
                                                                               resourceName: resource.resourceName)
                do {
                    guard resource.resourceType == ConfigDescriber.topicResource else { throw ConfigAlteration.brokerUnsupported }
                    var configs: [String: String] = [:]
                    for c in resource.configs {
                        guard let v = c.value else { throw KafkaError(.invalidConfig, "Null value not supported for topic configs: \(c.name)") }
                        configs[c.name] = v
                    }
                    try await services.topics.setConfigs(name: resource.resourceName, configs: configs, validateOnly: request.validateOnly)
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

enum ConfigAlteration {
    static let brokerUnsupported = KafkaError(.invalidRequest, "Changing broker configs at run time is not supported yet; set them in the broker's properties file")
}
