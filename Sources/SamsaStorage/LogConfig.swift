/// How one partition log behaves: Kafka's topic-level configs that storage needs.
/// The broker resolves topic overrides over broker defaults and hands the result here.
public struct LogConfig: Sendable, Equatable {
    /// `segment.bytes`: roll the active segment before it grows past this.
    public var segmentBytes: Int = 1_073_741_824
    /// `segment.ms`: roll a non-empty active segment older than this.
    public var segmentMs: Int64 = 604_800_000
    /// `retention.ms`: delete segments whose newest record is older; -1 keeps forever.
    public var retentionMs: Int64 = 604_800_000
    /// `retention.bytes`: delete oldest segments while the log is bigger; -1 means no limit.
    public var retentionBytes: Int64 = -1
    /// `max.message.bytes`: the largest record batch accepted.
    public var maxMessageBytes: Int = 1_048_588
    /// `index.interval.bytes`: bytes between sparse index entries.
    public var indexIntervalBytes: Int = 4096
    /// `message.timestamp.type`: LogAppendTime makes the broker stamp batches.
    public var logAppendTime: Bool = false
    /// `flush.messages`: fsync after this many messages; Int64.max leaves it to the OS.
    /// `flush.messages=1` is the fsync-per-produce setting: a produce is acknowledged only after
    /// its data is on disk (appends arriving together share one fsync).
    public var flushMessages: Int64 = .max
    /// `flush.ms`: fsync when the oldest unflushed data is this old; Int64.max leaves it to the OS.
    public var flushMs: Int64 = .max
    /// `message.timestamp.before.max.ms` / `after.max.ms`: how far a CreateTime may stray from now.
    public var timestampBeforeMaxMs: Int64 = .max
    public var timestampAfterMaxMs: Int64 = .max
    /// `cleanup.policy` contains `compact`: the log cleaner keeps the latest record per key.
    /// (Whether it also contains `delete` is said by `retentionMs` / `retentionBytes`.)
    public var compact: Bool = false
    /// `delete.retention.ms`: how long a tombstone (null value) stays readable on a compacted log.
    public var deleteRetentionMs: Int64 = 86_400_000
    /// `min.cleanable.dirty.ratio`: uncleaned bytes over all bytes before a log is cleaned.
    public var minCleanableDirtyRatio: Double = 0.5
    /// `min.compaction.lag.ms`: records younger than this are never compacted.
    public var minCompactionLagMs: Int64 = 0
    /// `max.compaction.lag.ms`: a log whose oldest uncleaned record is older is cleaned whatever its ratio.
    public var maxCompactionLagMs: Int64 = .max

    public init() {}
}
