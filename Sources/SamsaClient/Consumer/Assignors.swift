import KafkaProtocol
import NIOCore

/// A member's subscription as the group leader sees it.
public struct GroupSubscription: Sendable, Equatable {
    public var memberId: String
    public var groupInstanceId: String?
    public var topics: [String]
    /// Partitions the member owns now (cooperative rebalancing).
    public var ownedPartitions: [TopicPartition]
    public var generationId: Int32

    public init(memberId: String, groupInstanceId: String? = nil, topics: [String], ownedPartitions: [TopicPartition] = [], generationId: Int32 = -1) {
        self.memberId = memberId
        self.groupInstanceId = groupInstanceId
        self.topics = topics
        self.ownedPartitions = ownedPartitions
        self.generationId = generationId
    }
}

/// A client-side partition assignor of the classic consumer protocol (run by the group leader).
public protocol PartitionAssignor: Sendable {
    /// The protocol name members advertise ("range", "roundrobin", "cooperative-sticky").
    var name: String { get }
    /// Whether members keep their partitions while rebalancing (cooperative) or give them all up (eager).
    var isCooperative: Bool { get }
    /// memberId → partitions, for topics with the given partition counts.
    func assign(members: [GroupSubscription], partitionCounts: [String: Int32]) -> [String: [TopicPartition]]
}

/// Kafka's RangeAssignor: per topic, consecutive ranges of partitions to members in member-id order.
public struct RangeAssignor: PartitionAssignor {
    public var name: String { "range" }
    public var isCooperative: Bool { false }
    public init() {}

    public func assign(members: [GroupSubscription], partitionCounts: [String: Int32]) -> [String: [TopicPartition]] {
        var result = Dictionary(uniqueKeysWithValues: members.map { ($0.memberId, [TopicPartition]()) })
        let topics = Set(members.flatMap(\.topics)).sorted()
        for topic in topics {
            guard let count = partitionCounts[topic], count > 0 else { continue }
            let subscribers = members.filter { $0.topics.contains(topic) }
                .sorted { ($0.groupInstanceId ?? $0.memberId, $0.memberId) < ($1.groupInstanceId ?? $1.memberId, $1.memberId) }
            guard !subscribers.isEmpty else { continue }
            let per = Int(count) / subscribers.count, extra = Int(count) % subscribers.count
            var next = 0
            for (i, m) in subscribers.enumerated() {
                let n = per + (i < extra ? 1 : 0)
                for p in next..<(next + n) { result[m.memberId]!.append(TopicPartition(topic, Int32(p))) }
                next += n
            }
        }
        return result
    }
}

/// Kafka's RoundRobinAssignor: all partitions of all subscribed topics dealt out in turn.
public struct RoundRobinAssignor: PartitionAssignor {
    public var name: String { "roundrobin" }
    public var isCooperative: Bool { false }
    public init() {}

    public func assign(members: [GroupSubscription], partitionCounts: [String: Int32]) -> [String: [TopicPartition]] {
        var result = Dictionary(uniqueKeysWithValues: members.map { ($0.memberId, [TopicPartition]()) })
        let sorted = members.sorted { $0.memberId < $1.memberId }
        guard !sorted.isEmpty else { return result }
        var i = 0
        for topic in Set(members.flatMap(\.topics)).sorted() {
            for p in 0..<(partitionCounts[topic] ?? 0) {
                // Next member (in turn) subscribed to this topic.
                for _ in 0..<sorted.count {
                    let m = sorted[i % sorted.count]
                    i += 1
                    if m.topics.contains(topic) {
                        result[m.memberId]!.append(TopicPartition(topic, p))
                        break
                    }
                }
            }
        }
        return result
    }
}

/// Kafka's cooperative-sticky assignor: a balanced assignment that keeps partitions where they
/// are; a partition that must move is first only revoked (left unassigned this generation), so
/// its old owner gives it up and rejoins, and it is handed to the new owner in the next one.
public struct CooperativeStickyAssignor: PartitionAssignor {
    public var name: String { "cooperative-sticky" }
    public var isCooperative: Bool { true }
    public init() {}

    public func assign(members: [GroupSubscription], partitionCounts: [String: Int32]) -> [String: [TopicPartition]] {
        let target = Self.balanced(members: members, partitionCounts: partitionCounts)
        // Who owned what at the highest generation claimed (stale claims are ignored).
        var owner: [TopicPartition: String] = [:]
        var ownerGeneration: [TopicPartition: Int32] = [:]
        for m in members {
            for tp in m.ownedPartitions where (ownerGeneration[tp] ?? Int32.min) < m.generationId {
                owner[tp] = m.memberId
                ownerGeneration[tp] = m.generationId
            }
        }
        var result: [String: [TopicPartition]] = [:]
        for (member, partitions) in target {
            result[member] = partitions.filter { tp in owner[tp] == nil || owner[tp] == member }
        }
        return result
    }

    /// Sticky balanced assignment: each member keeps what it owns up to its fair share, the rest
    /// goes to the members with the fewest partitions.
    static func balanced(members: [GroupSubscription], partitionCounts: [String: Int32]) -> [String: [TopicPartition]] {
        var result = Dictionary(uniqueKeysWithValues: members.map { ($0.memberId, [TopicPartition]()) })
        let all = Set(members.flatMap(\.topics)).sorted().flatMap { t in (0..<(partitionCounts[t] ?? 0)).map { TopicPartition(t, $0) } }
        guard !members.isEmpty else { return result }
        let subscribers = Dictionary(uniqueKeysWithValues: members.map { ($0.memberId, Set($0.topics)) })
        // Fair share when everyone subscribes to everything; with mixed subscriptions, this is an upper bound guide.
        let quota = (all.count + members.count - 1) / members.count
        var assigned = Set<TopicPartition>()
        let byMember = members.sorted { $0.memberId < $1.memberId }
        var latestOwner: [TopicPartition: (String, Int32)] = [:]
        for m in byMember {
            for tp in m.ownedPartitions where (latestOwner[tp]?.1 ?? Int32.min) < m.generationId { latestOwner[tp] = (m.memberId, m.generationId) }
        }
        for m in byMember {
            for tp in m.ownedPartitions.sorted() where latestOwner[tp]?.0 == m.memberId && !assigned.contains(tp)
                && subscribers[m.memberId]!.contains(tp.topic) && partitionCounts[tp.topic].map({ tp.partition < $0 }) == true
                && result[m.memberId]!.count < quota {
                result[m.memberId]!.append(tp)
                assigned.insert(tp)
            }
        }
        for tp in all where !assigned.contains(tp) {
            let candidates = byMember.filter { subscribers[$0.memberId]!.contains(tp.topic) }
            guard let pick = candidates.min(by: { (result[$0.memberId]!.count, $0.memberId) < (result[$1.memberId]!.count, $1.memberId) }) else { continue }
            result[pick.memberId]!.append(tp)
            assigned.insert(tp)
        }
        return result.mapValues { $0.sorted() }
    }
}

extension GroupSubscription {
    /// A JoinGroup member's subscription (nil when its metadata is not a consumer-protocol subscription).
    public init?(memberId: String, groupInstanceId: String?, metadata: ByteBuffer) {
        guard let s = try? ConsumerProtocol.decodeSubscription(metadata) else { return nil }
        self.init(memberId: memberId, groupInstanceId: groupInstanceId, topics: s.topics, ownedPartitions: s.ownedPartitions,
                  generationId: s.generationId)
    }
}
