import KafkaWire
import DequeModule
import KafkaProtocol
import KafkaRecords
import Logging
import NIOCore
import Synchronization

/// Group membership and offset commits (Kafka's `ConsumerCoordinator`): join/sync/heartbeat in the
/// membership loop, the assignors run by the leader, rebalance callbacks, and commits (sync, async, automatic).
extension KafkaConsumer {
    /// Commits the current positions of all assigned partitions and waits for the answer.
    public func commit() async throws {
        let offsets = state.withLock { s in
            Dictionary(uniqueKeysWithValues: s.partitions.compactMap { tp, p in p.position.map { (tp, $0) } })
        }
        try await commit(offsets)
    }

    /// Commits the given offsets (the next offset to read, as Kafka defines it).
    public func commit(_ offsets: [TopicPartition: Int64]) async throws {
        guard let groupId = config.groupId else { throw KafkaClientError.invalidConfiguration("committing offsets needs a groupId") }
        guard !offsets.isEmpty else { return }
        let (memberId, generation) = state.withLock { s in
            s.subscription != nil ? (s.group.memberId, s.group.generation) : ("", -1)
        }
        var request = OffsetCommitRequest(groupId: groupId, generationIdOrMemberEpoch: generation, memberId: memberId,
                                          groupInstanceId: state.withLock { $0.subscription } != nil ? config.groupInstanceId : nil)
        let byTopic = Dictionary(grouping: offsets.keys, by: \.topic)
        request.topics = byTopic.keys.sorted().map { topic in
            .init(name: topic, partitions: byTopic[topic]!.sorted().map { tp in
                .init(partitionIndex: tp.partition, committedOffset: offsets[tp]!,
                      committedLeaderEpoch: state.withLock { $0.partitions[tp]?.leaderEpoch ?? -1 }, committedMetadata: "")
            })
        }
        var attempt = 0
        while true {
            let coordinator = try await cluster.coordinator(for: groupId)
            let response = try await coordinator.send(request, range: 2...9)
            let errors = response.topics.flatMap { t in t.partitions.filter { $0.errorCode != 0 }.map { (TopicPartition(t.name, $0.partitionIndex), $0.errorCode) } }
            guard let (tp, code) = errors.first else {
                state.withLock { s in for (tp, o) in offsets { s.partitions[tp]?.committed = o } }
                return
            }
            let error = KafkaErrorCode(code)
            if error == .notCoordinator || error == .coordinatorNotAvailable || error == .coordinatorLoadInProgress, attempt < 10 {
                cluster.forgetCoordinator(groupId)
                attempt += 1
                try await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000)
                continue
            }
            if error == .rebalanceInProgress || error == .illegalGeneration || error == .unknownMemberId {
                state.withLock { $0.group.rejoin = true }
                wakeMembership()
            }
            throw KafkaClientError.broker(code: error, message: nil, broker: coordinator.nodeId, topicPartition: tp)
        }
    }

    /// Commits the current positions in the background, without waiting. `completion` gets the outcome (nil
    /// on success); without one, a failure is logged (`ClientConfiguration.logger`) and the next commit retries.
    public func commitAsync(_ completion: (@Sendable (KafkaClientError?) -> Void)? = nil) {
        Task {
            do {
                try await self.commit()
                completion?(nil)
            } catch {
                let clientError = error as? KafkaClientError ?? .malformedResponse("\(error)")
                if let completion {
                    completion(clientError)
                } else {
                    self.config.client.logger.warning("async offset commit failed", metadata: ["group": "\(self.config.groupId ?? "")", "error": "\(clientError)"])
                }
            }
        }
    }

    /// An automatic commit (auto-commit interval, before a rebalance, on close): nobody waits for it, so a
    /// failure is logged; the next one retries.
    func autoCommit(_ offsets: [TopicPartition: Int64]? = nil, reason: String) async {
        do {
            if let offsets { try await commit(offsets) } else { try await commit() }
        } catch {
            config.client.logger.warning("automatic offset commit failed", metadata: [
                "group": "\(config.groupId ?? "")", "when": "\(reason)", "error": "\(error)",
            ])
        }
    }

    /// The group's committed offsets for `partitions` (nil where none is committed).
    public func committed(_ partitions: [TopicPartition]) async throws -> [TopicPartition: Int64?] {
        guard let groupId = config.groupId else { throw KafkaClientError.invalidConfiguration("committed offsets need a groupId") }
        let coordinator = try await cluster.coordinator(for: groupId)
        let byTopic = Dictionary(grouping: partitions, by: \.topic)
        let version = try coordinator.version(.offsetFetch, 1...9)
        var request = OffsetFetchRequest()
        let topics = byTopic.keys.sorted().map { t in (t, byTopic[t]!.map(\.partition)) }
        if version >= 8 {
            request.groups = [.init(groupId: groupId, topics: topics.map { .init(name: $0.0, partitionIndexes: $0.1) })]
        } else {
            request.groupId = groupId
            request.topics = topics.map { .init(name: $0.0, partitionIndexes: $0.1) }
        }
        let response = try await coordinator.send(request, version: version)
        var result: [TopicPartition: Int64?] = [:]
        if version >= 8 {
            guard let g = response.groups.first else { throw KafkaClientError.malformedResponse("OffsetFetch without group") }
            try KafkaClientError.check(g.errorCode, broker: coordinator.nodeId)
            for t in g.topics { for p in t.partitions { result[TopicPartition(t.name, p.partitionIndex)] = p.committedOffset >= 0 ? p.committedOffset : nil } }
        } else {
            try KafkaClientError.check(response.errorCode, broker: coordinator.nodeId)
            for t in response.topics { for p in t.partitions { result[TopicPartition(t.name, p.partitionIndex)] = p.committedOffset >= 0 ? p.committedOffset : nil } }
        }
        return result
    }

    // MARK: Group membership

    func wakeMembership() {
        let wake = state.withLock { s -> CheckedContinuation<Void, Never>? in
            defer { s.membershipWake = nil }
            return s.membershipWake
        }
        wake?.resume()
    }

    func sleepMembership(ms: Int64) async {
        let timer = config.client.eventLoopGroup.next().scheduleTask(in: .milliseconds(ms)) { self.wakeMembership() }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let wait = state.withLock { s -> Bool in
                guard !s.closed, s.membershipWake == nil else { return false }
                s.membershipWake = c
                return true
            }
            if !wait { c.resume() }
        }
        timer.cancel()
    }

    func membershipLoop() async {
        var lastHeartbeat: UInt64 = 0
        var lastCommit = monotonicNanos()
        while !state.withLock({ $0.closed }) {
            guard let groupId = config.groupId, let topics = state.withLock({ $0.subscription }) else {
                await sleepMembership(ms: 1000)
                continue
            }
            do {
                if state.withLock({ $0.group.rejoin }) {
                    try await rebalance(groupId: groupId, topics: topics)
                    lastHeartbeat = monotonicNanos()
                }
                let now = monotonicNanos()
                if now - lastHeartbeat >= UInt64(config.heartbeatIntervalMs) * 1_000_000 {
                    try await heartbeat(groupId: groupId)
                    lastHeartbeat = monotonicNanos()
                }
                if config.enableAutoCommit, now - lastCommit >= UInt64(config.autoCommitIntervalMs) * 1_000_000 {
                    lastCommit = now
                    await autoCommit(reason: "interval")
                }
            } catch {
                if state.withLock({ $0.closed }) { return }
                config.client.logger.warning("group membership step failed; retrying", metadata: ["group": "\(groupId)", "error": "\(error)"])
                if case let .broker(code, _, _, _) = error as? KafkaClientError, code == .notCoordinator || code == .coordinatorNotAvailable {
                    cluster.forgetCoordinator(groupId)
                }
                // Not one broker could ever be reached: tell the application (poll throws) instead of
                // retrying silently; it may keep polling to keep trying.
                if case .connectionFailed? = error as? KafkaClientError, cluster.metadata.brokers.isEmpty {
                    fail(error as! KafkaClientError)
                }
                try? await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000)
                continue
            }
            await sleepMembership(ms: min(config.heartbeatIntervalMs, 1000))
        }
    }

    func heartbeat(groupId: String) async throws {
        let (memberId, generation) = state.withLock { ($0.group.memberId, $0.group.generation) }
        let coordinator = try await cluster.coordinator(for: groupId)
        let response = try await coordinator.send(HeartbeatRequest(groupId: groupId, generationId: generation, memberId: memberId,
                                                                   groupInstanceId: config.groupInstanceId), range: 0...4)
        switch KafkaErrorCode(response.errorCode) {
        case .none: return
        case .rebalanceInProgress:
            state.withLock { $0.group.rejoin = true }
        case .unknownMemberId, .illegalGeneration, .fencedInstanceId:
            state.withLock { s in
                s.group.rejoin = true
                s.group.generation = -1
                if response.errorCode != KafkaErrorCode.illegalGeneration.rawValue { s.group.memberId = "" }
            }
        case let code:
            throw KafkaClientError.broker(code: code, message: nil, broker: coordinator.nodeId, topicPartition: nil)
        }
    }

    var preferredAssignor: any PartitionAssignor { config.assignors[0] }

    func rebalance(groupId: String, topics: [String]) async throws {
        let owned = state.withLock { $0.order }
        let cooperativeOnly = config.assignors.allSatisfy(\.isCooperative)
        // Eager protocol: give everything up before joining (committing first).
        let (listener, generation) = state.withLock { ($0.listener, $0.group.generation) }
        if !cooperativeOnly, !owned.isEmpty {
            if config.enableAutoCommit { await autoCommit(reason: "rebalance") }
            await listener?.onRevoked(owned)
            state.withLock { s in
                s.partitions = [:]
                s.order = []
                s.chunks.removeAll()
                s.bufferedBytes = 0
            }
        }
        let coordinator = try await cluster.coordinator(for: groupId)
        let joinVersion = try coordinator.version(.joinGroup, 0...9)
        let stillOwned = state.withLock { $0.order }
        var joined: JoinGroupResponse?
        for _ in 0..<5 {
            let memberId = state.withLock { $0.group.memberId }
            let request = JoinGroupRequest(
                groupId: groupId, sessionTimeoutMs: config.sessionTimeoutMs, rebalanceTimeoutMs: config.rebalanceTimeoutMs, memberId: memberId,
                groupInstanceId: config.groupInstanceId, protocolType: "consumer",
                protocols: config.assignors.map { .init(name: $0.name, metadata: ConsumerProtocol.encodeSubscription(topics: topics, owned: stillOwned, generation: generation)) })
            let response = try await coordinator.send(request, version: joinVersion)
            switch KafkaErrorCode(response.errorCode) {
            case .none:
                joined = response
            case .memberIdRequired:
                state.withLock { $0.group.memberId = response.memberId }
                continue
            case .unknownMemberId:
                state.withLock { $0.group.memberId = "" }
                continue
            case .rebalanceInProgress:
                continue
            case let code:
                throw KafkaClientError.broker(code: code, message: nil, broker: coordinator.nodeId, topicPartition: nil)
            }
            break
        }
        guard let joined else { throw KafkaClientError.broker(code: .rebalanceInProgress, message: "could not join", broker: nil, topicPartition: nil) }
        state.withLock { s in
            s.group.memberId = joined.memberId
            s.group.generation = joined.generationId
            s.group.protocolName = joined.protocolName
            s.group.leader = joined.leader == joined.memberId
        }
        var assignments: [SyncGroupRequest.SyncGroupRequestAssignment] = []
        let assignorName = joined.protocolName ?? preferredAssignor.name
        let assignor = config.assignors.first { $0.name == assignorName } ?? preferredAssignor
        if joined.leader == joined.memberId && !joined.skipAssignment {
            let subscriptions = joined.members.compactMap { GroupSubscription(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, metadata: $0.metadata) }
            let allTopics = Array(Set(subscriptions.flatMap(\.topics)))
            let metadata = try await cluster.refreshMetadata(topics: allTopics)
            let counts = Dictionary(uniqueKeysWithValues: allTopics.compactMap { t in metadata.topics[t].map { (t, Int32($0.partitions.count)) } })
            let plan = assignor.assign(members: subscriptions, partitionCounts: counts)
            assignments = subscriptions.map { .init(memberId: $0.memberId, assignment: ConsumerProtocol.encodeAssignment(plan[$0.memberId] ?? [])) }
        }
        let syncVersion = try coordinator.version(.syncGroup, 0...5)
        let sync = try await coordinator.send(SyncGroupRequest(groupId: groupId, generationId: joined.generationId, memberId: joined.memberId,
                                                               groupInstanceId: config.groupInstanceId, protocolType: "consumer",
                                                               protocolName: joined.protocolName, assignments: assignments), version: syncVersion)
        switch KafkaErrorCode(sync.errorCode) {
        case .none: break
        case .rebalanceInProgress:
            return
        case .unknownMemberId, .illegalGeneration:
            state.withLock { s in s.group.memberId = ""; s.group.generation = -1 }
            return
        case let code:
            throw KafkaClientError.broker(code: code, message: nil, broker: coordinator.nodeId, topicPartition: nil)
        }
        let assigned: [TopicPartition]
        do {
            assigned = try ConsumerProtocol.decodeAssignment(sync.assignment)
        } catch {
            config.client.logger.error("the group leader's assignment cannot be decoded; taking no partitions", metadata: [
                "group": "\(groupId)", "error": "\(error)",
            ])
            assigned = []
        }
        let previous = Set(state.withLock { $0.order })
        let revoked = previous.subtracting(assigned).sorted()
        let added = assigned.filter { !previous.contains($0) }
        if !revoked.isEmpty {
            if config.enableAutoCommit {
                await autoCommit(state.withLock { s in
                    Dictionary(uniqueKeysWithValues: revoked.compactMap { tp in s.partitions[tp]?.position.map { (tp, $0) } })
                }, reason: "partitions revoked")
            }
            await listener?.onRevoked(revoked)
        }
        state.withLock { s in
            s.partitions = Dictionary(uniqueKeysWithValues: assigned.map { ($0, s.partitions[$0] ?? PartitionState()) })
            s.order = assigned
            s.chunks.removeAll { !assigned.contains($0.tp) }
            s.bufferedBytes = s.chunks.reduce(0) { $0 + $1.bytes }
            // A cooperative member that gave partitions up rejoins at once so they can move.
            s.group.rejoin = assignor.isCooperative && !revoked.isEmpty
        }
        await initializePositions(added)
        if !added.isEmpty { await listener?.onAssigned(added) }
        fetch()
    }
}
