import KafkaProtocol
import SamsaMetadata
import Testing
@testable import SamsaController

private struct AssignmentWrite: Equatable {
    var topic: String
    var replicas: [[Int32]]
    var adding: [Int32: [Int32]]
    var removing: [Int32: [Int32]]
}

private func assignmentWrites(_ actions: [ControllerAction]) -> [AssignmentWrite] {
    actions.compactMap {
        if case .writeReassignment(let t, let r, let a, let rm) = $0 { AssignmentWrite(topic: t, replicas: r, adding: a, removing: rm) } else { nil }
    }
}

/// Index of the first action matching, for ordering checks.
private func index(_ actions: [ControllerAction], _ match: (ControllerAction) -> Bool) -> Int? { actions.firstIndex(where: match) }

private func isAssignmentWrite(_ a: ControllerAction) -> Bool { if case .writeReassignment = a { true } else { false } }
private func isStateWrite(_ a: ControllerAction) -> Bool { if case .writePartitionState = a { true } else { false } }
private func isSend(_ a: ControllerAction) -> Bool { if case .send = a { true } else { false } }

private let epochs: [Int32: Int64] = [1: 10, 2: 20, 3: 30, 4: 40, 5: 50]
private let m0 = TopicPartitionKey("m", 0)

/// Controller 1 at epoch 5 over brokers 1...`brokers` with topic m: one partition on [1, 2, 3], led by 1 at
/// leader epoch 0, ISR [1, 2, 3], partition epoch (state version) 0.
private func makeCluster(brokers: Int32 = 4) throws -> Controller {
    var c = Controller(controllerId: 1, epoch: 5, brokers: (1...brokers).map { LiveBroker(id: $0, epoch: epochs[$0]!) }, topics: [])
    _ = c.start()
    _ = try c.createTopic("m", partitions: 1, replicationFactor: 3, assignment: [[1, 2, 3]]).get()
    return c
}

/// The partition's leader proposes `isr` (fenced by its current leader epoch and partition epoch).
private func expandIsr(_ c: inout Controller, _ isr: [Int32]) -> (error: KafkaErrorCode, results: [AlterPartitionResult], actions: [ControllerAction]) {
    let l = c.leadership("m", 0)!
    return c.alterPartition(brokerId: l.leader, brokerEpoch: epochs[l.leader]!, items: [
        AlterPartitionItem(topic: "m", partition: 0, leaderEpoch: l.leaderEpoch, newIsr: isr, partitionEpoch: c.partitionEpoch("m", 0)!),
    ])
}

@Suite struct PartitionReassignmentTests {
    @Test func reassignToBuildsKafkasFullReplicaSet() {
        let start = PartitionReassignment(replicas: [1, 2, 3])
        let moving = start.reassigned(to: [2, 3, 4])
        #expect(moving == PartitionReassignment(replicas: [2, 3, 4, 1], adding: [4], removing: [1]))
        #expect(moving.originReplicas == [2, 3, 1])
        #expect(moving.targetReplicas == [2, 3, 4])
        // A new target replaces the ongoing one relative to the original replicas; the original cancels.
        #expect(moving.reassigned(to: [3, 5]) == PartitionReassignment(replicas: [3, 5, 2, 1], adding: [5], removing: [2, 1]))
        #expect(moving.reassigned(to: moving.originReplicas) == PartitionReassignment(replicas: [2, 3, 1]))
        #expect(!start.reassigned(to: [3, 2, 1]).isBeingReassigned)
    }

    @Test func moveOneReplicaThenCompleteWhenTheNewReplicaIsInSync() throws {
        var c = try makeCluster()
        let r = c.alterPartitionReassignments([m0: [2, 3, 4]])
        #expect(r.results == [m0: KafkaErrorCode.none])
        // U: the assignment with AR/RR is written first, then the leader epoch bump.
        #expect(assignmentWrites(r.actions) == [AssignmentWrite(topic: "m", replicas: [[2, 3, 4, 1]], adding: [0: [4]], removing: [0: [1]])])
        #expect(index(r.actions, isAssignmentWrite)! < index(r.actions, isStateWrite)!)
        #expect(index(r.actions, isStateWrite)! < index(r.actions, isSend)!)
        #expect(writes(r.actions).map(\.expected) == [0])
        #expect(c.leadership("m", 0) == PartitionLeadership(partition: 0, leader: 1, leaderEpoch: 1, replicas: [2, 3, 4, 1], isr: [1, 2, 3], controllerEpoch: 5))
        // A: LeaderAndIsr with RS to every replica of RS; the added one as new.
        for b: Int32 in [1, 2, 3, 4] {
            let p = leaderAndIsr(r.actions, to: b)
            #expect(p.count == 1)
            #expect(p.first?.replicas == [2, 3, 4, 1])
            #expect(p.first?.leader == 1)
            #expect(p.first?.leaderEpoch == 1)
            #expect(p.first?.isNew == (b == 4))
        }
        #expect(stopReplicas(r.actions, to: 1).isEmpty)
        #expect(updateMetadata(r.actions, to: 4)?.partitions.first?.replicas == [2, 3, 4, 1])
        expectFenced(r.actions, c)
        #expect(c.replicaState("m", 0, 4) == .newReplica)
        #expect(c.listPartitionReassignments().reassignments == [m0: PartitionReassignment(replicas: [2, 3, 4, 1], adding: [4], removing: [1])])

        // Another ISR change that leaves 4 out completes nothing.
        let shrink = expandIsr(&c, [1, 2])
        #expect(shrink.results.first?.error == KafkaErrorCode.none)
        #expect(assignmentWrites(shrink.actions).isEmpty)
        #expect(c.listPartitionReassignments().reassignments.count == 1)

        // The new replica caught up: the leader adds it to the ISR, which completes the reassignment.
        let done = expandIsr(&c, [1, 2, 3, 4])
        #expect(done.error == KafkaErrorCode.none)
        #expect(done.results.first?.error == KafkaErrorCode.none)
        #expect(done.results.first?.leadership?.isr == [1, 2, 3, 4])
        // The ISR write, then the completion (leader off 1, replicas = TRS, ISR ∩ TRS, epoch + 1), then the final assignment.
        #expect(writes(done.actions).map(\.expected) == [2, 3])
        #expect(c.leadership("m", 0) == PartitionLeadership(partition: 0, leader: 2, leaderEpoch: 2, replicas: [2, 3, 4], isr: [2, 3, 4], controllerEpoch: 5))
        #expect(c.partitionEpoch("m", 0) == 4)
        #expect(assignmentWrites(done.actions) == [AssignmentWrite(topic: "m", replicas: [[2, 3, 4]], adding: [:], removing: [:])])
        #expect(done.actions.lastIndex(where: isStateWrite)! < index(done.actions, isAssignmentWrite)!)
        for b: Int32 in [2, 3, 4] {
            #expect(leaderAndIsr(done.actions, to: b).first?.leader == 2)
            #expect(leaderAndIsr(done.actions, to: b).first?.replicas == [2, 3, 4])
        }
        #expect(leaderAndIsr(done.actions, to: 1).isEmpty)
        // The removed replica: StopReplica without delete, then with delete.
        #expect(stopReplicas(done.actions, to: 1).map(\.deletePartition) == [false, true])
        #expect(stopReplicas(done.actions, to: 1).allSatisfy { $0.topic == "m" && $0.partition == 0 })
        #expect(stopReplicas(done.actions, to: 4).isEmpty)
        // Every broker, the removed one included, learns the new state.
        for b: Int32 in [1, 2, 3, 4] {
            #expect(updateMetadata(done.actions, to: b)?.partitions.first?.replicas == [2, 3, 4])
            #expect(updateMetadata(done.actions, to: b)?.partitions.first?.leader == 2)
        }
        expectFenced(done.actions, c)
        #expect(c.replicaState("m", 0, 1) == .nonExistentReplica)
        #expect(c.replicaState("m", 0, 4) == .onlineReplica)
        #expect(c.listPartitionReassignments().reassignments.isEmpty)
        #expect(c.alterPartitionReassignments([m0: nil]).results == [m0: .noReassignmentInProgress])
    }

    @Test func theLeaderStaysWhenItIsInTheTarget() throws {
        var c = try makeCluster()
        _ = c.alterPartitionReassignments([m0: [1, 2, 4]])
        #expect(c.leadership("m", 0)?.replicas == [1, 2, 4, 3])
        let done = expandIsr(&c, [1, 2, 3, 4])
        #expect(c.leadership("m", 0) == PartitionLeadership(partition: 0, leader: 1, leaderEpoch: 2, replicas: [1, 2, 4], isr: [1, 2, 4], controllerEpoch: 5))
        #expect(stopReplicas(done.actions, to: 3).map(\.deletePartition) == [false, true])
        #expect(leaderAndIsr(done.actions, to: 1).first?.leaderEpoch == 2)
    }

    @Test func removingAReplicaCompletesAtOnce() throws {
        var c = try makeCluster()
        let r = c.alterPartitionReassignments([m0: [2, 1]])
        #expect(r.results == [m0: KafkaErrorCode.none])
        #expect(assignmentWrites(r.actions) == [
            AssignmentWrite(topic: "m", replicas: [[2, 1, 3]], adding: [:], removing: [0: [3]]),
            AssignmentWrite(topic: "m", replicas: [[2, 1]], adding: [:], removing: [:]),
        ])
        #expect(c.leadership("m", 0) == PartitionLeadership(partition: 0, leader: 1, leaderEpoch: 1, replicas: [2, 1], isr: [1, 2], controllerEpoch: 5))
        #expect(stopReplicas(r.actions, to: 3).map(\.deletePartition) == [false, true])
        #expect(c.listPartitionReassignments().reassignments.isEmpty)
        // Reordering only: no replica moves, the new order is written.
        let reorder = c.alterPartitionReassignments([m0: [1, 2]])
        #expect(reorder.results == [m0: KafkaErrorCode.none])
        #expect(c.leadership("m", 0)?.replicas == [1, 2])
        #expect(sends(reorder.actions).allSatisfy { if case .stopReplica = $0.request { false } else { true } })
    }

    @Test func cancelRevertsToTheOriginalReplicas() throws {
        var c = try makeCluster(brokers: 5)
        _ = c.alterPartitionReassignments([m0: [3, 4, 5]])
        #expect(c.leadership("m", 0)?.replicas == [3, 4, 5, 1, 2])
        // 4 catches up, 5 does not: still in progress.
        _ = expandIsr(&c, [1, 2, 3, 4])
        #expect(c.listPartitionReassignments([m0]).reassignments[m0]?.adding == [4, 5])
        let cancel = c.alterPartitionReassignments([m0: nil])
        #expect(cancel.results == [m0: KafkaErrorCode.none])
        let l = c.leadership("m", 0)!
        // RS was [3, 4, 5, 1, 2]: ORS comes back in that order (Kafka cannot restore the original order either).
        #expect(l.replicas == [3, 1, 2])
        #expect(l.isr == [1, 2, 3])
        #expect(l.leader == 1)
        // The added replicas are stopped and deleted; the originals hear the restored assignment.
        for b: Int32 in [4, 5] {
            #expect(stopReplicas(cancel.actions, to: b).map(\.deletePartition) == [false, true])
            #expect(c.replicaState("m", 0, b) == .nonExistentReplica)
        }
        for b: Int32 in [1, 2, 3] {
            #expect(leaderAndIsr(cancel.actions, to: b).last?.replicas == [3, 1, 2])
            #expect(leaderAndIsr(cancel.actions, to: b).last?.leaderEpoch == l.leaderEpoch)
        }
        #expect(assignmentWrites(cancel.actions).last == AssignmentWrite(topic: "m", replicas: [[3, 1, 2]], adding: [:], removing: [:]))
        #expect(updateMetadata(cancel.actions, to: 5)?.partitions.first?.replicas == [3, 1, 2])
        expectFenced(cancel.actions, c)
        #expect(c.listPartitionReassignments().reassignments.isEmpty)
        #expect(c.alterPartitionReassignments([m0: nil]).results == [m0: .noReassignmentInProgress])
    }

    @Test func cancelWhileAnAddedReplicaLeads() throws {
        var c = try makeCluster(brokers: 5)
        _ = c.alterPartitionReassignments([m0: [4, 5, 3]])
        #expect(c.leadership("m", 0)?.replicas == [4, 5, 3, 1, 2])
        _ = expandIsr(&c, [1, 2, 3, 4])
        // The leader dies: the offline election over RS picks the added replica 4.
        _ = c.brokerGone(1)
        #expect(c.leadership("m", 0)?.leader == 4)
        let cancel = c.alterPartitionReassignments([m0: nil])
        #expect(cancel.results == [m0: KafkaErrorCode.none])
        // 4 leaves the ISR and the leadership; the reassignment election over ORS picks 3.
        let l = c.leadership("m", 0)!
        #expect(l.replicas == [3, 1, 2])
        #expect(l.leader == 3)
        #expect(l.isr == [2, 3])
        #expect(c.partitionState("m", 0) == .onlinePartition)
        for b: Int32 in [4, 5] { #expect(stopReplicas(cancel.actions, to: b).map(\.deletePartition) == [false, true]) }
        for b: Int32 in [2, 3] { #expect(leaderAndIsr(cancel.actions, to: b).last?.leader == 3) }
        #expect(sends(cancel.actions).allSatisfy { $0.broker != 1 })
        expectFenced(cancel.actions, c)
    }

    @Test func aNewTargetReplacesTheOngoingReassignment() throws {
        var c = try makeCluster(brokers: 5)
        _ = c.alterPartitionReassignments([m0: [3, 4, 5]])
        let r = c.alterPartitionReassignments([m0: [2, 3, 4]])
        #expect(r.results == [m0: KafkaErrorCode.none])
        #expect(c.listPartitionReassignments().reassignments == [m0: PartitionReassignment(replicas: [2, 3, 4, 1], adding: [4], removing: [1])])
        // 5 is no longer needed: stopped and deleted at once.
        #expect(stopReplicas(r.actions, to: 5).map(\.deletePartition) == [false, true])
        #expect(stopReplicas(r.actions, to: 4).isEmpty)
        #expect(leaderAndIsr(r.actions, to: 4).last?.replicas == [2, 3, 4, 1])
    }

    @Test func validationErrors() throws {
        var c = try makeCluster(brokers: 5)
        _ = c.controlledShutdown(brokerId: 5, brokerEpoch: 50)
        let r = c.alterPartitionReassignments([
            TopicPartitionKey("nope", 0): [1, 2, 3],
            TopicPartitionKey("m", 9): [1, 2, 3],
            m0: [],
        ])
        #expect(r.results == [TopicPartitionKey("nope", 0): .unknownTopicOrPartition, TopicPartitionKey("m", 9): .unknownTopicOrPartition,
                              m0: .invalidReplicaAssignment])
        #expect(r.actions.isEmpty)
        for target: [Int32] in [[2, 2, 3], [1, 2, 9], [1, -1], [1, 2, 5]] {
            #expect(c.alterPartitionReassignments([m0: target]).results == [m0: .invalidReplicaAssignment])
        }
        #expect(c.alterPartitionReassignments([m0: nil]).results == [m0: .noReassignmentInProgress])
        #expect(c.alterPartitionReassignments([TopicPartitionKey("nope", 0): nil]).results == [TopicPartitionKey("nope", 0): .unknownTopicOrPartition])
        #expect(c.leadership("m", 0)?.replicas == [1, 2, 3])
        #expect(c.listPartitionReassignments().reassignments.isEmpty)
        // A replica the partition already has may be on a dead broker (Kafka checks only the added ones).
        _ = c.brokerGone(3)
        #expect(c.alterPartitionReassignments([m0: [1, 3, 4]]).results == [m0: KafkaErrorCode.none])
        // Once resigned: NOT_CONTROLLER.
        c.resign()
        #expect(c.alterPartitionReassignments([m0: nil]).results == [m0: .notController])
        #expect(c.listPartitionReassignments().error == .notController)
    }

    @Test func listOnlyOngoingReassignments() throws {
        var c = try makeCluster()
        _ = try c.createTopic("n", partitions: 2, replicationFactor: 2, assignment: [[1, 2], [2, 3]]).get()
        let r = c.alterPartitionReassignments([m0: [2, 3, 4], TopicPartitionKey("n", 1): [3, 4], TopicPartitionKey("n", 0): [2, 1]])
        #expect(r.results.values.allSatisfy { $0 == KafkaErrorCode.none })
        let all = c.listPartitionReassignments().reassignments
        #expect(Set(all.keys) == [m0, TopicPartitionKey("n", 1)])
        #expect(all[TopicPartitionKey("n", 1)] == PartitionReassignment(replicas: [3, 4, 2], adding: [4], removing: [2]))
        let some = c.listPartitionReassignments([TopicPartitionKey("n", 0), TopicPartitionKey("n", 1), TopicPartitionKey("x", 0)]).reassignments
        #expect(Array(some.keys) == [TopicPartitionKey("n", 1)])
        // Both reassigned partitions of n are written in one topic assignment.
        #expect(assignmentWrites(r.actions).last == AssignmentWrite(topic: "n", replicas: [[2, 1], [3, 4, 2]], adding: [1: [4]], removing: [1: [2]]))
    }

    @Test func leaderFailureDuringAReassignment() throws {
        var c = try makeCluster()
        _ = c.alterPartitionReassignments([m0: [2, 3, 4]])
        _ = c.brokerGone(1)
        // Offline election over RS [2, 3, 4, 1].
        #expect(c.leadership("m", 0)?.leader == 2)
        #expect(c.leadership("m", 0)?.isr == [2, 3])
        let done = expandIsr(&c, [2, 3, 4])
        #expect(c.leadership("m", 0)?.replicas == [2, 3, 4])
        #expect(c.leadership("m", 0)?.leader == 2)
        #expect(stopReplicas(done.actions, to: 1).isEmpty)  // not registered: nothing can be sent
        #expect(c.listPartitionReassignments().reassignments.isEmpty)
    }

    @Test func deletingTheTopicDropsItsReassignment() throws {
        var c = try makeCluster()
        _ = c.alterPartitionReassignments([m0: [2, 3, 4]])
        let d = c.deleteTopic("m")
        #expect(d.error == KafkaErrorCode.none)
        for b: Int32 in [1, 2, 3, 4] { #expect(stopReplicas(d.actions, to: b).map(\.deletePartition) == [true]) }
        #expect(c.listPartitionReassignments().reassignments.isEmpty)
        #expect(c.alterPartitionReassignments([m0: [1, 2, 3]]).results == [m0: .unknownTopicOrPartition])
    }

    @Test func aNewControllerResumesFromTheStoredAssignment() {
        // What a new controller loads mid-reassignment: RS in the topic, AR/RR beside it.
        let loaded = LoadedTopic(name: "m", partitions: [
            (PartitionLeadership(partition: 0, leader: 1, leaderEpoch: 1, replicas: [2, 3, 4, 1], isr: [1, 2, 3], controllerEpoch: 5), 1),
            (PartitionLeadership(partition: 1, leader: 1, leaderEpoch: 0, replicas: [2, 1], isr: [1, 2], controllerEpoch: 5), 0),
        ])
        var c = Controller(controllerId: 2, epoch: 6, brokers: [1, 2, 3, 4].map { LiveBroker(id: $0, epoch: epochs[$0]!) }, topics: [loaded])
        c.restoreReassignments([
            m0: PartitionReassignment(replicas: [], adding: [4], removing: [1]),
            // Already complete on disk except for the final write: finishes at startup.
            TopicPartitionKey("m", 1): PartitionReassignment(replicas: [], adding: [], removing: [1]),
        ])
        let actions = c.start()
        // m-0 resumes in phase A: epoch bump, LeaderAndIsr to RS (4 as new).
        #expect(c.leadership("m", 0)?.leaderEpoch == 2)
        #expect(leaderAndIsr(actions, to: 4).first { $0.partition == 0 }?.isNew == true)
        #expect(leaderAndIsr(actions, to: 1).first { $0.partition == 0 }?.replicas == [2, 3, 4, 1])
        // m-1 completes: leader moves to 2, replica 1 is stopped and deleted.
        #expect(c.leadership("m", 1) == PartitionLeadership(partition: 1, leader: 2, leaderEpoch: 1, replicas: [2], isr: [2], controllerEpoch: 6))
        #expect(stopReplicas(actions, to: 1).map(\.deletePartition) == [false, true])
        #expect(assignmentWrites(actions).last == AssignmentWrite(topic: "m", replicas: [[2, 3, 4, 1], [2]], adding: [0: [4]], removing: [0: [1]]))
        expectFenced(actions, c)
        #expect(c.listPartitionReassignments().reassignments == [m0: PartitionReassignment(replicas: [2, 3, 4, 1], adding: [4], removing: [1])])
        let done = expandIsr(&c, [1, 2, 3, 4])
        #expect(done.results.first?.error == KafkaErrorCode.none)
        #expect(c.leadership("m", 0)?.replicas == [2, 3, 4])
        #expect(c.leadership("m", 0)?.leader == 2)
    }

    @Test func eventsAndReplies() throws {
        var c = try makeCluster()
        let out = c.handle(.alterPartitionReassignments([m0: [2, 3, 4], TopicPartitionKey("x", 0): nil]))
        #expect(out.reply == .reassignments([m0: .none, TopicPartitionKey("x", 0): .unknownTopicOrPartition]))
        #expect(!out.actions.isEmpty)
        #expect(c.handle(.listPartitionReassignments(nil)).reply
            == .ongoingReassignments([m0: PartitionReassignment(replicas: [2, 3, 4, 1], adding: [4], removing: [1])]))
        #expect(c.handle(.listPartitionReassignments([TopicPartitionKey("x", 0)])).reply == .ongoingReassignments([:]))
        let cancel = c.handle(.alterPartitionReassignments([m0: nil]))
        #expect(cancel.reply == .reassignments([m0: .none]))
        #expect(c.handle(.listPartitionReassignments(nil)).reply == .ongoingReassignments([:]))
        _ = c.handle(.controllerMoved)
        #expect(c.handle(.listPartitionReassignments(nil)).reply == .error(.notController, message: nil))
        #expect(c.handle(.alterPartitionReassignments([m0: [1, 2, 4]])).reply == .reassignments([m0: .notController]))
    }
}
