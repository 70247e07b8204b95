import KafkaProtocol
import KafkaWire
import NIOCore

/// One record for `__consumer_offsets`: key and value in the formats of Kafka's
/// `OffsetCommitKey/Value` and `GroupMetadataKey/Value` (a big-endian int16 version, then the
/// struct). A nil value is a tombstone.
public struct GroupRecord: Sendable, Equatable {
    public var key: ByteBuffer
    public var value: ByteBuffer?

    public init(key: ByteBuffer, value: ByteBuffer?) {
        self.key = key
        self.value = value
    }
}

/// A committed offset as the coordinator keeps it.
public struct CommittedOffset: Sendable, Equatable {
    public var offset: Int64
    public var leaderEpoch: Int32
    public var metadata: String
    public var commitTimestamp: Int64

    public init(offset: Int64, leaderEpoch: Int32, metadata: String, commitTimestamp: Int64) {
        self.offset = offset
        self.leaderEpoch = leaderEpoch
        self.metadata = metadata
        self.commitTimestamp = commitTimestamp
    }
}

/// Encoding and decoding of the `__consumer_offsets` records (the versions Kafka 3.x/4.x writes).
public enum GroupRecords {
    public enum Key: Equatable {
        case offset(group: String, topicPartition: TopicPartition)
        case group(String)
        /// Records of other kinds (KIP-848 consumer groups, share groups): not ours.
        case other
    }

    static func versioned<M: KafkaMessage>(_ message: M, version: Int16) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(version, endianness: .big)
        message.write(to: &b, version: version)
        return b
    }

    public static func offsetKey(group: String, _ tp: TopicPartition) -> ByteBuffer {
        versioned(OffsetCommitKey(group: group, topic: tp.topic, partition: tp.partition), version: 1)
    }

    public static func offsetValue(_ o: CommittedOffset) -> ByteBuffer {
        versioned(OffsetCommitValue(offset: o.offset, leaderEpoch: o.leaderEpoch, metadata: o.metadata, commitTimestamp: o.commitTimestamp), version: 3)
    }

    public static func groupKey(_ group: String) -> ByteBuffer {
        versioned(GroupMetadataKey(group: group), version: 2)
    }

    public static func groupValue(_ value: GroupMetadataValue) -> ByteBuffer {
        versioned(value, version: 3)
    }

    public static func decodeKey(_ key: ByteBuffer) throws -> Key {
        var b = key
        let version = try b.readKafkaInt16()
        switch version {
        case 0, 1:
            let k = try OffsetCommitKey(from: &b, version: version)
            return .offset(group: k.group, topicPartition: TopicPartition(k.topic, k.partition))
        case 2:
            return .group(try GroupMetadataKey(from: &b, version: version).group)
        default:
            return .other
        }
    }

    public static func decodeOffset(_ value: ByteBuffer) throws -> CommittedOffset {
        var b = value
        let version = try b.readKafkaInt16()
        let v = try OffsetCommitValue(from: &b, version: version)
        return CommittedOffset(offset: v.offset, leaderEpoch: v.leaderEpoch, metadata: v.metadata, commitTimestamp: v.commitTimestamp)
    }

    public static func decodeGroup(_ value: ByteBuffer) throws -> GroupMetadataValue {
        var b = value
        let version = try b.readKafkaInt16()
        return try GroupMetadataValue(from: &b, version: version)
    }

    /// The topics a consumer-protocol member subscribes to (KafkaProtocol's `ConsumerProtocol`, shared with the
    /// client; empty when the metadata is not a subscription).
    static func subscribedTopics(_ metadata: ByteBuffer) -> [String] {
        (try? ConsumerProtocol.decodeSubscription(metadata))?.topics ?? []
    }

    /// The `__consumer_offsets` partition of a group: Java's `String.hashCode`, Kafka's
    /// `Utils.abs`, modulo the partition count.
    public static func partition(for groupId: String, partitions: Int32) -> Int32 {
        var h: Int32 = 0
        for unit in groupId.utf16 { h = h &* 31 &+ Int32(unit) }
        let abs = h == Int32.min ? 0 : Swift.abs(h)
        return abs % partitions
    }
}
