import KafkaProtocol
import SamsaCoordinators

/// FindCoordinator 0–6: the broker leading the key's `__consumer_offsets` partition for groups
/// (creating the topic on first use, as Kafka does); batched keys from v4.
struct FindCoordinatorHandler: APIHandler {
    let services: BrokerServices
    let groups: GroupCoordinatorService
    var versions: ClosedRange<Int16> { 0...6 }

    static let groupKey: Int8 = 0, transactionKey: Int8 = 1

    func handle(_ request: FindCoordinatorRequest, context: RequestContext) -> HandlerOutcome<FindCoordinatorResponse> {
        let version = context.apiVersion
        let keys = version >= 4 ? request.coordinatorKeys : [request.key]
        let services = self.services, groups = self.groups
        return .later(context.eventLoop.makeFutureWithTask {
            var coordinators: [FindCoordinatorResponse.Coordinator] = []
            for key in keys {
                // Kafka sets the message to Errors.NONE.message(), "NONE", on success (never "").
                var c = FindCoordinatorResponse.Coordinator(key: key, nodeId: -1, host: "", port: -1, errorCode: 0, errorMessage: "NONE")
                do {
                    switch request.keyType {
                    case Self.groupKey:
                        guard !key.isEmpty else { throw KafkaError(.invalidRequest, "group id must not be empty") }
                        try await groups.ensureOffsetsTopic()
                        let p = GroupRecords.partition(for: key, partitions: groups.partitions)
                        guard let leader = services.cache.partition(Topics.consumerOffsets, p)?.leader, leader >= 0 else {
                            throw KafkaError(.coordinatorNotAvailable, "the coordinator is not available")
                        }
                        try fill(&c, broker: leader)
                    case Self.transactionKey:
                        // Transactions are not implemented yet; this single node answers for them.
                        guard !key.isEmpty else { throw KafkaError(.invalidRequest, "transactional id must not be empty") }
                        try fill(&c, broker: services.brokerId)
                    default:
                        throw KafkaError(.invalidRequest, "unknown coordinator key type \(request.keyType)")
                    }
                } catch {
                    let e = KafkaError.from(error)
                    c.errorCode = e.code.rawValue
                    c.errorMessage = e.message
                }
                coordinators.append(c)
            }
            var response = FindCoordinatorResponse()
            if version >= 4 {
                response.coordinators = coordinators
            } else if let c = coordinators.first {
                response.errorCode = c.errorCode
                response.errorMessage = c.errorMessage
                response.nodeId = c.nodeId
                response.host = c.host
                response.port = c.port
            }
            return response
        })
    }

    private func fill(_ c: inout FindCoordinatorResponse.Coordinator, broker id: Int32) throws {
        guard let broker = services.cache.snapshot.brokers.first(where: { $0.id == id }) else {
            throw KafkaError(.coordinatorNotAvailable, "coordinator broker \(id) is not available")
        }
        c.nodeId = broker.id
        c.host = broker.host
        c.port = broker.port
    }
}
