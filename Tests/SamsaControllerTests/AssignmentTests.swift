import KafkaProtocol
import Testing
@testable import SamsaController

@Suite struct ReplicaAssignmentTests {
    // Kafka's AdminUtilsTest.testReplicaAssignment (brokers 0-4, 10 partitions, 3 replicas, fixed start 0).
    @Test func rackUnawareMatchesKafka() throws {
        let brokers = (0..<5).map { BrokerPlacement(id: Int32($0)) }
        let got = try ReplicaAssignment.assign(partitions: 10, replicationFactor: 3, brokers: brokers, startIndex: 0, replicaShift: 0)
        #expect(got == [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 0], [4, 0, 1],
                        [0, 2, 3], [1, 3, 4], [2, 4, 0], [3, 0, 1], [4, 1, 2]])
    }

    @Test func rackUnawareSortsBrokersAndSpreadsLeaders() throws {
        let brokers = [BrokerPlacement(id: 7), BrokerPlacement(id: 3), BrokerPlacement(id: 5)]
        for _ in 0..<20 {
            let got = try ReplicaAssignment.assign(partitions: 6, replicationFactor: 2, brokers: brokers)
            #expect(got.count == 6)
            for replicas in got { #expect(Set(replicas).count == 2) }
            var leaders: [Int32: Int] = [:]
            for r in got { leaders[r[0], default: 0] += 1 }
            #expect(leaders == [3: 2, 5: 2, 7: 2])
        }
        let fixed = try ReplicaAssignment.assign(partitions: 3, replicationFactor: 1, brokers: brokers, startIndex: 0, replicaShift: 0)
        #expect(fixed == [[3], [5], [7]])
    }

    @Test func tooFewBrokersIsInvalidReplicationFactor() {
        let brokers = [BrokerPlacement(id: 1), BrokerPlacement(id: 2)]
        #expect(throws: AssignmentError.self) { try ReplicaAssignment.assign(partitions: 1, replicationFactor: 3, brokers: brokers) }
        do {
            _ = try ReplicaAssignment.assign(partitions: 1, replicationFactor: 3, brokers: brokers)
        } catch { #expect(error.code == .invalidReplicationFactor) }
        do {
            _ = try ReplicaAssignment.assign(partitions: 1, replicationFactor: 0, brokers: brokers)
            Issue.record("replication factor 0 accepted")
        } catch { #expect(error.code == .invalidReplicationFactor) }
        do {
            _ = try ReplicaAssignment.assign(partitions: 0, replicationFactor: 1, brokers: brokers)
            Issue.record("0 partitions accepted")
        } catch { #expect(error.code == .invalidPartitions) }
        do {
            _ = try ReplicaAssignment.assign(partitions: 1, replicationFactor: 1, brokers: [])
            Issue.record("no brokers accepted")
        } catch { #expect(error.code == .invalidReplicationFactor) }
    }

    // Kafka's AdminRackAwareTest.testGetRackAlternatedBrokerListAndAssignReplicasToBrokers.
    @Test func rackAwareMatchesKafka() throws {
        let racks: [Int32: String] = [0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: "rack2", 5: "rack1"]
        let brokers = racks.keys.sorted().map { BrokerPlacement(id: $0, rack: racks[$0]) }
        #expect(ReplicaAssignment.rackAlternatedBrokerList(brokers) == [0, 3, 1, 5, 4, 2])
        let got = try ReplicaAssignment.assign(partitions: 7, replicationFactor: 3, brokers: brokers, startIndex: 0, replicaShift: 0)
        #expect(got == [[0, 3, 1], [3, 1, 5], [1, 5, 4], [5, 4, 2], [4, 2, 0], [2, 0, 3], [0, 4, 2]])
    }

    @Test func rackAwareSpreadsEveryPartitionOverRacks() throws {
        let brokers = (0..<6).map { BrokerPlacement(id: Int32($0), rack: ["a", "b", "c"][$0 % 3]) }
        for _ in 0..<20 {
            let got = try ReplicaAssignment.assign(partitions: 12, replicationFactor: 3, brokers: brokers)
            for replicas in got {
                #expect(Set(replicas).count == 3)
                #expect(Set(replicas.map { brokers[Int($0)].rack! }).count == 3)
            }
            // With 2 racks' worth of replicas (rf 2 over 3 racks) still no rack twice.
            let two = try ReplicaAssignment.assign(partitions: 12, replicationFactor: 2, brokers: brokers)
            for replicas in two { #expect(Set(replicas.map { brokers[Int($0)].rack! }).count == 2) }
        }
        // More replicas than racks: every rack used, then brokers without replicas.
        let two = [BrokerPlacement(id: 1, rack: "a"), BrokerPlacement(id: 2, rack: "a"), BrokerPlacement(id: 3, rack: "b")]
        let got = try ReplicaAssignment.assign(partitions: 4, replicationFactor: 3, brokers: two)
        for replicas in got { #expect(Set(replicas) == [1, 2, 3]) }
    }

    @Test func mixedRackInformationIsRefused() {
        let brokers = [BrokerPlacement(id: 1, rack: "a"), BrokerPlacement(id: 2)]
        do {
            _ = try ReplicaAssignment.assign(partitions: 1, replicationFactor: 1, brokers: brokers)
            Issue.record("mixed racks accepted")
        } catch { #expect(error.code == .invalidReplicaAssignment) }
    }

    @Test func additionalPartitionsContinueThePattern() throws {
        let brokers = (0..<5).map { BrokerPlacement(id: Int32($0)) }
        let all = try ReplicaAssignment.assign(partitions: 10, replicationFactor: 3, brokers: brokers, startIndex: 0, replicaShift: 0)
        let first = Array(all.prefix(5))
        let more = try ReplicaAssignment.assignAdditional(existing: first, newTotal: 10, brokers: brokers)
        #expect(first + more == all)
        do {
            _ = try ReplicaAssignment.assignAdditional(existing: first, newTotal: 5, brokers: brokers)
            Issue.record("no increase accepted")
        } catch { #expect(error.code == .invalidPartitions) }
        do {
            _ = try ReplicaAssignment.assignAdditional(existing: first, newTotal: 6, brokers: Array(brokers.prefix(2)))
            Issue.record("replication factor 3 on 2 brokers accepted")
        } catch { #expect(error.code == .invalidReplicationFactor) }
    }
}

@Suite struct LeaderElectionTests {
    @Test func offlineElectionTakesFirstLiveInSyncReplicaInAssignmentOrder() {
        #expect(LeaderElection.offlinePartition(assignment: [1, 2, 3], isr: [3, 2], live: [2, 3], uncleanAllowed: false) == 2)
        #expect(LeaderElection.offlinePartition(assignment: [1, 2, 3], isr: [1, 3], live: [2, 3], uncleanAllowed: false) == 3)
        // Out-of-sync live replica only: offline unless unclean election is allowed.
        #expect(LeaderElection.offlinePartition(assignment: [1, 2, 3], isr: [1], live: [2, 3], uncleanAllowed: false) == nil)
        #expect(LeaderElection.offlinePartition(assignment: [1, 2, 3], isr: [1], live: [3, 2], uncleanAllowed: true) == 2)
        #expect(LeaderElection.offlinePartition(assignment: [1, 2], isr: [1], live: [], uncleanAllowed: true) == nil)
    }

    @Test func reassignmentElectionUsesTheTargetReplicas() {
        #expect(LeaderElection.reassignment(target: [4, 5, 1], isr: [1, 4, 5], live: [1, 4, 5]) == 4)
        #expect(LeaderElection.reassignment(target: [4, 5, 1], isr: [1, 5], live: [1, 4, 5]) == 5)
        #expect(LeaderElection.reassignment(target: [4, 5], isr: [1], live: [1, 4, 5]) == nil)
    }

    @Test func preferredElectionOnlyThePreferredReplica() {
        #expect(LeaderElection.preferredReplica(assignment: [1, 2], isr: [2, 1], live: [1, 2]) == 1)
        #expect(LeaderElection.preferredReplica(assignment: [1, 2], isr: [2], live: [1, 2]) == nil)
        #expect(LeaderElection.preferredReplica(assignment: [1, 2], isr: [1, 2], live: [2]) == nil)
    }

    @Test func controlledShutdownElectionSkipsShuttingDownBrokers() {
        #expect(LeaderElection.controlledShutdown(assignment: [1, 2, 3], isr: [1, 2, 3], live: [1, 2, 3], shuttingDown: [1]) == 2)
        #expect(LeaderElection.controlledShutdown(assignment: [1, 2, 3], isr: [1, 3], live: [1, 2, 3], shuttingDown: [1]) == 3)
        #expect(LeaderElection.controlledShutdown(assignment: [1, 2], isr: [1], live: [1, 2], shuttingDown: [1]) == nil)
    }

    @Test func stateMachineTransitionsAreKafkas() {
        #expect(PartitionState.nonExistentPartition.canTransition(to: .newPartition))
        #expect(!PartitionState.nonExistentPartition.canTransition(to: .onlinePartition))
        #expect(PartitionState.offlinePartition.canTransition(to: .onlinePartition))
        #expect(!PartitionState.onlinePartition.canTransition(to: .nonExistentPartition))
        #expect(PartitionState.offlinePartition.canTransition(to: .nonExistentPartition))
        #expect(ReplicaState.nonExistentReplica.canTransition(to: .newReplica))
        #expect(ReplicaState.offlineReplica.canTransition(to: .replicaDeletionStarted))
        #expect(!ReplicaState.onlineReplica.canTransition(to: .replicaDeletionStarted))
        #expect(ReplicaState.replicaDeletionStarted.canTransition(to: .replicaDeletionIneligible))
        #expect(!ReplicaState.replicaDeletionSuccessful.canTransition(to: .onlineReplica))
        #expect(ReplicaState.replicaDeletionSuccessful.canTransition(to: .nonExistentReplica))
    }

    @Test func brokersRefuseAStaleControllerEpoch() {
        var fence = ControllerEpochFence()
        #expect(fence.admit(5) == .none)
        #expect(fence.admit(5) == .none)
        #expect(fence.admit(4) == .staleControllerEpoch)
        #expect(fence.admit(6) == .none)
        #expect(fence.latestEpoch == 6)
        #expect(fence.admit(5) == .staleControllerEpoch)
    }
}
