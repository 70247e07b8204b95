#if canImport(Glibc)
import Glibc
#endif
import KafkaProtocol
import KafkaRecords

/// Why a storage operation failed, with the Kafka error code a broker answers with.
public enum StorageError: Error, Sendable, CustomStringConvertible, Equatable {
    case io(op: String, path: String, errno: Int32)
    case invalidBatch(RecordBatchError)
    case messageTooLarge(size: Int, max: Int)
    case offsetOutOfRange(requested: Int64, logStart: Int64, logEnd: Int64)
    case outOfOrderSequence(String)
    case invalidProducerEpoch(String)
    case unknownProducerId(String)
    /// A producer with an open transaction wrote a non-transactional batch.
    case invalidTxnState(String)
    /// A transaction marker from a coordinator older than one already seen.
    case transactionCoordinatorFenced(String)
    case invalidTimestamp(String)
    case corruptLog(path: String, why: String)
    case logClosed(String)
    case invalidOffset(String)
    /// The log directory was taken offline after an I/O error that could not be rolled back (or a
    /// failed fsync): every log in it refuses reads and writes until the broker restarts.
    case logDirOffline(path: String)
    /// The file system holding the log directory is full: the write was rolled back, nothing else changed.
    case diskFull(path: String, freeBytes: Int64)

    public var kafkaErrorCode: KafkaErrorCode {
        switch self {
        case .io, .corruptLog, .logClosed, .logDirOffline, .diskFull: return .kafkaStorageError
        case let .invalidBatch(e): return e.kafkaErrorCode
        case .messageTooLarge: return .messageTooLarge
        case .offsetOutOfRange: return .offsetOutOfRange
        case .outOfOrderSequence: return .outOfOrderSequenceNumber
        case .invalidProducerEpoch: return .invalidProducerEpoch
        case .unknownProducerId: return .unknownProducerId
        case .invalidTxnState: return .invalidTxnState
        case .transactionCoordinatorFenced: return .transactionCoordinatorFenced
        case .invalidTimestamp: return .invalidTimestamp
        case .invalidOffset: return .invalidRequest
        }
    }

    /// Whether the error is the file system running out of space (ENOSPC, EDQUOT).
    public var isOutOfSpace: Bool {
        switch self {
        case .diskFull: return true
        case let .io(_, _, code): return code == ENOSPC || code == EDQUOT
        default: return false
        }
    }

    public var description: String {
        switch self {
        case let .io(op, path, code): return "\(op) \(path): \(String(cString: strerror(code)))"
        case let .invalidBatch(e): return e.description
        case let .messageTooLarge(size, max): return "record batch of \(size) bytes exceeds max.message.bytes \(max)"
        case let .offsetOutOfRange(requested, start, end):
            return "offset \(requested) is out of range [\(start), \(end)]"
        case let .outOfOrderSequence(s), let .invalidProducerEpoch(s), let .unknownProducerId(s),
             let .invalidTimestamp(s), let .invalidOffset(s), let .invalidTxnState(s), let .transactionCoordinatorFenced(s):
            return s
        case let .corruptLog(path, why): return "corrupt log \(path): \(why)"
        case let .logClosed(s): return "log \(s) is closed"
        case let .logDirOffline(path): return "log directory \(path) is offline after an I/O error"
        case let .diskFull(path, free): return "no space left on the file system of \(path) (\(free) bytes free)"
        }
    }
}
