import KafkaProtocol
import NIOCore

/// The sparse offset index of a segment: (offset relative to the segment base, file position)
/// pairs, one every `index.interval.bytes`. Kept in memory; written in Kafka's `.index` format
/// (8 bytes an entry, big-endian) when the segment rolls and at clean shutdown.
struct OffsetIndex: Sendable {
    private(set) var relativeOffsets: [UInt32] = []
    private(set) var positions: [UInt32] = []

    var count: Int { relativeOffsets.count }

    mutating func append(relativeOffset: UInt32, position: UInt32) {
        if let last = relativeOffsets.last, relativeOffset <= last { return }
        relativeOffsets.append(relativeOffset)
        positions.append(position)
    }

    /// The last entry at or before `relativeOffset`: where to start scanning for it.
    func floor(relativeOffset: UInt32) -> (relativeOffset: UInt32, position: UInt32)? {
        var lo = 0, hi = relativeOffsets.count - 1, found = -1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if relativeOffsets[mid] <= relativeOffset { found = mid; lo = mid + 1 } else { hi = mid - 1 }
        }
        return found < 0 ? nil : (relativeOffsets[found], positions[found])
    }

    /// Drops entries whose position is at or past `position` (after a truncation).
    mutating func truncate(toPosition position: Int) {
        while let last = positions.last, Int(last) >= position {
            positions.removeLast()
            relativeOffsets.removeLast()
        }
    }

    func serialized() -> ByteBuffer {
        var b = ByteBuffer()
        b.reserveCapacity(count * 8)
        for i in 0..<count {
            b.writeInteger(relativeOffsets[i], endianness: .big)
            b.writeInteger(positions[i], endianness: .big)
        }
        return b
    }

    /// Loads an index file's bytes; nil when they are not a valid index for a segment of `segmentSize` bytes.
    static func load(_ bytes: ByteBuffer, segmentSize: Int) -> OffsetIndex? {
        guard bytes.readableBytes % 8 == 0 else { return nil }
        var index = OffsetIndex()
        var b = bytes
        while let rel = b.readInteger(endianness: .big, as: UInt32.self), let pos = b.readInteger(endianness: .big, as: UInt32.self) {
            if let last = index.relativeOffsets.last, rel <= last { return nil }
            if let lastPos = index.positions.last, pos <= lastPos { return nil }
            guard Int(pos) < segmentSize else { return nil }
            index.relativeOffsets.append(rel)
            index.positions.append(pos)
        }
        return index
    }
}

/// The sparse time index of a segment: (largest timestamp so far, relative offset of the batch
/// where it was reached). Written in Kafka's `.timeindex` format (12 bytes an entry).
struct TimeIndex: Sendable {
    private(set) var timestamps: [Int64] = []
    private(set) var relativeOffsets: [UInt32] = []

    var count: Int { timestamps.count }

    mutating func append(timestamp: Int64, relativeOffset: UInt32) {
        if let last = timestamps.last, timestamp <= last { return }
        if let lastOffset = relativeOffsets.last, relativeOffset < lastOffset { return }
        timestamps.append(timestamp)
        relativeOffsets.append(relativeOffset)
    }

    /// The relative offset to start scanning from for the first record with timestamp >= `timestamp`:
    /// the entry just before the first entry reaching `timestamp`.
    func startForTimestamp(_ timestamp: Int64) -> UInt32? {
        var lo = 0, hi = timestamps.count - 1, found = -1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if timestamps[mid] < timestamp { found = mid; lo = mid + 1 } else { hi = mid - 1 }
        }
        return found < 0 ? nil : relativeOffsets[found]
    }

    mutating func truncate(toRelativeOffset relativeOffset: UInt32) {
        while let last = relativeOffsets.last, last >= relativeOffset {
            relativeOffsets.removeLast()
            timestamps.removeLast()
        }
    }

    func serialized() -> ByteBuffer {
        var b = ByteBuffer()
        b.reserveCapacity(count * 12)
        for i in 0..<count {
            b.writeInteger(timestamps[i], endianness: .big)
            b.writeInteger(relativeOffsets[i], endianness: .big)
        }
        return b
    }

    static func load(_ bytes: ByteBuffer) -> TimeIndex? {
        guard bytes.readableBytes % 12 == 0 else { return nil }
        var index = TimeIndex()
        var b = bytes
        while let ts = b.readInteger(endianness: .big, as: Int64.self), let rel = b.readInteger(endianness: .big, as: UInt32.self) {
            if let last = index.timestamps.last, ts <= last { return nil }
            index.timestamps.append(ts)
            index.relativeOffsets.append(rel)
        }
        return index
    }
}

/// Which leader epoch started at which offset (Kafka's `leader-epoch-checkpoint`). Followers use it
/// to find where their log diverges from a new leader's (OffsetForLeaderEpoch) and truncate there.
public struct LeaderEpochCache: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var epoch: Int32
        public var startOffset: Int64
    }

    public private(set) var entries: [Entry] = []

    public var latestEpoch: Int32? { entries.last?.epoch }

    /// Records that `epoch` starts at `offset`; returns whether anything changed.
    @discardableResult
    mutating func assign(epoch: Int32, startOffset: Int64) -> Bool {
        guard epoch >= 0 else { return false }
        if let last = entries.last {
            if epoch < last.epoch { return false }
            if epoch == last.epoch { return false }
        }
        entries.removeAll { $0.startOffset >= startOffset }
        entries.append(Entry(epoch: epoch, startOffset: startOffset))
        return true
    }

    /// The end offset of `epoch` as Kafka's `LeaderEpochFileCache.endOffsetFor` answers
    /// OffsetForLeaderEpoch: for the latest epoch, `logEndOffset`; otherwise the start offset of
    /// the first epoch above it, paired with the largest known epoch at or below it (the asked
    /// epoch itself when it is older than every known one); (-1, -1) when the epoch is newer than
    /// any known, or nothing is known.
    public func endOffset(for epoch: Int32, logEndOffset: Int64) -> (epoch: Int32, endOffset: Int64) {
        guard epoch >= 0, let latest = entries.last else { return (-1, -1) }
        if epoch == latest.epoch { return (epoch, logEndOffset) }
        guard let higher = entries.first(where: { $0.epoch > epoch }) else { return (-1, -1) }
        let floor = entries.last(where: { $0.epoch <= epoch })
        return (floor?.epoch ?? epoch, higher.startOffset)
    }

    /// The epoch of the leader that wrote `offset` (-1 when unknown).
    public func epoch(forOffset offset: Int64) -> Int32 {
        entries.last(where: { $0.startOffset <= offset })?.epoch ?? -1
    }

    mutating func truncateFromEnd(endOffset: Int64) {
        entries.removeAll { $0.startOffset >= endOffset }
    }

    mutating func truncateFromStart(startOffset: Int64) {
        // Keep the epoch that covers startOffset, moved up to it.
        guard let i = entries.lastIndex(where: { $0.startOffset <= startOffset }) else { return }
        entries.removeFirst(i)
        entries[0].startOffset = max(entries[0].startOffset, startOffset)
    }

    func lines() -> [String] { entries.map { "\($0.epoch) \($0.startOffset)" } }

    static func load(_ path: String) throws -> LeaderEpochCache {
        var cache = LeaderEpochCache()
        for fields in try CheckpointFile.read(path) {
            guard fields.count == 2, let e = Int32(fields[0]), let o = Int64(fields[1]) else {
                throw StorageError.corruptLog(path: path, why: "malformed leader epoch entry")
            }
            cache.entries.append(Entry(epoch: e, startOffset: o))
        }
        return cache
    }
}
