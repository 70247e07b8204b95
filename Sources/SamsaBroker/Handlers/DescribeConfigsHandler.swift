import KafkaProtocol

/// DescribeConfigs 1–4: every topic config (override, broker default or Kafka default, with its
/// source and synonyms) and every broker config.
struct DescribeConfigsHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 1...4 }

    func handle(_ request: DescribeConfigsRequest, context: RequestContext) -> HandlerOutcome<DescribeConfigsResponse> {
        var response = DescribeConfigsResponse()
        for resource in request.resources {
            var result = DescribeConfigsResponse.DescribeConfigsResult(resourceType: resource.resourceType, resourceName: resource.resourceName)
            var described: [DescribedConfig] = []
            switch resource.resourceType {
            case ConfigDescriber.topicResource:
                if let reason = Topics.invalidReason(resource.resourceName) {
                    result.errorCode = KafkaErrorCode.invalidTopicException.rawValue
                    result.errorMessage = reason
                } else if let topic = services.cache.topic(resource.resourceName) {
                    described = ConfigDescriber.topic(topic.configs, config: services.config)
                } else {
                    result.errorCode = KafkaErrorCode.unknownTopicOrPartition.rawValue
                    result.errorMessage = "Topic '\(resource.resourceName)' does not exist."
                }
            case ConfigDescriber.brokerResource:
                if resource.resourceName.isEmpty || resource.resourceName == String(services.brokerId) {
                    described = ConfigDescriber.broker(services.config)
                } else {
                    result.errorCode = KafkaErrorCode.invalidRequest.rawValue
                    result.errorMessage = "Unexpected broker id, expected \(services.brokerId) or empty string, but received \(resource.resourceName)"
                }
            case ConfigDescriber.brokerLoggerResource:
                described = []
            default:
                result.errorCode = KafkaErrorCode.invalidRequest.rawValue
                result.errorMessage = "Unsupported resource type \(resource.resourceType)"
            }
            if let keys = resource.configurationKeys, !keys.isEmpty { described = described.filter { keys.contains($0.name) } }
            result.configs = described.map { d in
                var c = DescribeConfigsResponse.DescribeConfigsResourceResult(
                    name: d.name, value: d.sensitive ? nil : d.value, readOnly: d.readOnly, isDefault: d.source == .defaultConfig,
                    configSource: d.source.rawValue, isSensitive: d.sensitive)
                if request.includeSynonyms {
                    c.synonyms = d.synonyms.map { .init(name: $0.name, value: $0.value, source: $0.source.rawValue) }
                }
                c.configType = d.type.rawValue
                if request.includeDocumentation { c.documentation = d.documentation }
                return c
            }
            response.results.append(result)
        }
        return .respond(response)
    }
}
