import KafkaProtocol

/// DeleteGroups 0–2: empty groups only (NON_EMPTY_GROUP otherwise); tombstones their records.
struct DeleteGroupsHandler: APIHandler {
    let groups: GroupCoordinatorService
    var versions: ClosedRange<Int16> { 0...2 }
    var isBarrier: Bool { true }

    func handle(_ request: DeleteGroupsRequest, context: RequestContext) -> HandlerOutcome<DeleteGroupsResponse> {
        let local = request.groupsNames.filter { groups.coordinatorError($0) == nil }
        let foreign = request.groupsNames.filter { groups.coordinatorError($0) != nil }
        let notCoordinator = foreign.map { DeleteGroupsResponse.DeletableGroupResult(groupId: $0, errorCode: KafkaErrorCode.notCoordinator.rawValue) }
        guard !local.isEmpty else { return .respond(DeleteGroupsResponse(results: notCoordinator)) }
        return .later(groups.ask(on: context.eventLoop, { c, token in c.deleteGroups(token, local) }) { reply in
            guard case var .deleteGroups(r) = reply else { return nil }
            r.results += notCoordinator
            return r
        })
    }
}
