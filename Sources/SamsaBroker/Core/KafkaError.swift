import KafkaProtocol
import SamsaStorage

/// A failed operation as it goes back on the wire: Kafka's error code and a readable message.
public struct KafkaError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: KafkaErrorCode
    public var message: String?

    public init(_ code: KafkaErrorCode, _ message: String? = nil) {
        self.code = code
        self.message = message
    }

    public var description: String { message.map { "\(code.name): \($0)" } ?? code.name }

    /// Maps any error to what the client is told; unexpected ones become UNKNOWN_SERVER_ERROR.
    public static func from(_ error: any Error) -> KafkaError {
        switch error {
        case let e as KafkaError: return e
        case let e as StorageError: return KafkaError(e.kafkaErrorCode, e.description)
        default: return KafkaError(.unknownServerError, "\(error)")
        }
    }
}
