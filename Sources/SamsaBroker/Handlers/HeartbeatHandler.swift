import KafkaWire
import KafkaProtocol
import SamsaStorage

/// Heartbeat 0–4: keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.
struct HeartbeatHandler: APIHandler {
    let groups: GroupCoordinatorService
    var versions: ClosedRange<Int16> { 0...4 }

    func handle(_ request: HeartbeatRequest, context: RequestContext) -> HandlerOutcome<HeartbeatResponse> {
        if let error = groups.coordinatorError(request.groupId) { return .respond(HeartbeatResponse(errorCode: error.rawValue)) }
        return .respond(groups.withCoordinator { c in (c.heartbeat(request, now: currentTimeMillis()), []) })
    }
}
