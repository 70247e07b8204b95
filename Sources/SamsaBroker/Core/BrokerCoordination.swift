#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import KafkaWire
import Logging
import SamsaMetadata
import SamsaStorage
import Synchronization

extension BrokerConfig {
    /// Kafka's `zookeeper.session.timeout.ms` (18000).
    public var zookeeperSessionTimeoutMs: Int { int("zookeeper.session.timeout.ms") ?? 18_000 }
    /// Kafka's `zookeeper.connection.timeout.ms` (default: the session timeout).
    public var zookeeperConnectionTimeoutMs: Int { int("zookeeper.connection.timeout.ms") ?? zookeeperSessionTimeoutMs }
}

/// The broker's coordination store: embedded (no `zookeeper.connect`, a single node, unchanged) or
/// a ZooKeeper ensemble. With ZooKeeper, the broker registers `/brokers/ids/<id>` as an ephemeral
/// node of its session in Kafka's JSON, refuses to start when a live broker holds its id, checks
/// `meta.properties` in its log dir, and registers again after its session expired.
final class BrokerCoordination: Sendable {
    let store: any CoordinationStore
    let zookeeper: ZooKeeperCoordinationStore?
    private let registered = Mutex<BrokerRegistration?>(nil)
    /// Called with the broker epoch (the registration's timestamp) after every registration.
    let onRegistered = Mutex<(@Sendable (Int64) -> Void)?>(nil)
    private let sessionWatcher = Mutex<Task<Void, Never>?>(nil)

    private let sessionTimeoutMs: Int
    private let logger: Logger?

    private init(store: any CoordinationStore, zookeeper: ZooKeeperCoordinationStore?, sessionTimeoutMs: Int = 0, logger: Logger? = nil) {
        self.store = store
        self.zookeeper = zookeeper
        self.sessionTimeoutMs = sessionTimeoutMs
        self.logger = logger
    }

    static func open(config: BrokerConfig, logger: Logger) async throws -> BrokerCoordination {
        guard let connect = config.zookeeperConnect else {
            return BrokerCoordination(store: try EmbeddedCoordinationStore(file: config.logDir + "/samsa-cluster-metadata.json"), zookeeper: nil)
        }
        let zk = try await ZooKeeperCoordinationStore.connect(connect, sessionTimeoutMs: config.zookeeperSessionTimeoutMs,
                                                             connectionTimeoutMs: config.zookeeperConnectionTimeoutMs)
        let coordination = BrokerCoordination(store: zk, zookeeper: zk, sessionTimeoutMs: config.zookeeperSessionTimeoutMs, logger: logger)
        let states = zk.sessionStates()
        let task = Task { [weak coordination] in
            var expired = false
            for await state in states {
                switch state {
                case .expired:
                    expired = true
                    logger.warning("ZooKeeper session expired; registering again once reconnected", metadata: ["zookeeper": "\(connect)"])
                case .connected where expired:
                    expired = false
                    guard let coordination, let r = coordination.registered.withLock({ $0 }) else { continue }
                    do {
                        try await coordination.register(r, metadata: ClusterMetadataStore(store: zk))
                        logger.info("registered again as broker \(r.id) in a new ZooKeeper session")
                    } catch {
                        logger.error("cannot register again after the ZooKeeper session expired: \(error)")
                    }
                case .disconnected:
                    logger.warning("disconnected from ZooKeeper; reconnecting", metadata: ["zookeeper": "\(connect)"])
                default:
                    break
                }
            }
        }
        coordination.sessionWatcher.withLock { $0 = task }
        return coordination
    }

    /// Registers this broker: embedded as before; ZooKeeper as Kafka does (ephemeral, Kafka's JSON).
    func register(_ r: BrokerRegistration, metadata: ClusterMetadataStore) async throws {
        guard let zookeeper else {
            try await metadata.registerBroker(r)
            return
        }
        let path = "/brokers/ids/\(r.id)"
        // A broker killed a moment ago still holds its registration until its session expires:
        // wait that long before concluding that a live broker has this id.
        let deadline = monotonicMillis() + Int64(sessionTimeoutMs) + 2000
        var waited = false
        while true {
            let epoch = Int64(Date().timeIntervalSince1970 * 1000)
            do {
                onRegistered.withLock { $0 }?(epoch)
                try await zookeeper.registerEphemeral(path, data: ClusterMetadataStore.brokerJSON(r, timestampMs: epoch))
                break
            } catch CoordinationError.nodeExists {
                if monotonicMillis() < deadline {
                    if !waited { logger?.notice("\(path) is held by another ZooKeeper session; waiting up to \(sessionTimeoutMs) ms for it to expire") }
                    waited = true
                    try await Task.sleep(for: .milliseconds(500))
                    continue
                }
                await close()
                throw ConfigError("broker.id \(r.id) is already registered by a live broker (\(path) in ZooKeeper at \(zookeeper.connectString)); stop that broker or choose another broker.id")
            }
        }
        registered.withLock { $0 = r }
    }

    /// `meta.properties` in the log dir: written the first time; afterwards it must name this
    /// cluster and this broker id (as Kafka checks it), in both modes.
    func checkLogDir(_ logDir: String, clusterId: String, brokerId: Int32) async throws {
        do {
            if let meta = try MetaProperties.read(logDir: logDir) {
                if let problem = meta.mismatch(brokerId: brokerId, clusterId: clusterId, logDir: logDir) { throw ConfigError(problem) }
            } else {
                try MetaProperties(brokerId: brokerId, clusterId: clusterId).write(logDir: logDir)
            }
        } catch {
            await close()
            throw error
        }
    }

    func close() async {
        sessionWatcher.withLock { $0 }?.cancel()
        await zookeeper?.close()
    }
}
