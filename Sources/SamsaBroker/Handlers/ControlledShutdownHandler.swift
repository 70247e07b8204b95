import KafkaProtocol
import NIOCore
import SamsaController

/// ControlledShutdown 1–3 (broker → controller): move the stopping broker's leadership to other
/// in-sync replicas; the answer lists the partitions it still leads (the broker retries).
struct ControlledShutdownHandler: APIHandler {
    let controller: ControllerDriver
    var versions: ClosedRange<Int16> { 1...3 }

    func handle(_ request: ControlledShutdownRequest, context: RequestContext) -> HandlerOutcome<ControlledShutdownResponse> {
        let controller = self.controller
        return .later(context.eventLoop.makeFutureWithTask {
            let reply = await controller.submit(.controlledShutdown(brokerId: request.brokerId, brokerEpoch: request.brokerEpoch))
            switch reply {
            case let .controlledShutdown(error, remaining)?:
                return ControlledShutdownResponse(errorCode: error.rawValue,
                                                  remainingPartitions: remaining.map { .init(topicName: $0.topic, partitionIndex: $0.partition) })
            case let .error(code, _)?:
                return ControlledShutdownResponse(errorCode: code.rawValue)
            default:
                return ControlledShutdownResponse(errorCode: KafkaErrorCode.notController.rawValue)
            }
        })
    }
}
