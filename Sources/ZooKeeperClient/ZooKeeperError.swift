/// An error of a ZooKeeper operation: the server's error code (`ReplyHeader.err`) or one the
/// client raises itself (connection loss, request timeout, session expired, closed), with the path
/// it concerns when there is one.
public struct ZooKeeperError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Code
    public var path: String?

    public init(_ code: Code, path: String? = nil) {
        self.code = code
        self.path = path
    }

    public enum Code: Sendable, Equatable, Hashable {
        case systemError
        case runtimeInconsistency
        case dataInconsistency
        /// The connection to the server broke while the request was in flight: it may or may not
        /// have been applied.
        case connectionLoss
        case marshallingError
        case unimplemented
        /// The server's OperationTimeout (-7).
        case operationTimeout
        case badArguments
        case unknownSession
        case newConfigNoQuorum
        case reconfigInProgress
        case apiError
        case noNode
        case noAuth
        case badVersion
        case noChildrenForEphemerals
        case nodeExists
        case notEmpty
        case sessionExpired
        case invalidCallback
        case invalidACL
        case authFailed
        case sessionMoved
        case notReadOnly
        case ephemeralOnLocalSession
        case noWatcher
        /// No answer in time (no connection to send it on, or the server did not answer).
        case requestTimeout
        case reconfigDisabled
        case sessionClosedRequireSaslAuth
        case quotaExceeded
        case throttledOp
        /// The client was closed.
        case closed
        /// The reply could not be decoded.
        case malformedReply
        case unknown(Int32)

        public init(rawCode: Int32) {
            switch rawCode {
            case -1: self = .systemError
            case -2: self = .runtimeInconsistency
            case -3: self = .dataInconsistency
            case -4: self = .connectionLoss
            case -5: self = .marshallingError
            case -6: self = .unimplemented
            case -7: self = .operationTimeout
            case -8: self = .badArguments
            case -12: self = .unknownSession
            case -13: self = .newConfigNoQuorum
            case -14: self = .reconfigInProgress
            case -100: self = .apiError
            case -101: self = .noNode
            case -102: self = .noAuth
            case -103: self = .badVersion
            case -108: self = .noChildrenForEphemerals
            case -110: self = .nodeExists
            case -111: self = .notEmpty
            case -112: self = .sessionExpired
            case -113: self = .invalidCallback
            case -114: self = .invalidACL
            case -115: self = .authFailed
            case -118: self = .sessionMoved
            case -119: self = .notReadOnly
            case -120: self = .ephemeralOnLocalSession
            case -121: self = .noWatcher
            case -122: self = .requestTimeout
            case -123: self = .reconfigDisabled
            case -124: self = .sessionClosedRequireSaslAuth
            case -125: self = .quotaExceeded
            case -127: self = .throttledOp
            default: self = .unknown(rawCode)
            }
        }

        /// ZooKeeper's number for the code; nil for the client-only `closed` and `malformedReply`.
        public var rawCode: Int32? {
            switch self {
            case .systemError: return -1
            case .runtimeInconsistency: return -2
            case .dataInconsistency: return -3
            case .connectionLoss: return -4
            case .marshallingError: return -5
            case .unimplemented: return -6
            case .operationTimeout: return -7
            case .badArguments: return -8
            case .unknownSession: return -12
            case .newConfigNoQuorum: return -13
            case .reconfigInProgress: return -14
            case .apiError: return -100
            case .noNode: return -101
            case .noAuth: return -102
            case .badVersion: return -103
            case .noChildrenForEphemerals: return -108
            case .nodeExists: return -110
            case .notEmpty: return -111
            case .sessionExpired: return -112
            case .invalidCallback: return -113
            case .invalidACL: return -114
            case .authFailed: return -115
            case .sessionMoved: return -118
            case .notReadOnly: return -119
            case .ephemeralOnLocalSession: return -120
            case .noWatcher: return -121
            case .requestTimeout: return -122
            case .reconfigDisabled: return -123
            case .sessionClosedRequireSaslAuth: return -124
            case .quotaExceeded: return -125
            case .throttledOp: return -127
            case .closed, .malformedReply: return nil
            case let .unknown(c): return c
            }
        }

        /// Errors after which the outcome of the request is unknown and the caller may retry
        /// (the session is still alive).
        public var isTransient: Bool {
            switch self {
            case .connectionLoss, .operationTimeout, .requestTimeout, .throttledOp: return true
            default: return false
            }
        }
    }

    public var description: String {
        let p = path.map { " (\($0))" } ?? ""
        switch code {
        case .noNode: return "no node\(p)"
        case .nodeExists: return "node exists\(p)"
        case .badVersion: return "bad version\(p)"
        case .notEmpty: return "node has children\(p)"
        case .connectionLoss: return "connection to ZooKeeper lost\(p)"
        case .requestTimeout: return "ZooKeeper request timed out\(p)"
        case .operationTimeout: return "ZooKeeper operation timed out\(p)"
        case .sessionExpired: return "ZooKeeper session expired\(p)"
        case .closed: return "ZooKeeper client closed\(p)"
        case .malformedReply: return "malformed reply from ZooKeeper\(p)"
        default: return "ZooKeeper error \(code)\(rawCode.map { " (\($0))" } ?? "")\(p)"
        }
    }

    private var rawCode: Int32? { code.rawCode }
}
