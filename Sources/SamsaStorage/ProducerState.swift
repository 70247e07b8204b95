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
        /// The offset of the first record of the producer's open transaction in this partition
        /// (Kafka's `currentTxnFirstOffset`); nil when none is open.
        public var currentTxnFirstOffset: Int64? = nil
        /// The coordinator epoch of the last transaction marker written for the producer (-1: none).
        public var coordinatorEpoch: Int32 = -1
        public var lastSequence: Int32 { batches.last?.lastSequence ?? -1 }
        public var lastOffset: Int64 { batches.last?.lastOffset ?? -1 }
    }

    public private(set) var producers: [Int64: Entry] = [:]

    /// A transaction of one producer in this partition: open (`lastOffset` nil), or completed by
    /// the marker at `lastOffset` that the high watermark has not passed yet.
    public struct TxnMetadata: Sendable, Equatable {
        public var producerId: Int64
        public var firstOffset: Int64
        public var lastOffset: Int64?
    }

    /// A transaction a marker just completed.
    public struct CompletedTxn: Sendable, Equatable {
        public var producerId: Int64
        public var firstOffset: Int64
        /// The marker's offset.
        public var lastOffset: Int64
        public var isAborted: Bool
        /// The last stable offset right after the marker (Kafka's `lastStableOffset(completedTxn)`):
        /// the first offset of the earliest transaction still open, else the marker's offset + 1.
        public var lastStableOffset: Int64
    }

    /// Open transactions, by first offset (Kafka's `ongoingTxns`).
    public private(set) var ongoingTxns: [TxnMetadata] = []
    /// Completed transactions whose marker is at or above the high watermark, by first offset
    /// (Kafka's `unreplicatedTxns`): they hold the last stable offset until the marker is replicated.
    public private(set) var unreplicatedTxns: [TxnMetadata] = []

    /// The first offset that a read_committed consumer may not read yet (nil: none), Kafka's
    /// `firstUnstableOffset`: the earliest first offset of an open or unreplicated transaction.
    public var firstUnstableOffset: Int64? {
        switch (ongoingTxns.first?.firstOffset, unreplicatedTxns.first?.firstOffset) {
        case let (a?, b?): return min(a, b)
        case let (a?, nil): return a
        case let (nil, b?): return b
        case (nil, nil): return nil
        }
    }

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

    /// Records an appended batch (also used when rebuilding state from the log). `marker` is the
    /// transaction marker of a control batch (`EndTxnMarker.parse`). Returns the transaction the
    /// marker completed, if the producer had one open (a marker without an open transaction
    /// completes nothing, as in Kafka).
    @discardableResult
    mutating func update(_ header: RecordBatchHeader, firstOffset: Int64, marker: EndTxnMarker? = nil) -> CompletedTxn? {
        guard header.producerId >= 0 else { return nil }
        let pid = header.producerId
        let meta = BatchMetadata(firstSequence: header.baseSequence, lastSequence: Self.lastSequence(of: header),
                                 firstOffset: firstOffset, lastOffset: firstOffset + Int64(header.lastOffsetDelta),
                                 timestamp: header.maxTimestamp)
        var entry: Entry
        if let existing = producers[pid] {
            entry = existing
            if header.producerEpoch != entry.epoch {
                entry.epoch = header.producerEpoch
                entry.batches.removeAll(keepingCapacity: true)
            }
        } else {
            var batches: [BatchMetadata] = []
            batches.reserveCapacity(Self.batchesKept)
            entry = Entry(epoch: header.producerEpoch, batches: batches, lastTimestamp: header.maxTimestamp)
        }
        if header.baseSequence >= 0, !header.attributes.isControl {
            if entry.batches.count == Self.batchesKept { entry.batches.removeFirst() }
            entry.batches.append(meta)
        }
        entry.lastTimestamp = header.maxTimestamp
        var completed: CompletedTxn?
        if header.attributes.isControl {
            if let marker {
                if let first = entry.currentTxnFirstOffset {
                    removeOngoing(pid)
                    let lso = ongoingTxns.first?.firstOffset ?? firstOffset + 1
                    completed = CompletedTxn(producerId: pid, firstOffset: first, lastOffset: firstOffset,
                                             isAborted: !marker.isCommit, lastStableOffset: lso)
                    insertUnreplicated(TxnMetadata(producerId: pid, firstOffset: first, lastOffset: firstOffset))
                }
                entry.currentTxnFirstOffset = nil
                entry.coordinatorEpoch = marker.coordinatorEpoch
            }
        } else if header.attributes.isTransactional, entry.currentTxnFirstOffset == nil {
            entry.currentTxnFirstOffset = firstOffset
            // Appends come in offset order: the new transaction starts after every open one.
            ongoingTxns.append(TxnMetadata(producerId: pid, firstOffset: firstOffset, lastOffset: nil))
        }
        producers[pid] = entry
        return completed
    }

    private mutating func removeOngoing(_ pid: Int64) {
        if let i = ongoingTxns.firstIndex(where: { $0.producerId == pid }) { ongoingTxns.remove(at: i) }
    }

    private mutating func insertUnreplicated(_ txn: TxnMetadata) {
        let i = unreplicatedTxns.firstIndex(where: { $0.firstOffset > txn.firstOffset }) ?? unreplicatedTxns.count
        unreplicatedTxns.insert(txn, at: i)
    }

    /// Forgets completed transactions whose marker is below the high watermark (Kafka's
    /// `onHighWatermarkUpdated`): they no longer hold the last stable offset back.
    mutating func onHighWatermarkUpdated(_ highWatermark: Int64) {
        guard !unreplicatedTxns.isEmpty else { return }
        unreplicatedTxns.removeAll { ($0.lastOffset ?? .max) < highWatermark }
    }

    /// Checks what the transaction state says about a batch about to be appended by the leader
    /// (Kafka's ProducerAppendInfo): a producer with an open transaction may only write
    /// transactional batches (INVALID_TXN_STATE), and a marker with an older coordinator epoch
    /// than the last one seen is fenced (TRANSACTION_COORDINATOR_FENCED).
    func checkTransactional(_ header: RecordBatchHeader, marker: EndTxnMarker?, partition: String) throws {
        guard header.producerId >= 0, let entry = producers[header.producerId] else { return }
        if header.attributes.isControl {
            if let marker, marker.coordinatorEpoch < entry.coordinatorEpoch {
                throw StorageError.transactionCoordinatorFenced(
                    "transaction marker for producer \(header.producerId) in \(partition) has coordinator epoch \(marker.coordinatorEpoch), older than the last seen \(entry.coordinatorEpoch)")
            }
        } else if entry.currentTxnFirstOffset != nil, !header.attributes.isTransactional {
            throw StorageError.invalidTxnState(
                "expected a transactional write from producer \(header.producerId) in \(partition): it has a transaction open since offset \(entry.currentTxnFirstOffset!)")
        }
    }

    /// Forgets producers whose last write is below the log start offset (retention, DeleteRecords).
    /// A producer with an open transaction is kept (its transaction still decides the last stable
    /// offset); completed transactions whose marker is below it are forgotten.
    mutating func removeBefore(_ logStartOffset: Int64) {
        producers = producers.filter {
            $0.value.lastOffset < 0 || $0.value.lastOffset >= logStartOffset || $0.value.currentTxnFirstOffset != nil
        }
        unreplicatedTxns.removeAll { ($0.lastOffset ?? .max) < logStartOffset }
    }

    mutating func removeAll() {
        producers.removeAll()
        ongoingTxns.removeAll()
        unreplicatedTxns.removeAll()
    }

    /// Forgets producers idle for `producer.id.expiration.ms`: those whose last batch's timestamp
    /// is at least `expirationMs` before `now` (Kafka's removeExpiredProducers; the timestamp is
    /// the batch's max timestamp, as Kafka keeps). A producer with an open transaction never
    /// expires here (its transaction is aborted by the coordinator's timeout). Returns how many were removed.
    @discardableResult
    public mutating func removeExpired(now: Int64, expirationMs: Int64) -> Int {
        let before = producers.count
        producers = producers.filter { now - $0.value.lastTimestamp < expirationMs || $0.value.currentTxnFirstOffset != nil }
        return before - producers.count
    }

    // Snapshot file: "SPS2", count, then per producer: pid, epoch, lastTimestamp, first offset of
    // the open transaction (-1: none), coordinator epoch, batch count, batches; a CRC32C of everything
    // before it at the end. "SPS1" (earlier versions: no transaction fields) is still read, as a
    // state without open transactions.
    func snapshot() -> ByteBuffer {
        var b = ByteBuffer()
        b.writeString("SPS2")
        b.writeInteger(Int32(producers.count), endianness: .big)
        for (pid, e) in producers.sorted(by: { $0.key < $1.key }) {
            b.writeInteger(pid, endianness: .big)
            b.writeInteger(e.epoch, endianness: .big)
            b.writeInteger(e.lastTimestamp, endianness: .big)
            b.writeInteger(e.currentTxnFirstOffset ?? -1, endianness: .big)
            b.writeInteger(e.coordinatorEpoch, endianness: .big)
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
        let magic = b.readString(length: 4)
        guard magic == "SPS1" || magic == "SPS2", let count = b.readInteger(endianness: .big, as: Int32.self) else { return nil }
        let withTxn = magic == "SPS2"
        var state = ProducerStateManager()
        for _ in 0..<count {
            guard let pid = b.readInteger(endianness: .big, as: Int64.self),
                  let epoch = b.readInteger(endianness: .big, as: Int16.self),
                  let ts = b.readInteger(endianness: .big, as: Int64.self) else { return nil }
            var txnFirst: Int64 = -1, coordinatorEpoch: Int32 = -1
            if withTxn {
                guard let f = b.readInteger(endianness: .big, as: Int64.self),
                      let c = b.readInteger(endianness: .big, as: Int32.self) else { return nil }
                txnFirst = f
                coordinatorEpoch = c
            }
            guard let n = b.readInteger(as: Int8.self) else { return nil }
            var batches: [BatchMetadata] = []
            for _ in 0..<n {
                guard let fs = b.readInteger(endianness: .big, as: Int32.self),
                      let ls = b.readInteger(endianness: .big, as: Int32.self),
                      let fo = b.readInteger(endianness: .big, as: Int64.self),
                      let lo = b.readInteger(endianness: .big, as: Int64.self),
                      let t = b.readInteger(endianness: .big, as: Int64.self) else { return nil }
                batches.append(BatchMetadata(firstSequence: fs, lastSequence: ls, firstOffset: fo, lastOffset: lo, timestamp: t))
            }
            state.producers[pid] = Entry(epoch: epoch, batches: batches, lastTimestamp: ts,
                                         currentTxnFirstOffset: txnFirst >= 0 ? txnFirst : nil, coordinatorEpoch: coordinatorEpoch)
            if txnFirst >= 0 { state.ongoingTxns.append(TxnMetadata(producerId: pid, firstOffset: txnFirst, lastOffset: nil)) }
        }
        state.ongoingTxns.sort { $0.firstOffset < $1.firstOffset }
        return state
    }
}
