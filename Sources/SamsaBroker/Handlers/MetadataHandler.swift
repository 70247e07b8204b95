import KafkaProtocol
import KafkaWire
import NIOCore

/// Metadata 0–12: brokers, cluster id, controller and the requested topics (all when null, or
/// empty at v0), creating unknown topics when `auto.create.topics.enable` and the client allow it.
struct MetadataHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 0...12 }

    func handle(_ request: MetadataRequest, context: RequestContext) -> HandlerOutcome<MetadataResponse> {
        let version = context.apiVersion
        let allTopics = request.topics == nil || (version == 0 && request.topics?.isEmpty == true)
        let snapshot = services.cache.snapshot
        var missing: [String] = []
        if !allTopics, services.config.autoCreateTopics, version < 4 || request.allowAutoTopicCreation {
            for t in request.topics ?? [] {
                if let name = t.name, snapshot.topics[name] == nil, Topics.invalidReason(name) == nil { missing.append(name) }
            }
        }
        if missing.isEmpty { return .respond(build(request, version: version)) }
        let topics = services.topics
        return .later(context.eventLoop.makeFutureWithTask {
            for name in missing {
                do {
                    _ = try await topics.create(name: name, partitions: -1, replicationFactor: -1, assignments: nil, configs: [:], validateOnly: false)
                    services.logger.info("auto-created topic \(name)")
                } catch {
                    // Raced with another creation, or refused: the response reports the topic as it now is.
                }
            }
            return build(request, version: version)
        })
    }

    func build(_ request: MetadataRequest, version: Int16) -> MetadataResponse {
        let snapshot = services.cache.snapshot
        var response = MetadataResponse()
        response.brokers = snapshot.brokers.map { .init(nodeId: $0.id, host: $0.host, port: $0.port, rack: $0.rack) }
        response.clusterId = snapshot.clusterId
        response.controllerId = snapshot.controllerId
        let allTopics = request.topics == nil || (version == 0 && request.topics?.isEmpty == true)
        if allTopics {
            response.topics = snapshot.topics.values.sorted { $0.name < $1.name }.map { describe($0, includeOperations: request.includeTopicAuthorizedOperations) }
        } else {
            for t in request.topics ?? [] {
                if let name = t.name {
                    if let topic = snapshot.topics[name] {
                        response.topics.append(describe(topic, includeOperations: request.includeTopicAuthorizedOperations))
                    } else {
                        let code: KafkaErrorCode = Topics.invalidReason(name) != nil ? .invalidTopicException : .unknownTopicOrPartition
                        response.topics.append(.init(errorCode: code.rawValue, name: name))
                    }
                } else if let name = snapshot.topicNamesById[t.topicId], let topic = snapshot.topics[name] {
                    response.topics.append(describe(topic, includeOperations: request.includeTopicAuthorizedOperations))
                } else {
                    response.topics.append(.init(errorCode: KafkaErrorCode.unknownTopicId.rawValue, name: nil, topicId: t.topicId))
                }
            }
        }
        if request.includeClusterAuthorizedOperations { response.clusterAuthorizedOperations = AclOperations.allCluster }
        return response
    }

    func describe(_ topic: TopicMetadata, includeOperations: Bool) -> MetadataResponse.MetadataResponseTopic {
        var t = MetadataResponse.MetadataResponseTopic(errorCode: 0, name: topic.name, topicId: topic.topicId, isInternal: topic.isInternal)
        t.partitions = topic.partitions.map { p in
            .init(errorCode: 0, partitionIndex: p.partition, leaderId: p.leader, leaderEpoch: p.leaderEpoch,
                  replicaNodes: p.replicas, isrNodes: p.isr, offlineReplicas: [])
        }
        if includeOperations { t.topicAuthorizedOperations = AclOperations.allTopic }
        return t
    }
}

/// Authorized-operation bit sets (no ACLs yet: everything is allowed).
enum AclOperations {
    // READ(3) WRITE(4) CREATE(5) DELETE(6) ALTER(7) DESCRIBE(8) DESCRIBE_CONFIGS(10) ALTER_CONFIGS(11)
    static let allTopic: Int32 = (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11)
    // CREATE ALTER DESCRIBE CLUSTER_ACTION(9) DESCRIBE_CONFIGS ALTER_CONFIGS IDEMPOTENT_WRITE(12) (+ DESCRIBE/ALTER)
    static let allCluster: Int32 = (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12)
    // READ DELETE DESCRIBE
    static let allGroup: Int32 = (1 << 3) | (1 << 6) | (1 << 8)
}
