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
