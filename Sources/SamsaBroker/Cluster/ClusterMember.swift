import KafkaProtocol
import KafkaWire
import Logging
import NIOCore
import SamsaController
import SamsaMetadata
import SamsaStorage
import Synchronization

/// This broker's part in a cluster (ZooKeeper mode): it applies the controller's LeaderAndIsr,
/// UpdateMetadata and StopReplica requests (fenced by the controller epoch), runs the replica
/// fetchers of the partitions it follows, proposes ISR changes of the partitions it leads
/// (AlterPartition to the controller) and moves its leadership away before it stops
/// (ControlledShutdown).
public final class ClusterMember: Sendable {
    let brokerId: Int32
    let config: BrokerConfig
    let cache: MetadataCache
    let replicas: ReplicaManager
    let topics: TopicManager
    let metadata: ClusterMetadataStore
    let fetchers: ReplicaFetcherManager
    let group: any EventLoopGroup
    let logger: Logger
    private let fence = Mutex(ControllerEpochFence())
    /// This broker's epoch: its registration's timestamp (a new registration is a new epoch).
    let brokerEpoch = Atomic<Int64>(-1)
    /// Called when this broker starts or stops leading a partition (group coordinator loading).
    let leadershipListener = Mutex<(@Sendable (TopicPartition, _ isLeader: Bool) -> Void)?>(nil)
    private let controllerChannel = Mutex<(id: Int32, channel: InterBrokerChannel)?>(nil)
    private let lagMaxMs: Int64

    init(brokerId: Int32, config: BrokerConfig, cache: MetadataCache, replicas: ReplicaManager, topics: TopicManager,
         metadata: ClusterMetadataStore, group: any EventLoopGroup, logger: Logger) {
        self.brokerId = brokerId
        self.config = config
        self.cache = cache
        self.replicas = replicas
        self.topics = topics
        self.metadata = metadata
        self.group = group
        self.logger = logger
        self.lagMaxMs = config.int64("replica.lag.time.max.ms") ?? 30_000
        var settings = ReplicaFetcher.Settings()
        settings.maxWaitMs = Int32(config.int("replica.fetch.wait.max.ms") ?? 500)
        settings.minBytes = Int32(config.int("replica.fetch.min.bytes") ?? 1)
        settings.partitionMaxBytes = Int32(config.int("replica.fetch.max.bytes") ?? 1 << 20)
        settings.maxBytes = Int32(config.int("replica.fetch.response.max.bytes") ?? 10 << 20)
        settings.backoffMs = Int64(config.int("replica.fetch.backoff.ms") ?? 1000)
        self.fetchers = ReplicaFetcherManager(brokerId: brokerId, cache: cache, replicas: replicas, group: group, settings: settings, logger: logger)
        replicas.isrChangeRequested.withLock { $0 = { [weak self] partition, isr in self?.proposeIsr(partition, isr) } }
    }

    private func admit(_ controllerEpoch: Int32, brokerEpoch requestEpoch: Int64) -> KafkaErrorCode {
        let mine = brokerEpoch.load(ordering: .relaxed)
        if requestEpoch >= 0, mine >= 0, requestEpoch < mine { return .staleBrokerEpoch }
        return fence.withLock { $0.admit(controllerEpoch) }
    }

    // MARK: LeaderAndIsr

    func leaderAndIsr(_ request: LeaderAndIsrRequest) async -> LeaderAndIsrResponse {
        var response = LeaderAndIsrResponse()
        let code = admit(request.controllerEpoch, brokerEpoch: request.brokerEpoch)
        guard code == .none else {
            logger.warning("ignoring LeaderAndIsr from controller \(request.controllerId) epoch \(request.controllerEpoch): \(code)")
            response.errorCode = code.rawValue
            return response
        }
        for topic in request.topicStates {
            var errors: [LeaderAndIsrResponse.LeaderAndIsrPartitionError] = []
            let configs = await topicConfigs(topic.topicName)
            let record = TopicRecord(name: topic.topicName, topicId: topic.topicId, configs: configs, partitions: [])
            let logConfig = topics.logConfig(for: record)
            let minIsr = config.topicValue("min.insync.replicas", overrides: configs).flatMap { Int($0.trimmingSpaces) } ?? 1
            for ps in topic.partitionStates {
                let tp = TopicPartition(topic.topicName, ps.partitionIndex)
                var code = KafkaErrorCode.none
                do {
                    try apply(ps, tp: tp, topicId: topic.topicId, logConfig: logConfig, minIsr: minIsr)
                } catch let e as KafkaError {
                    code = e.code
                } catch {
                    logger.error("cannot apply LeaderAndIsr for \(tp): \(error)")
                    let e = KafkaError.from(error).code
                    code = e == .unknownServerError ? .kafkaStorageError : e
                }
                errors.append(.init(partitionIndex: ps.partitionIndex, errorCode: code.rawValue))
            }
            response.topics.append(.init(topicId: topic.topicId, partitionErrors: errors))
        }
        return response
    }

    private func apply(_ ps: LeaderAndIsrRequest.LeaderAndIsrPartitionState, tp: TopicPartition, topicId: KafkaUUID, logConfig: LogConfig, minIsr: Int) throws {
        let leadership = PartitionLeadership(partition: ps.partitionIndex, leader: ps.leader, leaderEpoch: ps.leaderEpoch,
                                             replicas: ps.replicas, isr: ps.isr, controllerEpoch: ps.controllerEpoch)
        guard ps.replicas.contains(brokerId) else { throw KafkaError(.unknownTopicOrPartition, "not a replica") }
        if let existing = replicas.partition(tp) {
            let current = existing.leadership
            if ps.leaderEpoch < current.leaderEpoch { throw KafkaError(.fencedLeaderEpoch, "leader epoch \(ps.leaderEpoch) < \(current.leaderEpoch)") }
            if ps.leaderEpoch == current.leaderEpoch, ps.partitionEpoch <= existing.partitionEpoch, current.leader == ps.leader,
               existing.isLeader || current.leader < 0 || fetchers.isFetching(tp) {
                return  // already applied
            }
        }
        let wasLeader = replicas.partition(tp)?.isLeader ?? false
        let partition = try replicas.getOrCreatePartition(tp, topicId: topicId, config: logConfig, leadership: leadership, minInsyncReplicas: minIsr)
        if ps.leader == brokerId {
            fetchers.remove([tp])
            partition.makeLeader(leadership, partitionEpoch: ps.partitionEpoch)
            logger.info("leading \(tp) at epoch \(ps.leaderEpoch)", metadata: ["isr": "\(ps.isr)", "log end": "\(partition.log.logEndOffset)",
                                                                             "high watermark": "\(partition.log.highWatermark)"])
            // Coordinators load a partition once, when it becomes theirs (a new epoch of the same
            // leader keeps what is loaded).
            if !wasLeader { leadershipListener.withLock { $0 }?(tp, true) }
        } else {
            partition.makeFollower(leadership, partitionEpoch: ps.partitionEpoch)
            replicas.producePurgatory.leadershipLost(tp)
            if wasLeader { leadershipListener.withLock { $0 }?(tp, false) }
            fetchers.add(partition, leader: ps.leader, leaderEpoch: ps.leaderEpoch)
            logger.debug("following \(tp) (leader \(ps.leader), epoch \(ps.leaderEpoch))")
        }
    }

    /// A topic's config overrides: from the metadata cache, else from ZooKeeper.
    private func topicConfigs(_ name: String) async -> [String: String] {
        if let t = cache.topic(name) { return t.configs }
        do {
            if let t = try await metadata.topic(name) { return t.configs }
        } catch {
            logger.warning("cannot read the configs of \(name): \(error); using the broker defaults")
        }
        return [:]
    }

    // MARK: UpdateMetadata

    private let metadataReceived = Atomic<Bool>(false)

    /// Waits (up to `timeoutMs`) for the controller's first UpdateMetadata: by then the LeaderAndIsr
    /// sent before it has been applied too, so this broker serves its partitions.
    func waitForControllerMetadata(timeoutMs: Int64) async -> Bool {
        let deadline = monotonicMillis() + timeoutMs
        while !metadataReceived.load(ordering: .acquiring) {
            if monotonicMillis() >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    func updateMetadata(_ request: UpdateMetadataRequest) async -> UpdateMetadataResponse {
        let code = admit(request.controllerEpoch, brokerEpoch: request.brokerEpoch)
        guard code == .none else { return UpdateMetadataResponse(errorCode: code.rawValue) }
        defer { metadataReceived.store(true, ordering: .releasing) }
        let brokers = request.liveBrokers.map { b -> BrokerRegistration in
            let endpoint = b.endpoints.first
            return BrokerRegistration(id: b.id, host: endpoint?.host ?? b.v0Host, port: endpoint?.port ?? b.v0Port, rack: b.rack)
        }
        let snapshot = cache.snapshot
        cache.setCluster(id: snapshot.clusterId, controllerId: request.controllerId, brokers: brokers.sorted { $0.id < $1.id })
        for topic in request.topicStates {
            var partitions = cache.topic(topic.topicName)?.partitions ?? []
            var configs = cache.topic(topic.topicName)?.configs
            var deleted = false
            for ps in topic.partitionStates {
                if ps.leader == leaderDuringDelete { deleted = true; break }
                let l = PartitionLeadership(partition: ps.partitionIndex, leader: ps.leader, leaderEpoch: ps.leaderEpoch,
                                            replicas: ps.replicas, isr: ps.isr, controllerEpoch: ps.controllerEpoch)
                let i = Int(ps.partitionIndex)
                while partitions.count <= i {
                    partitions.append(PartitionLeadership(partition: Int32(partitions.count), leader: -1, leaderEpoch: -1, replicas: [], isr: []))
                }
                partitions[i] = l
            }
            if deleted {
                cache.remove(topic.topicName)
                continue
            }
            if configs == nil { configs = await topicConfigs(topic.topicName) }
            cache.put(TopicRecord(name: topic.topicName, topicId: topic.topicId, configs: configs ?? [:], partitions: partitions))
        }
        return UpdateMetadataResponse(errorCode: 0)
    }

    // MARK: StopReplica

    func stopReplica(_ request: StopReplicaRequest) async -> StopReplicaResponse {
        var response = StopReplicaResponse()
        let code = admit(request.controllerEpoch, brokerEpoch: request.brokerEpoch)
        guard code == .none else {
            response.errorCode = code.rawValue
            return response
        }
        for topic in request.topicStates {
            for ps in topic.partitionStates {
                let tp = TopicPartition(topic.topicName, ps.partitionIndex)
                fetchers.remove([tp])
                var code = KafkaErrorCode.none
                if let p = replicas.partition(tp), p.isLeader { leadershipListener.withLock { $0 }?(tp, false) }
                do {
                    try replicas.stopReplica(tp, delete: ps.deletePartition)
                    if ps.deletePartition { logger.info("deleted replica \(tp)") }
                } catch {
                    logger.error("StopReplica of \(tp) failed: \(error)")
                    code = .kafkaStorageError
                }
                response.partitionErrors.append(.init(topicName: tp.topic, partitionIndex: tp.partition, errorCode: code.rawValue))
            }
        }
        return response
    }

    // MARK: ISR changes (AlterPartition)

    /// Periodic: partitions this broker leads drop followers that lag more than `replica.lag.time.max.ms`.
    func checkIsrShrink() {
        for partition in replicas.allPartitions where partition.isLeader {
            if let isr = partition.shrinkIsrIfNeeded(lagMs: lagMaxMs) {
                logger.info("shrinking the ISR of \(partition.topicPartition) from \(partition.leadership.isr) to \(isr)")
                proposeIsr(partition, isr)
            }
        }
    }

    private func proposeIsr(_ partition: Partition, _ isr: [Int32]) {
        Task { await self.sendAlterPartition(partition, isr) }
    }

    private func sendAlterPartition(_ partition: Partition, _ isr: [Int32]) async {
        let l = partition.leadership
        let tp = partition.topicPartition
        let request = AlterPartitionRequest(brokerId: brokerId, brokerEpoch: brokerEpoch.load(ordering: .relaxed), topics: [
            .init(topicName: tp.topic, partitions: [.init(partitionIndex: tp.partition, leaderEpoch: l.leaderEpoch, newIsr: isr, partitionEpoch: partition.partitionEpoch)]),
        ])
        do {
            let response = try await sendToController(request, version: 1, timeoutMs: 5000)
            let result = response.topics.first?.partitions.first
            let code = KafkaErrorCode(rawValue: result?.errorCode ?? response.errorCode)
            if response.errorCode == 0, let r = result, code == .none {
                partition.isrChangeCompleted(PartitionLeadership(partition: tp.partition, leader: r.leaderId, leaderEpoch: r.leaderEpoch,
                                                                 replicas: l.replicas, isr: r.isr, controllerEpoch: l.controllerEpoch),
                                             partitionEpoch: r.partitionEpoch)
                if r.isr != l.isr { logger.info("ISR of \(tp) is now \(r.isr)") }
            } else {
                logger.info("ISR change of \(tp) to \(isr) refused: \(code)")
                partition.isrChangeCompleted(nil, partitionEpoch: partition.partitionEpoch)
            }
        } catch {
            logger.debug("AlterPartition for \(tp) failed: \(error)")
            partition.isrChangeCompleted(nil, partitionEpoch: partition.partitionEpoch)
        }
    }

    /// Sends a request to the current controller (as the metadata cache knows it).
    func sendToController<R: KafkaRequest>(_ request: R, version: Int16, timeoutMs: Int64 = 30_000) async throws -> R.Response {
        let snapshot = cache.snapshot
        let id = snapshot.controllerId
        guard id >= 0, let broker = snapshot.brokers.first(where: { $0.id == id }) else {
            throw InterBrokerError(description: "no controller known")
        }
        let existing = controllerChannel.withLock { c -> InterBrokerChannel? in
            guard let c, c.id == id, c.channel.isActive else { return nil }
            return c.channel
        }
        let channel: InterBrokerChannel
        if let existing {
            channel = existing
        } else {
            channel = try await InterBrokerChannel.connect(host: broker.host, port: Int(broker.port), clientId: "samsa-broker-\(brokerId)", group: group)
            let old = controllerChannel.withLock { c -> InterBrokerChannel? in
                defer { c = (id, channel) }
                return c?.channel
            }
            old?.close()
        }
        return try await channel.send(request, version: version, timeoutMs: timeoutMs)
    }

    // MARK: Controlled shutdown

    /// Asks the controller to move this broker's leadership away (`controlled.shutdown.enable`),
    /// retrying until nothing is left or the retries run out.
    func controlledShutdown() async {
        guard config.string("controlled.shutdown.enable") != "false" else { return }
        let retries = config.int("controlled.shutdown.max.retries") ?? 3
        let backoff = config.int64("controlled.shutdown.retry.backoff.ms") ?? 5000
        for attempt in 0...retries {
            do {
                let response = try await sendToController(ControlledShutdownRequest(brokerId: brokerId, brokerEpoch: brokerEpoch.load(ordering: .relaxed)),
                                                          version: 3, timeoutMs: 30_000)
                let code = KafkaErrorCode(rawValue: response.errorCode)
                if code == .none, response.remainingPartitions.isEmpty {
                    // The controller decided; wait (briefly) until its LeaderAndIsr reached this broker
                    // too, so that it stops taking writes before its listener closes.
                    let deadline = monotonicMillis() + 3000
                    while monotonicMillis() < deadline,
                          replicas.allPartitions.contains(where: { $0.isLeader && $0.leadership.replicas.count > 1 && $0.leadership.isr.count > 1 }) {
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                    logger.info("controlled shutdown: leadership moved away")
                    return
                }
                logger.info("controlled shutdown attempt \(attempt + 1): \(code), \(response.remainingPartitions.count) partition(s) still led here")
            } catch {
                logger.warning("controlled shutdown attempt \(attempt + 1) failed: \(error)")
            }
            if attempt < retries { try? await Task.sleep(for: .milliseconds(min(backoff, 2000))) }
        }
        logger.warning("controlled shutdown did not complete; stopping anyway")
    }

    private let configWatch = Mutex<Task<Void, Never>?>(nil)

    /// Follows `/config/changes`: a topic whose configs changed on another broker is re-read and
    /// applied here (its logs and the metadata cache).
    func watchConfigChanges(_ store: ZooKeeperCoordinationStore) {
        let task = Task { [self] in
            var seen = Set((try? await store.children(ClusterMetadataStore.configChangesPath)) ?? [])
            for await _ in store.childChanges(of: ClusterMetadataStore.configChangesPath) {
                guard let children = try? await store.children(ClusterMetadataStore.configChangesPath) else { continue }
                for child in children where !seen.contains(child) {
                    seen.insert(child)
                    do {
                        guard let name = try await metadata.configChangeTopic(child), let record = try await metadata.topic(name) else { continue }
                        try topics.apply(record)
                        logger.info("configs of \(name) changed", metadata: ["configs": "\(record.configs)"])
                    } catch {
                        logger.warning("cannot apply config change \(child): \(error)")
                    }
                }
            }
        }
        configWatch.withLock { $0 = task }
    }

    func shutdown() {
        configWatch.withLock { $0 }?.cancel()
        fetchers.shutdown()
        controllerChannel.withLock { $0 }?.channel.close()
    }
}

extension ReplicaFetcherManager {
    func isFetching(_ tp: TopicPartition) -> Bool { assignments.values.contains { $0.contains(tp) } }
}
