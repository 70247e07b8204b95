/// Kafka's config value types (DescribeConfigs `configType`).
public enum ConfigType: Int8, Sendable {
    case unknown = 0, boolean = 1, string = 2, int = 3, short = 4, long = 5, double = 6, list = 7, `class` = 8, password = 9
}

/// Where a described config value comes from (DescribeConfigs `configSource`).
public enum ConfigSource: Int8, Sendable {
    case unknown = 0, dynamicTopicConfig = 1, dynamicBrokerConfig = 2, dynamicDefaultBrokerConfig = 3,
         staticBrokerConfig = 4, defaultConfig = 5, dynamicBrokerLoggerConfig = 6
}

/// One config key: its type, default, documentation and how values are checked.
public struct ConfigDefinition: Sendable {
    public var name: String
    public var type: ConfigType
    /// nil: no default (the config is unset unless given).
    public var defaultValue: String?
    public var documentation: String
    /// For topic configs: the broker config that supplies the default (`retention.ms` ← `log.retention.ms`).
    public var brokerSynonym: String?
    /// Allowed values for enumerations (compared case-sensitively, as Kafka does).
    public var allowed: [String]?
    /// Inclusive lower bound for numbers.
    public var minimum: Double?
    public var readOnly: Bool = false
    public var sensitive: Bool = false
    /// Inclusive upper bound for numbers.
    public var maximum: Double? = nil
    /// A number accepted outside [minimum, maximum] (gzip's -1, zlib's default level).
    public var alsoAllowed: Int64? = nil
    /// Why a value is valid for Kafka but not something Samsa can honour (e.g. tiered storage),
    /// or nil: such values are refused with INVALID_CONFIG instead of being kept and ignored.
    public var unsupported: (@Sendable (String) -> String?)? = nil

    /// Why `value` is not acceptable, or nil.
    public func problem(with value: String) -> String? {
        switch type {
        case .boolean:
            guard value == "true" || value == "false" else { return "Invalid value \(value) for configuration \(name): Expected value to be either true or false" }
        case .int, .short, .long:
            let bits: Int64 = type == .int ? Int64(Int32.max) : type == .short ? Int64(Int16.max) : Int64.max
            guard let n = Int64(value.trimmingSpaces), n <= bits, n >= -bits - 1 else {
                return "Invalid value \(value) for configuration \(name): Not a number of type \(type == .long ? "LONG" : type == .int ? "INT" : "SHORT")"
            }
            if n == alsoAllowed { break }
            if let minimum, Double(n) < minimum { return "Invalid value \(value) for configuration \(name): Value must be at least \(Int64(minimum))" }
            if let maximum, Double(n) > maximum { return "Invalid value \(value) for configuration \(name): Value must be no more than \(Int64(maximum))" }
        case .double:
            guard let d = Double(value.trimmingSpaces) else { return "Invalid value \(value) for configuration \(name): Not a number of type DOUBLE" }
            if let minimum, d < minimum { return "Invalid value \(value) for configuration \(name): Value must be at least \(minimum)" }
        case .list:
            if let allowed {
                for item in value.split(separator: ",").map({ String($0).trimmingSpaces }) where !allowed.contains(item) {
                    return "Invalid value \(item) for configuration \(name): String must be one of: \(allowed.joined(separator: ", "))"
                }
            }
        default:
            if let allowed, !allowed.contains(value) {
                return "Invalid value \(value) for configuration \(name): String must be one of: \(allowed.joined(separator: ", "))"
            }
        }
        return unsupported?(value)
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s = s.dropFirst() }
        while s.last?.isWhitespace == true { s = s.dropLast() }
        return String(s)
    }
}

private let longMax = String(Int64.max)

/// Every topic-level config Kafka 4 defines, with the broker config it defaults from.
public let topicConfigDefinitions: [ConfigDefinition] = [
    .init(name: "cleanup.policy", type: .list, defaultValue: "delete", documentation: "The retention policy of old log segments: delete, compact (the log cleaner keeps the latest record per key), or both.", brokerSynonym: "log.cleanup.policy", allowed: ["delete", "compact"]),
    .init(name: "compression.type", type: .string, defaultValue: "producer", documentation: "The final compression of the topic's batches; 'producer' keeps what the producer sent.", brokerSynonym: "compression.type", allowed: ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
    .init(name: "compression.gzip.level", type: .int, defaultValue: "-1", documentation: "The gzip level batches are re-compressed at when compression.type is gzip (-1: zlib's default).", brokerSynonym: "compression.gzip.level", minimum: 1, maximum: 9, alsoAllowed: -1),
    .init(name: "compression.lz4.level", type: .int, defaultValue: "9", documentation: "The lz4 level batches are re-compressed at when compression.type is lz4.", brokerSynonym: "compression.lz4.level", minimum: 1, maximum: 17),
    .init(name: "compression.zstd.level", type: .int, defaultValue: "3", documentation: "The zstd level batches are re-compressed at when compression.type is zstd.", brokerSynonym: "compression.zstd.level", minimum: -131072, maximum: 22),
    .init(name: "delete.retention.ms", type: .long, defaultValue: "86400000", documentation: "How long delete tombstones are kept on compacted topics.", brokerSynonym: "log.cleaner.delete.retention.ms", minimum: 0),
    .init(name: "file.delete.delay.ms", type: .long, defaultValue: "60000", documentation: "How long to wait before deleting a file from the file system.", brokerSynonym: "log.segment.delete.delay.ms", minimum: 0),
    .init(name: "flush.messages", type: .long, defaultValue: longMax, documentation: "Force an fsync after this many messages. 1 makes every produce wait for its fsync (appends arriving together share one).", brokerSynonym: "log.flush.interval.messages", minimum: 1),
    .init(name: "flush.ms", type: .long, defaultValue: longMax, documentation: "Force an fsync when unflushed data is this old.", brokerSynonym: "log.flush.interval.ms", minimum: 0),
    .init(name: "follower.replication.throttled.replicas", type: .list, defaultValue: "", documentation: "Replicas whose follower replication is throttled.", brokerSynonym: "follower.replication.throttled.replicas"),
    .init(name: "index.interval.bytes", type: .int, defaultValue: "4096", documentation: "Bytes between offset index entries.", brokerSynonym: "log.index.interval.bytes", minimum: 0),
    .init(name: "leader.replication.throttled.replicas", type: .list, defaultValue: "", documentation: "Replicas whose leader replication is throttled.", brokerSynonym: "leader.replication.throttled.replicas"),
    .init(name: "local.retention.bytes", type: .long, defaultValue: "-2", documentation: "Local retention bytes with tiered storage (-2: same as retention.bytes).", brokerSynonym: "log.local.retention.bytes", minimum: -2),
    .init(name: "local.retention.ms", type: .long, defaultValue: "-2", documentation: "Local retention time with tiered storage (-2: same as retention.ms).", brokerSynonym: "log.local.retention.ms", minimum: -2),
    .init(name: "max.compaction.lag.ms", type: .long, defaultValue: longMax, documentation: "The longest a message stays uncompacted.", brokerSynonym: "log.cleaner.max.compaction.lag.ms", minimum: 1),
    .init(name: "max.message.bytes", type: .int, defaultValue: "1048588", documentation: "The largest record batch size allowed.", brokerSynonym: "message.max.bytes", minimum: 0),
    .init(name: "message.timestamp.after.max.ms", type: .long, defaultValue: "3600000", documentation: "How far in the future a CreateTime timestamp may be.", brokerSynonym: "log.message.timestamp.after.max.ms", minimum: 0),
    .init(name: "message.timestamp.before.max.ms", type: .long, defaultValue: longMax, documentation: "How far in the past a CreateTime timestamp may be.", brokerSynonym: "log.message.timestamp.before.max.ms", minimum: 0),
    .init(name: "message.timestamp.type", type: .string, defaultValue: "CreateTime", documentation: "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime).", brokerSynonym: "log.message.timestamp.type", allowed: ["CreateTime", "LogAppendTime"]),
    .init(name: "min.cleanable.dirty.ratio", type: .double, defaultValue: "0.5", documentation: "How dirty a compacted log must be before it is cleaned.", brokerSynonym: "log.cleaner.min.cleanable.ratio", minimum: 0),
    .init(name: "min.compaction.lag.ms", type: .long, defaultValue: "0", documentation: "The shortest a message stays uncompacted.", brokerSynonym: "log.cleaner.min.compaction.lag.ms", minimum: 0),
    .init(name: "min.insync.replicas", type: .int, defaultValue: "1", documentation: "The fewest in-sync replicas that must acknowledge an acks=all write.", brokerSynonym: "min.insync.replicas", minimum: 1),
    .init(name: "preallocate", type: .boolean, defaultValue: "false", documentation: "Preallocate segment files (not supported: only false is accepted).", brokerSynonym: "log.preallocate",
          unsupported: { $0 == "true" ? "Invalid value true for configuration preallocate: preallocating segment files is not supported by this broker" : nil }),
    .init(name: "remote.storage.enable", type: .boolean, defaultValue: "false", documentation: "Tiered storage (not supported: only false is accepted).", brokerSynonym: nil,
          unsupported: { $0 == "true" ? "Invalid value true for configuration remote.storage.enable: tiered storage is not supported by this broker" : nil }),
    .init(name: "retention.bytes", type: .long, defaultValue: "-1", documentation: "Delete the oldest segments while a partition is bigger than this; -1: no limit.", brokerSynonym: "log.retention.bytes"),
    .init(name: "retention.ms", type: .long, defaultValue: "604800000", documentation: "Delete segments whose newest record is older than this; -1: keep forever.", brokerSynonym: "log.retention.ms", minimum: -1),
    .init(name: "segment.bytes", type: .int, defaultValue: "1073741824", documentation: "Roll to a new segment file at this size.", brokerSynonym: "log.segment.bytes", minimum: 14),
    .init(name: "segment.index.bytes", type: .int, defaultValue: "10485760", documentation: "The largest index file size.", brokerSynonym: "log.index.size.max.bytes", minimum: 4),
    .init(name: "segment.jitter.ms", type: .long, defaultValue: "0", documentation: "Random jitter subtracted from segment.ms.", brokerSynonym: "log.roll.jitter.ms", minimum: 0),
    .init(name: "segment.ms", type: .long, defaultValue: "604800000", documentation: "Roll to a new segment file after this long.", brokerSynonym: "log.roll.ms", minimum: 1),
    .init(name: "unclean.leader.election.enable", type: .boolean, defaultValue: "false", documentation: "Whether an out-of-sync replica may become leader.", brokerSynonym: "unclean.leader.election.enable"),
]

/// The broker configs Samsa reads (Kafka's names). Unknown keys in a properties file are kept and
/// described as they are, so a Kafka server.properties works unchanged.
public let brokerConfigDefinitions: [ConfigDefinition] = [
    .init(name: "broker.id", type: .int, defaultValue: "0", documentation: "This broker's id.", readOnly: true),
    .init(name: "node.id", type: .int, defaultValue: nil, documentation: "Synonym of broker.id.", readOnly: true),
    .init(name: "listeners", type: .list, defaultValue: "PLAINTEXT://127.0.0.1:9092", documentation: "Where the broker listens.", readOnly: true),
    .init(name: "advertised.listeners", type: .list, defaultValue: nil, documentation: "What clients are told to connect to (default: listeners).", readOnly: true),
    .init(name: "log.dirs", type: .list, defaultValue: nil, documentation: "Where partition data is kept (default: log.dir).", readOnly: true),
    .init(name: "log.dir", type: .string, defaultValue: "./samsa-data", documentation: "Where partition data is kept.", readOnly: true),
    .init(name: "zookeeper.connect", type: .string, defaultValue: nil, documentation: "ZooKeeper ensemble for multi-broker clusters; unset: embedded single-node coordination.", readOnly: true),
    .init(name: "zookeeper.session.timeout.ms", type: .int, defaultValue: "18000", documentation: "ZooKeeper session timeout.", minimum: 1, readOnly: true),
    .init(name: "zookeeper.connection.timeout.ms", type: .int, defaultValue: nil, documentation: "How long to wait for ZooKeeper at start-up (default: the session timeout).", minimum: 1, readOnly: true),
    .init(name: "broker.rack", type: .string, defaultValue: nil, documentation: "The broker's rack.", readOnly: true),
    .init(name: "num.network.threads", type: .int, defaultValue: nil, documentation: "Event loop threads (default: one per core).", minimum: 1, readOnly: true),
    .init(name: "num.partitions", type: .int, defaultValue: "1", documentation: "Partitions of auto-created topics and CreateTopics with no count.", minimum: 1),
    .init(name: "default.replication.factor", type: .int, defaultValue: "1", documentation: "Replication factor of auto-created topics.", minimum: 1),
    .init(name: "auto.create.topics.enable", type: .boolean, defaultValue: "true", documentation: "Create a topic when metadata is asked for an unknown one."),
    .init(name: "delete.topic.enable", type: .boolean, defaultValue: "true", documentation: "Allow DeleteTopics."),
    .init(name: "log.cleanup.policy", type: .list, defaultValue: "delete", documentation: "Default cleanup.policy.", allowed: ["delete", "compact"]),
    .init(name: "compression.type", type: .string, defaultValue: "producer", documentation: "Default compression.type.", allowed: ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
    .init(name: "compression.gzip.level", type: .int, defaultValue: "-1", documentation: "Default compression.gzip.level.", minimum: 1, maximum: 9, alsoAllowed: -1),
    .init(name: "compression.lz4.level", type: .int, defaultValue: "9", documentation: "Default compression.lz4.level.", minimum: 1, maximum: 17),
    .init(name: "compression.zstd.level", type: .int, defaultValue: "3", documentation: "Default compression.zstd.level.", minimum: -131072, maximum: 22),
    .init(name: "log.segment.bytes", type: .int, defaultValue: "1073741824", documentation: "Default segment.bytes.", minimum: 14),
    .init(name: "log.roll.ms", type: .long, defaultValue: nil, documentation: "Default segment.ms (default: log.roll.hours).", minimum: 1),
    .init(name: "log.roll.hours", type: .int, defaultValue: "168", documentation: "Default segment.ms in hours.", minimum: 1),
    .init(name: "log.roll.jitter.ms", type: .long, defaultValue: nil, documentation: "Default segment.jitter.ms.", minimum: 0),
    .init(name: "log.retention.ms", type: .long, defaultValue: nil, documentation: "Default retention.ms (default: log.retention.minutes, then log.retention.hours).", minimum: -1),
    .init(name: "log.retention.minutes", type: .int, defaultValue: nil, documentation: "Default retention.ms in minutes."),
    .init(name: "log.retention.hours", type: .int, defaultValue: "168", documentation: "Default retention.ms in hours."),
    .init(name: "log.retention.bytes", type: .long, defaultValue: "-1", documentation: "Default retention.bytes."),
    .init(name: "log.retention.check.interval.ms", type: .long, defaultValue: "300000", documentation: "How often retention runs.", minimum: 1),
    .init(name: "log.segment.delete.delay.ms", type: .long, defaultValue: "60000", documentation: "Default file.delete.delay.ms.", minimum: 0),
    .init(name: "log.index.interval.bytes", type: .int, defaultValue: "4096", documentation: "Default index.interval.bytes.", minimum: 0),
    .init(name: "log.index.size.max.bytes", type: .int, defaultValue: "10485760", documentation: "Default segment.index.bytes.", minimum: 4),
    .init(name: "log.message.timestamp.type", type: .string, defaultValue: "CreateTime", documentation: "Default message.timestamp.type.", allowed: ["CreateTime", "LogAppendTime"]),
    .init(name: "log.message.timestamp.before.max.ms", type: .long, defaultValue: longMax, documentation: "Default message.timestamp.before.max.ms.", minimum: 0),
    .init(name: "log.message.timestamp.after.max.ms", type: .long, defaultValue: "3600000", documentation: "Default message.timestamp.after.max.ms.", minimum: 0),
    .init(name: "log.flush.interval.messages", type: .long, defaultValue: longMax, documentation: "Default flush.messages; 1 = fsync before acknowledging each produce.", minimum: 1),
    .init(name: "log.flush.interval.ms", type: .long, defaultValue: nil, documentation: "Default flush.ms (default: never, the OS decides).", minimum: 0),
    .init(name: "log.flush.scheduler.interval.ms", type: .long, defaultValue: "1000", documentation: "How often logs are checked against flush.ms.", minimum: 1),
    .init(name: "log.flush.offset.checkpoint.interval.ms", type: .int, defaultValue: "60000", documentation: "How often the recovery point checkpoint is written.", minimum: 0),
    .init(name: "log.preallocate", type: .boolean, defaultValue: "false", documentation: "Default preallocate (not supported: only false is accepted).",
          unsupported: { $0 == "true" ? "Invalid value true for configuration log.preallocate: preallocating segment files is not supported by this broker" : nil }),
    .init(name: "log.cleaner.delete.retention.ms", type: .long, defaultValue: "86400000", documentation: "Default delete.retention.ms.", minimum: 0),
    .init(name: "log.cleaner.min.cleanable.ratio", type: .double, defaultValue: "0.5", documentation: "Default min.cleanable.dirty.ratio.", minimum: 0),
    .init(name: "log.cleaner.min.compaction.lag.ms", type: .long, defaultValue: "0", documentation: "Default min.compaction.lag.ms.", minimum: 0),
    .init(name: "log.cleaner.max.compaction.lag.ms", type: .long, defaultValue: longMax, documentation: "Default max.compaction.lag.ms.", minimum: 1),
    .init(name: "log.cleaner.enable", type: .boolean, defaultValue: "true", documentation: "Run the log cleaner (compaction of cleanup.policy=compact topics).", readOnly: true),
    .init(name: "log.cleaner.backoff.ms", type: .long, defaultValue: "15000", documentation: "How long the log cleaner sleeps when no log needs cleaning.", minimum: 0, readOnly: true),
    .init(name: "log.cleaner.io.max.bytes.per.second", type: .double, defaultValue: "1.7976931348623157E308", documentation: "The log cleaner's read plus write throughput cap.", minimum: 0, readOnly: true),
    .init(name: "log.cleaner.dedupe.buffer.size", type: .long, defaultValue: "134217728", documentation: "Memory for the log cleaner's key map of one cleaning.", minimum: 0, readOnly: true),
    .init(name: "log.local.retention.bytes", type: .long, defaultValue: "-2", documentation: "Default local.retention.bytes.", minimum: -2),
    .init(name: "log.local.retention.ms", type: .long, defaultValue: "-2", documentation: "Default local.retention.ms.", minimum: -2),
    .init(name: "message.max.bytes", type: .int, defaultValue: "1048588", documentation: "Default max.message.bytes.", minimum: 0),
    .init(name: "min.insync.replicas", type: .int, defaultValue: "1", documentation: "Default min.insync.replicas.", minimum: 1),
    .init(name: "unclean.leader.election.enable", type: .boolean, defaultValue: "false", documentation: "Default unclean.leader.election.enable."),
    .init(name: "follower.replication.throttled.replicas", type: .list, defaultValue: "", documentation: "Default follower throttled replicas."),
    .init(name: "leader.replication.throttled.replicas", type: .list, defaultValue: "", documentation: "Default leader throttled replicas."),
    .init(name: "socket.request.max.bytes", type: .int, defaultValue: "104857600", documentation: "The largest request frame accepted; larger ones close the connection.", minimum: 1, readOnly: true),
    .init(name: "queued.max.requests", type: .int, defaultValue: "500", documentation: "Requests a connection may have in flight before the broker stops reading from it.", minimum: 1, readOnly: true),
    .init(name: "connections.max.idle.ms", type: .long, defaultValue: "600000", documentation: "Close connections with no request, response or unanswered request for this long; -1: never.", minimum: -1, readOnly: true),
    .init(name: "queued.max.request.bytes", type: .long, defaultValue: "536870912", documentation: "Bytes of requests held broker-wide (being received or processed) before connections stop reading until memory is released; -1: unbounded (Kafka's default; Samsa bounds it at 512 MiB).", minimum: -1, readOnly: true),
    .init(name: "max.connections", type: .int, defaultValue: "2147483647", documentation: "Connections open at once; further ones are closed as soon as accepted.", minimum: 0, readOnly: true),
    .init(name: "max.connections.per.ip", type: .int, defaultValue: "2147483647", documentation: "Connections open at once from one address; further ones are closed as soon as accepted.", minimum: 0, readOnly: true),
    .init(name: "max.connections.per.ip.overrides", type: .string, defaultValue: "", documentation: "Per-address exceptions to max.connections.per.ip: 'host:count,host:count'.", readOnly: true),
    .init(name: "fetch.max.bytes", type: .int, defaultValue: "57671680", documentation: "The largest fetch response.", minimum: 0),
    .init(name: "max.incremental.fetch.session.cache.slots", type: .int, defaultValue: "1000", documentation: "Incremental fetch sessions (KIP-227) the broker keeps; 0 disables them (every fetch is then a full fetch).", minimum: 0, readOnly: true),
    .init(name: "offsets.topic.num.partitions", type: .int, defaultValue: "50", documentation: "Partitions of __consumer_offsets.", minimum: 1, readOnly: true),
    .init(name: "offsets.topic.replication.factor", type: .short, defaultValue: "3", documentation: "Replication factor of __consumer_offsets (capped at the number of live brokers when it is created, so a single node uses 1).", minimum: 1, readOnly: true),
    .init(name: "replica.lag.time.max.ms", type: .long, defaultValue: "30000", documentation: "A follower that has not caught up with the leader for this long leaves the ISR.", minimum: 1, readOnly: true),
    .init(name: "replica.fetch.wait.max.ms", type: .int, defaultValue: "500", documentation: "How long a follower's fetch waits at the leader for new data.", minimum: 0, readOnly: true),
    .init(name: "replica.fetch.min.bytes", type: .int, defaultValue: "1", documentation: "Bytes a follower's fetch waits for.", minimum: 1, readOnly: true),
    .init(name: "replica.fetch.max.bytes", type: .int, defaultValue: "1048576", documentation: "Bytes a follower fetches per partition (at least one batch).", minimum: 0, readOnly: true),
    .init(name: "replica.fetch.response.max.bytes", type: .int, defaultValue: "10485760", documentation: "Bytes a follower fetches per request.", minimum: 0, readOnly: true),
    .init(name: "replica.fetch.backoff.ms", type: .int, defaultValue: "1000", documentation: "How long a follower waits after a failed fetch.", minimum: 0, readOnly: true),
    .init(name: "controlled.shutdown.enable", type: .boolean, defaultValue: "true", documentation: "On SIGTERM, move leadership away (ControlledShutdown) before stopping.", readOnly: true),
    .init(name: "controlled.shutdown.max.retries", type: .int, defaultValue: "3", documentation: "ControlledShutdown attempts before stopping anyway.", minimum: 0, readOnly: true),
    .init(name: "controlled.shutdown.retry.backoff.ms", type: .long, defaultValue: "5000", documentation: "Pause between ControlledShutdown attempts.", minimum: 0, readOnly: true),
    .init(name: "auto.leader.rebalance.enable", type: .boolean, defaultValue: "true", documentation: "The controller moves leadership back to preferred replicas.", readOnly: true),
    .init(name: "leader.imbalance.check.interval.seconds", type: .long, defaultValue: "300", documentation: "How often the controller checks preferred leaders.", minimum: 1, readOnly: true),
    .init(name: "leader.imbalance.per.broker.percentage", type: .int, defaultValue: "10", documentation: "The share of a broker's preferred partitions it may not lead before a rebalance.", minimum: 0, readOnly: true),
    .init(name: "offsets.topic.segment.bytes", type: .int, defaultValue: "104857600", documentation: "segment.bytes of __consumer_offsets.", minimum: 1, readOnly: true),
    .init(name: "offsets.retention.minutes", type: .int, defaultValue: "10080", documentation: "How long committed offsets of empty groups are kept.", minimum: 1),
    .init(name: "offsets.retention.check.interval.ms", type: .long, defaultValue: "600000", documentation: "How often expired offsets are removed.", minimum: 1),
    .init(name: "offset.metadata.max.bytes", type: .int, defaultValue: "4096", documentation: "The largest commit metadata string."),
    .init(name: "group.initial.rebalance.delay.ms", type: .int, defaultValue: "3000", documentation: "How long a new group waits for more members before its first rebalance."),
    .init(name: "group.min.session.timeout.ms", type: .int, defaultValue: "6000", documentation: "The shortest session timeout a member may ask for."),
    .init(name: "group.max.session.timeout.ms", type: .int, defaultValue: "1800000", documentation: "The longest session timeout a member may ask for."),
    .init(name: "group.max.size", type: .int, defaultValue: "2147483647", documentation: "The most members a group may have.", minimum: 1),
    .init(name: "transactional.id.expiration.ms", type: .int, defaultValue: "604800000", documentation: "How long an idle transactional id is kept.", minimum: 1),
    .init(name: "producer.id.expiration.ms", type: .int, defaultValue: "86400000", documentation: "How long an idle producer id's state is kept: a producer whose last write is older is forgotten (its next write must start a new sequence).", minimum: 1),
    .init(name: "producer.id.expiration.check.interval.ms", type: .int, defaultValue: "600000", documentation: "How often idle producer ids are looked for.", minimum: 1, readOnly: true),
]
