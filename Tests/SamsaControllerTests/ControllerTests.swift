import KafkaProtocol
import SamsaMetadata
import Testing
@testable import SamsaController

func sends(_ actions: [ControllerAction]) -> [(broker: Int32, request: BrokerRequest)] {
    actions.compactMap { if case .send(let b, let r) = $0 { (b, r) } else { nil } }
}

func writes(_ actions: [ControllerAction]) -> [(topic: String, leadership: PartitionLeadership, expected: Int32)] {
    actions.compactMap { if case .writePartitionState(let t, let l, let v) = $0 { (t, l, v) } else { nil } }
}

func leaderAndIsr(_ actions: [ControllerAction], to broker: Int32) -> [PartitionStateInfo] {
    sends(actions).filter { $0.broker == broker }.flatMap { (s) -> [PartitionStateInfo] in
        if case .leaderAndIsr(let r) = s.request { return r.partitions }
        return []
    }
}

func stopReplicas(_ actions: [ControllerAction], to broker: Int32) -> [StopReplicaCommand.Partition] {
    sends(actions).filter { $0.broker == broker }.flatMap { (s) -> [StopReplicaCommand.Partition] in
        if case .stopReplica(let r) = s.request { return r.partitions }
        return []
    }
}

func updateMetadata(_ actions: [ControllerAction], to broker: Int32) -> UpdateMetadataCommand? {
    for s in sends(actions) where s.broker == broker { if case .updateMetadata(let r) = s.request { return r } }
    return nil
}

let brokerEpochs: [Int32: Int64] = [1: 10, 2: 20, 3: 30]

/// Controller 1 at epoch 5 over brokers 1, 2, 3 with topic t: partition p's preferred leader is broker p + 1.
func makeController(config: ControllerConfig = ControllerConfig()) throws -> Controller {
    var c = Controller(controllerId: 1, epoch: 5, config: config,
                       brokers: [1, 2, 3].map { LiveBroker(id: $0, epoch: brokerEpochs[$0]!) }, topics: [])
    #expect(c.start().allSatisfy { if case .send = $0 { true } else { false } })
    _ = try c.createTopic("t", partitions: 3, replicationFactor: 3, assignment: [[1, 2, 3], [2, 3, 1], [3, 1, 2]]).get()
    return c
}

/// Every request carries the controller's epoch and the target broker's epoch.
func expectFenced(_ actions: [ControllerAction], _ c: Controller) {
    for s in sends(actions) {
        #expect(s.request.controllerEpoch == c.epoch)
        switch s.request {
        case .leaderAndIsr(let r): #expect(r.brokerEpoch == c.brokers[s.broker]?.epoch && r.controllerId == c.controllerId)
        case .updateMetadata(let r): #expect(r.brokerEpoch == c.brokers[s.broker]?.epoch && r.controllerId == c.controllerId)
        case .stopReplica(let r): #expect(r.brokerEpoch == c.brokers[s.broker]?.epoch && r.controllerId == c.controllerId)
        }
    }
}

@Suite struct ControllerTopicTests {
    @Test func createTopicInitializesLeadersAndTellsTheReplicas() throws {
        var c = Controller(controllerId: 1, epoch: 5, brokers: [1, 2, 3].map { LiveBroker(id: $0, epoch: brokerEpochs[$0]!) }, topics: [])
        _ = c.start()
        let actions = try c.createTopic("t", partitions: 3, replicationFactor: 2, startIndex: 0, replicaShift: 0).get()
        guard case .writeAssignment(let topic, let replicas) = actions.first else { Issue.record("no assignment write first"); return }
        #expect(topic == "t")
        #expect(replicas == [[1, 2], [2, 3], [3, 1]])
        let w = writes(actions)
        #expect(w.count == 3)
        #expect(w.allSatisfy { $0.expected == -1 && $0.leadership.leaderEpoch == 0 && $0.leadership.controllerEpoch == 5 })
        #expect(c.leadership("t", 0) == PartitionLeadership(partition: 0, leader: 1, leaderEpoch: 0, replicas: [1, 2], isr: [1, 2], controllerEpoch: 5))
        #expect(c.partitionEpoch("t", 0) == 0)
        #expect(c.partitionState("t", 1) == .onlinePartition)
        #expect(c.replicaState("t", 1, 3) == .onlineReplica)
        let toOne = leaderAndIsr(actions, to: 1)
        #expect(toOne.map(\.partition) == [0, 2])
        #expect(toOne.allSatisfy { $0.isNew })
        #expect(updateMetadata(actions, to: 2)?.partitions.count == 3)
        // The write comes before any request.
        let firstSend = actions.firstIndex { if case .send = $0 { true } else { false } }!
        let lastWrite = actions.lastIndex { if case .writePartitionState = $0 { true } else { false } }!
        #expect(lastWrite < firstSend)
        expectFenced(actions, c)
    }

    @Test func createTopicErrors() throws {
        var c = try makeController()
        #expect(throws: AssignmentError(.topicAlreadyExists, "Topic 't' already exists.")) {
            try c.createTopic("t", partitions: 1, replicationFactor: 1).get()
        }
        #expect(throws: AssignmentError(.invalidReplicationFactor, "Replication factor: 4 larger than available brokers: 3.")) {
            try c.createTopic("u", partitions: 1, replicationFactor: 4).get()
        }
        #expect(c.leadership("u", 0) == nil)
        do {
            _ = try c.createTopic("u", partitions: 1, replicationFactor: 2, assignment: [[1, 9]]).get()
            Issue.record("unknown broker accepted")
        } catch { #expect(error.code == .invalidReplicaAssignment) }
        do {
            _ = try c.createTopic("u", partitions: 2, replicationFactor: 2, assignment: [[1, 2], [1]]).get()
            Issue.record("uneven assignment accepted")
        } catch { #expect(error.code == .invalidReplicaAssignment) }
        do {
            _ = try c.createTopic("u", partitions: 1, replicationFactor: 2, assignment: [[1, 1]]).get()
            Issue.record("duplicate replica accepted")
        } catch { #expect(error.code == .invalidReplicaAssignment) }
    }

    @Test func createPartitionsAddsOnlinePartitions() throws {
        var c = try makeController()
        let actions = try c.createPartitions("t", newTotal: 5).get()
        guard case .writeAssignment(_, let replicas) = actions.first else { Issue.record("no assignment write"); return }
        #expect(replicas.count == 5)
        #expect(Array(replicas.prefix(3)) == [[1, 2, 3], [2, 3, 1], [3, 1, 2]])
        #expect(c.leadership("t", 4)?.leaderEpoch == 0)
        #expect(c.leadership("t", 4)?.isr.count == 3)
        #expect(c.partitionState("t", 3) == .onlinePartition)
        do {
            _ = try c.createPartitions("t", newTotal: 4).get()
            Issue.record("decrease accepted")
        } catch { #expect(error.code == .invalidPartitions) }
        do {
            _ = try c.createPartitions("nope", newTotal: 4).get()
            Issue.record("unknown topic accepted")
        } catch { #expect(error.code == .unknownTopicOrPartition) }
    }

    @Test func deleteTopicStopsReplicasAndWaitsForDeadBrokers() throws {
        var c = try makeController()
        _ = c.brokerGone(3)
        let (error, actions) = c.deleteTopic("t")
        #expect(error == KafkaErrorCode.none)
        #expect(stopReplicas(actions, to: 1).count == 3)
        #expect(stopReplicas(actions, to: 1).allSatisfy { $0.deletePartition })
        #expect(updateMetadata(actions, to: 2)?.partitions.allSatisfy { $0.leader == leaderDuringDelete } == true)
        #expect(c.replicaState("t", 0, 3) == .replicaDeletionIneligible)
        #expect(c.partitionState("t", 0) == .nonExistentPartition)
        for b: Int32 in [1, 2] {
            for p: Int32 in 0..<3 { #expect(c.replicaDeletionCompleted(broker: b, topic: "t", partition: p).isEmpty) }
        }
        #expect(c.topicNames == ["t"])
        // Broker 3 comes back: its deletion is retried.
        let back = c.brokerRegistered(LiveBroker(id: 3, epoch: 31))
        #expect(stopReplicas(back, to: 3).count == 3)
        #expect(leaderAndIsr(back, to: 3).isEmpty)
        var last: [ControllerAction] = []
        for p: Int32 in 0..<3 { last = c.replicaDeletionCompleted(broker: 3, topic: "t", partition: p) }
        #expect(last == [.deleteTopicNodes(topic: "t")])
        #expect(c.topicNames.isEmpty)
        #expect(c.replicaStates.isEmpty)
        #expect(c.deleteTopic("t").error == .unknownTopicOrPartition)
    }
}

@Suite struct ControllerFailoverTests {
    @Test func leaderKilledNewLeaderFromIsrWithEpochPlusOne() throws {
        var c = try makeController()
        let actions = c.brokerGone(1)
        #expect(c.leadership("t", 0) == PartitionLeadership(partition: 0, leader: 2, leaderEpoch: 1, replicas: [1, 2, 3], isr: [2, 3], controllerEpoch: 5))
        #expect(c.partitionEpoch("t", 0) == 1)
        #expect(c.partitionState("t", 0) == .onlinePartition)
        // Followers on broker 1 leave the ISR (ZooKeeper-mode: the controller's ISR change bumps the leader epoch).
        #expect(c.leadership("t", 1)?.isr == [2, 3])
        #expect(c.leadership("t", 1)?.leader == 2)
        #expect(c.leadership("t", 2)?.isr == [3, 2])
        #expect(c.replicaState("t", 0, 1) == .offlineReplica)
        let w = writes(actions)
        #expect(w.count == 3)
        #expect(w.first { $0.leadership.partition == 0 }?.expected == 0)
        #expect(leaderAndIsr(actions, to: 1).isEmpty)
        #expect(leaderAndIsr(actions, to: 2).first { $0.partition == 0 }?.leader == 2)
        #expect(leaderAndIsr(actions, to: 2).first { $0.partition == 0 }?.leaderEpoch == 1)
        let um = updateMetadata(actions, to: 3)
        #expect(um?.liveBrokers.map(\.id) == [2, 3])
        #expect(um?.partitions.first { $0.partition == 0 }?.offlineReplicas == [1])
        expectFenced(actions, c)
        // A second failure: broker 2 led partitions 0 and 1; broker 3 takes both.
        _ = c.brokerGone(2)
        #expect(c.leadership("t", 0)?.leader == 3)
        #expect(c.leadership("t", 0)?.leaderEpoch == 2)
        #expect(c.leadership("t", 1)?.leader == 3)
        #expect(c.leadership("t", 1)?.isr == [3])
        #expect(c.brokerGone(2).isEmpty)
    }

    /// Topic s: one partition on brokers 1 and 2 whose ISR has shrunk to [1].
    func shrunk(unclean: Bool) throws -> Controller {
        var c = try makeController()
        _ = try c.createTopic("s", partitions: 1, replicationFactor: 2,
                              configs: unclean ? ["unclean.leader.election.enable": "true"] : [:], assignment: [[1, 2]]).get()
        let r = c.alterPartition(brokerId: 1, brokerEpoch: 10, items: [AlterPartitionItem(topic: "s", partition: 0, leaderEpoch: 0, newIsr: [1], partitionEpoch: 0)])
        #expect(r.results.first?.error == KafkaErrorCode.none)
        return c
    }

    @Test func allIsrDeadPartitionGoesOfflineUnlessUncleanAllowed() throws {
        var c = try shrunk(unclean: false)
        _ = c.brokerGone(1)
        #expect(c.partitionState("s", 0) == .offlinePartition)
        // Kafka's ZooKeeper mode: no leader, the last ISR member kept, epoch bumped.
        #expect(c.leadership("s", 0)?.leader == noLeader)
        #expect(c.leadership("s", 0)?.isr == [1])
        #expect(c.leadership("s", 0)?.leaderEpoch == 1)
        // The imbalance check does not elect it either.
        _ = c.checkPreferredLeaderImbalance()
        #expect(c.leadership("s", 0)?.leader == noLeader)
        // The in-sync replica comes back: a clean election.
        let back = c.brokerRegistered(LiveBroker(id: 1, epoch: 11))
        #expect(c.leadership("s", 0)?.leader == 1)
        #expect(c.leadership("s", 0)?.isr == [1])
        #expect(c.leadership("s", 0)?.leaderEpoch == 2)
        #expect(c.partitionState("s", 0) == .onlinePartition)
        #expect(leaderAndIsr(back, to: 1).contains { $0.topic == "s" && $0.leader == 1 })
        #expect(updateMetadata(back, to: 1)?.partitions.count == 4)
        expectFenced(back, c)
    }

    @Test func uncleanElectionWhenTheTopicAllowsIt() throws {
        var c = try shrunk(unclean: true)
        _ = c.brokerGone(1)
        #expect(c.leadership("s", 0)?.leader == 2)
        #expect(c.leadership("s", 0)?.isr == [2])
        #expect(c.leadership("s", 0)?.leaderEpoch == 1)
        #expect(c.partitionState("s", 0) == .onlinePartition)
    }

    @Test func uncleanElectionWhenTheBrokerAllowsIt() throws {
        var config = ControllerConfig()
        config.uncleanLeaderElectionEnable = true
        var c = try makeController(config: config)
        _ = try c.createTopic("s", partitions: 1, replicationFactor: 2, assignment: [[1, 2]]).get()
        _ = c.alterPartition(brokerId: 1, brokerEpoch: 10, items: [AlterPartitionItem(topic: "s", partition: 0, leaderEpoch: 0, newIsr: [1], partitionEpoch: 0)])
        _ = c.brokerGone(1)
        #expect(c.leadership("s", 0)?.leader == 2)
    }

    @Test func electLeadersUncleanAndPreferred() throws {
        var c = try shrunk(unclean: false)
        _ = c.brokerGone(1)
        let s0 = TopicPartitionKey("s", 0)
        let t0 = TopicPartitionKey("t", 0)
        let r = c.electLeaders(.unclean, partitions: [s0, t0, TopicPartitionKey("x", 0)])
        #expect(r.results[s0] == KafkaErrorCode.none)
        #expect(r.results[t0] == .electionNotNeeded)
        #expect(r.results[TopicPartitionKey("x", 0)] == .unknownTopicOrPartition)
        #expect(c.leadership("s", 0)?.leader == 2)
        #expect(c.leadership("s", 0)?.isr == [2])
        let p = c.electLeaders(.preferred, partitions: [t0, TopicPartitionKey("t", 1)])
        #expect(p.results[t0] == .preferredLeaderNotAvailable)
        #expect(p.results[TopicPartitionKey("t", 1)] == .electionNotNeeded)
        #expect(p.actions.isEmpty)
    }

    @Test func recoveredBrokerRegainsPreferredLeadershipOnceBackInIsr() throws {
        var c = try makeController()
        _ = c.brokerGone(1)
        let back = c.brokerRegistered(LiveBroker(id: 1, epoch: 11))
        // It gets its partitions (as follower) and the full metadata; the others learn it is live again.
        #expect(leaderAndIsr(back, to: 1).map(\.partition) == [0, 1, 2])
        #expect(leaderAndIsr(back, to: 1).first { $0.partition == 0 }?.leader == 2)
        #expect(updateMetadata(back, to: 2)?.partitions.first { $0.partition == 0 }?.leader == 2)
        #expect(updateMetadata(back, to: 2)?.liveBrokers.map(\.id) == [1, 2, 3])
        #expect(writes(back).isEmpty)
        #expect(c.replicaState("t", 0, 1) == .onlineReplica)
        // Not in the ISR yet: the check moves nothing.
        #expect(c.checkPreferredLeaderImbalance().isEmpty)
        #expect(c.leadership("t", 0)?.leader == 2)
        // The leader adds it back (AlterPartition), then the check gives it its leadership back.
        let alter = c.alterPartition(brokerId: 2, brokerEpoch: 20, items: [AlterPartitionItem(topic: "t", partition: 0, leaderEpoch: 1, newIsr: [2, 3, 1], partitionEpoch: 1)])
        #expect(alter.results.first?.error == KafkaErrorCode.none)
        let moved = c.checkPreferredLeaderImbalance()
        #expect(c.leadership("t", 0) == PartitionLeadership(partition: 0, leader: 1, leaderEpoch: 2, replicas: [1, 2, 3], isr: [2, 3, 1], controllerEpoch: 5))
        #expect(writes(moved).map(\.expected) == [2])
        #expect(leaderAndIsr(moved, to: 1).first?.leader == 1)
        expectFenced(moved, c)
        #expect(c.checkPreferredLeaderImbalance().isEmpty)
    }

    @Test func imbalanceBelowThresholdIsLeftAlone() {
        var config = ControllerConfig()
        config.leaderImbalancePerBrokerPercentage = 50
        // Broker 1 prefers both partitions but leads only one of them (as loaded from ZooKeeper).
        let loaded = LoadedTopic(name: "a", partitions: [
            (PartitionLeadership(partition: 0, leader: 1, leaderEpoch: 3, replicas: [1, 2], isr: [1, 2], controllerEpoch: 4), 7),
            (PartitionLeadership(partition: 1, leader: 2, leaderEpoch: 3, replicas: [1, 2], isr: [1, 2], controllerEpoch: 4), 7),
        ])
        var c = Controller(controllerId: 1, epoch: 5, config: config, brokers: [1, 2].map { LiveBroker(id: $0, epoch: brokerEpochs[$0]!) }, topics: [loaded])
        _ = c.start()
        #expect(c.checkPreferredLeaderImbalance().isEmpty)  // 1/2 = 50% is not above 50%
        c.config.leaderImbalancePerBrokerPercentage = 10
        let moved = c.checkPreferredLeaderImbalance()
        #expect(c.leadership("a", 1)?.leader == 1)
        #expect(c.leadership("a", 1)?.leaderEpoch == 4)
        #expect(writes(moved).first?.expected == 7)
        c.config.autoLeaderRebalanceEnable = false
        #expect(c.checkPreferredLeaderImbalance().isEmpty)
    }

    @Test func bounceIsFailureThenStartup() throws {
        var c = try makeController()
        #expect(c.brokerRegistered(LiveBroker(id: 1, epoch: 10)).isEmpty)
        let actions = c.brokerRegistered(LiveBroker(id: 1, epoch: 12))
        #expect(c.leadership("t", 0)?.leader == 2)
        #expect(c.leadership("t", 0)?.leaderEpoch == 1)
        #expect(c.brokers[1]?.epoch == 12)
        #expect(leaderAndIsr(actions, to: 1).count == 3)
    }

    @Test func startElectsLeadersOfDeadBrokersAndSendsEverything() {
        let loaded = LoadedTopic(name: "t", partitions: [
            (PartitionLeadership(partition: 0, leader: 3, leaderEpoch: 4, replicas: [3, 1], isr: [3, 1], controllerEpoch: 4), 9),
            (PartitionLeadership(partition: 1, leader: 1, leaderEpoch: 2, replicas: [1, 3], isr: [1, 3], controllerEpoch: 4), 3),
        ])
        var c = Controller(controllerId: 2, epoch: 5, brokers: [1, 2].map { LiveBroker(id: $0, epoch: brokerEpochs[$0]!) }, topics: [loaded])
        let actions = c.start()
        #expect(c.leadership("t", 0)?.leader == 1)
        #expect(c.leadership("t", 0)?.leaderEpoch == 5)
        #expect(c.leadership("t", 0)?.isr == [1])
        #expect(writes(actions).first?.expected == 9)
        #expect(c.partitionEpoch("t", 0) == 10)
        #expect(c.replicaState("t", 0, 3) == .offlineReplica)
        #expect(updateMetadata(actions, to: 2)?.partitions.count == 2)
        expectFenced(actions, c)
    }

    @Test func partitionWrittenByANewerControllerIsNotTouched() {
        let loaded = LoadedTopic(name: "t", partitions: [
            (PartitionLeadership(partition: 0, leader: 3, leaderEpoch: 4, replicas: [3, 1], isr: [3, 1], controllerEpoch: 6), 9),
        ])
        var c = Controller(controllerId: 2, epoch: 5, brokers: [1, 2].map { LiveBroker(id: $0, epoch: brokerEpochs[$0]!) }, topics: [loaded])
        let actions = c.start()
        #expect(writes(actions).isEmpty)
        #expect(c.leadership("t", 0)?.leader == 3)
        let r = c.electLeaders(.unclean, partitions: [TopicPartitionKey("t", 0)])
        #expect(r.results[TopicPartitionKey("t", 0)] == .staleControllerEpoch)
    }

    @Test func resignedControllerDoesNothing() throws {
        var c = try makeController()
        c.resign()
        #expect(!c.isActive)
        #expect(c.brokerGone(1).isEmpty)
        #expect(c.leadership("t", 0)?.leader == 1)
        #expect(c.alterPartition(brokerId: 1, brokerEpoch: 10, items: []).error == .notController)
        #expect(c.controlledShutdown(brokerId: 1, brokerEpoch: 10).error == .notController)
        #expect(throws: AssignmentError.self) { try c.createTopic("u", partitions: 1, replicationFactor: 1).get() }
    }
}

@Suite struct ControllerShutdownAndIsrTests {
    @Test func controlledShutdownMovesEveryLeadershipAway() throws {
        var c = try makeController()
        _ = try c.createTopic("single", partitions: 1, replicationFactor: 1, assignment: [[1]]).get()
        let r = c.controlledShutdown(brokerId: 1, brokerEpoch: 10)
        #expect(r.error == KafkaErrorCode.none)
        #expect(r.remaining.isEmpty)  // replication factor 1 is not waited for (Kafka)
        for p: Int32 in 0..<3 {
            let l = c.leadership("t", p)!
            #expect(l.leader != 1)
            #expect(!l.isr.contains(1))
            #expect(l.leaderEpoch == 1)
        }
        #expect(c.leadership("t", 0)?.leader == 2)
        #expect(c.leadership("single", 0)?.leader == 1)
        // Followed partitions: StopReplica without delete; led partition: LeaderAndIsr naming the new leader.
        #expect(stopReplicas(r.actions, to: 1).map(\.partition).sorted() == [1, 2])
        #expect(stopReplicas(r.actions, to: 1).allSatisfy { !$0.deletePartition })
        #expect(leaderAndIsr(r.actions, to: 1).first { $0.partition == 0 }?.leader == 2)
        #expect(c.shuttingDown == [1])
        #expect(!c.liveBrokerIds.contains(1))
        expectFenced(r.actions, c)
        // The imbalance check does not give it back while it shuts down.
        #expect(c.checkPreferredLeaderImbalance().isEmpty)
        // Its session ends: nothing left to move.
        _ = c.brokerGone(1)
        #expect(c.leadership("t", 0)?.leaderEpoch == 1)
        #expect(c.shuttingDown.isEmpty)
    }

    @Test func controlledShutdownReportsPartitionsWithoutAnotherInSyncReplica() throws {
        var c = try makeController()
        _ = c.alterPartition(brokerId: 1, brokerEpoch: 10, items: [AlterPartitionItem(topic: "t", partition: 0, leaderEpoch: 0, newIsr: [1], partitionEpoch: 0)])
        let r = c.controlledShutdown(brokerId: 1, brokerEpoch: 10)
        #expect(r.remaining == [TopicPartitionKey("t", 0)])
        #expect(c.leadership("t", 0)?.leader == 1)
        #expect(c.controlledShutdown(brokerId: 1, brokerEpoch: 9).error == .staleBrokerEpoch)
        #expect(c.controlledShutdown(brokerId: 7, brokerEpoch: 9).error == .brokerNotAvailable)
    }

    @Test func alterPartitionAcceptsAFencedIsrChange() throws {
        var c = try makeController()
        let r = c.alterPartition(brokerId: 1, brokerEpoch: 10, items: [AlterPartitionItem(topic: "t", partition: 0, leaderEpoch: 0, newIsr: [1, 2], partitionEpoch: 0)])
        #expect(r.error == KafkaErrorCode.none)
        #expect(r.results.first?.error == KafkaErrorCode.none)
        #expect(r.results.first?.partitionEpoch == 1)
        #expect(r.results.first?.leadership?.isr == [1, 2])
        #expect(c.leadership("t", 0)?.leaderEpoch == 0)  // an ISR change by the leader keeps the leader epoch
        #expect(writes(r.actions).map(\.expected) == [0])
        #expect(updateMetadata(r.actions, to: 3)?.partitions.first?.isr == [1, 2])
        #expect(leaderAndIsr(r.actions, to: 2).isEmpty)
        // The same ISR again (a retry after a lost response) is answered with the current state.
        let again = c.alterPartition(brokerId: 1, brokerEpoch: 10, items: [AlterPartitionItem(topic: "t", partition: 0, leaderEpoch: 0, newIsr: [1, 2], partitionEpoch: 0)])
        #expect(again.results.first?.error == KafkaErrorCode.none)
        #expect(again.results.first?.partitionEpoch == 1)
        #expect(again.actions.isEmpty)
    }

    @Test func alterPartitionWithAStalePartitionEpochIsRefused() throws {
        var c = try makeController()
        _ = c.alterPartition(brokerId: 1, brokerEpoch: 10, items: [AlterPartitionItem(topic: "t", partition: 0, leaderEpoch: 0, newIsr: [1, 2], partitionEpoch: 0)])
        let r = c.alterPartition(brokerId: 1, brokerEpoch: 10, items: [AlterPartitionItem(topic: "t", partition: 0, leaderEpoch: 0, newIsr: [1, 2, 3], partitionEpoch: 0)])
        #expect(r.results.first?.error == .invalidUpdateVersion)
        #expect(r.actions.isEmpty)
        #expect(c.leadership("t", 0)?.isr == [1, 2])
        #expect(c.partitionEpoch("t", 0) == 1)
    }

    @Test func alterPartitionOtherFences() throws {
        var c = try makeController()
        _ = c.brokerGone(3)  // t-0: isr [1, 2] at leader epoch 1, version 1
        func one(_ broker: Int32, _ epoch: Int64, _ item: AlterPartitionItem) -> KafkaErrorCode? {
            let r = c.alterPartition(brokerId: broker, brokerEpoch: epoch, items: [item])
            return r.error == KafkaErrorCode.none ? r.results.first?.error : r.error
        }
        #expect(one(1, 10, AlterPartitionItem(topic: "t", partition: 0, leaderEpoch: 0, newIsr: [1], partitionEpoch: 1)) == .fencedLeaderEpoch)
        #expect(one(1, 10, AlterPartitionItem(topic: "t", partition: 0, leaderEpoch: 2, newIsr: [1], partitionEpoch: 1)) == .notController)
        #expect(one(1, 10, AlterPartitionItem(topic: "t", partition: 0, leaderEpoch: 1, newIsr: [1], partitionEpoch: 2)) == .notController)
        #expect(one(1, 11, AlterPartitionItem(topic: "t", partition: 0, leaderEpoch: 1, newIsr: [1], partitionEpoch: 1)) == .staleBrokerEpoch)
        #expect(one(2, 20, AlterPartitionItem(topic: "t", partition: 0, leaderEpoch: 1, newIsr: [2], partitionEpoch: 1)) == .notLeaderOrFollower)
        #expect(one(1, 10, AlterPartitionItem(topic: "t", partition: 0, leaderEpoch: 1, newIsr: [1, 3], partitionEpoch: 1)) == .ineligibleReplica)
        #expect(one(1, 10, AlterPartitionItem(topic: "t", partition: 0, leaderEpoch: 1, newIsr: [2], partitionEpoch: 1)) == .ineligibleReplica)
        #expect(one(1, 10, AlterPartitionItem(topic: "t", partition: 9, leaderEpoch: 1, newIsr: [1], partitionEpoch: 1)) == .unknownTopicOrPartition)
        #expect(c.leadership("t", 0)?.isr == [1, 2])
        #expect(one(1, 10, AlterPartitionItem(topic: "t", partition: 0, leaderEpoch: 1, newIsr: [1], partitionEpoch: 1)) == KafkaErrorCode.none)
        #expect(c.partitionEpoch("t", 0) == 2)
    }
}

@Suite struct ControllerElectionStrategyTests {
    @Test func reassignmentElectionPicksFromTheTargetAndBumpsTheEpoch() throws {
        var c = try makeController()
        var batch = RequestBatch()
        #expect(c.elect(TopicPartitionKey("t", 0), .reassignment(target: [3, 2]), batch: &batch) == KafkaErrorCode.none)
        #expect(c.leadership("t", 0)?.leader == 3)
        #expect(c.leadership("t", 0)?.leaderEpoch == 1)
        #expect(c.leadership("t", 0)?.isr == [1, 2, 3])
        let actions = batch.flush(c)
        #expect(writes(actions).map(\.expected) == [0])
        #expect(leaderAndIsr(actions, to: 2).first?.leader == 3)
        var none = RequestBatch()
        #expect(c.elect(TopicPartitionKey("t", 0), .reassignment(target: [7]), batch: &none) == .eligibleLeadersNotAvailable)
        #expect(none.writes.isEmpty)
        #expect(c.elect(TopicPartitionKey("nope", 0), .preferred, batch: &none) == .unknownTopicOrPartition)
    }
}

@Suite struct ControllerEventTests {
    @Test func eventsDriveTheSameDecisions() {
        var c = Controller(controllerId: 1, epoch: 7, brokers: [1, 2, 3].map { LiveBroker(id: $0, epoch: brokerEpochs[$0]!) }, topics: [])
        #expect(c.handle(.startup).reply == nil)
        let created = c.handle(.createTopic(name: "e", partitions: 2, replicationFactor: 2, configs: [:], assignment: [[1, 2], [2, 1]]))
        #expect(created.reply == .error(.none, message: nil))
        #expect(writes(created.actions).count == 2)
        let tooBig = c.handle(.createTopic(name: "f", partitions: 1, replicationFactor: 5, configs: [:], assignment: nil))
        #expect(tooBig.reply == .error(.invalidReplicationFactor, message: "Replication factor: 5 larger than available brokers: 3."))
        #expect(tooBig.actions.isEmpty)
        let gone = c.handle(.brokerGone(1))
        #expect(c.leadership("e", 0)?.leader == 2)
        #expect(c.leadership("e", 0)?.leaderEpoch == 1)
        expectFenced(gone.actions, c)
        _ = c.handle(.brokerRegistered(LiveBroker(id: 1, epoch: 11)))
        let stale = c.handle(.alterPartition(brokerId: 2, brokerEpoch: 20, items: [
            AlterPartitionItem(topic: "e", partition: 0, leaderEpoch: 1, newIsr: [2, 1], partitionEpoch: 0),
        ]))
        guard case .alterPartition(let error, let results)? = stale.reply else { Issue.record("no AlterPartition reply"); return }
        #expect(error == KafkaErrorCode.none)
        #expect(results.first?.error == .invalidUpdateVersion)
        let shutdown = c.handle(.controlledShutdown(brokerId: 2, brokerEpoch: 20))
        #expect(shutdown.reply == .controlledShutdown(error: .none, remaining: [TopicPartitionKey("e", 0), TopicPartitionKey("e", 1)]))
        #expect(c.handle(.electLeaders(.preferred, [TopicPartitionKey("e", 1)])).reply == .electLeaders([TopicPartitionKey("e", 1): .electionNotNeeded]))
        _ = c.handle(.controllerMoved)
        #expect(c.handle(.brokerGone(2)).actions.isEmpty)
        #expect(c.handle(.deleteTopic("e")).reply == .error(.notController, message: nil))
    }
}
