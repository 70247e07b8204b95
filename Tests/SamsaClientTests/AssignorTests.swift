import NIOCore
import KafkaProtocol
import SamsaClient
import Testing

@Suite struct AssignorTests {
    func members(_ ids: [String], topics: [String] = ["t"]) -> [GroupSubscription] {
        ids.map { GroupSubscription(memberId: $0, topics: topics) }
    }

    @Test func rangeGivesConsecutiveRangesPerTopic() {
        let plan = RangeAssignor().assign(members: members(["a", "b", "c"], topics: ["t", "u"]), partitionCounts: ["t": 7, "u": 2])
        #expect(plan["a"] == [TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("t", 2), TopicPartition("u", 0)])
        #expect(plan["b"] == [TopicPartition("t", 3), TopicPartition("t", 4), TopicPartition("u", 1)])
        #expect(plan["c"] == [TopicPartition("t", 5), TopicPartition("t", 6)])
    }

    @Test func roundRobinDealsPartitionsInTurn() {
        let plan = RoundRobinAssignor().assign(members: members(["a", "b"]), partitionCounts: ["t": 5])
        #expect(plan["a"]!.map(\.partition) == [0, 2, 4] && plan["b"]!.map(\.partition) == [1, 3])
    }

    @Test func cooperativeStickyKeepsOwnersAndMovesInTwoSteps() {
        let assignor = CooperativeStickyAssignor()
        // Generation 1: a alone owns all 6.
        let first = assignor.assign(members: members(["a"]), partitionCounts: ["t": 6])
        #expect(first["a"]!.count == 6)
        // b joins: a keeps 3 of its own; the other 3 are only revoked this time (not yet given to b).
        let joined = [GroupSubscription(memberId: "a", topics: ["t"], ownedPartitions: first["a"]!, generationId: 1),
                      GroupSubscription(memberId: "b", topics: ["t"], ownedPartitions: [], generationId: 1)]
        let second = assignor.assign(members: joined, partitionCounts: ["t": 6])
        #expect(second["a"]!.count == 3 && second["b"]!.isEmpty)
        #expect(Set(second["a"]!).isSubset(of: Set(first["a"]!)))
        // Next rebalance (a rejoined after giving them up): b gets the 3 free partitions; a keeps its 3.
        let settled = [GroupSubscription(memberId: "a", topics: ["t"], ownedPartitions: second["a"]!, generationId: 2),
                       GroupSubscription(memberId: "b", topics: ["t"], ownedPartitions: [], generationId: 2)]
        let third = assignor.assign(members: settled, partitionCounts: ["t": 6])
        #expect(third["a"] == second["a"] && third["b"]!.count == 3)
        #expect(Set(third["a"]!).isDisjoint(with: Set(third["b"]!)))
    }

    @Test func cooperativeStickyIgnoresStaleOwnershipClaims() {
        // Both claim partition 0; the claim from the newer generation wins.
        let members = [GroupSubscription(memberId: "a", topics: ["t"], ownedPartitions: [TopicPartition("t", 0)], generationId: 3),
                       GroupSubscription(memberId: "b", topics: ["t"], ownedPartitions: [TopicPartition("t", 0)], generationId: 2)]
        let plan = CooperativeStickyAssignor().assign(members: members, partitionCounts: ["t": 2])
        #expect(plan["a"]!.contains(TopicPartition("t", 0)) && !plan["b"]!.contains(TopicPartition("t", 0)))
    }
}

/// The consumer protocol's embedded subscription and assignment (KafkaProtocol's `ConsumerProtocol`, shared by
/// the client's assignors and the group coordinator).
@Suite struct ConsumerProtocolTests {
    @Test func subscriptionAndAssignmentRoundTrip() throws {
        let owned = [TopicPartition("b", 1), TopicPartition("a", 0), TopicPartition("a", 2)]
        let bytes = ConsumerProtocol.encodeSubscription(topics: ["b", "a"], owned: owned, generation: 7, version: 2)
        let s = try ConsumerProtocol.decodeSubscription(bytes)
        #expect(s.topics == ["a", "b"])
        #expect(s.ownedPartitions == [TopicPartition("a", 0), TopicPartition("a", 2), TopicPartition("b", 1)])
        #expect(s.generationId == 7)
        // Version 1 carries owned partitions but no generation.
        let v1 = try ConsumerProtocol.decodeSubscription(ConsumerProtocol.encodeSubscription(topics: ["a"], owned: owned, generation: 7))
        #expect(v1.ownedPartitions.count == 3 && v1.generationId == -1)
        let assignment = [TopicPartition("t", 3), TopicPartition("t", 1), TopicPartition("u", 0)]
        #expect(try ConsumerProtocol.decodeAssignment(ConsumerProtocol.encodeAssignment(assignment)).sorted() == assignment.sorted())
        #expect(try ConsumerProtocol.decodeAssignment(ByteBuffer()) == [])
    }

    @Test func newerVersionsAreReadAsTheNewestKnownAndNegativeOnesRefused() throws {
        // A version-3 body labelled version 9 (a future client): read as version 3, trailing fields ignored.
        var future = ConsumerProtocol.encodeSubscription(topics: ["x"], owned: [TopicPartition("x", 4)], generation: 2, version: 3)
        future.setInteger(Int16(9), at: future.readerIndex)
        future.writeString("future field")
        let s = try ConsumerProtocol.decodeSubscription(future)
        #expect(s.topics == ["x"] && s.ownedPartitions == [TopicPartition("x", 4)] && s.generationId == 2)
        var negative = ConsumerProtocol.encodeAssignment([TopicPartition("x", 0)])
        negative.setInteger(Int16(-1), at: negative.readerIndex)
        #expect(throws: ConsumerProtocol.DecodingError.unsupportedVersion(-1)) { try ConsumerProtocol.decodeAssignment(negative) }
        // The client's view of a member: nil for metadata that is not a subscription.
        #expect(GroupSubscription(memberId: "m", groupInstanceId: nil, metadata: ByteBuffer(bytes: [0x00])) == nil)
        #expect(GroupSubscription(memberId: "m", groupInstanceId: "i", metadata: future)?.topics == ["x"])
    }
}
