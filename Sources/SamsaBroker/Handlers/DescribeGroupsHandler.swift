import KafkaProtocol

/// DescribeGroups 0–5: state, protocol, members with their metadata and assignments.
struct DescribeGroupsHandler: APIHandler {
    let groups: GroupCoordinatorService
    var versions: ClosedRange<Int16> { 0...5 }

    func handle(_ request: DescribeGroupsRequest, context: RequestContext) -> HandlerOutcome<DescribeGroupsResponse> {
        var response = DescribeGroupsResponse()
        response.groups = request.groups.map { id in
            if let error = groups.coordinatorError(id) ?? groups.read({ $0.availabilityError(for: id) }) {
                return .init(errorCode: error.rawValue, groupId: id, groupState: "", protocolType: "", protocolData: "")
            }
            var g = groups.read { $0.describe(id) }
            if request.includeAuthorizedOperations { g.authorizedOperations = AclOperations.allGroup }
            return g
        }
        return .respond(response)
    }
}
