import NIOCore
import ZooKeeperClient

/// The coordination store of a multi-broker cluster: an Apache ZooKeeper ensemble, through
/// `ZooKeeperClient`. Paths are Kafka's ZooKeeper layout, under the connect string's chroot (created
/// when missing, as Kafka does). The session renews itself after an expiry: owners watch
/// `sessionStates()` and re-create their ephemeral nodes when they see `.expired`.
///
/// Errors: ZooKeeper's codes become `CoordinationError` (`noNode`, `nodeExists`, `badVersion`,
/// `notEmpty`); a broken connection is `connectionLoss`, no answer in time is `timeout`, an ended
/// session `sessionExpired` — never `noNode`.
public final class ZooKeeperCoordinationStore: ClusterCoordinationStore {
    public let client: ZooKeeperClient
    public let connectString: String

    private init(client: ZooKeeperClient, connectString: String) {
        self.client = client
        self.connectString = connectString
    }

    /// Connects to the ensemble, waiting at most `connectionTimeoutMs` (Kafka's
    /// `zookeeper.connection.timeout.ms`; default: the session timeout). Requests wait as long for a
    /// connection when the ensemble is unreachable later.
    public static func connect(_ connectString: String, sessionTimeoutMs: Int = 18_000, connectionTimeoutMs: Int? = nil) async throws -> ZooKeeperCoordinationStore {
        let timeout = TimeAmount.milliseconds(Int64(connectionTimeoutMs ?? sessionTimeoutMs))
        let parsed: ZooKeeperConnectString
        do { parsed = try ZooKeeperConnectString(connectString) } catch {
            throw CoordinationError.unavailable("\(error)")
        }
        if !parsed.chroot.isEmpty {
            // Kafka creates the chroot when it is missing.
            let root = try ZooKeeperClient(connectString: ZooKeeperConnectString(servers: parsed.servers).description,
                                           sessionTimeout: .milliseconds(Int64(sessionTimeoutMs)), requestTimeout: timeout)
            do {
                try await root.connect(timeout: timeout)
                if try await root.exists(parsed.chroot) == nil {
                    try await root.createParents(of: parsed.chroot)
                    do { try await root.create(parsed.chroot) } catch let e as ZooKeeperError where e.code == .nodeExists {}
                }
                await root.close()
            } catch var e as ZooKeeperConnectError {
                await root.close()
                e.connectString = connectString
                throw Self.map(e, path: parsed.chroot)
            } catch {
                await root.close()
                throw Self.map(error, path: parsed.chroot)
            }
        }
        let client = try ZooKeeperClient(connectString: connectString, sessionTimeout: .milliseconds(Int64(sessionTimeoutMs)),
                                         requestTimeout: timeout, renewExpiredSession: true)
        do {
            try await client.connect(timeout: timeout)
        } catch {
            await client.close()
            throw Self.map(error, path: "/")
        }
        return ZooKeeperCoordinationStore(client: client, connectString: connectString)
    }

    /// Ends the session (its ephemeral nodes go at once).
    public func close() async {
        await client.close()
    }

    static func map(_ error: any Error, path: String) -> any Error {
        if let e = error as? ZooKeeperConnectError { return CoordinationError.unavailable(e.description) }
        guard let e = error as? ZooKeeperError else { return error }
        let p = e.path ?? path
        switch e.code {
        case .noNode: return CoordinationError.noNode(p)
        case .nodeExists: return CoordinationError.nodeExists(p)
        case .badVersion: return CoordinationError.badVersion(p)
        case .notEmpty: return CoordinationError.notEmpty(p)
        case .connectionLoss: return CoordinationError.connectionLoss(p)
        case .requestTimeout, .operationTimeout: return CoordinationError.timeout(p)
        case .sessionExpired: return CoordinationError.sessionExpired(p)
        case .closed: return CoordinationError.unavailable("ZooKeeper client closed (\(p))")
        default: return CoordinationError.unavailable(e.description)
        }
    }

    private func run<T>(_ path: String, _ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch { throw Self.map(error, path: path) }
    }

    // MARK: CoordinationStore

    public func get(_ path: String) async throws -> CoordinationNode? {
        try await run(path) {
            do {
                let (data, stat) = try await client.getData(path)
                return CoordinationNode(data: data, version: stat.version)
            } catch let e as ZooKeeperError where e.code == .noNode {
                return nil
            }
        }
    }

    public func children(_ path: String) async throws -> [String] {
        try await run(path) { try await client.getChildren(path).children.sorted() }
    }

    public func create(_ path: String, data: [UInt8], ephemeral: Bool) async throws {
        _ = try await createNode(path, data: data, mode: ephemeral ? .ephemeral : .persistent)
    }

    @discardableResult
    public func set(_ path: String, data: [UInt8], expectedVersion: Int32?) async throws -> Int32 {
        try await run(path) { try await client.setData(path, data: data, version: expectedVersion ?? -1).version }
    }

    public func delete(_ path: String, recursive: Bool) async throws {
        if recursive {
            try await multi([.delete(path, recursive: true)])
        } else {
            try await run(path) { try await client.delete(path) }
        }
    }

    /// One ZooKeeper multi: missing parents of created nodes are created in it, recursive deletes
    /// delete the subtree (children first) in it. Retried when a concurrent change invalidates the
    /// expansion (a parent created or a child added meanwhile).
    public func multi(_ ops: [CoordinationOp]) async throws {
        var attempt = 0
        while true {
            attempt += 1
            let expanded = try await expand(ops)
            do {
                _ = try await client.multi(expanded.ops)
                return
            } catch let e as ZooKeeperError where attempt < 3 && (
                (e.code == .nodeExists && expanded.addedParents.contains(e.path ?? "")) ||
                (e.code == .notEmpty && expanded.recursiveDeletes.contains(e.path ?? ""))) {
                continue
            } catch {
                throw Self.map(error, path: ops.first.map(Self.path(of:)) ?? "/")
            }
        }
    }

    static func path(of op: CoordinationOp) -> String {
        switch op {
        case let .create(p, _), let .set(p, _, _), let .delete(p, _): return p
        }
    }

    private func expand(_ ops: [CoordinationOp]) async throws -> (ops: [ZooKeeperMultiOp], addedParents: Set<String>, recursiveDeletes: Set<String>) {
        var out: [ZooKeeperMultiOp] = []
        var known: [String: Bool] = ["/": true]  // path → exists (as far as this multi goes)
        var added = Set<String>()
        var recursive = Set<String>()
        for op in ops {
            switch op {
            case let .create(path, data):
                var ancestors: [String] = []
                var p = EmbeddedCoordinationStore.parent(path)
                while p != "/" {
                    ancestors.append(p)
                    p = EmbeddedCoordinationStore.parent(p)
                }
                for a in ancestors.reversed() {
                    let exists: Bool
                    if let k = known[a] { exists = k } else {
                        exists = try await run(a) { try await client.exists(a) != nil }
                    }
                    if !exists {
                        out.append(.create(a, data: []))
                        added.insert(a)
                    }
                    known[a] = true
                }
                out.append(.create(path, data: data))
                known[path] = true
            case let .set(path, data, expected):
                out.append(.setData(path, data: data, version: expected ?? -1))
            case let .delete(path, rec):
                if rec {
                    recursive.insert(path)
                    for p in try await subtree(path) { out.append(.delete(p)) }
                }
                out.append(.delete(path))
                known[path] = false
            }
        }
        return (out, added, recursive)
    }

    /// Every node below `path`, deepest first.
    private func subtree(_ path: String) async throws -> [String] {
        let children: [String]
        do {
            children = try await client.getChildren(path).children
        } catch let e as ZooKeeperError where e.code == .noNode {
            return []
        } catch {
            throw Self.map(error, path: path)
        }
        var out: [String] = []
        for c in children.sorted() {
            let child = path == "/" ? "/" + c : path + "/" + c
            out += try await subtree(child)
            out.append(child)
        }
        return out
    }

    /// Creates the node, and its missing parents (persistent) when ZooKeeper says they are missing.
    private func createNode(_ path: String, data: [UInt8], mode: ZooKeeperCreateMode) async throws -> String {
        try await run(path) {
            do {
                return try await client.create(path, data: data, mode: mode)
            } catch let e as ZooKeeperError where e.code == .noNode {
                try await client.createParents(of: path)
                return try await client.create(path, data: data, mode: mode)
            }
        }
    }

    /// Creates the ephemeral node `path` for this session (parents as needed). When it exists and
    /// belongs to this session its data is replaced; when another session owns it, `nodeExists`.
    public func registerEphemeral(_ path: String, data: [UInt8]) async throws {
        do {
            _ = try await createNode(path, data: data, mode: .ephemeral)
        } catch CoordinationError.nodeExists {
            let session = await client.sessionId
            let stat = try await run(path) { try await client.exists(path) }
            guard let stat, stat.ephemeralOwner == session else { throw CoordinationError.nodeExists(path) }
            try await run(path) { _ = try await client.setData(path, data: data, version: stat.version) }
        }
    }

    // MARK: ClusterCoordinationStore

    static func adapt(_ watch: @escaping CoordinationWatcher) -> ZooKeeperWatcher {
        { event in
            switch event.type {
            case .nodeCreated: watch(CoordinationChange(.created, event.path))
            case .nodeDeleted: watch(CoordinationChange(.deleted, event.path))
            case .nodeDataChanged: watch(CoordinationChange(.dataChanged, event.path))
            case .nodeChildrenChanged: watch(CoordinationChange(.childrenChanged, event.path))
            default:
                watch(CoordinationChange(event.state == .expired ? .sessionExpired : .closed, event.path))
            }
        }
    }

    public func get(_ path: String, watch: @escaping CoordinationWatcher) async throws -> CoordinationNode? {
        let watcher = Self.adapt(watch)
        return try await run(path) {
            do {
                let (data, stat) = try await client.getData(path, watch: watcher)
                return CoordinationNode(data: data, version: stat.version)
            } catch let e as ZooKeeperError where e.code == .noNode {
                // No node: watch for its creation instead (exists sets a watch on a missing node).
                guard try await client.exists(path, watch: watcher) != nil else { return nil }
                // Created in between: the watch is set; read what is there now.
                do {
                    let (data, stat) = try await client.getData(path)
                    return CoordinationNode(data: data, version: stat.version)
                } catch let e as ZooKeeperError where e.code == .noNode {
                    return nil
                }
            }
        }
    }

    public func children(_ path: String, watch: @escaping CoordinationWatcher) async throws -> [String] {
        let watcher = Self.adapt(watch)
        return try await run(path) { try await client.getChildren(path, watch: watcher).children.sorted() }
    }

    public func createSequential(_ prefix: String, data: [UInt8], ephemeral: Bool) async throws -> String {
        try await createNode(prefix, data: data, mode: ephemeral ? .ephemeralSequential : .persistentSequential)
    }

    public func sessionStates() -> AsyncStream<CoordinationSessionState> {
        let source = client.sessionStates()
        let (stream, continuation) = AsyncStream.makeStream(of: CoordinationSessionState.self)
        let task = Task {
            for await s in source {
                switch s {
                case .connecting: continuation.yield(.connecting)
                case .connected: continuation.yield(.connected)
                case .disconnected: continuation.yield(.disconnected)
                case .expired: continuation.yield(.expired)
                case .closed: continuation.yield(.closed)
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}
