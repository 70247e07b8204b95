import KafkaProtocol

/// IncrementalAlterConfigs 0–1: SET, DELETE, APPEND and SUBTRACT on a topic's config overrides.
struct IncrementalAlterConfigsHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 0...1 }
    var isBarrier: Bool { true }

    static let set: Int8 = 0, delete: Int8 = 1, append: Int8 = 2, subtract: Int8 = 3

    func handle(_ request: IncrementalAlterConfigsRequest, context: RequestContext) -> HandlerOutcome<IncrementalAlterConfigsResponse> {
        let services = self.services
        return .later(context.eventLoop.makeFutureWithTask {
            var response = IncrementalAlterConfigsResponse()
            for resource in request.resources {
                var result = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse(errorMessage: nil, resourceType: resource.resourceType,
                                                                                         resourceName: resource.resourceName)
                do {
                    guard resource.resourceType == ConfigDescriber.topicResource else { throw ConfigAlteration.brokerUnsupported }
                    guard let topic = services.cache.topic(resource.resourceName) else {
                        throw KafkaError(.unknownTopicOrPartition, "The topic '\(resource.resourceName)' does not exist.")
                    }
                    var configs = topic.configs
                    for c in resource.configs {
                        guard let def = topicConfigDefinitions.first(where: { $0.name == c.name }) else {
                            throw KafkaError(.invalidConfig, "Unknown topic config name: \(c.name)")
                        }
                        switch c.configOperation {
                        case Self.set:
                            guard let v = c.value else { throw KafkaError(.invalidRequest, "Null value not supported for: \(c.name)") }
                            configs[c.name] = v
                        case Self.delete:
                            configs.removeValue(forKey: c.name)
                        case Self.append, Self.subtract:
                            guard def.type == .list else { throw KafkaError(.invalidConfig, "Config value append is not allowed for config key: \(c.name)") }
                            let current = (configs[c.name] ?? services.config.topicValue(c.name, overrides: [:]) ?? "")
                                .split(separator: ",").map { String($0).trimmingSpaces }
                            let items = (c.value ?? "").split(separator: ",").map { String($0).trimmingSpaces }
                            let updated = c.configOperation == Self.append ? current + items.filter { !current.contains($0) } : current.filter { !items.contains($0) }
                            configs[c.name] = updated.joined(separator: ",")
                        default:
                            throw KafkaError(.invalidRequest, "Unknown config operation \(c.configOperation)")
                        }
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
