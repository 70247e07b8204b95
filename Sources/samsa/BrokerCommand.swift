import ArgumentParser
import Dispatch
import Logging
import SamsaBroker
#if canImport(Glibc)
import Glibc
#endif

struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run a Samsa broker (single node, embedded coordination, data on disk).",
        discussion: """
            Settings come from a Kafka-style properties file and from flags; flags win. Kafka's
            names are used wherever Kafka has one (listeners, advertised.listeners, log.dirs,
            num.partitions, auto.create.topics.enable, log.segment.bytes, log.retention.ms,
            log.retention.bytes, message.max.bytes, log.flush.interval.messages, ...).
            SIGINT or SIGTERM shuts down cleanly: logs are flushed and the next start skips recovery.

            Examples:
              samsa broker                                   # 127.0.0.1:9092, data in ./samsa-data
              samsa broker --config server.properties
              samsa broker --listeners PLAINTEXT://0.0.0.0:9092 --advertised-listeners PLAINTEXT://host1:9092
              samsa broker -o num.partitions=6 -o log.retention.ms=3600000
              samsa broker -o log.flush.interval.messages=1   # fsync before acknowledging every produce
            """)

    @Option(name: .long, help: "A Kafka-style properties file (server.properties).")
    var config: String?

    @Option(name: .long, help: "Where to listen (default PLAINTEXT://127.0.0.1:9092).")
    var listeners: String?

    @Option(name: .long, help: "What clients are told to connect to (default: the listener).")
    var advertisedListeners: String?

    @Option(name: .long, help: "Data directory (default ./samsa-data).")
    var logDirs: String?

    @Option(name: .long, help: "This broker's id (default 0).")
    var brokerId: Int?

    @Option(name: [.customShort("o"), .long], help: ArgumentHelp("Set any config, as in server.properties (repeatable).", valueName: "key=value"))
    var override: [String] = []

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        var values: [String: String] = [:]
        if let config {
            guard let text = readTextFile(config) else { throw ValidationError("cannot read \(config)") }
            values = BrokerConfig.parseProperties(text)
        }
        for item in override {
            guard let eq = item.firstIndex(of: "=") else { throw ValidationError("--override expects key=value, got '\(item)'") }
            values[String(item[..<eq])] = String(item[item.index(after: eq)...])
        }
        if let listeners { values["listeners"] = listeners }
        if let advertisedListeners { values["advertised.listeners"] = advertisedListeners }
        if let logDirs { values["log.dirs"] = logDirs }
        if let brokerId { values["broker.id"] = String(brokerId) }
        let brokerConfig: BrokerConfig
        do { brokerConfig = try BrokerConfig(values) } catch { throw ValidationError("\(error)") }

        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown log level \(logLevel)") }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "samsa")

        let broker: Broker
        do {
            broker = try await Broker.start(config: brokerConfig, logger: logger)
        } catch {
            printError("samsa broker: \(error)")
            throw ExitCode(1)
        }
        print("samsa broker \(brokerConfig.brokerId) listening on \(brokerConfig.listener.host):\(broker.boundPort), data in \(brokerConfig.logDir)")
        fflush(nil)
        await waitForTermination()
        await broker.shutdown()
    }

    /// Suspends until SIGINT or SIGTERM.
    func waitForTermination() async {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let queue = DispatchQueue(label: "samsa.signals")
            let sources = [SIGINT, SIGTERM].map { DispatchSource.makeSignalSource(signal: $0, queue: queue) }
            nonisolated(unsafe) var resumed = false
            for source in sources {
                source.setEventHandler {
                    guard !resumed else { return }
                    resumed = true
                    for s in sources { s.cancel() }
                    continuation.resume()
                }
                source.resume()
            }
        }
    }
}

/// Writes a line to standard error.
func printError(_ line: String) {
    var bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}

/// The whole file as UTF-8 text, or nil when it cannot be read.
func readTextFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { return nil }
        if n == 0 { break }
        data += chunk[0..<n]
    }
    return String(decoding: data, as: UTF8.self)
}
