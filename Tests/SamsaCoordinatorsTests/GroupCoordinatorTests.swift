import KafkaProtocol
import KafkaWire
import NIOCore
import Testing
@testable import SamsaCoordinators

/// Drives the coordinator like the broker does, without sockets: appends succeed at once (unless
/// `failAppends`), records are kept for replay, answers are collected by token.
struct Harness {
    var coordinator: GroupCoordinator
    var now: Int64 = 1_000_000
    var replies: [RequestToken: GroupReply] = [:]
    var records: [GroupRecord] = []
    var nextToken: RequestToken = 0
    var failAppends: KafkaErrorCode?
    static let existingTopics: Set<String> = ["t", "u"]

    init(initialDelayMs: Int32 = 3000) {
        var config = GroupCoordinatorConfig()
        config.initialRebalanceDelayMs = initialDelayMs
        let ids = Counter()
        coordinator = GroupCoordinator(config: config) { clientId in "\(clientId)-\(ids.next())" }
    }

    final class Counter: @unchecked Sendable {
        var n = 0
        func next() -> Int { n += 1; return n }
    }

    mutating func run(_ actions: [GroupAction]) {
        var queue = actions
        while !queue.isEmpty {
            let action = queue.removeFirst()
            switch action {
            case let .reply(token, reply): replies[token] = reply
            case let .append(id, _, rs):
                if failAppends == nil { records += rs }
                queue += coordinator.appendCompleted(id, error: failAppends, now: now)
            }
        }
    }

    mutating func token() -> RequestToken { nextToken += 1; return nextToken }

    static func protocols(_ names: [String] = ["range"], topics: [String] = ["t"]) -> [JoinGroupRequest.JoinGroupRequestProtocol] {
        names.map { name in
            var sub = ByteBuffer()
            sub.writeInteger(Int16(0))
            ConsumerProtocolSubscription(topics: topics).write(to: &sub, version: 0)
            return .init(name: name, metadata: sub)
        }
    }

    /// Sends a JoinGroup; returns its token (answer in `replies` when ready).
    mutating func join(_ memberId: String = "", instance: String? = nil, client: String = "c", version: Int16 = 5,
                       session: Int32 = 10_000, rebalance: Int32 = 30_000, protocols: [JoinGroupRequest.JoinGroupRequestProtocol] = protocols(),
                       group: String = "g") -> RequestToken {
        let t = token()
        let request = JoinGroupRequest(groupId: group, sessionTimeoutMs: session, rebalanceTimeoutMs: rebalance, memberId: memberId,
                                       groupInstanceId: instance, protocolType: "consumer", protocols: protocols)
        run(coordinator.join(t, request, version: version, clientId: client, clientHost: "/127.0.0.1", now: now))
        return t
    }

    /// KIP-394 two-step join of a new dynamic member; returns (token of the second join, member id).
    mutating func joinNew(client: String = "c") -> (RequestToken, String) {
        let first = join(client: client)
        let id = joinReply(first)!.memberId
        #expect(joinReply(first)!.errorCode == KafkaErrorCode.memberIdRequired.rawValue)
        return (join(id, client: client), id)
    }

    func joinReply(_ t: RequestToken) -> JoinGroupResponse? { if case let .join(r)? = replies[t] { return r } else { return nil } }
    func syncReply(_ t: RequestToken) -> SyncGroupResponse? { if case let .sync(r)? = replies[t] { return r } else { return nil } }

    mutating func sync(_ memberId: String, generation: Int32, assignments: [String: String] = [:], group: String = "g") -> RequestToken {
        let t = token()
        let request = SyncGroupRequest(groupId: group, generationId: generation, memberId: memberId,
                                       assignments: assignments.map { .init(memberId: $0.key, assignment: ByteBuffer(string: $0.value)) })
        run(coordinator.sync(t, request, version: 3, now: now))
        return t
    }

    mutating func heartbeat(_ memberId: String, generation: Int32, instance: String? = nil) -> KafkaErrorCode {
        KafkaErrorCode(coordinator.heartbeat(HeartbeatRequest(groupId: "g", generationId: generation, memberId: memberId, groupInstanceId: instance), now: now).errorCode)
    }

    mutating func advance(_ ms: Int64) {
        now += ms
        run(coordinator.tick(now: now))
    }

    mutating func commit(_ memberId: String = "", generation: Int32 = -1, offsets: [(String, Int32, Int64)], metadata: String = "m",
                         group: String = "g") -> OffsetCommitResponse {
        let t = token()
        var request = OffsetCommitRequest(groupId: group, generationIdOrMemberEpoch: generation, memberId: memberId)
        request.topics = Dictionary(grouping: offsets, by: \.0).map { topic, ps in
            .init(name: topic, partitions: ps.map { .init(partitionIndex: $0.1, committedOffset: $0.2, committedLeaderEpoch: 3, committedMetadata: metadata) })
        }
        run(coordinator.commit(t, request, version: 8, now: now, topicExists: { Self.existingTopics.contains($0) }))
        guard case let .commit(r)? = replies[t] else {
            Issue.record("OffsetCommit was not answered")
            return OffsetCommitResponse()
        }
        return r
    }

    func committed(_ group: String = "g") -> [TopicPartition: Int64] {
        var out: [TopicPartition: Int64] = [:]
        for (topic, ps) in coordinator.fetchOffsets(groupId: group, topics: nil) {
            for (p, o) in ps { out[TopicPartition(topic, p)] = o?.offset }
        }
        return out
    }

    /// Two members "a" and "b" in a stable group at generation 1, a leading.
    mutating func stableGroupOfTwo() -> (a: String, b: String) {
        let (ta, a) = joinNew(client: "a")
        let (tb, b) = joinNew(client: "b")
        for _ in 0..<10 where joinReply(ta) == nil { advance(1000) }  // the initial rebalance delay
        #expect(joinReply(ta) != nil && joinReply(tb) != nil)
        let leader = joinReply(ta)!.leader
        let s1 = sync(a, generation: 1, assignments: leader == a ? [a: "A", b: "B"] : [:])
        let s2 = sync(b, generation: 1, assignments: leader == b ? [a: "A", b: "B"] : [:])
        #expect(syncReply(s1)?.errorCode == 0 && syncReply(s2)?.errorCode == 0)
        #expect(coordinator.state(of: "g") == .stable)
        return (a, b)
    }
}

@Suite struct GroupCoordinatorTests {
    @Test func memberIdRequiredThenJoinAfterTheInitialDelay() {
        var h = Harness(initialDelayMs: 3000)
        let (t1, m1) = h.joinNew(client: "one")
        #expect(h.joinReply(t1) == nil)  // waiting for the initial rebalance delay
        let (t2, m2) = h.joinNew(client: "two")
        h.advance(2999)
        #expect(h.joinReply(t1) == nil)
        h.advance(1)
        // A member arrived during the delay: Kafka waits one more delay for others.
        #expect(h.joinReply(t1) == nil)
        h.advance(3000)
        let r1 = try! #require(h.joinReply(t1)), r2 = try! #require(h.joinReply(t2))
        #expect(r1.errorCode == 0 && r2.errorCode == 0 && r1.generationId == 1 && r2.generationId == 1)
        #expect(r1.leader == m1 && r2.leader == m1 && r1.protocolName == "range")
        #expect(r1.members.map(\.memberId) == [m1, m2] && r2.members.isEmpty)
        #expect(h.coordinator.state(of: "g") == .completingRebalance)
    }

    @Test func syncGivesEachMemberItsAssignmentAfterTheRecordIsWritten() {
        var h = Harness()
        let (a, b) = h.stableGroupOfTwo()
        let follower = h.sync(b, generation: 1)
        #expect(h.syncReply(follower).map { String(buffer: $0.assignment) } == "B")
        #expect(h.records.count == 1)  // the group metadata record with the assignment
        _ = a
    }

    @Test func followerSyncWaitsForTheLeader() {
        var h = Harness()
        let (ta, a) = h.joinNew(client: "a")
        let (tb, b) = h.joinNew(client: "b")
        for _ in 0..<10 where h.joinReply(ta) == nil { h.advance(1000) }
        let leader = h.joinReply(ta)!.leader
        let (l, f) = leader == a ? (a, b) : (b, a)
        _ = tb
        let fs = h.sync(f, generation: 1)
        #expect(h.syncReply(fs) == nil)
        _ = h.sync(l, generation: 1, assignments: [l: "L", f: "F"])
        #expect(h.syncReply(fs).map { String(buffer: $0.assignment) } == "F")
    }

    @Test func heartbeatErrors() {
        var h = Harness()
        let (a, _) = h.stableGroupOfTwo()
        #expect(h.heartbeat(a, generation: 1) == .none)
        #expect(h.heartbeat(a, generation: 0) == .illegalGeneration)
        #expect(h.heartbeat("nobody", generation: 1) == .unknownMemberId)
        _ = h.join(client: "c")  // a new member (MEMBER_ID_REQUIRED step only)
        let (_, _) = h.joinNew(client: "c")
        #expect(h.heartbeat(a, generation: 1) == .rebalanceInProgress)
    }

    @Test func aSilentMemberIsRemovedAfterItsSessionTimeout() {
        var h = Harness()
        let (a, b) = h.stableGroupOfTwo()
        for _ in 0..<5 {
            h.advance(3000)
            #expect(h.heartbeat(a, generation: 1) == .none || h.heartbeat(a, generation: 1) == .rebalanceInProgress)
        }
        // b never heartbeat: after 10 s it is gone and a must rejoin.
        #expect(h.heartbeat(a, generation: 1) == .rebalanceInProgress)
        let rejoin = h.join(a)
        let r = try! #require(h.joinReply(rejoin))
        #expect(r.generationId == 2 && r.members.map(\.memberId) == [a] && r.leader == a)
        #expect(h.heartbeat(b, generation: 1) == .unknownMemberId)
    }

    @Test func membersThatDoNotRejoinWithinTheRebalanceTimeoutAreDropped() {
        var h = Harness()
        let (a, b) = h.stableGroupOfTwo()
        _ = h.join(a)  // a rejoins (as leader): rebalance; b keeps heartbeating but never rejoins
        for _ in 0..<9 {
            h.advance(3000)
            #expect(h.heartbeat(b, generation: 1) == .rebalanceInProgress)
        }
        h.advance(3001)
        #expect(h.coordinator.state(of: "g") == .completingRebalance)
        #expect(h.heartbeat(b, generation: 2) == .unknownMemberId)
    }

    @Test func batchLeave() {
        var h = Harness()
        let (a, b) = h.stableGroupOfTwo()
        let request = LeaveGroupRequest(groupId: "g", members: [.init(memberId: a), .init(memberId: "ghost")])
        let (response, actions) = h.coordinator.leave(request, version: 3, now: h.now)
        h.run(actions)
        #expect(response.errorCode == 0)
        #expect(response.members.map(\.errorCode) == [0, KafkaErrorCode.unknownMemberId.rawValue])
        #expect(h.coordinator.state(of: "g") == .preparingRebalance)
        #expect(h.heartbeat(b, generation: 1) == .rebalanceInProgress)
        let r = h.join(b)
        #expect(h.joinReply(r)?.generationId == 2 && h.joinReply(r)?.leader == b)
        // Old single-member LeaveGroup (v0-2) reports the error at the top.
        let (old, _) = h.coordinator.leave(LeaveGroupRequest(groupId: "g", memberId: "ghost"), version: 1, now: h.now)
        #expect(old.errorCode == KafkaErrorCode.unknownMemberId.rawValue)
    }

    @Test func staticMemberComesBackWithoutARebalance() {
        var h = Harness(initialDelayMs: 0)
        let t1 = h.join(instance: "i-1", client: "s")
        let early = try! #require(h.joinReply(t1))  // no initial delay: generation 1 with one member
        #expect(early.generationId == 1)
        let t2 = h.join(instance: "i-2", client: "s")
        let r1b = h.join(early.memberId, instance: "i-1", client: "s")  // rejoin for generation 2
        #expect(h.joinReply(r1b)?.generationId == 2 && h.joinReply(t2)?.generationId == 2)
        let t1x = r1b
        let r1 = try! #require(h.joinReply(t1x)), r2 = try! #require(h.joinReply(t2))
        #expect(r1.errorCode == 0 && r2.errorCode == 0)  // static members skip MEMBER_ID_REQUIRED
        _ = h.sync(r1.memberId, generation: 2, assignments: [r1.memberId: "A", r2.memberId: "B"])
        _ = h.sync(r2.memberId, generation: 2)
        #expect(h.coordinator.state(of: "g") == .stable)
        // Instance i-2 restarts: joins with an empty member id.
        let back = h.join(instance: "i-2", client: "s")
        let rb = try! #require(h.joinReply(back))
        #expect(rb.errorCode == 0 && rb.generationId == 2 && rb.memberId != r2.memberId)
        #expect(h.coordinator.state(of: "g") == .stable)
        let s = h.sync(rb.memberId, generation: 2)
        #expect(h.syncReply(s).map { String(buffer: $0.assignment) } == "B")
        #expect(h.heartbeat(r1.memberId, generation: 2) == .none)  // the other member saw no rebalance
        #expect(h.heartbeat(r2.memberId, generation: 2, instance: "i-2") == .fencedInstanceId)
    }

    @Test func joinValidation() {
        var h = Harness()
        let noGroup = h.join(group: ""), badSession = h.join(session: 10), unknown = h.join("unknown")
        #expect(h.joinReply(noGroup)?.errorCode == KafkaErrorCode.invalidGroupId.rawValue)
        #expect(h.joinReply(badSession)?.errorCode == KafkaErrorCode.invalidSessionTimeout.rawValue)
        #expect(h.joinReply(unknown)?.errorCode == KafkaErrorCode.unknownMemberId.rawValue)
        _ = h.stableGroupOfTwo()
        let other = h.join(protocols: Harness.protocols(["roundrobin"]))
        #expect(h.joinReply(other)?.errorCode == KafkaErrorCode.inconsistentGroupProtocol.rawValue)
    }

    @Test func commitsAreWrittenThenVisible() throws {
        var h = Harness()
        let r = h.commit(offsets: [("t", 0, 42), ("t", 1, 7), ("nope", 0, 1)])
        let codes = Dictionary(uniqueKeysWithValues: r.topics.map { ($0.name, $0.partitions.map(\.errorCode)) })
        #expect(codes["t"] == [0, 0] && codes["nope"] == [KafkaErrorCode.unknownTopicOrPartition.rawValue])
        #expect(h.committed() == [TopicPartition("t", 0): 42, TopicPartition("t", 1): 7])
        let big = h.commit(offsets: [("t", 0, 1)], metadata: String(repeating: "x", count: 5000))
        #expect(big.topics[0].partitions[0].errorCode == KafkaErrorCode.offsetMetadataTooLarge.rawValue)
        // A failed append commits nothing and says which coordinator error to retry on.
        h.failAppends = .notLeaderOrFollower
        let failed = h.commit(offsets: [("t", 0, 99)])
        #expect(failed.topics[0].partitions[0].errorCode == KafkaErrorCode.notCoordinator.rawValue)
        #expect(h.committed()[TopicPartition("t", 0)] == 42)
    }

    @Test func commitsFromMembersAreChecked() throws {
        var h = Harness()
        let (a, _) = h.stableGroupOfTwo()
        #expect(h.commit(a, generation: 1, offsets: [("t", 0, 5)]).topics[0].partitions[0].errorCode == 0)
        #expect(h.commit(a, generation: 0, offsets: [("t", 0, 5)]).topics[0].partitions[0].errorCode == KafkaErrorCode.illegalGeneration.rawValue)
        #expect(h.commit("x", generation: 1, offsets: [("t", 0, 5)]).topics[0].partitions[0].errorCode == KafkaErrorCode.unknownMemberId.rawValue)
        #expect(h.commit(offsets: [("t", 0, 5)]).topics[0].partitions[0].errorCode == KafkaErrorCode.unknownMemberId.rawValue)
    }

    @Test func stateIsRebuiltByReplayingTheRecords() throws {
        var h = Harness()
        let (a, b) = h.stableGroupOfTwo()
        _ = h.commit(a, generation: 1, offsets: [("t", 0, 10), ("u", 2, 20)])
        _ = h.commit(offsets: [("t", 0, 3)], group: "simple")
        var fresh = Harness()
        for r in h.records { try fresh.coordinator.replay(key: r.key, value: r.value, now: h.now) }
        #expect(fresh.committed() == h.committed())
        #expect(fresh.committed("simple") == [TopicPartition("t", 0): 3])
        #expect(fresh.coordinator.state(of: "g") == .stable)
        #expect(fresh.heartbeat(a, generation: 1) == .none && fresh.heartbeat(b, generation: 1) == .none)
        let s = fresh.sync(b, generation: 1)
        #expect(fresh.syncReply(s).map { String(buffer: $0.assignment) } == "B")
        // Keys and values use Kafka's formats: OffsetCommitKey v1, GroupMetadataKey v2.
        #expect(h.records.contains { $0.key.getInteger(at: 0, as: Int16.self) == 2 })
        #expect(h.records.contains { $0.key.getInteger(at: 0, as: Int16.self) == 1 })
    }

    @Test func deleteGroupsAndOffsets() throws {
        var h = Harness()
        _ = h.stableGroupOfTwo()
        _ = h.commit(offsets: [("t", 0, 1)], group: "simple")
        let t = h.token()
        h.run(h.coordinator.deleteGroups(t, ["g", "simple", "missing"]))
        guard case let .deleteGroups(r)? = h.replies[t] else { Issue.record("no reply"); return }
        #expect(r.results.map(\.errorCode) == [KafkaErrorCode.nonEmptyGroup.rawValue, 0, KafkaErrorCode.groupIdNotFound.rawValue])
        #expect(h.coordinator.state(of: "simple") == nil && h.records.last?.value == nil)
        // OffsetDelete refuses topics the group's members subscribe to.
        let d = h.token()
        h.run(h.coordinator.deleteOffsets(d, OffsetDeleteRequest(groupId: "g", topics: [.init(name: "t", partitions: [.init(partitionIndex: 0)])])))
        guard case let .offsetDelete(od)? = h.replies[d] else { Issue.record("no reply"); return }
        #expect(od.topics[0].partitions[0].errorCode == KafkaErrorCode.groupSubscribedToTopic.rawValue)
    }

    @Test func offsetsOfEmptyGroupsExpire() {
        var h = Harness()
        _ = h.commit(offsets: [("t", 0, 1)])
        h.now += h.coordinator.config.offsetsRetentionMs + 1
        h.run(h.coordinator.expireOffsets(now: h.now))
        #expect(h.committed().isEmpty && h.coordinator.state(of: "g") == nil)
    }

    @Test func groupPartitionFollowsJavaStringHashCode() {
        // Java: "my-group".hashCode() == -1906497762, Utils.abs → 1906497762, % 50 == 12; "".hashCode() == 0.
        #expect(GroupRecords.partition(for: "my-group", partitions: 50) == 12)
        #expect(GroupRecords.partition(for: "", partitions: 50) == 0)
    }

    @Test func groupsOfAPartitionBeingLoadedAnswerLoadInProgress() {
        var h = Harness()
        let p = h.coordinator.partition(for: "g")
        h.coordinator.beginLoading([p])
        let t = h.join()
        #expect(h.joinReply(t)?.errorCode == KafkaErrorCode.coordinatorLoadInProgress.rawValue)
        #expect(h.heartbeat("m", generation: 1) == .coordinatorLoadInProgress)
        #expect(h.commit(offsets: [("t", 0, 1)]).topics[0].partitions[0].errorCode == KafkaErrorCode.coordinatorLoadInProgress.rawValue)
        h.coordinator.finishLoading(p)
        let again = h.join()
        #expect(h.joinReply(again)?.errorCode == KafkaErrorCode.memberIdRequired.rawValue)
    }

    @Test(arguments: [Int16(5), 9])
    func aReturningStaticLeaderIsAnsweredAsKafkaDoes(version: Int16) {
        var h = Harness(initialDelayMs: 0)
        let t1 = h.join(instance: "lead", client: "s", version: version)
        let leader = try! #require(h.joinReply(t1))
        _ = h.sync(leader.memberId, generation: 1, assignments: [leader.memberId: "L"])
        #expect(h.coordinator.state(of: "g") == .stable)
        let back = h.join(instance: "lead", client: "s", version: version)
        let r = try! #require(h.joinReply(back))
        #expect(r.errorCode == 0 && r.generationId == 1 && r.memberId != leader.memberId)
        if version >= 9 {
            #expect(r.leader == r.memberId && r.skipAssignment && r.members.map(\.memberId) == [r.memberId])
        } else {
            #expect(r.leader == leader.memberId && r.members.isEmpty)  // acts as a follower
        }
        let s = h.sync(r.memberId, generation: 1)
        #expect(h.syncReply(s).map { String(buffer: $0.assignment) } == "L")
        #expect(h.coordinator.state(of: "g") == .stable)
    }
}
