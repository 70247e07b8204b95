import NIOCore

/// `meta.properties` in a log directory, as Kafka's ZooKeeper-mode broker writes it
/// (`version=0`, `broker.id`, `cluster.id`): which broker of which cluster the data belongs to, so
/// that a log directory is never served by another broker or joined to another cluster.
public struct MetaProperties: Sendable, Equatable {
    public static let fileName = "meta.properties"

    public var brokerId: Int32
    public var clusterId: String

    public init(brokerId: Int32, clusterId: String) {
        self.brokerId = brokerId
        self.clusterId = clusterId
    }

    /// The problem with starting broker `brokerId` of cluster `clusterId` on this directory, in
    /// Kafka's words, or nil.
    public func mismatch(brokerId: Int32, clusterId: String, logDir: String) -> String? {
        if self.clusterId != clusterId {
            return "the cluster id \(clusterId) doesn't match the stored cluster id \(self.clusterId) in \(logDir)/\(Self.fileName): the broker is trying to join the wrong cluster (is zookeeper.connect right?)"
        }
        if self.brokerId != brokerId {
            return "the configured broker.id \(brokerId) doesn't match the stored broker.id \(self.brokerId) in \(logDir)/\(Self.fileName): if you moved your data, configure broker.id=\(self.brokerId); to start a new broker, use an empty log directory"
        }
        return nil
    }

    /// Reads `<logDir>/meta.properties`; nil when there is none. Malformed files are an error
    /// naming the file.
    public static func read(logDir: String) throws -> MetaProperties? {
        let path = logDir + "/" + fileName
        guard let buffer = try FS.readFile(path) else { return nil }
        var values: [String: String] = [:]
        for line in String(buffer: buffer).split(separator: "\n") {
            let text = line.trimmingCharacters(in: " \t\r")
            guard !text.isEmpty, !text.hasPrefix("#"), let eq = text.firstIndex(of: "=") else { continue }
            values[String(text[..<eq])] = String(text[text.index(after: eq)...])
        }
        guard let id = values["broker.id"].flatMap({ Int32($0) }), let cluster = values["cluster.id"], !cluster.isEmpty else {
            throw StorageError.corruptLog(path: path, why: "meta.properties without a broker.id and a cluster.id")
        }
        return MetaProperties(brokerId: id, clusterId: cluster)
    }

    /// Writes `<logDir>/meta.properties` atomically.
    public func write(logDir: String) throws {
        try FS.writeAtomically(logDir + "/" + Self.fileName,
                               "#\n#Written by samsa\ncluster.id=\(clusterId)\nversion=0\nbroker.id=\(brokerId)\n")
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        var s = self
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return s
    }
}
