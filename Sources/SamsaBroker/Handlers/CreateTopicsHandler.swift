import KafkaProtocol

/// CreateTopics 2–7: partitions and replication factor (or explicit assignments), configs,
/// validate-only; v5+ returns the created topic's partition count, replication factor and configs.
struct CreateTopicsHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 2...7 }
    var isBarrier: Bool { true }

    func handle(_ request: CreateTopicsRequest, context: RequestContext) -> HandlerOutcome<CreateTopicsResponse> {
        let version = context.apiVersion
        let services = self.services
        return .later(context.eventLoop.makeFutureWithTask {
            var response = CreateTopicsResponse()
            var seen: [String: Int] = [:]
            for t in request.topics { seen[t.name, default: 0] += 1 }
            for t in request.topics {
                // Kafka answers a null error message on success (the schema's default is "").
                var result = CreateTopicsResponse.CreatableTopicResult(name: t.name, errorMessage: nil)
                do {
                    if seen[t.name, default: 0] > 1 { throw KafkaError(.invalidRequest, "Create topics request from client contains duplicate topic name \(t.name)") }
                    var configs: [String: String] = [:]
                    for c in t.configs {
                        guard let value = c.value else { throw KafkaError(.invalidConfig, "Null value not supported for topic configs: \(c.name)") }
                        configs[c.name] = value
                    }
                    let assignments = t.assignments.isEmpty ? nil : t.assignments.sorted { $0.partitionIndex < $1.partitionIndex }.map(\.brokerIds)
                    if !t.assignments.isEmpty, t.assignments.map(\.partitionIndex).sorted() != Array(0..<Int32(t.assignments.count)) {
                        throw KafkaError(.invalidReplicaAssignment, "Partitions should be a consecutive 0-based integer sequence")
                    }
                    let created = try await services.topics.create(name: t.name, partitions: t.numPartitions, replicationFactor: t.replicationFactor,
                                                                   assignments: assignments, configs: configs, validateOnly: request.validateOnly)
                    result.topicId = created.topic.topicId
                    result.numPartitions = Int32(created.topic.partitions.count)
                    result.replicationFactor = Int16(created.topic.partitions.first?.replicas.count ?? 0)
                    if version >= 5 {
                        result.configs = ConfigDescriber.topic(created.configs, config: services.config).map {
                            .init(name: $0.name, value: $0.value, readOnly: $0.readOnly, configSource: $0.source.rawValue, isSensitive: $0.sensitive)
                        }
                    }
                    if !request.validateOnly { services.logger.info("created topic \(t.name)", metadata: ["partitions": "\(result.numPartitions)"]) }
                } catch {
                    let e = KafkaError.from(error)
                    result.errorCode = e.code.rawValue
                    result.errorMessage = e.message
                    result.numPartitions = -1
                    result.replicationFactor = -1
                }
                response.topics.append(result)
            }
            return response
        })
    }
}
