/// A topic name and partition index: the unit of storage, leadership and replication.
public struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)-\(partition)" }

    /// The partition's folder name inside a log directory, as Kafka names it.
    public var directoryName: String { "\(topic)-\(partition)" }

    /// Parses a Kafka partition folder name (`topic-N`); nil for anything else.
    public init?(directoryName: String) {
        guard let dash = directoryName.lastIndex(of: "-"),
              let p = Int32(directoryName[directoryName.index(after: dash)...]), p >= 0,
              dash != directoryName.startIndex
        else { return nil }
        self.init(String(directoryName[..<dash]), p)
    }

    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        (a.topic, a.partition) < (b.topic, b.partition)
    }
}
