import KafkaWire
import KafkaProtocol
import Logging
import NIOCore
import NIOPosix
import SamsaMetadata
import SamsaStorage
import Synchronization

/// Everything a request handler may use.
public struct BrokerServices: Sendable {
    public let config: BrokerConfig
    public let brokerId: Int32
    public let cache: MetadataCache
    public let replicas: ReplicaManager
    public let topics: TopicManager
    public let producerIds: ProducerIdManager
    public let logger: Logger
    /// In a cluster (ZooKeeper mode): this broker's replication role, and its controller driver.
    public let cluster: ClusterMember?
    public let controller: ControllerDriver?
}

extension BrokerServices {
    /// Who leads `tp` now, if another broker: this broker's own view (LeaderAndIsr) first, the
    /// metadata cache otherwise. For NOT_LEADER_OR_FOLLOWER answers (KIP-951).
    func currentLeader(of tp: TopicPartition) -> (id: Int32, epoch: Int32)? {
        if let l = replicas.partition(tp)?.leadership, l.leader >= 0, l.leader != brokerId { return (l.leader, l.leaderEpoch) }
        if let l = cache.partition(tp.topic, tp.partition), l.leader >= 0, l.leader != brokerId { return (l.leader, l.leaderEpoch) }
        return nil
    }
}

/// A Samsa broker: storage, coordination, the request handlers and the network listener.
public final class Broker: Sendable {
    public let config: BrokerConfig
    public let services: BrokerServices
    public let groups: GroupCoordinatorService
    public let boundPort: Int
    public let logManager: LogManager
    private let group: MultiThreadedEventLoopGroup
    private let server: KafkaServer
    private let flusher: Flusher
    private let maintenance: NIOThreadPool
    private let tasks: Mutex<[RepeatedTask]>
    private let logger: Logger
    private let stopped = Atomic<Bool>(false)
    private let coordination = Mutex<BrokerCoordination?>(nil)

    private init(config: BrokerConfig, services: BrokerServices, groups: GroupCoordinatorService, boundPort: Int, logManager: LogManager, group: MultiThreadedEventLoopGroup,
                 server: KafkaServer, flusher: Flusher, maintenance: NIOThreadPool, logger: Logger) {
        self.config = config
        self.services = services
        self.groups = groups
        self.boundPort = boundPort
        self.logManager = logManager
        self.group = group
        self.server = server
        self.flusher = flusher
        self.maintenance = maintenance
        self.tasks = Mutex([])
        self.logger = logger
    }

    /// Opens the data directory (recovering logs when the last run did not shut down cleanly),
    /// loads the cluster metadata and starts listening.
    public static func start(config: BrokerConfig, logger: Logger) async throws -> Broker {
        let started = monotonicMillis()
        let unused = config.unusedKeys
        if !unused.isEmpty {
            // As Kafka does with properties it does not know: warn, ignore, start anyway.
            logger.warning("these configs were supplied but are not used by this broker (unknown or unsupported; ignored): \(unused.joined(separator: ", "))")
        }
        let descriptors = try DescriptorLimit.check(logDir: config.logDir)
        let logManager = try LogManager(logDir: config.logDir)
        logManager.onEvent { event in
            switch event {
            case let .offline(path, reason):
                logger.critical("log directory \(path) is offline: its partitions answer KAFKA_STORAGE_ERROR until a restart", metadata: ["reason": "\(reason)"])
            case let .diskFull(path, free):
                logger.error("log directory \(path) is full: writes are refused (reads go on) until space is freed", metadata: ["free bytes": "\(free)"])
            case let .diskSpaceAvailable(path):
                logger.notice("log directory \(path) accepts writes again")
            }
        }
        let coordination = try await BrokerCoordination.open(config: config, logger: logger)  // embedded or ZooKeeper
        let store = coordination.store
        let metadataStore = ClusterMetadataStore(store: store)
        let brokerId = config.brokerId
        let advertised = config.advertised
        let group = MultiThreadedEventLoopGroup(numberOfThreads: config.networkThreads ?? System.coreCount)
        let flusher = Flusher(logger: logger)
        let replicas = ReplicaManager(brokerId: brokerId, logManager: logManager, flusher: flusher)
        let cache = MetadataCache()
        let topics = TopicManager(store: metadataStore, cache: cache, replicas: replicas, config: config)
        var cluster: ClusterMember?
        var controller: ControllerDriver?
        if let zk = coordination.zookeeper {
            let member = ClusterMember(brokerId: brokerId, config: config, cache: cache, replicas: replicas, topics: topics,
                                       metadata: metadataStore, group: group, logger: logger)
            coordination.onRegistered.withLock { $0 = { epoch in member.brokerEpoch.store(epoch, ordering: .relaxed) } }
            cluster = member
            controller = ControllerDriver(brokerId: brokerId, store: zk, group: group, config: config, logger: logger)
        }
        let services = BrokerServices(config: config, brokerId: brokerId, cache: cache, replicas: replicas, topics: topics,
                                      producerIds: ProducerIdManager(store: metadataStore, brokerId: brokerId), logger: logger,
                                      cluster: cluster, controller: controller)

        // Storage first: every partition folder, with recovery where needed.
        let records = try await topics.loadAll()
        let overrides = Dictionary(records.map { ($0.name, $0.configs) }, uniquingKeysWith: { a, _ in a })
        let reports = try logManager.loadAll { tp in config.logConfig(overrides: overrides[tp.topic] ?? [:]) }
        for (tp, report) in reports.sorted(by: { $0.key < $1.key }) where report.bytesTruncated > 0 || report.segmentsScanned > 0 {
            logger.info("recovered \(tp)", metadata: ["segments scanned": "\(report.segmentsScanned)", "batches": "\(report.batchesScanned)",
                                                     "bytes truncated": "\(report.bytesTruncated)"])
        }
        // The log cleaner (compacted topics): one background thread, stopped by logManager.shutdown().
        if config.bool("log.cleaner.enable") {
            logManager.startCleaner(config.cleanerConfig) { error in logger.warning("log cleaner: \(error)") }
        }

        // Then the cluster: id, this broker, topics.
        let clusterId = try await metadataStore.clusterId()
        try await coordination.checkLogDir(config.logDir, clusterId: clusterId, brokerId: brokerId)
        try await coordination.register(BrokerRegistration(id: brokerId, host: advertised.host, port: Int32(advertised.port), rack: config.rack), metadata: metadataStore)
        cache.setCluster(id: clusterId, controllerId: cluster == nil ? brokerId : -1, brokers: try await metadataStore.brokers())
        // A single node leads everything it holds; in a cluster, the controller's LeaderAndIsr says.
        if cluster == nil {
            for record in records { try topics.apply(record) }
        } else {
            // Until the controller's UpdateMetadata arrives, clients see the topics as ZooKeeper
            // last recorded them (rather than none).
            for record in records { cache.put(record) }
        }
        let known = Set(records.flatMap { r in r.replicas.indices.map { TopicPartition(r.name, Int32($0)) } })
        for stray in logManager.partitions where !known.contains(stray) {
            logger.warning("partition folder \(stray.directoryName) belongs to no known topic; it is kept but not served")
        }

        let groups = GroupCoordinatorService(services: services, config: GroupCoordinatorService.config(from: config), eventLoop: group.next())
        cluster?.leadershipListener.withLock { $0 = { tp, isLeader in groups.leadershipChanged(tp, isLeader: isLeader) } }
        // Before listening: every offsets partition this broker leads answers
        // COORDINATOR_LOAD_IN_PROGRESS until replayed, never "no committed offset".
        groups.prepareLoading()
        var registry = HandlerRegistry()
        registerHandlers(&registry, services: services, groups: groups)
        if let cluster, let controller { registerClusterHandlers(&registry, cluster: cluster, controller: controller, services: services) }
        let server = KafkaServer(group: group, registry: registry, limits: config.serverLimits, logger: logger)
        let listener = config.listener
        let port = try await server.start(host: listener.host, port: listener.port)
        if advertised.port == 0 {
            // Listening on an ephemeral port (tests): advertise the port actually bound.
            try await coordination.register(BrokerRegistration(id: brokerId, host: advertised.host, port: Int32(port), rack: config.rack), metadata: metadataStore)
            cache.setCluster(id: clusterId, controllerId: cluster == nil ? brokerId : -1, brokers: try await metadataStore.brokers())
        }
        controller?.start()
        if let zk = coordination.zookeeper { cluster?.watchConfigChanges(zk) }
        if let cluster {
            // Report "started" once the controller has told this broker what it leads and follows.
            let waitMs = Int64(config.zookeeperSessionTimeoutMs) + 5000
            if !(await cluster.waitForControllerMetadata(timeoutMs: waitMs)) {
                logger.warning("no metadata from the controller after \(waitMs) ms; serving what ZooKeeper recorded until it comes")
            }
        }
        let maintenance = NIOThreadPool(numberOfThreads: 1)
        maintenance.start()
        let broker = Broker(config: config, services: services, groups: groups, boundPort: port, logManager: logManager, group: group,
                            server: server, flusher: flusher, maintenance: maintenance, logger: logger)
        broker.coordination.withLock { $0 = coordination }
        broker.scheduleMaintenance()
        // Consumer groups are rebuilt from __consumer_offsets while the broker already serves;
        // their requests answer COORDINATOR_LOAD_IN_PROGRESS until then.
        maintenance.submit { _ in groups.loadAll() }
        logger.info("samsa broker \(brokerId) started", metadata: [
            "listening": "\(listener.host):\(port)", "advertised": "\(advertised.host):\(advertised.port == 0 ? port : advertised.port)",
            "data": "\(config.logDir)", "cluster": "\(clusterId)", "partitions": "\(logManager.partitions.count)",
            "startup ms": "\(monotonicMillis() - started)", "open file limit": "\(descriptors.limit)",
        ])
        return broker
    }

    /// Retention, time-based flushes and offset checkpoints, run off the event loops.
    private func scheduleMaintenance() {
        let loop = group.next()
        let replicas = services.replicas, logManager = self.logManager, logger = self.logger, flusher = self.flusher
        func every(_ ms: Int64, _ work: @escaping @Sendable () throws -> Void) -> RepeatedTask {
            loop.scheduleRepeatedTask(initialDelay: .milliseconds(ms), delay: .milliseconds(ms)) { [maintenance] _ in
                maintenance.submit { state in
                    guard state == .active else { return }
                    do { try work() } catch { logger.error("maintenance failed: \(error)") }
                }
            }
        }
        var scheduled: [RepeatedTask] = []
        scheduled.append(every(config.retentionCheckIntervalMs) {
            for partition in replicas.allPartitions {
                try partition.log.rollIfExpired()
                let deleted = try partition.log.applyRetention()
                if deleted > 0 {
                    logger.info("retention deleted \(deleted) segment(s) of \(partition.topicPartition)",
                                metadata: ["log start offset": "\(partition.log.logStartOffset)"])
                }
            }
        })
        scheduled.append(every(config.flushSchedulerIntervalMs) {
            let due = replicas.allPartitions.map(\.log).filter { $0.needsFlush() }
            if !due.isEmpty { _ = flusher.flush(due, on: loop) }
        })
        scheduled.append(every(max(config.checkpointIntervalMs, 1000)) { try logManager.checkpoint() })
        // producer.id.expiration.ms: idle producers' state is forgotten (Kafka's producer expiration).
        let producerExpirationMs = config.int64("producer.id.expiration.ms") ?? 86_400_000
        scheduled.append(every(config.int64("producer.id.expiration.check.interval.ms") ?? 600_000) {
            let now = currentTimeMillis()
            for partition in replicas.allPartitions {
                partition.log.removeExpiredProducers(now: now, expirationMs: producerExpirationMs)
            }
        })
        let groups = self.groups
        scheduled.append(every(config.int64("offsets.retention.check.interval.ms") ?? 600_000) { groups.expireOffsets() })
        scheduled.append(every(10_000) { groups.retryFailedLoads() })
        if let cluster = services.cluster {
            // ISR shrink: followers that stopped catching up leave the ISR (replica.lag.time.max.ms).
            let lag = config.int64("replica.lag.time.max.ms") ?? 30_000
            scheduled.append(loop.scheduleRepeatedTask(initialDelay: .milliseconds(lag / 2), delay: .milliseconds(max(lag / 2, 100))) { _ in
                cluster.checkIsrShrink()
            })
        }
        // Group session, join and sync timers.
        scheduled.append(loop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { _ in groups.tick() })
        tasks.withLock { $0 = scheduled }
    }

    /// Stops accepting requests, flushes every log and writes the checkpoints and the clean-shutdown marker.
    public func shutdown() async {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        logger.info("shutting down")
        if let cluster = services.cluster {
            // Controlled shutdown: leadership moves to other in-sync replicas while this broker still serves.
            await cluster.controlledShutdown()
        }
        await services.controller?.stop()
        services.cluster?.shutdown()
        services.replicas.producePurgatory.failAll()
        await server.stop()
        for task in tasks.withLock({ $0 }) { task.cancel() }
        try? await maintenance.shutdownGracefully()
        await flusher.shutdown()
        do { try logManager.shutdown() } catch { logger.error("clean shutdown failed: \(error)") }
        await coordination.withLock { $0 }?.close()
        try? await group.shutdownGracefully()
        logger.info("stopped cleanly")
    }
}
