import KafkaProtocol
import SamsaStorage

/// A `host:port` listener (Kafka's `PLAINTEXT://host:port` form is accepted).
public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `PLAINTEXT://host:port`, `host:port` or `[v6]:port`.
    public init?(parsing text: String) {
        var s = Substring(text.trimmingSpaces)
        if let scheme = s.firstRange(of: "://") { s = s[scheme.upperBound...] }
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        var host = String(s[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "0.0.0.0" : host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The broker's static configuration: a Kafka-style properties file plus command-line overrides,
/// with Kafka's names and defaults.
public struct BrokerConfig: Sendable {
    /// Every key that was set (file and overrides), as given.
    public private(set) var values: [String: String]

    public init(_ values: [String: String] = [:]) throws {
        self.values = values
        for (key, value) in values {
            if let def = Self.brokerDefinitions[key], let problem = def.problem(with: value) { throw ConfigError(problem) }
        }
        guard Endpoint(parsing: listenersText) != nil else { throw ConfigError("listeners: cannot parse '\(listenersText)' (expected PLAINTEXT://host:port)") }
        if let adv = values["advertised.listeners"], Endpoint(parsing: adv) == nil {
            throw ConfigError("advertised.listeners: cannot parse '\(adv)' (expected PLAINTEXT://host:port)")
        }
    }

    /// Parses a Java properties file (`key=value` or `key: value`, `#`/`!` comments, `\` line continuations).
    public static func parseProperties(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        var pending = ""
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = String(rawLine).trimmingSpaces
            if pending.isEmpty, line.hasPrefix("#") || line.hasPrefix("!") || line.isEmpty { continue }
            if line.hasSuffix("\\") {
                line.removeLast()
                pending += line
                continue
            }
            line = pending + line
            pending = ""
            guard let sep = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else { result[line] = ""; continue }
            result[String(line[..<sep]).trimmingSpaces] = String(line[line.index(after: sep)...]).trimmingSpaces
        }
        return result
    }

    static let brokerDefinitions = Dictionary(uniqueKeysWithValues: brokerConfigDefinitions.map { ($0.name, $0) })
    static let topicDefinitions = Dictionary(uniqueKeysWithValues: topicConfigDefinitions.map { ($0.name, $0) })

    /// The value set for `key`, or its default.
    public func string(_ key: String) -> String? { values[key] ?? Self.brokerDefinitions[key]?.defaultValue }
    public func int(_ key: String) -> Int? { string(key).flatMap { Int($0.trimmingSpaces) } }
    public func int64(_ key: String) -> Int64? { string(key).flatMap { Int64($0.trimmingSpaces) } }
    public func bool(_ key: String) -> Bool { string(key) == "true" }

    public var brokerId: Int32 { Int32(int("node.id") ?? int("broker.id") ?? 0) }
    var listenersText: String { string("listeners") ?? "PLAINTEXT://127.0.0.1:9092" }
    public var listener: Endpoint { Endpoint(parsing: listenersText.split(separator: ",").first.map(String.init) ?? listenersText)! }
    /// What clients are told; a wildcard listen address advertises 127.0.0.1.
    public var advertised: Endpoint {
        if let adv = values["advertised.listeners"], let e = Endpoint(parsing: adv.split(separator: ",").first.map(String.init) ?? adv) { return e }
        var e = listener
        if e.host == "0.0.0.0" || e.host == "::" { e.host = "127.0.0.1" }
        return e
    }
    public var logDir: String { (values["log.dirs"] ?? string("log.dir") ?? "./samsa-data").split(separator: ",").first.map { String($0).trimmingSpaces } ?? "./samsa-data" }
    public var zookeeperConnect: String? { values["zookeeper.connect"].flatMap { $0.isEmpty ? nil : $0 } }
    public var rack: String? { values["broker.rack"] }
    public var numPartitions: Int32 { Int32(int("num.partitions") ?? 1) }
    public var defaultReplicationFactor: Int16 { Int16(int("default.replication.factor") ?? 1) }
    public var autoCreateTopics: Bool { bool("auto.create.topics.enable") }
    public var deleteTopicEnable: Bool { bool("delete.topic.enable") }
    public var maxRequestSize: Int { int("socket.request.max.bytes") ?? 104_857_600 }
    public var queuedMaxRequests: Int { int("queued.max.requests") ?? 500 }
    /// The network server's resource limits.
    public var serverLimits: ServerLimits {
        var l = ServerLimits()
        l.maxFrameSize = maxRequestSize
        l.maxInFlight = queuedMaxRequests
        l.maxRequestBytes = int("queued.max.request.bytes").flatMap { $0 > 0 ? $0 : nil }
        l.maxIdleMs = int64("connections.max.idle.ms").flatMap { $0 > 0 ? $0 : nil }
        l.maxConnections = int("max.connections") ?? .max
        l.maxConnectionsPerIp = int("max.connections.per.ip") ?? .max
        for entry in (string("max.connections.per.ip.overrides") ?? "").split(separator: ",") {
            let parts = entry.split(separator: ":")
            if parts.count >= 2, let n = Int(String(parts.last!).trimmingSpaces) {
                l.maxConnectionsPerIpOverrides[parts.dropLast().joined(separator: ":").trimmingSpaces] = n
            }
        }
        return l
    }
    public var retentionCheckIntervalMs: Int64 { int64("log.retention.check.interval.ms") ?? 300_000 }
    public var flushSchedulerIntervalMs: Int64 { int64("log.flush.scheduler.interval.ms") ?? 1000 }
    public var checkpointIntervalMs: Int64 { int64("log.flush.offset.checkpoint.interval.ms") ?? 60_000 }
    public var networkThreads: Int? { int("num.network.threads") }
    public var offsetsTopicPartitions: Int32 { Int32(int("offsets.topic.num.partitions") ?? 50) }

    /// The broker-level value behind a topic config's default, resolving Kafka's unit variants
    /// (`log.retention.ms` > `.minutes` > `.hours`; `log.roll.ms` > `.hours`).
    func brokerDefault(forTopicConfig name: String) -> (value: String, key: String, source: ConfigSource)? {
        guard let def = Self.topicDefinitions[name] else { return nil }
        func set(_ key: String) -> (String, String, ConfigSource)? { values[key].map { ($0, key, .staticBrokerConfig) } }
        switch name {
        case "retention.ms":
            if let v = set("log.retention.ms") { return v }
            if let m = values["log.retention.minutes"], let n = Int64(m) { return (String(n * 60_000), "log.retention.minutes", .staticBrokerConfig) }
            if let h = values["log.retention.hours"], let n = Int64(h) { return (String(n * 3_600_000), "log.retention.hours", .staticBrokerConfig) }
        case "segment.ms":
            if let v = set("log.roll.ms") { return v }
            if let h = values["log.roll.hours"], let n = Int64(h) { return (String(n * 3_600_000), "log.roll.hours", .staticBrokerConfig) }
        default:
            if let synonym = def.brokerSynonym, let v = set(synonym) { return v }
        }
        return def.defaultValue.map { ($0, def.brokerSynonym ?? name, .defaultConfig) }
    }

    /// The effective value of a topic config given the topic's overrides.
    public func topicValue(_ name: String, overrides: [String: String]) -> String? {
        overrides[name] ?? brokerDefault(forTopicConfig: name)?.value
    }

    /// Checks topic config overrides (CreateTopics, AlterConfigs); returns Kafka's error message.
    public static func validateTopicConfigs(_ configs: [String: String?]) -> String? {
        for (name, value) in configs.sorted(by: { $0.key < $1.key }) {
            guard let def = topicDefinitions[name] else { return "Unknown topic config name: \(name)" }
            if let value, let problem = def.problem(with: value) { return problem }
        }
        return nil
    }

    /// The storage settings of a topic with `overrides`.
    public func logConfig(overrides: [String: String]) -> LogConfig {
        func long(_ name: String) -> Int64? { topicValue(name, overrides: overrides).flatMap { Int64($0.trimmingSpaces) } }
        var c = LogConfig()
        if let v = long("segment.bytes") { c.segmentBytes = Int(v) }
        if let v = long("segment.ms") { c.segmentMs = v }
        if let v = long("retention.ms") { c.retentionMs = v }
        if let v = long("retention.bytes") { c.retentionBytes = v }
        if let v = long("max.message.bytes") { c.maxMessageBytes = Int(v) }
        if let v = long("index.interval.bytes") { c.indexIntervalBytes = Int(v) }
        if let v = long("flush.messages") { c.flushMessages = v }
        if let v = long("flush.ms") { c.flushMs = v }
        if let v = long("message.timestamp.before.max.ms") { c.timestampBeforeMaxMs = v }
        if let v = long("message.timestamp.after.max.ms") { c.timestampAfterMaxMs = v }
        c.logAppendTime = topicValue("message.timestamp.type", overrides: overrides) == "LogAppendTime"
        // Compacted-only topics are never trimmed by time or size; the log cleaner compacts them.
        let policies = (topicValue("cleanup.policy", overrides: overrides) ?? "delete").split(separator: ",").map { String($0).trimmingSpaces }
        if !policies.contains("delete") {
            c.retentionMs = -1
            c.retentionBytes = -1
        }
        c.compact = policies.contains("compact")
        if let v = long("delete.retention.ms") { c.deleteRetentionMs = v }
        if let v = topicValue("min.cleanable.dirty.ratio", overrides: overrides).flatMap({ Double($0.trimmingSpaces) }) { c.minCleanableDirtyRatio = v }
        if let v = long("min.compaction.lag.ms") { c.minCompactionLagMs = v }
        if let v = long("max.compaction.lag.ms") { c.maxCompactionLagMs = v }
        return c
    }

    /// The log cleaner's settings (`log.cleaner.*`).
    public var cleanerConfig: CleanerConfig {
        var c = CleanerConfig()
        if let v = int64("log.cleaner.backoff.ms") { c.backoffMs = v }
        if let v = string("log.cleaner.io.max.bytes.per.second").flatMap({ Double($0.trimmingSpaces) }) { c.ioMaxBytesPerSecond = v }
        if let v = int64("log.cleaner.dedupe.buffer.size") { c.dedupeBufferSize = Int(v) }
        return c
    }
}
