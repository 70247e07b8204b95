import KafkaProtocol
import NIOCore
import SamsaCoordinators
import SamsaStorage

extension GroupCoordinatorService {
    /// NOT_COORDINATOR when another broker (or nobody yet) coordinates `groupId`; nil when this one does.
    func coordinatorError(_ groupId: String) -> KafkaErrorCode? {
        coordinates(groupId) ? nil : .notCoordinator
    }

    /// Runs an operation that answers later and unwraps its reply.
    func ask<R: Sendable>(on loop: any EventLoop, _ operation: (inout GroupCoordinator, RequestToken) -> [GroupAction],
                          _ unwrap: @escaping @Sendable (GroupReply) -> R?) -> EventLoopFuture<R> {
        run(on: loop, operation).flatMapThrowing { reply in
            guard let r = unwrap(reply) else { throw KafkaError(.unknownServerError, "unexpected coordinator reply \(reply)") }
            return r
        }
    }
}
