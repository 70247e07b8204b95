import KafkaWire
import KafkaProtocol
import SamsaStorage

/// OffsetCommit 2–9: offsets are written to `__consumer_offsets` and answered once appended.
struct OffsetCommitHandler: APIHandler {
    let services: BrokerServices
    let groups: GroupCoordinatorService
    var versions: ClosedRange<Int16> { 2...9 }

    func handle(_ request: OffsetCommitRequest, context: RequestContext) -> HandlerOutcome<OffsetCommitResponse> {
        if let error = groups.coordinatorError(request.groupId) {
            var response = OffsetCommitResponse()
            response.topics = request.topics.map { t in
                .init(name: t.name, partitions: t.partitions.map { .init(partitionIndex: $0.partitionIndex, errorCode: error.rawValue) })
            }
            return .respond(response)
        }
        let version = context.apiVersion, cache = services.cache
        return .later(groups.ask(on: context.eventLoop, { c, token in
            c.commit(token, request, version: version, now: currentTimeMillis()) { cache.topic($0) != nil }
        }) { if case let .commit(r) = $0 { return r } else { return nil } })
    }
}
