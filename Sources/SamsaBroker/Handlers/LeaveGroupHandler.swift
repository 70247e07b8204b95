import KafkaWire
import KafkaProtocol
import SamsaStorage

/// LeaveGroup 0–5 (several members at once from v3).
struct LeaveGroupHandler: APIHandler {
    let groups: GroupCoordinatorService
    var versions: ClosedRange<Int16> { 0...5 }

    func handle(_ request: LeaveGroupRequest, context: RequestContext) -> HandlerOutcome<LeaveGroupResponse> {
        if let error = groups.coordinatorError(request.groupId) { return .respond(LeaveGroupResponse(errorCode: error.rawValue)) }
        let version = context.apiVersion
        return .respond(groups.withCoordinator { c in c.leave(request, version: version, now: currentTimeMillis()) })
    }
}
