import Foundation
import KafkaProtocol
import KafkaRecords
import Logging
import NIOCore
@testable import SamsaBroker

/// A temporary data directory, removed by `cleanup()`.
struct TempDir {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-broker-\(UUID().uuidString)").path
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// Starts an in-process broker on an ephemeral port with its data in `dir`.
func startBroker(dir: String, _ overrides: [String: String] = [:]) async throws -> Broker {
    var values = ["listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": dir, "group.initial.rebalance.delay.ms": "0",
                  "group.min.session.timeout.ms": "1000"]
    for (k, v) in overrides { values[k] = v }
    var logger = Logger(label: "test-broker")
    logger.logLevel = .critical
    return try await Broker.start(config: try BrokerConfig(values), logger: logger)
}

/// Polls `condition` until it holds or `seconds` pass (then records a failure through the return value).
func eventually(_ seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(10_000)
    }
    return try condition()
}

func batch(_ values: [String], key: String? = nil) -> ByteBuffer {
    var b = RecordBatchBuilder()
    for v in values { b.append(key: key.map { ByteBuffer(string: $0) }, value: ByteBuffer(string: v), timestamp: 1_700_000_000_000) }
    return b.build()
}
