import KafkaRecords
import NIOCore

/// One aborted transaction as Kafka's `.txnindex` holds it (Kafka's `AbortedTxn`): the producer,
/// the offset of its first record in this partition, the offset of the ABORT marker, and the
/// partition's last stable offset right after the marker was written (the first offset of the
/// earliest transaction of another producer still open then, else the marker's offset + 1).
public struct AbortedTxn: Sendable, Equatable, CustomStringConvertible {
    public var producerId: Int64
    public var firstOffset: Int64
    public var lastOffset: Int64
    public var lastStableOffset: Int64

    public init(producerId: Int64, firstOffset: Int64, lastOffset: Int64, lastStableOffset: Int64) {
        self.producerId = producerId
        self.firstOffset = firstOffset
        self.lastOffset = lastOffset
        self.lastStableOffset = lastStableOffset
    }

    /// Entry size in the file: version int16, producerId int64, firstOffset int64, lastOffset int64,
    /// lastStableOffset int64, big-endian.
    public static let entrySize = 34
    public static let currentVersion: Int16 = 0

    public var description: String {
        "AbortedTxn(producerId=\(producerId), firstOffset=\(firstOffset), lastOffset=\(lastOffset), lastStableOffset=\(lastStableOffset))"
    }
}

/// A segment's aborted-transaction index (Kafka's `TransactionIndex`, file `<base>.txnindex`): one
/// entry per ABORT marker in the segment, in marker order. Kept in memory and written whole (as
/// the other indexes are) by a flush and at close; a segment without aborted transactions has no
/// file. Recovery rebuilds it for the segments it scans.
struct TransactionIndex: Sendable, Equatable {
    private(set) var entries: [AbortedTxn] = []

    var isEmpty: Bool { entries.isEmpty }

    mutating func append(_ txn: AbortedTxn) {
        entries.append(txn)
    }

    mutating func append(contentsOf other: TransactionIndex) {
        entries.append(contentsOf: other.entries)
    }

    /// Removes the entries whose marker is at or past `offset` (Kafka's `truncateTo`).
    /// Returns whether anything was removed.
    @discardableResult
    mutating func truncate(to offset: Int64) -> Bool {
        let before = entries.count
        entries.removeAll { $0.lastOffset >= offset }
        return entries.count != before
    }

    /// Kafka's `collectAbortedTxns`: the entries whose marker is at or after `fetchOffset` and whose
    /// first offset is below `upperBound`; `isComplete` once an entry's last stable offset reaches
    /// `upperBound` (no later segment can hold a transaction that overlaps the range).
    func collect(fetchOffset: Int64, upperBound: Int64) -> (entries: [AbortedTxn], isComplete: Bool) {
        var found: [AbortedTxn] = []
        for txn in entries {
            if txn.lastOffset >= fetchOffset && txn.firstOffset < upperBound { found.append(txn) }
            if txn.lastStableOffset >= upperBound { return (found, true) }
        }
        return (found, false)
    }

    func serialized() -> ByteBuffer {
        var b = ByteBuffer()
        b.reserveCapacity(entries.count * AbortedTxn.entrySize)
        for e in entries {
            b.writeInteger(AbortedTxn.currentVersion, endianness: .big)
            b.writeInteger(e.producerId, endianness: .big)
            b.writeInteger(e.firstOffset, endianness: .big)
            b.writeInteger(e.lastOffset, endianness: .big)
            b.writeInteger(e.lastStableOffset, endianness: .big)
        }
        return b
    }

    /// Parses a `.txnindex` file; nil when it is not one (size not a multiple of 34, an unknown
    /// version, markers out of order).
    static func load(_ bytes: ByteBuffer) -> TransactionIndex? {
        guard bytes.readableBytes % AbortedTxn.entrySize == 0 else { return nil }
        var index = TransactionIndex()
        var b = bytes
        while b.readableBytes > 0 {
            guard let version = b.readInteger(endianness: .big, as: Int16.self), version == AbortedTxn.currentVersion,
                  let pid = b.readInteger(endianness: .big, as: Int64.self),
                  let first = b.readInteger(endianness: .big, as: Int64.self),
                  let last = b.readInteger(endianness: .big, as: Int64.self),
                  let lso = b.readInteger(endianness: .big, as: Int64.self) else { return nil }
            if let previous = index.entries.last, last <= previous.lastOffset { return nil }
            index.entries.append(AbortedTxn(producerId: pid, firstOffset: first, lastOffset: last, lastStableOffset: lso))
        }
        return index
    }
}

/// The content of a transaction marker (a control batch's one record, Kafka's `EndTransactionMarker`):
/// key = version int16, type int16 (0 ABORT, 1 COMMIT); value = version int16, coordinatorEpoch int32.
public struct EndTxnMarker: Sendable, Equatable {
    public var isCommit: Bool
    public var coordinatorEpoch: Int32

    public init(isCommit: Bool, coordinatorEpoch: Int32) {
        self.isCommit = isCommit
        self.coordinatorEpoch = coordinatorEpoch
    }

    /// The marker a control batch carries; nil for a control batch that is not a transaction marker
    /// (another control type, or emptied by the cleaner). Throws on a malformed marker record.
    public static func parse(_ batch: RecordBatch) throws -> EndTxnMarker? {
        guard batch.header.attributes.isControl else { return nil }
        var first: Record?
        try batch.forEachRecord { record in if first == nil { first = record } }
        guard let record = first else { return nil }
        guard var key = record.key, key.readableBytes >= 4,
              let _ = key.readInteger(endianness: .big, as: Int16.self),
              let type = key.readInteger(endianness: .big, as: Int16.self) else {
            throw RecordBatchError.invalidRecord("control record at offset \(batch.header.baseOffset) has no valid key")
        }
        guard type == 0 || type == 1 else { return nil }
        guard var value = record.value, value.readableBytes >= 6,
              let _ = value.readInteger(endianness: .big, as: Int16.self),
              let epoch = value.readInteger(endianness: .big, as: Int32.self) else {
            throw RecordBatchError.invalidRecord("transaction marker at offset \(batch.header.baseOffset) has no valid value")
        }
        return EndTxnMarker(isCommit: type == 1, coordinatorEpoch: epoch)
    }

    /// A control batch holding this marker (uncompressed, as Kafka writes them): for the coordinator
    /// (WriteTxnMarkers) and tests. Offsets are assigned by the append.
    public static func batch(isCommit: Bool, producerId: Int64, producerEpoch: Int16, coordinatorEpoch: Int32,
                             timestamp: Int64) -> ByteBuffer {
        var builder = RecordBatchBuilder(attributes: RecordBatchAttributes(isTransactional: true, isControl: true),
                                         producerId: producerId, producerEpoch: producerEpoch, baseSequence: -1)
        var key = ByteBuffer()
        key.writeInteger(Int16(0), endianness: .big)
        key.writeInteger(Int16(isCommit ? 1 : 0), endianness: .big)
        var value = ByteBuffer()
        value.writeInteger(Int16(0), endianness: .big)
        value.writeInteger(coordinatorEpoch, endianness: .big)
        builder.append(key: key, value: value, timestamp: timestamp)
        return builder.build()
    }
}
