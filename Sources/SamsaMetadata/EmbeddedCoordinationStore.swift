#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// The single-node coordination store: the tree in memory, persistent nodes saved to one JSON file
/// (written to a temporary file, fsynced and renamed over the old one on every change, so a crash
/// leaves either the old or the new tree).
public final class EmbeddedCoordinationStore: CoordinationStore {
    struct Tree: Sendable {
        var nodes: [String: CoordinationNode] = ["/": CoordinationNode(data: [], version: 0)]
        var ephemeral: Set<String> = []

        /// The names of `path`'s children, sorted; throws `noNode` when `path` does not exist.
        func children(of path: String) throws -> [String] {
            guard nodes[path] != nil else { throw CoordinationError.noNode(path) }
            let prefix = path == "/" ? "/" : path + "/"
            return nodes.keys.compactMap { key -> String? in
                guard key.hasPrefix(prefix), key != path else { return nil }
                let rest = key.dropFirst(prefix.count)
                return rest.contains("/") ? nil : String(rest)
            }.sorted()
        }
    }

    let tree = Mutex(Tree())
    /// Watches and sequence counters (EmbeddedCoordinationStore+Cluster.swift); locked inside `tree`.
    let session = Mutex(EmbeddedSession())
    /// nil keeps everything in memory (tests).
    public let file: String?

    private struct Saved: Codable {
        var version = 1
        var nodes: [String: SavedNode]
    }
    private struct SavedNode: Codable {
        var data: String  // base64
        var version: Int32
    }

    public init(file: String?) throws {
        self.file = file
        guard let file, let data = FileManager.default.contents(atPath: file) else { return }
        let saved = try JSONDecoder().decode(Saved.self, from: data)
        var t = Tree()
        for (path, node) in saved.nodes {
            guard let bytes = Data(base64Encoded: node.data) else { throw CoordinationError.invalidData("node \(path) in \(file)") }
            t.nodes[path] = CoordinationNode(data: Array(bytes), version: node.version)
        }
        tree.withLock { $0 = t }
    }

    static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    static func validate(_ path: String) throws {
        guard path.hasPrefix("/"), path == "/" || !path.hasSuffix("/"), !path.contains("//") else {
            throw CoordinationError.invalidData("bad path \(path)")
        }
    }

    public func get(_ path: String) async throws -> CoordinationNode? {
        tree.withLock { $0.nodes[path] }
    }

    public func children(_ path: String) async throws -> [String] {
        try tree.withLock { try $0.children(of: path) }
    }

    public func create(_ path: String, data: [UInt8], ephemeral: Bool) async throws {
        try apply([.create(path, data)], ephemeral: ephemeral)
    }

    public func set(_ path: String, data: [UInt8], expectedVersion: Int32?) async throws -> Int32 {
        try apply([.set(path, data, expectedVersion: expectedVersion)], ephemeral: false)
        return tree.withLock { $0.nodes[path]?.version ?? 0 }
    }

    public func delete(_ path: String, recursive: Bool) async throws {
        try apply([.delete(path, recursive: recursive)], ephemeral: false)
    }

    public func multi(_ ops: [CoordinationOp]) async throws {
        try apply(ops, ephemeral: false)
    }

    private func apply(_ ops: [CoordinationOp], ephemeral: Bool) throws {
        let fired = try tree.withLock { t in
            var next = t
            for op in ops {
                switch op {
                case let .create(path, data):
                    try Self.validate(path)
                    guard next.nodes[path] == nil else { throw CoordinationError.nodeExists(path) }
                    var ancestors: [String] = []
                    var p = Self.parent(path)
                    while next.nodes[p] == nil { ancestors.append(p); p = Self.parent(p) }
                    for a in ancestors { next.nodes[a] = CoordinationNode(data: [], version: 0) }
                    next.nodes[path] = CoordinationNode(data: data, version: 0)
                    if ephemeral { next.ephemeral.insert(path) }
                case let .set(path, data, expected):
                    guard var node = next.nodes[path] else { throw CoordinationError.noNode(path) }
                    if let expected, expected != node.version { throw CoordinationError.badVersion(path) }
                    node.data = data
                    node.version += 1
                    next.nodes[path] = node
                case let .delete(path, recursive):
                    guard next.nodes[path] != nil, path != "/" else { throw CoordinationError.noNode(path) }
                    let prefix = path + "/"
                    let below = next.nodes.keys.filter { $0.hasPrefix(prefix) }
                    if !below.isEmpty && !recursive { throw CoordinationError.notEmpty(path) }
                    for key in below + [path] {
                        next.nodes.removeValue(forKey: key)
                        next.ephemeral.remove(key)
                    }
                }
            }
            try save(next)
            let fired = session.withLock { $0.take(Self.changes(from: t.nodes, to: next.nodes)) }
            t = next
            return fired
        }
        for (watcher, change) in fired { watcher(change) }
    }

    private func save(_ t: Tree) throws {
        guard let file else { return }
        var saved = Saved(nodes: [:])
        for (path, node) in t.nodes where !t.ephemeral.contains(path) {
            saved.nodes[path] = SavedNode(data: Data(node.data).base64EncodedString(), version: node.version)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let data = try encoder.encode(saved)
        // Unchanged (only ephemeral nodes moved, e.g. a broker registering again at start-up):
        // nothing to write, so a broker can start and serve reads on a full disk.
        if FileManager.default.contents(atPath: file) == data { return }
        let tmp = file + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: data) else {
            unlink(tmp)
            throw CoordinationError.unavailable("cannot write \(tmp)")
        }
        let fd = open(tmp, O_RDONLY)
        if fd >= 0 { _ = fsync(fd); _ = close(fd) }
        guard rename(tmp, file) == 0 else { throw CoordinationError.unavailable("cannot rename \(tmp) to \(file)") }
    }
}
