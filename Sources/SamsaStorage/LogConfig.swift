import KafkaRecords

/// How one partition log behaves: Kafka's topic-level configs that storage needs.
/// The broker resolves topic overrides over broker defaults and hands the result here.
public struct LogConfig: Sendable, Equatable {
    /// `segment.bytes`: roll the active segment before it grows past this.
    public var segmentBytes: Int = 1_073_741_824
    /// `segment.ms`: roll a non-empty active segment older than this.
    public var segmentMs: Int64 = 604_800_000
    /// `segment.jitter.ms`: a segment rolls up to this much before `segment.ms` (each segment its own
    /// amount, so many partitions created together do not all roll at once).
    public var segmentJitterMs: Int64 = 0
    /// `segment.index.bytes`: a segment rolls once its offset index (8 bytes an entry) or time
    /// index (12 bytes an entry) would not fit in this many bytes, as Kafka's full index does.
    public var segmentIndexBytes: Int = 10_485_760
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
    /// `compression.type`: nil (`producer`) keeps batches as the producer compressed them; a codec
    /// (`uncompressed` is `.none`) makes appends re-compress batches written in another codec.
    public var compression: CompressionCodec? = nil
    /// `compression.gzip.level` / `.lz4.level` / `.zstd.level` (KIP-390) of the `compression`
    /// codec, used when re-compressing; nil: the codec's default.
    public var compressionLevel: Int? = nil

    public init() {}
}

extension LogConfig {
    /// How old the segment starting at `baseOffset` may grow before it rolls: `segment.ms` minus
    /// that segment's jitter, a pseudo-random amount below min(`segment.jitter.ms`, `segment.ms`)
    /// derived from its base offset (Kafka draws it at random when the segment is created).
    public func rollAfterMs(_ baseOffset: Int64) -> Int64 {
        guard segmentJitterMs > 0, segmentMs > 0 else { return segmentMs }
        var x = UInt64(bitPattern: baseOffset) &+ 0x9E37_79B9_7F4A_7C15  // splitmix64
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        x ^= x >> 31
        return segmentMs - Int64(x % UInt64(min(segmentJitterMs, segmentMs)))
    }

    /// Entries the offset index (8 bytes each) and the time index (12 bytes each) of a segment hold.
    public var maxIndexEntries: Int { max(segmentIndexBytes / 8, 1) }
    public var maxTimeIndexEntries: Int { max(segmentIndexBytes / 12, 1) }
}
