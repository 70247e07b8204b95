/// What a cluster needs from its coordination store beyond `CoordinationStore`: change
/// notifications (one-shot watches, as ZooKeeper's, and streams built on them), sequential nodes and
/// the session's state. Ephemeral nodes (`create(_:data:ephemeral: true)`) belong to the session:
/// they go when it ends (ZooKeeper: the session expires or closes; embedded: the process ends).
/// Both the embedded store (one process) and the ZooKeeper store implement it, so the code above is
/// written once.
public protocol ClusterCoordinationStore: CoordinationStore {
    /// Reads `path` (nil when there is none) and sets a one-shot watch: `watch` is called once, when
    /// the node is next created, changed or deleted (or with `.sessionExpired` / `.closed` when the
    /// watch ends without a change).
    func get(_ path: String, watch: @escaping CoordinationWatcher) async throws -> CoordinationNode?
    /// The children of `path` (sorted; `noNode` when there is no such node), and a one-shot watch
    /// that fires when a child is added or removed or the node is deleted.
    func children(_ path: String, watch: @escaping CoordinationWatcher) async throws -> [String]
    /// Creates `prefix` + a 10-digit, increasing sequence number (parents are created as needed);
    /// returns the node's path.
    func createSequential(_ prefix: String, data: [UInt8], ephemeral: Bool) async throws -> String
    /// The session's states: the current one first, then every change.
    func sessionStates() -> AsyncStream<CoordinationSessionState>
}

public typealias CoordinationWatcher = @Sendable (CoordinationChange) -> Void

/// One change seen by a watch.
public struct CoordinationChange: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case created, deleted, dataChanged, childrenChanged
        /// The session ended: the watch is gone and changes may have been missed; read again.
        case sessionExpired
        /// The store was closed.
        case closed
    }

    public var kind: Kind
    public var path: String

    public init(_ kind: Kind, _ path: String) {
        self.kind = kind
        self.path = path
    }
}

/// The store's session, as the owner of ephemeral nodes sees it.
public enum CoordinationSessionState: Sendable, Equatable {
    case connecting
    case connected
    /// Reconnecting; the session (and its ephemeral nodes) lives on until its timeout.
    case disconnected
    /// The session ended: its ephemeral nodes are gone. A new session follows (`connecting`,
    /// `connected`): re-create the ephemeral nodes and read the state again.
    case expired
    case closed
}

extension ClusterCoordinationStore {
    /// The changes of `path` (created, data changed, deleted), one event per watch trigger: the watch
    /// is re-armed after each event, so changes that come together may arrive as one event (read the
    /// node again after each). Ends when the store closes.
    /// `armed` runs each time the watch is (re-)armed: changes after that are never missed.
    public func changes(of path: String, armed: (@Sendable () -> Void)? = nil) -> AsyncStream<CoordinationChange> {
        watchStream(armed: armed) { store, watcher in _ = try await store.get(path, watch: watcher) }
    }

    /// The changes of the children of `path` (`childrenChanged`, `deleted`), re-armed after each event;
    /// while `path` does not exist, its creation is awaited (`created`).
    public func childChanges(of path: String, armed: (@Sendable () -> Void)? = nil) -> AsyncStream<CoordinationChange> {
        watchStream(armed: armed) { store, watcher in
            do {
                _ = try await store.children(path, watch: watcher)
            } catch CoordinationError.noNode {
                // Not there yet: wait for it to be created (if it appeared meanwhile, the watch fires at once).
                if try await store.get(path, watch: watcher) != nil {
                    watcher(CoordinationChange(.created, path))
                }
            }
        }
    }

    private func watchStream(armed: (@Sendable () -> Void)?,
                             _ arm: @escaping @Sendable (Self, @escaping CoordinationWatcher) async throws -> Void) -> AsyncStream<CoordinationChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: CoordinationChange.self, bufferingPolicy: .unbounded)
        let task = Task { [self] in
            while !Task.isCancelled {
                let (fired, fire) = AsyncStream.makeStream(of: CoordinationChange.self, bufferingPolicy: .bufferingNewest(1))
                do {
                    try await arm(self, { change in fire.yield(change); fire.finish() })
                } catch {
                    // Connection trouble: try again shortly.
                    try? await Task.sleep(for: .milliseconds(100))
                    continue
                }
                armed?()
                var iterator = fired.makeAsyncIterator()
                guard let change = await iterator.next() else { break }
                continuation.yield(change)
                if change.kind == .closed { break }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}
