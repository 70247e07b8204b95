import KafkaProtocol
import KafkaRecords
import NIOCore

/// One segment of a partition log: `<base offset>.log` holding record batches exactly as they
/// were received (base offset and leader epoch patched), with its sparse indexes in memory.
/// Mutated only under its log's lock.
struct LogSegment: Sendable {
    let baseOffset: Int64
    let file: FileDescriptorBox
    /// Bytes of whole batches in the file.
    var size: Int
    /// The offset after the last record in this segment (the base offset when empty).
    var nextOffset: Int64
    var offsetIndex = OffsetIndex()
    var timeIndex = TimeIndex()
    var bytesSinceIndexEntry = 0
    /// Largest record timestamp in the segment (-1 when empty), and the base offset of its batch.
    var maxTimestamp: Int64 = -1
    var offsetOfMaxTimestamp: Int64 = -1
    /// When the segment received its first batch (wall clock ms), for `segment.ms`.
    var createdAtMs: Int64
    /// Whether the index files on disk lag the in-memory indexes.
    var indexesDirty = false
    /// The aborted transactions whose ABORT marker is in this segment (`.txnindex`).
    var txnIndex = TransactionIndex()
    /// Whether the `.txnindex` file lags `txnIndex`.
    var txnIndexDirty = false

    static func fileName(_ baseOffset: Int64, _ suffix: String) -> String {
        let digits = String(baseOffset)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    var logPath: String { file.path }
    var basePath: String { String(file.path.dropLast(4)) }
    var indexPath: String { basePath + ".index" }
    var timeIndexPath: String { basePath + ".timeindex" }
    var txnIndexPath: String { basePath + ".txnindex" }

    static func create(directory: String, baseOffset: Int64, now: Int64) throws -> LogSegment {
        let path = directory + "/" + fileName(baseOffset, ".log")
        let file = try FileDescriptorBox.open(path, create: true)
        try file.truncate(to: 0)
        // No index files yet: the next flush (or close) writes them.
        var segment = LogSegment(baseOffset: baseOffset, file: file, size: 0, nextOffset: baseOffset, createdAtMs: now)
        segment.indexesDirty = true
        return segment
    }

    /// Accounts for a batch appended at `position` (the file write has already happened).
    mutating func didAppend(_ header: RecordBatchHeader, baseOffset: Int64, position: Int, size batchSize: Int,
                            maxTimestamp: Int64, indexInterval: Int, now: Int64) {
        if size == 0 { createdAtMs = now }
        if maxTimestamp > self.maxTimestamp {
            self.maxTimestamp = maxTimestamp
            offsetOfMaxTimestamp = baseOffset
        }
        if bytesSinceIndexEntry >= indexInterval {
            let rel = UInt32(baseOffset - self.baseOffset)
            offsetIndex.append(relativeOffset: rel, position: UInt32(position))
            timeIndex.append(timestamp: self.maxTimestamp, relativeOffset: rel)
            bytesSinceIndexEntry = 0
            indexesDirty = true
        }
        bytesSinceIndexEntry += batchSize
        size = position + batchSize
        nextOffset = baseOffset + Int64(header.lastOffsetDelta) + 1
    }

    /// Where to start scanning for `offset` (a batch boundary at or before it).
    func scanStart(for offset: Int64) -> Int {
        guard offset > baseOffset else { return 0 }
        let rel = UInt32(clamping: offset - baseOffset)
        return offsetIndex.floor(relativeOffset: rel).map { Int($0.position) } ?? 0
    }

    /// The first batch whose last offset is at least `offset`, with its position; nil when the
    /// segment ends before `offset`.
    func locate(_ offset: Int64) throws -> (position: Int, header: RecordBatchHeader)? {
        guard offset < nextOffset else { return nil }
        var scanner = BatchScanner(file: file, from: scanStart(for: offset), to: size, chunkSize: 16 * 1024)
        while let (position, header) = try scanner.next() {
            if header.lastOffset >= offset { return (position, header) }
        }
        return nil
    }

    /// Writes the index files (Kafka's `.index` / `.timeindex` layout).
    mutating func writeIndexes() throws {
        try writeTxnIndex()
        guard indexesDirty || !FS.exists(indexPath) || !FS.exists(timeIndexPath) else { return }
        try FS.writeAtomically(indexPath, offsetIndex.serialized(), sync: false)
        try FS.writeAtomically(timeIndexPath, timeIndex.serialized(), sync: false)
        indexesDirty = false
    }

    /// Writes the `.txnindex` file when it lags (removes it when the index is empty).
    mutating func writeTxnIndex() throws {
        guard txnIndexDirty else { return }
        try Self.writeTxnIndex(txnIndex, path: txnIndexPath)
        txnIndexDirty = false
    }

    static func writeTxnIndex(_ index: TransactionIndex, path: String) throws {
        if index.isEmpty {
            try FS.remove(path)
        } else {
            try FS.writeAtomically(path, index.serialized(), sync: false)
        }
    }

    /// Cuts the segment back to `position` (a batch boundary) whose first offset is `offset`.
    mutating func truncate(toPosition position: Int, nextOffset: Int64) throws {
        try file.truncate(to: position)
        size = position
        self.nextOffset = nextOffset
        if txnIndex.truncate(to: nextOffset) { txnIndexDirty = true }
        offsetIndex.truncate(toPosition: position)
        timeIndex.truncate(toRelativeOffset: UInt32(clamping: nextOffset - baseOffset))
        indexesDirty = true
        try rebuildTail()
    }

    /// Recomputes the timestamps and the index counter after the last index entry by scanning
    /// batch headers from there (used after loading trusted index files and after truncation).
    mutating func rebuildTail() throws {
        let start = offsetIndex.positions.last.map(Int.init) ?? 0
        if start == 0 {
            maxTimestamp = -1
            offsetOfMaxTimestamp = -1
        } else if let ts = timeIndex.timestamps.last, let rel = timeIndex.relativeOffsets.last {
            maxTimestamp = ts
            offsetOfMaxTimestamp = baseOffset + Int64(rel)
        }
        var scanner = BatchScanner(file: file, from: start, to: size, chunkSize: 64 * 1024)
        var next = baseOffset
        var sinceEntry = 0
        while let (_, header) = try scanner.next() {
            if header.maxTimestamp > maxTimestamp {
                maxTimestamp = header.maxTimestamp
                offsetOfMaxTimestamp = header.baseOffset
            }
            next = header.lastOffset + 1
            sinceEntry += header.totalSize
        }
        nextOffset = max(next, baseOffset)
        bytesSinceIndexEntry = sinceEntry
    }
}

/// Reads record batch headers (and, when validating, whole batches) sequentially from a segment
/// file with a read-ahead buffer.
struct BatchScanner {
    let file: FileDescriptorBox
    private(set) var position: Int
    let end: Int
    let chunkSize: Int
    private var buffer: ByteBuffer
    private var bufferStart: Int

    init(file: FileDescriptorBox, from position: Int, to end: Int, chunkSize: Int) {
        self.file = file
        self.position = position
        self.end = end
        self.chunkSize = chunkSize
        self.buffer = ByteBuffer()
        self.bufferStart = position
    }

    /// Makes bytes [position, position + count) available in the buffer; false if the file ends first.
    private mutating func ensure(_ count: Int) throws -> Bool {
        guard position + count <= end else { return false }
        if position >= bufferStart, position + count <= bufferStart + buffer.readableBytes { return true }
        let length = min(max(count, chunkSize), end - position)
        buffer = try file.pread(length: length, at: position)
        bufferStart = position
        return buffer.readableBytes >= count
    }

    /// The next batch header and its position; nil at the end. Throws at a torn or invalid batch
    /// (the caller truncates at `position`). With `validate`, the whole batch's CRC is checked.
    mutating func next(validate: Bool = false) throws -> (Int, RecordBatchHeader)? {
        guard position < end else { return nil }
        guard try ensure(RecordBatchHeader.size) else {
            throw RecordBatchError.truncated(needed: RecordBatchHeader.size, available: end - position)
        }
        let header = try RecordBatchHeader(from: buffer, at: buffer.readerIndex + (position - bufferStart))
        let total = header.totalSize
        guard total <= end - position else { throw RecordBatchError.truncated(needed: total, available: end - position) }
        if validate {
            guard try ensure(total) else { throw RecordBatchError.truncated(needed: total, available: end - position) }
            let slice = buffer.getSlice(at: buffer.readerIndex + (position - bufferStart), length: total)!
            let batch = try RecordBatch(from: slice)
            try batch.validate()
        }
        let at = position
        position += total
        return (at, header)
    }

    /// The bytes of the batch at `position` (reads them if needed).
    mutating func batchBytes(at position: Int, size: Int) throws -> ByteBuffer {
        if position >= bufferStart, position + size <= bufferStart + buffer.readableBytes {
            return buffer.getSlice(at: buffer.readerIndex + (position - bufferStart), length: size)!
        }
        return try file.pread(length: size, at: position)
    }
}
