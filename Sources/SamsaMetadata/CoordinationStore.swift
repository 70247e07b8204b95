/// Errors of a coordination store, named after ZooKeeper's.
public enum CoordinationError: Error, Sendable, Equatable, CustomStringConvertible {
    case noNode(String)
    case nodeExists(String)
    case badVersion(String)
    case notEmpty(String)
    case unavailable(String)
    case invalidData(String)
    /// The connection to the ensemble broke while the operation was in flight: it may or may not
    /// have been applied.
    case connectionLoss(String)
    /// No answer in time (no server reachable, or the ensemble has no quorum).
    case timeout(String)
    /// The session ended; its ephemeral nodes are gone.
    case sessionExpired(String)

    public var description: String {
        switch self {
        case let .noNode(p): return "no node \(p)"
        case let .nodeExists(p): return "node \(p) already exists"
        case let .badVersion(p): return "version conflict on \(p)"
        case let .notEmpty(p): return "node \(p) has children"
        case let .unavailable(why): return "coordination store unavailable: \(why)"
        case let .invalidData(why): return "invalid coordination data: \(why)"
        case let .connectionLoss(p): return "connection to the coordination store lost (\(p))"
        case let .timeout(p): return "coordination store did not answer in time (\(p))"
        case let .sessionExpired(p): return "coordination session expired (\(p))"
        }
    }
}

/// A node's data and version (ZooKeeper's `stat.version`: +1 on every set).
public struct CoordinationNode: Sendable, Equatable {
    public var data: [UInt8]
    public var version: Int32
    public init(data: [UInt8], version: Int32) {
        self.data = data
        self.version = version
    }
}

/// The cluster's shared state: a tree of paths holding small data blobs with versions, as ZooKeeper
/// keeps it. The embedded store serves a single node with no other process; the ZooKeeper store
/// (multi-broker clusters) implements the same protocol against a real ensemble. Everything above
/// this layer (topics, brokers, controller) is written against the protocol and uses Kafka's
/// ZooKeeper layout (`/brokers/topics/<t>`, `/config/topics/<t>`, `/brokers/ids/<id>`, ...).
public protocol CoordinationStore: Sendable {
    func get(_ path: String) async throws -> CoordinationNode?
    func children(_ path: String) async throws -> [String]
    /// Creates `path` (parents are created as needed). Ephemeral nodes vanish with the session.
    func create(_ path: String, data: [UInt8], ephemeral: Bool) async throws
    /// Replaces the data; with `expectedVersion`, only if the version still matches. Returns the new version.
    @discardableResult
    func set(_ path: String, data: [UInt8], expectedVersion: Int32?) async throws -> Int32
    /// Deletes `path`, and with `recursive` everything below it.
    func delete(_ path: String, recursive: Bool) async throws
    /// Applies several operations atomically (all or none), like ZooKeeper's multi.
    func multi(_ ops: [CoordinationOp]) async throws
}

public enum CoordinationOp: Sendable {
    case create(String, [UInt8])
    case set(String, [UInt8], expectedVersion: Int32?)
    case delete(String, recursive: Bool)
}
