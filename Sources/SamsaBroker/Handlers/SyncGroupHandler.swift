import KafkaWire
import KafkaProtocol
import SamsaStorage

/// SyncGroup 0–5: the leader's assignment goes to `__consumer_offsets`, then every member gets its share.
struct SyncGroupHandler: APIHandler {
    let groups: GroupCoordinatorService
    var versions: ClosedRange<Int16> { 0...5 }

    func handle(_ request: SyncGroupRequest, context: RequestContext) -> HandlerOutcome<SyncGroupResponse> {
        if let error = groups.coordinatorError(request.groupId) { return .respond(SyncGroupResponse(errorCode: error.rawValue)) }
        let version = context.apiVersion
        return .later(groups.ask(on: context.eventLoop, { c, token in
            c.sync(token, request, version: version, now: currentTimeMillis())
        }) { if case let .sync(r) = $0 { return r } else { return nil } })
    }
}
