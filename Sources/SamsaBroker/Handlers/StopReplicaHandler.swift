import KafkaProtocol
import NIOCore

/// StopReplica 0–4 (controller → broker, ZooKeeper mode): stop serving partitions, and with
/// `deletePartition` remove their logs (topic deletion, reassignment). Fenced by the controller epoch.
struct StopReplicaHandler: APIHandler {
    let cluster: ClusterMember
    var versions: ClosedRange<Int16> { 0...4 }
    var isBarrier: Bool { true }

    func handle(_ request: StopReplicaRequest, context: RequestContext) -> HandlerOutcome<StopReplicaResponse> {
        guard context.apiVersion >= 3 else {
            return .respond(StopReplicaResponse(errorCode: KafkaErrorCode.unsupportedVersion.rawValue))
        }
        let cluster = self.cluster
        return .later(context.eventLoop.makeFutureWithTask { await cluster.stopReplica(request) })
    }
}
