import KafkaProtocol
import KafkaRecords
import NIOCore

/// Per-partition idempotent producer state: for each producer id its epoch and its last five
/// batches' sequence ranges, as Kafka keeps (ProducerStateManager). Duplicates of those batches
/// are acknowledged without being appended again; gaps and stale epochs are refused.
public struct ProducerStateManager: Sendable, Equatable {
    public static let batchesKept = 5

    public struct BatchMetadata: Sendable, Equatable {
        public var firstSequence: Int32
        public var lastSequence: Int32
        public var firstOffset: Int64
        public var lastOffset: Int64
        public var timestamp: Int64
    }

    public struct Entry: Sendable, Equatable {
        public var epoch: Int16
        public var batches: [BatchMetadata]
        public var lastTimestamp: Int64
        public var lastSequence: Int32 { batches.last?.lastSequence ?? -1 }
        public var lastOffset: Int64 { batches.last?.lastOffset ?? -1 }
    }

    public private(set) var producers: [Int64: Entry] = [:]

    public init() {}

    static func inSequence(last: Int32, next: Int32) -> Bool {
        next == last &+ 1 || (next == 0 && last == Int32.max)
    }

    static func lastSequence(of header: RecordBatchHeader) -> Int32 {
        let last = Int64(header.baseSequence) + Int64(header.lastOffsetDelta)
        return last > Int64(Int32.max) ? Int32(last - Int64(Int32.max) - 1) : Int32(last)
    }

    /// Checks a batch about to be appended. Returns the original batch when it is a duplicate of
    /// one of the last five; throws when its epoch or sequence is wrong (Kafka's ProducerAppendInfo).
    ///
    /// `previous` is an earlier batch of the same producer in the same append, not yet recorded.
    func check(_ header: RecordBatchHeader, previous: RecordBatchHeader? = nil, partition: String) throws -> BatchMetadata? {
        guard header.producerId >= 0 else { return nil }
        let pid = header.producerId, epoch = header.producerEpoch, firstSeq = header.baseSequence
        if let previous {
            if epoch < previous.producerEpoch {
                throw StorageError.invalidProducerEpoch(
                    "epoch \(epoch) of producer \(pid) is older than the current epoch \(previous.producerEpoch) in \(partition)")
            }
            guard firstSeq >= 0 else { return nil }
            let expected = epoch == previous.producerEpoch ? Self.lastSequence(of: previous) : -1
            if epoch != previous.producerEpoch ? firstSeq != 0 : !Self.inSequence(last: expected, next: firstSeq) {
                throw StorageError.outOfOrderSequence(
                    "out of order sequence number for producer \(pid) in \(partition): \(firstSeq) (incoming seq. number), \(expected) (current end sequence number)")
            }
            return nil
        }
        guard let entry = producers[pid] else {
            // No state: a new producer (or one whose records retention removed).
            if firstSeq > 0 {
                throw StorageError.unknownProducerId(
                    "found no record of producerId=\(pid) on the broker for \(partition); it is possible that its last message was removed by retention")
            }
            return nil
        }
        if epoch < entry.epoch {
            throw StorageError.invalidProducerEpoch(
                "epoch \(epoch) of producer \(pid) is older than the current epoch \(entry.epoch) in \(partition)")
        }
        guard header.baseSequence >= 0 else { return nil }
        if epoch != entry.epoch {
            if firstSeq != 0 {
                throw StorageError.outOfOrderSequence(
                    "invalid sequence number for new epoch \(epoch) of producer \(pid) in \(partition): \(firstSeq) (expected 0)")
            }
            return nil
        }
        let lastSeq = Self.lastSequence(of: header)
        if let dup = entry.batches.first(where: { $0.firstSequence == firstSeq && $0.lastSequence == lastSeq }) {
            return dup
        }
        if !Self.inSequence(last: entry.lastSequence, next: firstSeq) {
            throw StorageError.outOfOrderSequence(
                "out of order sequence number for producer \(pid) in \(partition): \(firstSeq) (incoming seq. number), \(entry.lastSequence) (current end sequence number)")
        }
        return nil
    }

    /// Records an appended batch (also used when rebuilding state from the log).
    mutating func update(_ header: RecordBatchHeader, firstOffset: Int64) {
        guard header.producerId >= 0 else { return }
        let meta = BatchMetadata(firstSequence: header.baseSequence, lastSequence: Self.lastSequence(of: header),
                                 firstOffset: firstOffset, lastOffset: firstOffset + Int64(header.lastOffsetDelta),
                                 timestamp: header.maxTimestamp)
        if var entry = producers[header.producerId] {
            if header.producerEpoch != entry.epoch {
                entry.epoch = header.producerEpoch
                entry.batches.removeAll(keepingCapacity: true)
            }
            if header.baseSequence >= 0 {
                if entry.batches.count == Self.batchesKept { entry.batches.removeFirst() }
                entry.batches.append(meta)
            }
            entry.lastTimestamp = header.maxTimestamp
            producers[header.producerId] = entry
        } else {
            var batches: [BatchMetadata] = []
            batches.reserveCapacity(Self.batchesKept)
            if header.baseSequence >= 0 { batches.append(meta) }
            producers[header.producerId] = Entry(epoch: header.producerEpoch, batches: batches, lastTimestamp: header.maxTimestamp)
        }
    }

    /// Forgets producers whose last write is below the log start offset (retention, DeleteRecords).
    mutating func removeBefore(_ logStartOffset: Int64) {
        producers = producers.filter { $0.value.lastOffset < 0 || $0.value.lastOffset >= logStartOffset }
    }

    mutating func removeAll() { producers.removeAll() }

    /// Forgets producers idle for `producer.id.expiration.ms`: those whose last batch's timestamp
    /// is at least `expirationMs` before `now` (Kafka's removeExpiredProducers; the timestamp is
    /// the batch's max timestamp, as Kafka keeps). Returns how many were removed.
    @discardableResult
    public mutating func removeExpired(now: Int64, expirationMs: Int64) -> Int {
        let before = producers.count
        producers = producers.filter { now - $0.value.lastTimestamp < expirationMs }
        return before - producers.count
    }

    // Snapshot file: "SPS1", count, then per producer: pid, epoch, lastTimestamp, batch count, batches;
    // a CRC32C of everything before it at the end.
    func snapshot() -> ByteBuffer {
        var b = ByteBuffer()
        b.writeString("SPS1")
        b.writeInteger(Int32(producers.count), endianness: .big)
        for (pid, e) in producers.sorted(by: { $0.key < $1.key }) {
            b.writeInteger(pid, endianness: .big)
            b.writeInteger(e.epoch, endianness: .big)
            b.writeInteger(e.lastTimestamp, endianness: .big)
            b.writeInteger(Int8(e.batches.count))
            for m in e.batches {
                b.writeInteger(m.firstSequence, endianness: .big)
                b.writeInteger(m.lastSequence, endianness: .big)
                b.writeInteger(m.firstOffset, endianness: .big)
                b.writeInteger(m.lastOffset, endianness: .big)
                b.writeInteger(m.timestamp, endianness: .big)
            }
        }
        b.writeInteger(CRC32C.checksum(b), endianness: .big)
        return b
    }

    static func load(snapshot: ByteBuffer) -> ProducerStateManager? {
        guard snapshot.readableBytes >= 12 else { return nil }
        let body = snapshot.getSlice(at: snapshot.readerIndex, length: snapshot.readableBytes - 4)!
        guard snapshot.getInteger(at: snapshot.writerIndex - 4, endianness: .big, as: UInt32.self) == CRC32C.checksum(body) else {
            return nil
        }
        var b = body
        guard b.readString(length: 4) == "SPS1", let count = b.readInteger(endianness: .big, as: Int32.self) else { return nil }
        var state = ProducerStateManager()
        for _ in 0..<count {
            guard let pid = b.readInteger(endianness: .big, as: Int64.self),
                  let epoch = b.readInteger(endianness: .big, as: Int16.self),
                  let ts = b.readInteger(endianness: .big, as: Int64.self),
                  let n = b.readInteger(as: Int8.self) else { return nil }
            var batches: [BatchMetadata] = []
            for _ in 0..<n {
                guard let fs = b.readInteger(endianness: .big, as: Int32.self),
                      let ls = b.readInteger(endianness: .big, as: Int32.self),
                      let fo = b.readInteger(endianness: .big, as: Int64.self),
                      let lo = b.readInteger(endianness: .big, as: Int64.self),
                      let t = b.readInteger(endianness: .big, as: Int64.self) else { return nil }
                batches.append(BatchMetadata(firstSequence: fs, lastSequence: ls, firstOffset: fo, lastOffset: lo, timestamp: t))
            }
            state.producers[pid] = Entry(epoch: epoch, batches: batches, lastTimestamp: ts)
        }
        return state
    }
}
