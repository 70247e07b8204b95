import KafkaProtocol
import KafkaWire
import NIOCore

public struct GroupCoordinatorConfig: Sendable {
    public var minSessionTimeoutMs: Int32 = 6000
    public var maxSessionTimeoutMs: Int32 = 1_800_000
    public var initialRebalanceDelayMs: Int32 = 3000
    public var offsetsRetentionMs: Int64 = 7 * 24 * 3_600_000
    public var offsetMetadataMaxBytes: Int = 4096
    public var groupMaxSize: Int = Int(Int32.max)
    public var offsetsTopicPartitions: Int32 = 50

    public init() {}
}

/// Answers the coordinator gives after the request that asked (JoinGroup waits for the rebalance,
/// SyncGroup for the leader, commits and deletions for their records to be appended).
public enum GroupReply: Sendable {
    case join(JoinGroupResponse)
    case sync(SyncGroupResponse)
    case commit(OffsetCommitResponse)
    case deleteGroups(DeleteGroupsResponse)
    case offsetDelete(OffsetDeleteResponse)
}

public enum GroupAction: Sendable {
    /// Complete the request `token` with this answer.
    case reply(RequestToken, GroupReply)
    /// Append these records to `__consumer_offsets` partition `partition`, then call `appendCompleted(id, error:)`.
    case append(id: UInt64, partition: Int32, records: [GroupRecord])
}

/// Kafka's classic group coordinator (JoinGroup/SyncGroup/Heartbeat/LeaveGroup, offsets) as a
/// sans-IO state machine: every operation takes the current time and returns actions — answers to
/// give and records to append to `__consumer_offsets`. Its state is rebuilt by replaying those
/// records (`replay`). Timers are a `tick(now:)` that the driver calls often.
public struct GroupCoordinator: Sendable {
    public var config: GroupCoordinatorConfig
    var groups: [String: Group] = [:]
    private var pendingAppends: [UInt64: PendingAppend] = [:]
    private var nextAppendId: UInt64 = 0
    private let makeMemberId: @Sendable (String) -> String

    enum PendingAppend: Sendable {
        case sync(groupId: String, generation: Int32, assignments: [String: ByteBuffer])
        case commit(RequestToken, groupId: String, offsets: [TopicPartition: CommittedOffset], response: OffsetCommitResponse)
        case deleteGroups(RequestToken, groupIds: [String], response: DeleteGroupsResponse)
        case offsetDelete(RequestToken, groupId: String, partitions: [TopicPartition], response: OffsetDeleteResponse)
        case metadataOnly
    }

    /// `makeMemberId` builds a member id from a client id (Kafka: `clientId-UUID`).
    public init(config: GroupCoordinatorConfig, makeMemberId: @escaping @Sendable (String) -> String) {
        self.config = config
        self.makeMemberId = makeMemberId
    }

    public func partition(for groupId: String) -> Int32 {
        GroupRecords.partition(for: groupId, partitions: config.offsetsTopicPartitions)
    }

    public func state(of groupId: String) -> GroupState? { groups[groupId]?.state }

    // MARK: Partition loading

    /// `__consumer_offsets` partitions being replayed: their groups answer COORDINATOR_LOAD_IN_PROGRESS.
    private var loadingPartitions: Set<Int32> = []

    /// Partitions whose replay failed: never served as empty (that would hand consumers offset -1
    /// and send them to `auto.offset.reset`); their groups answer COORDINATOR_NOT_AVAILABLE until
    /// a later load succeeds.
    public private(set) var failedPartitions: Set<Int32> = []

    public mutating func beginLoading(_ partitions: [Int32]) {
        loadingPartitions.formUnion(partitions)
        failedPartitions.subtract(partitions)
    }
    public mutating func finishLoading(_ partition: Int32) { loadingPartitions.remove(partition) }
    /// The replay of `partition` failed: forget what was partly replayed and refuse its groups.
    public mutating func failLoading(_ partition: Int32) {
        loadingPartitions.remove(partition)
        failedPartitions.insert(partition)
        for id in groups.keys where self.partition(for: id) == partition { groups.removeValue(forKey: id) }
    }
    /// This broker no longer leads `partition` (Kafka's onResignation): its groups are dropped; members
    /// waiting in JoinGroup or SyncGroup are answered NOT_COORDINATOR and find the new coordinator.
    public mutating func unloadPartition(_ partition: Int32) -> [GroupAction] {
        loadingPartitions.remove(partition)
        failedPartitions.remove(partition)
        var actions: [GroupAction] = []
        for id in groups.keys.sorted() where self.partition(for: id) == partition {
            guard let group = groups.removeValue(forKey: id) else { continue }
            for member in group.members.values {
                if let join = member.pendingJoin {
                    actions.append(.reply(join.token, .join(JoinGroupResponse(errorCode: KafkaErrorCode.notCoordinator.rawValue))))
                }
                if let sync = member.pendingSync {
                    actions.append(.reply(sync, .sync(SyncGroupResponse(errorCode: KafkaErrorCode.notCoordinator.rawValue))))
                }
            }
        }
        return actions
    }
    public var isLoading: Bool { !loadingPartitions.isEmpty }
    public func isLoading(_ partition: Int32) -> Bool { loadingPartitions.contains(partition) }

    /// COORDINATOR_LOAD_IN_PROGRESS while the group's partition is being replayed,
    /// COORDINATOR_NOT_AVAILABLE when its replay failed, else nil.
    public func availabilityError(for groupId: String) -> KafkaErrorCode? {
        let p = partition(for: groupId)
        if loadingPartitions.contains(p) { return .coordinatorLoadInProgress }
        if failedPartitions.contains(p) { return .coordinatorNotAvailable }
        return nil
    }
    public var groupIds: [String] { groups.keys.sorted() }

    // MARK: JoinGroup

    public mutating func join(_ token: RequestToken, _ request: JoinGroupRequest, version: Int16, clientId: String, clientHost: String,
                              now: Int64) -> [GroupAction] {
        func fail(_ code: KafkaErrorCode, memberId: String = request.memberId) -> [GroupAction] {
            [.reply(token, .join(JoinGroupResponse(errorCode: code.rawValue, generationId: -1, leader: "", memberId: memberId)))]
        }
        let groupId = request.groupId
        guard !groupId.isEmpty else { return fail(.invalidGroupId) }
        if let error = availabilityError(for: groupId) { return fail(error) }
        guard request.sessionTimeoutMs >= config.minSessionTimeoutMs, request.sessionTimeoutMs <= config.maxSessionTimeoutMs else {
            return fail(.invalidSessionTimeout)
        }
        var group: Group
        if let existing = groups[groupId] {
            group = existing
        } else {
            guard request.memberId.isEmpty else { return fail(.unknownMemberId) }
            group = Group(groupId: groupId, now: now)
        }
        guard group.supports(protocolType: request.protocolType, protocols: request.protocols) else {
            return fail(.inconsistentGroupProtocol)
        }
        var actions: [GroupAction] = []
        defer { groups[groupId] = group }
        let rebalanceTimeout = version == 0 ? request.sessionTimeoutMs : request.rebalanceTimeoutMs

        if request.memberId.isEmpty {
            if group.members.count >= config.groupMaxSize { return fail(.groupMaxSizeReached) }
            let newId = makeMemberId(clientId)
            if let instanceId = request.groupInstanceId, let oldId = group.staticMembers[instanceId] {
                if group.members[oldId] != nil {
                    return replaceStaticMember(&group, token: token, request: request, version: version, oldId: oldId, newId: newId,
                                               clientId: clientId, clientHost: clientHost, now: now)
                }
                group.staticMembers.removeValue(forKey: instanceId)
            }
            if request.groupInstanceId == nil, version >= 4 {
                // KIP-394: hand out the id and ask the client to join again with it.
                group.pendingMembers[newId] = now + Int64(request.sessionTimeoutMs)
                return fail(.memberIdRequired, memberId: newId)
            }
            addMember(&group, id: newId, token: token, request: request, version: version, rebalanceTimeout: rebalanceTimeout,
                      clientId: clientId, clientHost: clientHost, now: now, actions: &actions)
            return actions
        }

        let memberId = request.memberId
        if let instanceId = request.groupInstanceId, let known = group.staticMembers[instanceId], known != memberId {
            return fail(.fencedInstanceId)
        }
        if group.pendingMembers.removeValue(forKey: memberId) != nil {
            addMember(&group, id: memberId, token: token, request: request, version: version, rebalanceTimeout: rebalanceTimeout,
                      clientId: clientId, clientHost: clientHost, now: now, actions: &actions)
            return actions
        }
        guard var member = group.members[memberId] else { return fail(.unknownMemberId) }
        let unchanged = member.sameProtocols(request.protocols)
        switch group.state {
        case .preparingRebalance:
            update(&member, request: request, rebalanceTimeout: rebalanceTimeout, token: token, version: version)
            group.members[memberId] = member
            maybeCompleteJoin(&group, now: now, actions: &actions)
        case .completingRebalance where unchanged, .stable where unchanged && memberId != group.leaderId:
            // Nothing changed: answer with the current generation, no rebalance.
            member.heartbeatDeadline = now + Int64(member.sessionTimeoutMs)
            group.members[memberId] = member
            actions.append(.reply(token, .join(joinResponse(group, for: member, includeMembers: memberId == group.leaderId))))
        case .completingRebalance, .stable:
            update(&member, request: request, rebalanceTimeout: rebalanceTimeout, token: token, version: version)
            group.members[memberId] = member
            prepareRebalance(&group, now: now, actions: &actions)
        case .empty, .dead:
            return fail(.unknownMemberId)
        }
        return actions
    }

    private func update(_ member: inout GroupMember, request: JoinGroupRequest, rebalanceTimeout: Int32, token: RequestToken, version: Int16) {
        member.protocols = request.protocols.map { ($0.name, $0.metadata) }
        member.rebalanceTimeoutMs = rebalanceTimeout
        member.sessionTimeoutMs = request.sessionTimeoutMs
        member.pendingJoin = (token, version)
    }

    private mutating func addMember(_ group: inout Group, id: String, token: RequestToken, request: JoinGroupRequest, version: Int16,
                                    rebalanceTimeout: Int32, clientId: String, clientHost: String, now: Int64, actions: inout [GroupAction]) {
        if group.members.isEmpty { group.protocolType = request.protocolType }
        let member = GroupMember(memberId: id, groupInstanceId: request.groupInstanceId, clientId: clientId, clientHost: clientHost,
                                 rebalanceTimeoutMs: rebalanceTimeout, sessionTimeoutMs: request.sessionTimeoutMs,
                                 protocolType: request.protocolType, protocols: request.protocols.map { ($0.name, $0.metadata) },
                                 pendingJoin: (token, version), heartbeatDeadline: now + Int64(request.sessionTimeoutMs))
        group.members[id] = member
        if let instanceId = request.groupInstanceId { group.staticMembers[instanceId] = id }
        group.newMemberAdded = true
        if group.state == .preparingRebalance {
            maybeCompleteJoin(&group, now: now, actions: &actions)
        } else {
            prepareRebalance(&group, now: now, actions: &actions)
        }
    }

    /// A static member came back with a new member id (KIP-345): the old id is fenced; if nothing
    /// changed in a stable group it keeps its assignment and nobody rebalances.
    private mutating func replaceStaticMember(_ group: inout Group, token: RequestToken, request: JoinGroupRequest, version: Int16,
                                              oldId: String, newId: String, clientId: String, clientHost: String, now: Int64) -> [GroupAction] {
        var actions: [GroupAction] = []
        var member = group.members.removeValue(forKey: oldId)!
        if let old = member.pendingJoin {
            actions.append(.reply(old.token, .join(JoinGroupResponse(errorCode: KafkaErrorCode.fencedInstanceId.rawValue, generationId: -1,
                                                                     leader: "", memberId: oldId))))
        }
        if let old = member.pendingSync {
            actions.append(.reply(old, .sync(SyncGroupResponse(errorCode: KafkaErrorCode.fencedInstanceId.rawValue))))
        }
        let unchanged = member.sameProtocols(request.protocols)
        member = GroupMember(memberId: newId, groupInstanceId: member.groupInstanceId, clientId: clientId, clientHost: clientHost,
                             rebalanceTimeoutMs: request.rebalanceTimeoutMs, sessionTimeoutMs: request.sessionTimeoutMs,
                             protocolType: request.protocolType, protocols: request.protocols.map { ($0.name, $0.metadata) },
                             assignment: member.assignment, heartbeatDeadline: now + Int64(request.sessionTimeoutMs))
        group.members[newId] = member
        group.staticMembers[request.groupInstanceId!] = newId
        let wasLeader = group.leaderId == oldId
        if wasLeader { group.leaderId = newId }
        if group.state == .stable && unchanged {
            actions.append(appendRecords(group: group.groupId, [GroupRecord(key: GroupRecords.groupKey(group.groupId),
                                                                            value: GroupRecords.groupValue(group.metadataValue(now: now)))],
                                         then: .metadataOnly))
            // As Kafka answers a returning static leader: from v9 it is told it leads but need not
            // assign (KIP-814) and gets the members; before v9 it is given the old leader id, so it
            // acts as a follower and just fetches its assignment with SyncGroup.
            var response = joinResponse(group, for: member, includeMembers: wasLeader && version >= 9)
            if wasLeader {
                if version >= 9 { response.skipAssignment = true } else { response.leader = oldId }
            }
            actions.append(.reply(token, .join(response)))
            return actions
        }
        member.pendingJoin = (token, version)
        group.members[newId] = member
        if group.state == .preparingRebalance {
            maybeCompleteJoin(&group, now: now, actions: &actions)
        } else {
            prepareRebalance(&group, now: now, actions: &actions)
        }
        return actions
    }

    func joinResponse(_ group: Group, for member: GroupMember, includeMembers: Bool) -> JoinGroupResponse {
        var r = JoinGroupResponse(errorCode: 0, generationId: group.generationId, protocolType: group.protocolType,
                                  protocolName: group.protocolName, leader: group.leaderId ?? "", memberId: member.memberId)
        if includeMembers {
            r.members = group.members.values.map {
                .init(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, metadata: $0.metadata(for: group.protocolName))
            }
        }
        return r
    }

    // MARK: Rebalancing

    private mutating func prepareRebalance(_ group: inout Group, now: Int64, actions: inout [GroupAction]) {
        if group.state == .completingRebalance {
            for id in group.members.keys {
                group.members[id]!.assignment = ByteBuffer()
                if let sync = group.members[id]!.pendingSync {
                    actions.append(.reply(sync, .sync(SyncGroupResponse(errorCode: KafkaErrorCode.rebalanceInProgress.rawValue))))
                    group.members[id]!.pendingSync = nil
                }
            }
        }
        group.syncDeadline = nil
        if group.state == .empty, config.initialRebalanceDelayMs > 0 {
            let delay = min(Int64(config.initialRebalanceDelayMs), group.maxRebalanceTimeoutMs)
            group.inInitialDelay = true
            group.initialDelayRemainingMs = group.maxRebalanceTimeoutMs - delay
            group.newMemberAdded = false
            group.joinDeadline = now + delay
        } else {
            group.inInitialDelay = false
            group.joinDeadline = now + group.maxRebalanceTimeoutMs
        }
        group.state = .preparingRebalance
        group.stateTimestamp = now
        maybeCompleteJoin(&group, now: now, actions: &actions)
    }

    private mutating func maybeCompleteJoin(_ group: inout Group, now: Int64, actions: inout [GroupAction]) {
        guard group.state == .preparingRebalance, !group.inInitialDelay, group.allMembersJoined else { return }
        completeJoin(&group, now: now, actions: &actions)
    }

    /// Ends the join phase: dynamic members that did not rejoin are dropped, the generation
    /// advances, and everyone who joined gets its answer (the leader with the member list).
    private mutating func completeJoin(_ group: inout Group, now: Int64, actions: inout [GroupAction]) {
        for (id, m) in group.members where m.pendingJoin == nil && m.groupInstanceId == nil {
            group.members.removeValue(forKey: id)
        }
        group.pendingMembers.removeAll()
        group.joinDeadline = nil
        group.inInitialDelay = false
        group.generationId += 1
        group.stateTimestamp = now
        if group.members.isEmpty {
            group.state = .empty
            group.protocolName = nil
            group.leaderId = nil
            actions.append(appendRecords(group: group.groupId, [GroupRecord(key: GroupRecords.groupKey(group.groupId),
                                                                            value: GroupRecords.groupValue(group.metadataValue(now: now)))],
                                         then: .metadataOnly))
            return
        }
        group.protocolName = group.selectProtocol()
        if group.leaderId == nil || group.members[group.leaderId!] == nil || group.members[group.leaderId!]!.pendingJoin == nil {
            group.leaderId = group.members.values.first { $0.pendingJoin != nil }?.memberId ?? group.members.keys.first
        }
        group.state = .completingRebalance
        group.syncDeadline = now + group.maxRebalanceTimeoutMs
        for id in group.members.keys {
            guard let join = group.members[id]!.pendingJoin else { continue }
            group.members[id]!.pendingJoin = nil
            group.members[id]!.heartbeatDeadline = now + Int64(group.members[id]!.sessionTimeoutMs)
            let member = group.members[id]!
            actions.append(.reply(join.token, .join(joinResponse(group, for: member, includeMembers: id == group.leaderId))))
        }
    }

    private mutating func removeMember(_ group: inout Group, _ memberId: String, now: Int64, actions: inout [GroupAction]) {
        guard let member = group.members.removeValue(forKey: memberId) else { return }
        if let instanceId = member.groupInstanceId, group.staticMembers[instanceId] == memberId { group.staticMembers.removeValue(forKey: instanceId) }
        if let join = member.pendingJoin {
            actions.append(.reply(join.token, .join(JoinGroupResponse(errorCode: KafkaErrorCode.unknownMemberId.rawValue, generationId: -1,
                                                                      leader: "", memberId: memberId))))
        }
        if let sync = member.pendingSync {
            actions.append(.reply(sync, .sync(SyncGroupResponse(errorCode: KafkaErrorCode.unknownMemberId.rawValue))))
        }
        if group.leaderId == memberId { group.leaderId = nil }
        switch group.state {
        case .stable, .completingRebalance: prepareRebalance(&group, now: now, actions: &actions)
        case .preparingRebalance: maybeCompleteJoin(&group, now: now, actions: &actions)
        case .empty, .dead: break
        }
    }

    /// Expires sessions, pending member ids and the join and sync phases. Call it often (e.g. every 100 ms).
    public mutating func tick(now: Int64) -> [GroupAction] {
        var actions: [GroupAction] = []
        for groupId in groups.keys {
            var group = groups[groupId]!
            for (id, deadline) in group.pendingMembers where now >= deadline {
                group.pendingMembers.removeValue(forKey: id)
                maybeCompleteJoin(&group, now: now, actions: &actions)
            }
            if group.state == .preparingRebalance, let deadline = group.joinDeadline, now >= deadline {
                if group.inInitialDelay, group.newMemberAdded, group.initialDelayRemainingMs > 0 {
                    // More members arrived during the delay: wait a little longer for others.
                    let delay = min(Int64(config.initialRebalanceDelayMs), group.initialDelayRemainingMs)
                    group.initialDelayRemainingMs -= delay
                    group.newMemberAdded = false
                    group.joinDeadline = now + delay
                } else {
                    completeJoin(&group, now: now, actions: &actions)
                }
            }
            if group.state == .completingRebalance, let deadline = group.syncDeadline, now >= deadline {
                // The leader never sent its assignment: drop who has not synced and start over
                // (prepareRebalance tells the members still waiting in SyncGroup to rejoin).
                for (id, m) in group.members where m.pendingSync == nil { group.members.removeValue(forKey: id) }
                group.staticMembers = group.staticMembers.filter { group.members[$0.value] != nil }
                if group.leaderId.map({ group.members[$0] == nil }) ?? true { group.leaderId = nil }
                prepareRebalance(&group, now: now, actions: &actions)
            }
            for (id, m) in group.members where !m.keptAlive(now: now) {
                removeMember(&group, id, now: now, actions: &actions)
            }
            groups[groupId] = group
        }
        return actions
    }

    // MARK: SyncGroup, Heartbeat, LeaveGroup

    public mutating func sync(_ token: RequestToken, _ request: SyncGroupRequest, version: Int16, now: Int64) -> [GroupAction] {
        func fail(_ code: KafkaErrorCode) -> [GroupAction] { [.reply(token, .sync(SyncGroupResponse(errorCode: code.rawValue)))] }
        if let error = availabilityError(for: request.groupId) { return fail(error) }
        guard var group = groups[request.groupId] else { return fail(.unknownMemberId) }
        if let instanceId = request.groupInstanceId, let known = group.staticMembers[instanceId], known != request.memberId {
            return fail(.fencedInstanceId)
        }
        guard var member = group.members[request.memberId] else { return fail(.unknownMemberId) }
        guard request.generationId == group.generationId else { return fail(.illegalGeneration) }
        if let t = request.protocolType, t != group.protocolType { return fail(.inconsistentGroupProtocol) }
        if let n = request.protocolName, n != group.protocolName { return fail(.inconsistentGroupProtocol) }
        switch group.state {
        case .empty, .dead:
            return fail(.unknownMemberId)
        case .preparingRebalance:
            return fail(.rebalanceInProgress)
        case .stable:
            member.heartbeatDeadline = now + Int64(member.sessionTimeoutMs)
            group.members[request.memberId] = member
            groups[request.groupId] = group
            return [.reply(token, .sync(SyncGroupResponse(errorCode: 0, protocolType: group.protocolType, protocolName: group.protocolName,
                                                          assignment: member.assignment)))]
        case .completingRebalance:
            member.pendingSync = token
            member.heartbeatDeadline = now + Int64(member.sessionTimeoutMs)
            group.members[request.memberId] = member
            groups[request.groupId] = group
            guard request.memberId == group.leaderId else { return [] }
            var assignments: [String: ByteBuffer] = [:]
            for a in request.assignments where group.members[a.memberId] != nil { assignments[a.memberId] = a.assignment }
            var stored = group
            for id in stored.members.keys { stored.members[id]!.assignment = assignments[id] ?? ByteBuffer() }
            return [appendRecords(group: group.groupId, [GroupRecord(key: GroupRecords.groupKey(group.groupId),
                                                                     value: GroupRecords.groupValue(stored.metadataValue(now: now)))],
                                  then: .sync(groupId: group.groupId, generation: group.generationId, assignments: assignments))]
        }
    }

    public mutating func heartbeat(_ request: HeartbeatRequest, now: Int64) -> HeartbeatResponse {
        func answer(_ code: KafkaErrorCode) -> HeartbeatResponse { HeartbeatResponse(errorCode: code.rawValue) }
        if let error = availabilityError(for: request.groupId) { return answer(error) }
        guard var group = groups[request.groupId], group.state != .empty, group.state != .dead else { return answer(.unknownMemberId) }
        if let instanceId = request.groupInstanceId, let known = group.staticMembers[instanceId], known != request.memberId {
            return answer(.fencedInstanceId)
        }
        guard group.members[request.memberId] != nil else { return answer(.unknownMemberId) }
        guard request.generationId == group.generationId else { return answer(.illegalGeneration) }
        group.members[request.memberId]!.heartbeatDeadline = now + Int64(group.members[request.memberId]!.sessionTimeoutMs)
        groups[request.groupId] = group
        return answer(group.state == .preparingRebalance ? .rebalanceInProgress : .none)
    }

    public mutating func leave(_ request: LeaveGroupRequest, version: Int16, now: Int64) -> (LeaveGroupResponse, [GroupAction]) {
        let identities: [LeaveGroupRequest.MemberIdentity] = version < 3 ? [.init(memberId: request.memberId)] : request.members
        var response = LeaveGroupResponse()
        var actions: [GroupAction] = []
        if let error = availabilityError(for: request.groupId) {
            response.errorCode = error.rawValue
            return (response, actions)
        }
        guard var group = groups[request.groupId] else {
            response.members = identities.map { .init(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, errorCode: KafkaErrorCode.unknownMemberId.rawValue) }
            if version < 3 { response.errorCode = KafkaErrorCode.unknownMemberId.rawValue; response.members = [] }
            return (response, actions)
        }
        for identity in identities {
            var code = KafkaErrorCode.none
            var memberId = identity.memberId
            if let instanceId = identity.groupInstanceId {
                if let known = group.staticMembers[instanceId] {
                    if !memberId.isEmpty && memberId != known { code = .fencedInstanceId } else { memberId = known }
                } else {
                    code = .unknownMemberId
                }
            }
            if code == .none {
                if group.pendingMembers.removeValue(forKey: memberId) != nil {
                    maybeCompleteJoin(&group, now: now, actions: &actions)
                } else if group.members[memberId] != nil {
                    removeMember(&group, memberId, now: now, actions: &actions)
                } else {
                    code = .unknownMemberId
                }
            }
            response.members.append(.init(memberId: identity.memberId, groupInstanceId: identity.groupInstanceId, errorCode: code.rawValue))
        }
        groups[request.groupId] = group
        if version < 3 {
            response.errorCode = response.members.first?.errorCode ?? 0
            response.members = []
        }
        return (response, actions)
    }

    // MARK: Offsets

    /// OffsetCommit. `topicExists` tells which topics may be committed for.
    public mutating func commit(_ token: RequestToken, _ request: OffsetCommitRequest, version: Int16, now: Int64,
                                topicExists: (String) -> Bool) -> [GroupAction] {
        var response = OffsetCommitResponse()
        func respondAll(_ code: KafkaErrorCode) -> [GroupAction] {
            response.topics = request.topics.map { t in
                .init(name: t.name, partitions: t.partitions.map { .init(partitionIndex: $0.partitionIndex, errorCode: code.rawValue) })
            }
            return [.reply(token, .commit(response))]
        }
        guard !request.groupId.isEmpty else { return respondAll(.invalidGroupId) }
        if let error = availabilityError(for: request.groupId) { return respondAll(error) }
        let generation = request.generationIdOrMemberEpoch
        var group: Group
        if let existing = groups[request.groupId] {
            group = existing
        } else {
            guard generation < 0 else { return respondAll(.illegalGeneration) }
            group = Group(groupId: request.groupId, now: now)
        }
        if let instanceId = request.groupInstanceId, let known = group.staticMembers[instanceId], known != request.memberId {
            return respondAll(.fencedInstanceId)
        }
        if generation < 0 && group.state == .empty {
            // Offsets stored for a group that does not use Kafka's group management.
        } else if group.state == .completingRebalance {
            return respondAll(.rebalanceInProgress)
        } else if group.members[request.memberId] == nil {
            return respondAll(.unknownMemberId)
        } else if generation != group.generationId {
            return respondAll(.illegalGeneration)
        } else {
            group.members[request.memberId]!.heartbeatDeadline = now + Int64(group.members[request.memberId]!.sessionTimeoutMs)
        }
        groups[request.groupId] = group
        var records: [GroupRecord] = []
        var offsets: [TopicPartition: CommittedOffset] = [:]
        for t in request.topics {
            var topic = OffsetCommitResponse.OffsetCommitResponseTopic(name: t.name)
            for p in t.partitions {
                var code = KafkaErrorCode.none
                let metadata = p.committedMetadata ?? ""
                if !topicExists(t.name) {
                    code = .unknownTopicOrPartition
                } else if metadata.utf8.count > config.offsetMetadataMaxBytes {
                    code = .offsetMetadataTooLarge
                } else {
                    let tp = TopicPartition(t.name, p.partitionIndex)
                    let committed = CommittedOffset(offset: p.committedOffset, leaderEpoch: p.committedLeaderEpoch, metadata: metadata,
                                                    commitTimestamp: p.commitTimestamp > 0 ? p.commitTimestamp : now)
                    offsets[tp] = committed
                    records.append(GroupRecord(key: GroupRecords.offsetKey(group: request.groupId, tp), value: GroupRecords.offsetValue(committed)))
                }
                topic.partitions.append(.init(partitionIndex: p.partitionIndex, errorCode: code.rawValue))
            }
            response.topics.append(topic)
        }
        if records.isEmpty { return [.reply(token, .commit(response))] }
        return [appendRecords(group: request.groupId, records, then: .commit(token, groupId: request.groupId, offsets: offsets, response: response))]
    }

    /// OffsetFetch for one group: the requested partitions (all committed ones when `topics` is nil).
    public func fetchOffsets(groupId: String, topics: [(name: String, partitions: [Int32])]?) -> [(name: String, partitions: [(Int32, CommittedOffset?)])] {
        let offsets = groups[groupId]?.offsets ?? [:]
        if let topics {
            return topics.map { t in (t.name, t.partitions.map { ($0, offsets[TopicPartition(t.name, $0)]) }) }
        }
        let byTopic = Dictionary(grouping: offsets.keys, by: \.topic)
        return byTopic.keys.sorted().map { topic in
            (topic, byTopic[topic]!.sorted().map { ($0.partition, offsets[$0]) })
        }
    }

    /// Removes offsets past `offsets.retention.minutes`: for groups without members, counted from
    /// when the group became empty (or from the commit, for groups that only store offsets).
    public mutating func expireOffsets(now: Int64) -> [GroupAction] {
        var actions: [GroupAction] = []
        for groupId in groups.keys {
            var group = groups[groupId]!
            guard group.state == .empty else { continue }
            let expired = group.offsets.filter { _, o in
                let base = group.protocolType == nil ? o.commitTimestamp : max(group.stateTimestamp, o.commitTimestamp)
                return base + config.offsetsRetentionMs <= now
            }.map(\.key)
            guard !expired.isEmpty else { continue }
            for tp in expired { group.offsets.removeValue(forKey: tp) }
            var records = expired.map { GroupRecord(key: GroupRecords.offsetKey(group: groupId, $0), value: nil) }
            if group.offsets.isEmpty {
                records.append(GroupRecord(key: GroupRecords.groupKey(groupId), value: nil))
                groups.removeValue(forKey: groupId)
            } else {
                groups[groupId] = group
            }
            actions.append(appendRecords(group: groupId, records, then: .metadataOnly))
        }
        return actions
    }

    // MARK: Describe, list, delete

    public func describe(_ groupId: String) -> DescribeGroupsResponse.DescribedGroup {
        guard let group = groups[groupId] else {
            return .init(errorCode: 0, groupId: groupId, groupState: GroupState.dead.rawValue, protocolType: "", protocolData: "")
        }
        let stable = group.state == .stable
        return .init(errorCode: 0, groupId: groupId, groupState: group.state.rawValue, protocolType: group.protocolType ?? "",
                     protocolData: stable ? group.protocolName ?? "" : "",
                     members: group.members.values.map { m in
                         .init(memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost,
                               memberMetadata: stable ? m.metadata(for: group.protocolName) : ByteBuffer(),
                               memberAssignment: stable ? m.assignment : ByteBuffer())
                     })
    }

    public func list(states: [String], types: [String]) -> [ListGroupsResponse.ListedGroup] {
        groups.values.sorted { $0.groupId < $1.groupId }.compactMap { g in
            if !states.isEmpty, !states.contains(where: { $0.caseInsensitiveEquals(g.state.rawValue) }) { return nil }
            if !types.isEmpty, !types.contains(where: { $0.caseInsensitiveEquals("classic") }) { return nil }
            return .init(groupId: g.groupId, protocolType: g.protocolType ?? "", groupState: g.state.rawValue, groupType: "classic")
        }
    }

    public mutating func deleteGroups(_ token: RequestToken, _ names: [String]) -> [GroupAction] {
        var response = DeleteGroupsResponse()
        var deletable: [String] = []
        var records: [Int32: [GroupRecord]] = [:]
        for name in names {
            var code = KafkaErrorCode.none
            if let group = groups[name] {
                if group.state != .empty {
                    code = .nonEmptyGroup
                } else {
                    deletable.append(name)
                    var rs = group.offsets.keys.sorted().map { GroupRecord(key: GroupRecords.offsetKey(group: name, $0), value: nil) }
                    rs.append(GroupRecord(key: GroupRecords.groupKey(name), value: nil))
                    records[partition(for: name), default: []] += rs
                }
            } else {
                code = name.isEmpty ? .invalidGroupId : .groupIdNotFound
            }
            response.results.append(.init(groupId: name, errorCode: code.rawValue))
        }
        guard !deletable.isEmpty else { return [.reply(token, .deleteGroups(response))] }
        // One append per __consumer_offsets partition; the answer follows the last one.
        var actions: [GroupAction] = []
        let partitions = records.keys.sorted()
        for (i, p) in partitions.enumerated() {
            let then: PendingAppend = i == partitions.count - 1 ? .deleteGroups(token, groupIds: deletable, response: response) : .metadataOnly
            actions.append(appendRecords(partition: p, records[p]!, then: then))
        }
        return actions
    }

    public mutating func deleteOffsets(_ token: RequestToken, _ request: OffsetDeleteRequest) -> [GroupAction] {
        var response = OffsetDeleteResponse()
        guard let group = groups[request.groupId] else {
            response.errorCode = KafkaErrorCode.groupIdNotFound.rawValue
            return [.reply(token, .offsetDelete(response))]
        }
        let subscribed = group.subscribedTopics ?? []
        var removed: [TopicPartition] = []
        for t in request.topics {
            var topic = OffsetDeleteResponse.OffsetDeleteResponseTopic(name: t.name)
            for p in t.partitions {
                let code: KafkaErrorCode = subscribed.contains(t.name) ? .groupSubscribedToTopic : .none
                if code == .none, group.offsets[TopicPartition(t.name, p.partitionIndex)] != nil { removed.append(TopicPartition(t.name, p.partitionIndex)) }
                topic.partitions.append(.init(partitionIndex: p.partitionIndex, errorCode: code.rawValue))
            }
            response.topics.append(topic)
        }
        if removed.isEmpty { return [.reply(token, .offsetDelete(response))] }
        let records = removed.map { GroupRecord(key: GroupRecords.offsetKey(group: request.groupId, $0), value: nil) }
        return [appendRecords(group: request.groupId, records, then: .offsetDelete(token, groupId: request.groupId, partitions: removed, response: response))]
    }

    // MARK: Appends

    private mutating func appendRecords(group: String, _ records: [GroupRecord], then: PendingAppend) -> GroupAction {
        appendRecords(partition: partition(for: group), records, then: then)
    }

    private mutating func appendRecords(partition: Int32, _ records: [GroupRecord], then: PendingAppend) -> GroupAction {
        let id = nextAppendId
        nextAppendId += 1
        pendingAppends[id] = then
        return .append(id: id, partition: partition, records: records)
    }

    /// The driver appended (error nil) or failed to append the records of `append(id:)`.
    public mutating func appendCompleted(_ id: UInt64, error: KafkaErrorCode?, now: Int64) -> [GroupAction] {
        guard let pending = pendingAppends.removeValue(forKey: id) else { return [] }
        var actions: [GroupAction] = []
        switch pending {
        case .metadataOnly:
            break
        case let .sync(groupId, generation, assignments):
            guard var group = groups[groupId], group.state == .completingRebalance, group.generationId == generation else { break }
            if let error {
                let code = Self.coordinatorError(for: error)
                for (id, m) in group.members {
                    if let sync = m.pendingSync { actions.append(.reply(sync, .sync(SyncGroupResponse(errorCode: code.rawValue)))) }
                    group.members[id]!.pendingSync = nil
                }
                prepareRebalance(&group, now: now, actions: &actions)
            } else {
                group.state = .stable
                group.stateTimestamp = now
                group.syncDeadline = nil
                for id in group.members.keys {
                    group.members[id]!.assignment = assignments[id] ?? ByteBuffer()
                    if let sync = group.members[id]!.pendingSync {
                        actions.append(.reply(sync, .sync(SyncGroupResponse(errorCode: 0, protocolType: group.protocolType,
                                                                           protocolName: group.protocolName, assignment: group.members[id]!.assignment))))
                        group.members[id]!.pendingSync = nil
                    }
                }
            }
            groups[groupId] = group
        case let .commit(token, groupId, offsets, response):
            var answer = response
            if let error {
                let code = Self.commitError(for: error)
                for t in answer.topics.indices {
                    for p in answer.topics[t].partitions.indices where answer.topics[t].partitions[p].errorCode == 0 {
                        answer.topics[t].partitions[p].errorCode = code.rawValue
                    }
                }
            } else {
                if groups[groupId] == nil { groups[groupId] = Group(groupId: groupId, now: now) }
                for (tp, o) in offsets { groups[groupId]!.offsets[tp] = o }
            }
            actions.append(.reply(token, .commit(answer)))
        case let .deleteGroups(token, groupIds, response):
            var answer = response
            if let error {
                let code = Self.coordinatorError(for: error)
                for i in answer.results.indices where groupIds.contains(answer.results[i].groupId) { answer.results[i].errorCode = code.rawValue }
            } else {
                for id in groupIds where groups[id]?.state == .empty { groups.removeValue(forKey: id) }
            }
            actions.append(.reply(token, .deleteGroups(answer)))
        case let .offsetDelete(token, groupId, partitions, response):
            var answer = response
            if let error {
                answer.errorCode = Self.coordinatorError(for: error).rawValue
            } else {
                for tp in partitions { groups[groupId]?.offsets.removeValue(forKey: tp) }
            }
            actions.append(.reply(token, .offsetDelete(answer)))
        }
        return actions
    }

    /// Kafka's mapping of log append errors to what group clients are told.
    static func coordinatorError(for error: KafkaErrorCode) -> KafkaErrorCode {
        switch error {
        case .unknownTopicOrPartition, .notEnoughReplicas, .notEnoughReplicasAfterAppend, .requestTimedOut: return .coordinatorNotAvailable
        case .notLeaderOrFollower, .kafkaStorageError: return .notCoordinator
        default: return .unknownServerError
        }
    }

    static func commitError(for error: KafkaErrorCode) -> KafkaErrorCode {
        switch error {
        case .messageTooLarge, .recordListTooLarge, .invalidFetchSize: return .invalidCommitOffsetSize
        default: return coordinatorError(for: error)
        }
    }

    // MARK: Loading

    /// Applies one `__consumer_offsets` record while loading (in log order). Groups come back with
    /// their members and assignments; members get a fresh session to heartbeat in.
    public mutating func replay(key: ByteBuffer, value: ByteBuffer?, now: Int64) throws {
        switch try GroupRecords.decodeKey(key) {
        case let .offset(groupId, tp):
            if let value {
                if groups[groupId] == nil { groups[groupId] = Group(groupId: groupId, now: now) }
                groups[groupId]!.offsets[tp] = try GroupRecords.decodeOffset(value)
            } else {
                groups[groupId]?.offsets.removeValue(forKey: tp)
            }
        case let .group(groupId):
            guard let value else {
                groups.removeValue(forKey: groupId)
                return
            }
            let v = try GroupRecords.decodeGroup(value)
            var group = groups[groupId] ?? Group(groupId: groupId, now: now)
            group.protocolType = v.protocolType.isEmpty ? nil : v.protocolType
            group.generationId = v.generation
            group.protocolName = v.protocol
            group.leaderId = v.leader
            group.stateTimestamp = v.currentStateTimestamp >= 0 ? v.currentStateTimestamp : now
            group.members = [:]
            group.staticMembers = [:]
            for m in v.members {
                let protocols = v.protocol.map { [($0, m.subscription)] } ?? []
                group.members[m.memberId] = GroupMember(
                    memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost,
                    rebalanceTimeoutMs: m.rebalanceTimeout >= 0 ? m.rebalanceTimeout : m.sessionTimeout, sessionTimeoutMs: m.sessionTimeout,
                    protocolType: v.protocolType, protocols: protocols, assignment: m.assignment,
                    heartbeatDeadline: now + Int64(m.sessionTimeout))
                if let instanceId = m.groupInstanceId { group.staticMembers[instanceId] = m.memberId }
            }
            group.state = group.members.isEmpty ? .empty : .stable
            group.joinDeadline = nil
            group.syncDeadline = nil
            groups[groupId] = group
        case .other:
            break
        }
    }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool { lowercased() == other.lowercased() }
}
