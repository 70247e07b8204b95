import KafkaProtocol

/// ListGroups 0–5 (state filter from v4, type filter from v5).
struct ListGroupsHandler: APIHandler {
    let groups: GroupCoordinatorService
    var versions: ClosedRange<Int16> { 0...5 }

    func handle(_ request: ListGroupsRequest, context: RequestContext) -> HandlerOutcome<ListGroupsResponse> {
        var response = ListGroupsResponse()
        if groups.read({ $0.isLoading }) { response.errorCode = KafkaErrorCode.coordinatorLoadInProgress.rawValue }
        response.groups = groups.read { $0.list(states: request.statesFilter, types: request.typesFilter) }
        return .respond(response)
    }
}
