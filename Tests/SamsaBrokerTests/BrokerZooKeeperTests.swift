import Foundation
import Logging
import SamsaBroker
import SamsaMetadata
import Testing
import ZooKeeperTestSupport

/// A broker with `zookeeper.connect`, against a real ZooKeeper (scripts/zookeeper.sh) reached
/// through a proxy that can cut it off.
@Suite(.serialized) struct BrokerZooKeeperTests {
    @Test func brokerRegistersAgainAfterItsSessionExpired() async throws {
        let ensemble = try Ensemble(nodes: 1)
        defer { ensemble.shutdown() }
        let proxy = try PartitionProxy(target: ensemble.ports[0])
        defer { proxy.shutdown() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-zk-broker-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var logger = Logger(label: "test-broker")
        logger.logLevel = .warning
        let broker = try await Broker.start(config: try BrokerConfig([
            "listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": dir, "broker.id": "7",
            "zookeeper.connect": "127.0.0.1:\(proxy.port)/k", "zookeeper.session.timeout.ms": "2000",
            "zookeeper.connection.timeout.ms": "1000",
        ]), logger: logger)
        let observer = try await ZooKeeperCoordinationStore.connect(ensemble.connectString + "/k", sessionTimeoutMs: 6000)
        #expect(try await observer.children("/brokers/ids") == ["7"])
        let registration = String(decoding: try #require(try await observer.get("/brokers/ids/7")).data, as: UTF8.self)
        #expect(registration.contains("\"endpoints\":[\"PLAINTEXT://127.0.0.1:\(broker.boundPort)\"]"))

        // Cut off past its session timeout: the ensemble expires the session and drops the registration.
        try proxy.cut()
        #expect(await eventually { ((try? await observer.children("/brokers/ids")) ?? ["?"]).isEmpty })
        try proxy.restore()
        // Back in touch, the broker learns of the expiry and registers again in a new session.
        #expect(await eventually { ((try? await observer.children("/brokers/ids")) ?? []) == ["7"] })
        let again = String(decoding: try #require(try await observer.get("/brokers/ids/7")).data, as: UTF8.self)
        #expect(again.contains("\"port\":\(broker.boundPort)"))

        // A clean shutdown ends the session: the registration goes at once.
        await broker.shutdown()
        #expect(try await observer.children("/brokers/ids") == [])
        await observer.close()
    }
}
