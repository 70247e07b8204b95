import KafkaProtocol

/// OffsetDelete 0: removes committed offsets of partitions the group no longer consumes.
struct OffsetDeleteHandler: APIHandler {
    let groups: GroupCoordinatorService
    var versions: ClosedRange<Int16> { 0...0 }
    var isBarrier: Bool { true }

    func handle(_ request: OffsetDeleteRequest, context: RequestContext) -> HandlerOutcome<OffsetDeleteResponse> {
        if let error = groups.coordinatorError(request.groupId) { return .respond(OffsetDeleteResponse(errorCode: error.rawValue)) }
        return .later(groups.ask(on: context.eventLoop, { c, token in c.deleteOffsets(token, request) }) {
            if case let .offsetDelete(r) = $0 { return r } else { return nil }
        })
    }
}
