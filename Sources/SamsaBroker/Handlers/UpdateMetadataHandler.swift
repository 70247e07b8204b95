import KafkaProtocol
import NIOCore

/// UpdateMetadata 0–8 (controller → broker, ZooKeeper mode): the live brokers and partition states
/// every broker serves in Metadata. Fenced by the controller epoch.
struct UpdateMetadataHandler: APIHandler {
    let cluster: ClusterMember
    var versions: ClosedRange<Int16> { 0...8 }
    var isBarrier: Bool { true }

    func handle(_ request: UpdateMetadataRequest, context: RequestContext) -> HandlerOutcome<UpdateMetadataResponse> {
        guard context.apiVersion >= 5 else {
            return .respond(UpdateMetadataResponse(errorCode: KafkaErrorCode.unsupportedVersion.rawValue))
        }
        let cluster = self.cluster
        return .later(context.eventLoop.makeFutureWithTask { await cluster.updateMetadata(request) })
    }
}
