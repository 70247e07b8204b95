import KafkaProtocol
import NIOCore

/// LeaderAndIsr 0–7 (controller → broker, ZooKeeper mode): become leader or follower of the named
/// partitions. Served only in a cluster; requests from an older controller epoch are refused with
/// STALE_CONTROLLER_EPOCH.
struct LeaderAndIsrHandler: APIHandler {
    let cluster: ClusterMember
    var versions: ClosedRange<Int16> { 0...7 }
    /// Controller requests apply in the order they were sent.
    var isBarrier: Bool { true }

    func handle(_ request: LeaderAndIsrRequest, context: RequestContext) -> HandlerOutcome<LeaderAndIsrResponse> {
        guard context.apiVersion >= 2 else {
            return .respond(LeaderAndIsrResponse(errorCode: KafkaErrorCode.unsupportedVersion.rawValue))
        }
        let cluster = self.cluster
        return .later(context.eventLoop.makeFutureWithTask { await cluster.leaderAndIsr(request) })
    }
}
