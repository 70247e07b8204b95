import KafkaWire
import NIOCore

/// The classic consumer protocol's embedded messages (protocol type "consumer"): the subscription a member
/// sends in JoinGroup's protocol metadata and the assignment the leader sends in SyncGroup. One encoder and
/// decoder for the client (assignors) and the group coordinator (subscribed topics, describe).
///
/// Each is a big-endian int16 version followed by the message at that version. As in Kafka's
/// `ConsumerProtocol`, a version newer than this code knows is read as the newest known one (newer versions
/// only append fields), and a negative version is an error.
public enum ConsumerProtocol {
    /// The versions written: subscription v1 (owned partitions are v1+, generation v2+; v1 is what a
    /// cooperative member needs), assignment v0.
    public static let subscriptionVersion: Int16 = 1
    public static let assignmentVersion: Int16 = 0

    /// A decoded subscription.
    public struct Subscription: Sendable, Equatable {
        public var topics: [String]
        public var ownedPartitions: [TopicPartition]
        /// -1 when the member's version does not carry it.
        public var generationId: Int32
        public var rackId: String?

        public init(topics: [String], ownedPartitions: [TopicPartition] = [], generationId: Int32 = -1, rackId: String? = nil) {
            self.topics = topics
            self.ownedPartitions = ownedPartitions
            self.generationId = generationId
            self.rackId = rackId
        }
    }

    public enum DecodingError: Error, Equatable, Sendable {
        case unsupportedVersion(Int16)
    }

    public static func encodeSubscription(topics: [String], owned: [TopicPartition] = [], generation: Int32 = -1,
                                          version: Int16 = subscriptionVersion) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(version, endianness: .big)
        let grouped = Dictionary(grouping: owned, by: \.topic)
        ConsumerProtocolSubscription(topics: topics.sorted(), ownedPartitions: grouped.keys.sorted().map {
            .init(topic: $0, partitions: grouped[$0]!.map(\.partition).sorted())
        }, generationId: generation).write(to: &b, version: version)
        return b
    }

    public static func decodeSubscription(_ metadata: ByteBuffer) throws -> Subscription {
        var b = metadata
        let version = try readableVersion(&b, ConsumerProtocolSubscription.validVersions)
        let s = try ConsumerProtocolSubscription(from: &b, version: version)
        return Subscription(topics: s.topics,
                            ownedPartitions: s.ownedPartitions.flatMap { t in t.partitions.map { TopicPartition(t.topic, $0) } },
                            generationId: s.generationId, rackId: s.rackId)
    }

    public static func encodeAssignment(_ partitions: [TopicPartition], version: Int16 = assignmentVersion) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(version, endianness: .big)
        let grouped = Dictionary(grouping: partitions, by: \.topic)
        ConsumerProtocolAssignment(assignedPartitions: grouped.keys.sorted().map {
            .init(topic: $0, partitions: grouped[$0]!.map(\.partition).sorted())
        }).write(to: &b, version: version)
        return b
    }

    /// The assigned partitions. An empty buffer is an empty assignment (what a member gets when the leader
    /// gave it nothing, and what SyncGroup returns to a member without one).
    public static func decodeAssignment(_ bytes: ByteBuffer) throws -> [TopicPartition] {
        guard bytes.readableBytes > 0 else { return [] }
        var b = bytes
        let version = try readableVersion(&b, ConsumerProtocolAssignment.validVersions)
        let a = try ConsumerProtocolAssignment(from: &b, version: version)
        return a.assignedPartitions.flatMap { t in t.partitions.map { TopicPartition(t.topic, $0) } }
    }

    private static func readableVersion(_ b: inout ByteBuffer, _ known: ClosedRange<Int16>) throws -> Int16 {
        let version = try b.readKafkaInt16()
        guard version >= 0 else { throw DecodingError.unsupportedVersion(version) }
        return min(version, known.upperBound)
    }
}
