import KafkaProtocol

/// Everything the client library throws. Each case says whether retrying can help and what to do.
public enum KafkaClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A broker answered with a Kafka error code.
    case broker(code: KafkaErrorCode, message: String?, broker: Int32?, topicPartition: TopicPartition?)
    /// No connection could be made to any of the given servers.
    case connectionFailed(servers: [String], reason: String)
    /// An established connection broke while a request was outstanding.
    case connectionClosed(broker: String)
    /// The request did not complete in time.
    case timedOut(operation: String, milliseconds: Int64)
    /// The broker does not support a version of this API the client can speak.
    case unsupportedVersion(api: String, broker: String)
    case invalidConfiguration(String)
    /// The producer, consumer or admin client was closed.
    case closed
    /// A response or record the client could not decode.
    case malformedResponse(String)
    /// A batch could not be compressed (its records fail rather than go out uncompressed).
    case compressionFailed(codec: String, reason: String)

    /// Whether the same operation may succeed if tried again (after a metadata refresh).
    public var isRetriable: Bool {
        switch self {
        case let .broker(code, _, _, _): return code.isRetriable
        case .connectionFailed, .connectionClosed, .timedOut: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case let .broker(code, message, broker, tp):
            var s = "\(code.name) (\(code.rawValue))"
            if let tp { s += " on \(tp)" }
            if let broker, broker >= 0 { s += " from broker \(broker)" }
            if let message, !message.isEmpty { s += ": \(message)" } else if !code.message.isEmpty { s += ": \(code.message)" }
            s += code.isRetriable ? " (retriable)" : ""
            return s
        case let .connectionFailed(servers, reason):
            return "cannot connect to \(servers.joined(separator: ", ")): \(reason) (is the broker running and is the address right?)"
        case let .connectionClosed(broker): return "connection to \(broker) closed while a request was outstanding (retriable)"
        case let .timedOut(op, ms): return "\(op) timed out after \(ms) ms (retriable)"
        case let .unsupportedVersion(api, broker): return "broker \(broker) supports no version of \(api) this client can use"
        case let .invalidConfiguration(why): return "invalid configuration: \(why)"
        case .closed: return "the client is closed"
        case let .malformedResponse(why): return "malformed response: \(why)"
        case let .compressionFailed(codec, why): return "cannot compress a batch with \(codec): \(why)"
        }
    }

    static func check(_ code: Int16, message: String? = nil, broker: Int32? = nil, _ tp: TopicPartition? = nil) throws {
        guard code != 0 else { return }
        throw KafkaClientError.broker(code: KafkaErrorCode(code), message: message, broker: broker, topicPartition: tp)
    }
}
