#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import SamsaCoordination
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
    private let sessionWatcher = Mutex<Task<Void, Never>?>(nil)

    private init(store: any CoordinationStore, zookeeper: ZooKeeperCoordinationStore?) {
        self.store = store
        self.zookeeper = zookeeper
    }

    static func open(config: BrokerConfig, logger: Logger) async throws -> BrokerCoordination {
        guard let connect = config.zookeeperConnect else {
            return BrokerCoordination(store: try EmbeddedCoordinationStore(file: config.logDir + "/samsa-cluster-metadata.json"), zookeeper: nil)
        }
        let zk = try await ZooKeeperCoordinationStore.connect(connect, sessionTimeoutMs: config.zookeeperSessionTimeoutMs,
                                                             connectionTimeoutMs: config.zookeeperConnectionTimeoutMs)
        let coordination = BrokerCoordination(store: zk, zookeeper: zk)
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
        do {
            try await zookeeper.registerEphemeral(path, data: ClusterMetadataStore.brokerJSON(r, timestampMs: Int64(Date().timeIntervalSince1970 * 1000)))
        } catch CoordinationError.nodeExists {
            await close()
            throw ConfigError("broker.id \(r.id) is already registered by a live broker (\(path) in ZooKeeper at \(zookeeper.connectString)); stop that broker or choose another broker.id")
        }
        registered.withLock { $0 = r }
    }

    /// `meta.properties` in the log dir: written the first time; afterwards it must name this
    /// cluster and this broker id (ZooKeeper mode, as Kafka checks it).
    func checkLogDir(_ logDir: String, clusterId: String, brokerId: Int32) async throws {
        guard zookeeper != nil else { return }
        do { try writeOrCheckMetaProperties(logDir, clusterId: clusterId, brokerId: brokerId) } catch {
            await close()
            throw error
        }
    }

    private func writeOrCheckMetaProperties(_ logDir: String, clusterId: String, brokerId: Int32) throws {
        let path = logDir + "/meta.properties"
        if let data = FileManager.default.contents(atPath: path) {
            let props = BrokerConfig.parseProperties(String(decoding: data, as: UTF8.self))
            if let c = props["cluster.id"], c != clusterId {
                throw ConfigError("log dir \(logDir) belongs to cluster \(c), but ZooKeeper holds cluster \(clusterId) (\(path))")
            }
            if let b = props["broker.id"], Int32(b.trimmingSpaces) != brokerId {
                throw ConfigError("log dir \(logDir) belongs to broker.id \(b), but this broker has broker.id \(brokerId) (\(path))")
            }
            return
        }
        let text = "#\n#\(Date())\ncluster.id=\(clusterId)\nversion=0\nbroker.id=\(brokerId)\n"
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
            throw ConfigError("cannot write \(path)")
        }
    }

    func close() async {
        sessionWatcher.withLock { $0 }?.cancel()
        await zookeeper?.close()
    }
}
