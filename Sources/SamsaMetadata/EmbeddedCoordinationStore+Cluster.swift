/// The embedded store's side of `ClusterCoordinationStore`, for a single process: watches fire after
/// every change that commits (in the same order as ZooKeeper: once, then gone), sequential names come
/// from a per-parent counter that starts above the highest existing number, and the session is the
/// process: always connected, its ephemeral nodes are never saved.
struct EmbeddedSession: Sendable {
    var dataWatches: [String: [CoordinationWatcher]] = [:]
    var childWatches: [String: [CoordinationWatcher]] = [:]
    var sequences: [String: Int64] = [:]

    /// Removes and returns the watchers that `changes` trigger, each with its change.
    mutating func take(_ changes: [CoordinationChange]) -> [(CoordinationWatcher, CoordinationChange)] {
        var fired: [(CoordinationWatcher, CoordinationChange)] = []
        for change in changes {
            switch change.kind {
            case .created, .dataChanged:
                for w in dataWatches.removeValue(forKey: change.path) ?? [] { fired.append((w, change)) }
            case .deleted:
                for w in dataWatches.removeValue(forKey: change.path) ?? [] { fired.append((w, change)) }
                for w in childWatches.removeValue(forKey: change.path) ?? [] { fired.append((w, change)) }
            case .childrenChanged:
                for w in childWatches.removeValue(forKey: change.path) ?? [] { fired.append((w, change)) }
            case .sessionExpired, .closed:
                break
            }
        }
        return fired
    }
}

extension EmbeddedCoordinationStore: ClusterCoordinationStore {
    /// What changed between two trees: nodes created, deleted or with a new version, and the
    /// parents whose children changed.
    static func changes(from old: [String: CoordinationNode], to new: [String: CoordinationNode]) -> [CoordinationChange] {
        var changes: [CoordinationChange] = []
        var parents = Set<String>()
        for (path, node) in new {
            if let before = old[path] {
                if before.version != node.version || before.data != node.data { changes.append(CoordinationChange(.dataChanged, path)) }
            } else {
                changes.append(CoordinationChange(.created, path))
                parents.insert(parent(path))
            }
        }
        for path in old.keys where new[path] == nil {
            changes.append(CoordinationChange(.deleted, path))
            parents.insert(parent(path))
        }
        for p in parents where new[p] != nil { changes.append(CoordinationChange(.childrenChanged, p)) }
        return changes.sorted { ($0.path, "\($0.kind)") < ($1.path, "\($1.kind)") }
    }

    public func get(_ path: String, watch: @escaping CoordinationWatcher) async throws -> CoordinationNode? {
        tree.withLock { t in
            session.withLock { $0.dataWatches[path, default: []].append(watch) }
            return t.nodes[path]
        }
    }

    public func children(_ path: String, watch: @escaping CoordinationWatcher) async throws -> [String] {
        try tree.withLock { t in
            let names = try t.children(of: path)
            session.withLock { $0.childWatches[path, default: []].append(watch) }
            return names
        }
    }

    public func createSequential(_ prefix: String, data: [UInt8], ephemeral: Bool) async throws -> String {
        let parentPath = Self.parent(prefix)
        let name = String(prefix.dropFirst(parentPath == "/" ? 1 : parentPath.count + 1))
        while true {
            let n: Int64 = tree.withLock { t in
                session.withLock { s in
                    if s.sequences[parentPath] == nil {
                        // Start above the highest number already used under this parent.
                        let lead = parentPath == "/" ? "/" : parentPath + "/"
                        var highest: Int64 = -1
                        for key in t.nodes.keys where key.hasPrefix(lead) {
                            let child = key.dropFirst(lead.count)
                            guard !child.contains("/"), child.count >= 10, let v = Int64(child.suffix(10)) else { continue }
                            highest = max(highest, v)
                        }
                        s.sequences[parentPath] = highest + 1
                    }
                    let n = s.sequences[parentPath]!
                    s.sequences[parentPath] = n + 1
                    return n
                }
            }
            let digits = String(n)
            let path = (parentPath == "/" ? "/" : parentPath + "/") + name + String(repeating: "0", count: max(0, 10 - digits.count)) + digits
            do {
                try await create(path, data: data, ephemeral: ephemeral)
                return path
            } catch CoordinationError.nodeExists {
                continue
            }
        }
    }

    public func sessionStates() -> AsyncStream<CoordinationSessionState> {
        let (stream, continuation) = AsyncStream.makeStream(of: CoordinationSessionState.self)
        continuation.yield(.connected)
        return stream
    }
}
