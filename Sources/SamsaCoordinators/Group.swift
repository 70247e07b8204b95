import KafkaProtocol
import NIOCore
import OrderedCollections

/// The classic group protocol's states.
public enum GroupState: String, Sendable, CaseIterable {
    case empty = "Empty"
    case preparingRebalance = "PreparingRebalance"
    case completingRebalance = "CompletingRebalance"
    case stable = "Stable"
    case dead = "Dead"
}

/// Identifies a request whose answer the coordinator gives later (JoinGroup, SyncGroup, commits).
public typealias RequestToken = UInt64

struct GroupMember: Sendable {
    let memberId: String
    var groupInstanceId: String?
    var clientId: String
    var clientHost: String
    var rebalanceTimeoutMs: Int32
    var sessionTimeoutMs: Int32
    var protocolType: String
    var protocols: [(name: String, metadata: ByteBuffer)]
    var assignment = ByteBuffer()
    /// A JoinGroup waiting for the rebalance to complete, with its request version.
    var pendingJoin: (token: RequestToken, version: Int16)?
    /// A SyncGroup waiting for the leader's assignment.
    var pendingSync: RequestToken?
    var heartbeatDeadline: Int64

    func metadata(for protocolName: String?) -> ByteBuffer {
        protocols.first { $0.name == protocolName }?.metadata ?? ByteBuffer()
    }

    func sameProtocols(_ other: [JoinGroupRequest.JoinGroupRequestProtocol]) -> Bool {
        protocols.count == other.count && zip(protocols, other).allSatisfy { $0.name == $1.name && $0.metadata == $1.metadata }
    }

    /// Whether the member is kept alive without heartbeats (it is waiting on the coordinator).
    func keptAlive(now: Int64) -> Bool {
        pendingJoin != nil || pendingSync != nil || now < heartbeatDeadline
    }
}

/// One consumer group: membership, generation, assignments and committed offsets.
struct Group: Sendable {
    let groupId: String
    var state: GroupState = .empty
    var stateTimestamp: Int64
    var protocolType: String?
    var protocolName: String?
    var generationId: Int32 = 0
    var leaderId: String?
    /// In join order: the first member becomes leader when there is none.
    var members: OrderedDictionary<String, GroupMember> = [:]
    /// Member ids handed out with MEMBER_ID_REQUIRED (KIP-394), with when they expire.
    var pendingMembers: [String: Int64] = [:]
    /// group.instance.id → member id (static membership, KIP-345).
    var staticMembers: [String: String] = [:]
    /// When the join phase of a rebalance ends at the latest.
    var joinDeadline: Int64?
    /// The first rebalance of an empty group waits `group.initial.rebalance.delay.ms` for more members.
    var inInitialDelay = false
    var initialDelayRemainingMs: Int64 = 0
    var newMemberAdded = false
    /// When the sync phase ends at the latest.
    var syncDeadline: Int64?
    var offsets: [TopicPartition: CommittedOffset] = [:]

    init(groupId: String, now: Int64) {
        self.groupId = groupId
        self.stateTimestamp = now
    }

    var isEmpty: Bool { members.isEmpty }

    var maxRebalanceTimeoutMs: Int64 { members.values.map { Int64($0.rebalanceTimeoutMs) }.max() ?? 0 }

    /// Protocols every member supports.
    var candidateProtocols: Set<String> {
        var result: Set<String>?
        for m in members.values {
            let names = Set(m.protocols.map(\.name))
            result = result.map { $0.intersection(names) } ?? names
        }
        return result ?? []
    }

    /// Kafka's choice: each member votes for its most preferred candidate; most votes wins.
    func selectProtocol() -> String? {
        let candidates = candidateProtocols
        var votes: [String: Int] = [:]
        for m in members.values {
            if let choice = m.protocols.first(where: { candidates.contains($0.name) })?.name { votes[choice, default: 0] += 1 }
        }
        return votes.max { a, b in a.value < b.value || (a.value == b.value && a.key > b.key) }?.key
    }

    func supports(protocolType: String, protocols: [JoinGroupRequest.JoinGroupRequestProtocol]) -> Bool {
        if members.isEmpty { return !protocolType.isEmpty && !protocols.isEmpty }
        return self.protocolType == protocolType && !candidateProtocols.isDisjoint(with: protocols.map(\.name))
    }

    var allMembersJoined: Bool { pendingMembers.isEmpty && members.values.allSatisfy { $0.pendingJoin != nil } }

    /// Topics the members subscribe to (consumer protocol), for OffsetDelete.
    var subscribedTopics: Set<String>? {
        guard protocolType == "consumer", !members.isEmpty else { return nil }
        var topics = Set<String>()
        for m in members.values { topics.formUnion(GroupRecords.subscribedTopics(m.metadata(for: protocolName))) }
        return topics
    }

    /// The group metadata record value (assignments as currently known).
    func metadataValue(now: Int64) -> GroupMetadataValue {
        GroupMetadataValue(
            protocolType: protocolType ?? "", generation: generationId, protocol: protocolName, leader: leaderId,
            currentStateTimestamp: stateTimestamp,
            members: members.values.map { m in
                .init(memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost,
                      rebalanceTimeout: m.rebalanceTimeoutMs, sessionTimeout: m.sessionTimeoutMs,
                      subscription: m.metadata(for: protocolName), assignment: m.assignment)
            })
    }
}
