import KafkaWire
import KafkaProtocol
import SamsaStorage

/// JoinGroup 0–9 (member id required from v4, KIP-394): answered when the rebalance's join phase ends.
struct JoinGroupHandler: APIHandler {
    let groups: GroupCoordinatorService
    var versions: ClosedRange<Int16> { 0...9 }

    func handle(_ request: JoinGroupRequest, context: RequestContext) -> HandlerOutcome<JoinGroupResponse> {
        if let error = groups.coordinatorError(request.groupId) {
            return .respond(JoinGroupResponse(errorCode: error.rawValue, generationId: -1, leader: "", memberId: request.memberId))
        }
        let version = context.apiVersion, clientId = context.header.clientId ?? "", host = context.connection.remoteHost
        return .later(groups.ask(on: context.eventLoop, { c, token in
            c.join(token, request, version: version, clientId: clientId, clientHost: host, now: currentTimeMillis())
        }) { if case let .join(r) = $0 { return r } else { return nil } })
    }
}
