import KafkaProtocol
import SamsaCoordinators

/// OffsetFetch 1–9: committed offsets of one group (several groups per request from v8);
/// partitions with no commit answer offset -1.
struct OffsetFetchHandler: APIHandler {
    let groups: GroupCoordinatorService
    var versions: ClosedRange<Int16> { 1...9 }

    typealias Wanted = (groupId: String, topics: [(name: String, partitions: [Int32])]?)

    func handle(_ request: OffsetFetchRequest, context: RequestContext) -> HandlerOutcome<OffsetFetchResponse> {
        let version = context.apiVersion
        let wanted: [Wanted] = version >= 8
            ? request.groups.map { g in (g.groupId, g.topics?.map { ($0.name, $0.partitionIndexes) }) }
            : [(request.groupId, request.topics?.map { ($0.name, $0.partitionIndexes) })]
        var results: [(groupId: String, error: KafkaErrorCode, topics: [(name: String, partitions: [(Int32, CommittedOffset?)])])] = []
        for w in wanted {
            let error = groups.coordinatorError(w.groupId) ?? groups.read { $0.availabilityError(for: w.groupId) }
            if let error {
                results.append((w.groupId, error, (w.topics ?? []).map { ($0.name, $0.partitions.map { ($0, nil) }) }))
            } else {
                results.append((w.groupId, .none, groups.read { $0.fetchOffsets(groupId: w.groupId, topics: w.topics) }))
            }
        }
        var response = OffsetFetchResponse()
        if version >= 8 {
            response.groups = results.map { r in
                .init(groupId: r.groupId, topics: r.topics.map { t in
                    .init(name: t.name, partitions: t.partitions.map { p, o in
                        .init(partitionIndex: p, committedOffset: o?.offset ?? -1, committedLeaderEpoch: o?.leaderEpoch ?? -1,
                              metadata: o?.metadata ?? "", errorCode: 0)
                    })
                }, errorCode: r.error.rawValue)
            }
        } else if let r = results.first {
            // Before v2 there is no top-level error: each partition carries it.
            let partitionError = version < 2 ? r.error.rawValue : 0
            response.topics = r.topics.map { t in
                .init(name: t.name, partitions: t.partitions.map { p, o in
                    .init(partitionIndex: p, committedOffset: o?.offset ?? -1, committedLeaderEpoch: o?.leaderEpoch ?? -1,
                          metadata: o?.metadata ?? "", errorCode: partitionError)
                })
            }
            response.errorCode = r.error.rawValue
        }
        return .respond(response)
    }
}
