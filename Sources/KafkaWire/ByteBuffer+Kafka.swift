import NIOCore

// Kafka's primitive types on NIO's ByteBuffer (https://kafka.apache.org/protocol#protocol_types).
// Every reader throws `KafkaWireError` on truncated or impossible input; none traps and none
// allocates more than the bytes actually present, whatever a length field claims.
// "Compact" variants are the flexible-version encodings (unsigned varint of length + 1, 0 = null).

extension ByteBuffer {
    // MARK: Fixed-width integers

    @inlinable
    mutating func readKafkaFixed<T: FixedWidthInteger>(_: T.Type) throws -> T {
        guard let value = readInteger(endianness: .big, as: T.self) else {
            throw KafkaWireError.truncated(needed: MemoryLayout<T>.size, available: readableBytes)
        }
        return value
    }

    @inlinable public mutating func readKafkaInt8() throws -> Int8 { try readKafkaFixed(Int8.self) }
    @inlinable public mutating func readKafkaInt16() throws -> Int16 { try readKafkaFixed(Int16.self) }
    @inlinable public mutating func readKafkaUInt16() throws -> UInt16 { try readKafkaFixed(UInt16.self) }
    @inlinable public mutating func readKafkaInt32() throws -> Int32 { try readKafkaFixed(Int32.self) }
    @inlinable public mutating func readKafkaUInt32() throws -> UInt32 { try readKafkaFixed(UInt32.self) }
    @inlinable public mutating func readKafkaInt64() throws -> Int64 { try readKafkaFixed(Int64.self) }

    @inlinable
    public mutating func readKafkaBool() throws -> Bool { try readKafkaFixed(UInt8.self) != 0 }

    @inlinable
    public mutating func readKafkaFloat64() throws -> Double {
        Double(bitPattern: try readKafkaFixed(UInt64.self))
    }

    @inlinable public mutating func writeKafkaInt8(_ v: Int8) { writeInteger(v) }
    @inlinable public mutating func writeKafkaInt16(_ v: Int16) { writeInteger(v, endianness: .big) }
    @inlinable public mutating func writeKafkaUInt16(_ v: UInt16) { writeInteger(v, endianness: .big) }
    @inlinable public mutating func writeKafkaInt32(_ v: Int32) { writeInteger(v, endianness: .big) }
    @inlinable public mutating func writeKafkaUInt32(_ v: UInt32) { writeInteger(v, endianness: .big) }
    @inlinable public mutating func writeKafkaInt64(_ v: Int64) { writeInteger(v, endianness: .big) }
    @inlinable public mutating func writeKafkaBool(_ v: Bool) { writeInteger(v ? 1 : 0 as UInt8) }
    @inlinable public mutating func writeKafkaFloat64(_ v: Double) { writeInteger(v.bitPattern, endianness: .big) }

    // MARK: Varints

    /// Reads an unsigned LEB128 varint of at most `maxBytes` bytes.
    @inlinable
    mutating func readKafkaLEB128(maxBytes: Int) throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var index = readerIndex
        let end = readerIndex + readableBytes
        for _ in 0..<maxBytes {
            guard index < end else {
                throw KafkaWireError.truncated(needed: index - readerIndex + 1, available: readableBytes)
            }
            let byte = getInteger(at: index, as: UInt8.self)!
            index += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                moveReaderIndex(to: index)
                return result
            }
            shift += 7
        }
        throw KafkaWireError.varintTooLong
    }

    @inlinable
    public mutating func readUnsignedVarint() throws -> UInt32 {
        let v = try readKafkaLEB128(maxBytes: 5)
        guard v <= UInt64(UInt32.max) else { throw KafkaWireError.varintTooLong }
        return UInt32(v)
    }

    @inlinable
    public mutating func readUnsignedVarlong() throws -> UInt64 { try readKafkaLEB128(maxBytes: 10) }

    /// Zigzag-encoded signed 32-bit varint (record fields).
    @inlinable
    public mutating func readVarint() throws -> Int32 {
        let raw = try readUnsignedVarint()
        return Int32(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// Zigzag-encoded signed 64-bit varint.
    @inlinable
    public mutating func readVarlong() throws -> Int64 {
        let raw = try readUnsignedVarlong()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// Writes an unsigned LEB128 varint with one capacity check (at most 10 bytes).
    @inlinable
    public mutating func writeUnsignedVarlong(_ value: UInt64) {
        if value < 0x80 {
            writeInteger(UInt8(value))
            return
        }
        writeWithUnsafeMutableBytes(minimumWritableBytes: 10) { p in
            var v = value
            var i = 0
            while v >= 0x80 {
                p[i] = UInt8(truncatingIfNeeded: v) | 0x80
                v >>= 7
                i += 1
            }
            p[i] = UInt8(v)
            return i + 1
        }
    }

    /// The encoded size of an unsigned varint.
    @inlinable
    public static func unsignedVarintSize(_ value: UInt64) -> Int {
        var v = value, n = 1
        while v >= 0x80 { v >>= 7; n += 1 }
        return n
    }

    @inlinable
    public mutating func writeUnsignedVarint(_ value: UInt32) { writeUnsignedVarlong(UInt64(value)) }

    @inlinable
    public mutating func writeVarint(_ value: Int32) {
        writeUnsignedVarint(UInt32(bitPattern: (value << 1) ^ (value >> 31)))
    }

    @inlinable
    public mutating func writeVarlong(_ value: Int64) {
        writeUnsignedVarlong(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    // MARK: Lengths

    /// Reads a length prefix: int16/int32 (classic) or unsigned varint of length + 1 (compact).
    /// Returns nil for null (-1 / 0). Throws if the length is below -1 or exceeds the bytes left.
    @inlinable
    mutating func readKafkaLength(compact: Bool, wide: Bool, field: String) throws -> Int? {
        let length: Int64
        if compact {
            length = Int64(try readUnsignedVarint()) - 1
        } else if wide {
            length = Int64(try readKafkaInt32())
        } else {
            length = Int64(try readKafkaInt16())
        }
        if length == -1 { return nil }
        guard length >= 0, length <= Int64(readableBytes) else {
            throw KafkaWireError.invalidLength(length, field: field)
        }
        return Int(length)
    }

    @inlinable
    mutating func writeKafkaLength(_ length: Int?, compact: Bool, wide: Bool) {
        if compact {
            writeUnsignedVarint(length.map { UInt32($0) + 1 } ?? 0)
        } else if wide {
            writeKafkaInt32(length.map { Int32($0) } ?? -1)
        } else {
            writeKafkaInt16(length.map { Int16($0) } ?? -1)
        }
    }

    // MARK: Strings

    @inlinable
    public mutating func readKafkaNullableString(compact: Bool) throws -> String? {
        guard let length = try readKafkaLength(compact: compact, wide: false, field: "string") else { return nil }
        return readString(length: length)!
    }

    @inlinable
    public mutating func readKafkaString(compact: Bool) throws -> String {
        guard let s = try readKafkaNullableString(compact: compact) else {
            throw KafkaWireError.unexpectedNull(field: "string")
        }
        return s
    }

    @inlinable
    public mutating func writeKafkaString(_ value: String?, compact: Bool) {
        guard let value else {
            writeKafkaLength(nil, compact: compact, wide: false)
            return
        }
        writeKafkaLength(value.utf8.count, compact: compact, wide: false)
        writeString(value)
    }

    // MARK: Bytes and records (kept as slices of the input buffer: no copy)

    @inlinable
    public mutating func readKafkaNullableBytes(compact: Bool) throws -> ByteBuffer? {
        guard let length = try readKafkaLength(compact: compact, wide: true, field: "bytes") else { return nil }
        return readSlice(length: length)!
    }

    @inlinable
    public mutating func readKafkaBytes(compact: Bool) throws -> ByteBuffer {
        guard let b = try readKafkaNullableBytes(compact: compact) else {
            throw KafkaWireError.unexpectedNull(field: "bytes")
        }
        return b
    }

    @inlinable
    public mutating func writeKafkaBytes(_ value: ByteBuffer?, compact: Bool) {
        guard let value else {
            writeKafkaLength(nil, compact: compact, wide: true)
            return
        }
        writeKafkaLength(value.readableBytes, compact: compact, wide: true)
        writeImmutableBuffer(value)
    }

    // MARK: Arrays

    /// Reads an array count; nil for a null array. A count larger than the remaining bytes is
    /// rejected up front (every element takes at least one byte), so a hostile count cannot
    /// cause a huge allocation or a long loop.
    @inlinable
    public mutating func readKafkaArrayCount(compact: Bool) throws -> Int? {
        try readKafkaLength(compact: compact, wide: true, field: "array")
    }

    @inlinable
    public mutating func writeKafkaArrayCount(_ count: Int?, compact: Bool) {
        writeKafkaLength(count, compact: compact, wide: true)
    }

    /// Reads `length` bytes as a slice, throwing if fewer remain.
    @inlinable
    public mutating func readKafkaSlice(length: Int) throws -> ByteBuffer {
        guard length >= 0, let slice = readSlice(length: length) else {
            throw KafkaWireError.truncated(needed: length, available: readableBytes)
        }
        return slice
    }

    // MARK: UUID

    @inlinable
    public mutating func readKafkaUUID() throws -> KafkaUUID {
        let high = try readKafkaFixed(UInt64.self)
        let low = try readKafkaFixed(UInt64.self)
        return KafkaUUID(high: high, low: low)
    }

    @inlinable
    public mutating func writeKafkaUUID(_ value: KafkaUUID) {
        writeInteger(value.high, endianness: .big)
        writeInteger(value.low, endianness: .big)
    }

    // MARK: Tagged fields

    /// Writes one tagged field: tag, size, then the bytes `body` writes.
    @inlinable
    public mutating func writeTaggedField(tag: UInt32, _ body: (inout ByteBuffer) -> Void) {
        var value = ByteBuffer()
        body(&value)
        writeUnsignedVarint(tag)
        writeUnsignedVarint(UInt32(value.readableBytes))
        writeBuffer(&value)
    }

    /// Writes the unknown tagged fields from `index` on whose tag is below `limit`, advancing
    /// `index`, so that known and unknown fields come out in ascending tag order.
    @inlinable
    public mutating func writeUnknownTaggedFields(_ fields: [TaggedField], from index: inout Int, below limit: UInt64) {
        while index < fields.count, UInt64(fields[index].tag) < limit {
            writeUnsignedVarint(fields[index].tag)
            writeUnsignedVarint(UInt32(fields[index].data.readableBytes))
            writeImmutableBuffer(fields[index].data)
            index += 1
        }
    }
}

/// A tagged field this code does not know, kept as raw bytes so that it survives a decode/encode
/// round trip unchanged.
public struct TaggedField: Hashable, Sendable {
    public var tag: UInt32
    public var data: ByteBuffer

    public init(tag: UInt32, data: ByteBuffer) {
        self.tag = tag
        self.data = data
    }
}

// MARK: Arrays of elements

extension ByteBuffer {
    /// Reads a possibly-null array, each element with `element`.
    @inlinable
    public mutating func readKafkaNullableArray<T>(compact: Bool, _ element: (inout ByteBuffer) throws -> T) throws -> [T]? {
        guard let count = try readKafkaArrayCount(compact: compact) else { return nil }
        var result: [T] = []
        // The count is at most the bytes left (checked by readKafkaArrayCount), but an element may
        // take far more memory than its one byte on the wire: reserve only a bounded amount up
        // front and let the array grow as elements actually decode, so memory follows the bytes
        // received, never the count claimed.
        result.reserveCapacity(Swift.min(count, Swift.max(16, 65_536 / Swift.max(1, MemoryLayout<T>.stride))))
        for _ in 0..<count { result.append(try element(&self)) }
        return result
    }

    /// Reads an array that must not be null.
    @inlinable
    public mutating func readKafkaArray<T>(compact: Bool, _ element: (inout ByteBuffer) throws -> T) throws -> [T] {
        guard let result = try readKafkaNullableArray(compact: compact, element) else {
            throw KafkaWireError.unexpectedNull(field: "array")
        }
        return result
    }

    @inlinable
    public mutating func writeKafkaArray<T>(_ array: [T], compact: Bool, _ element: (inout ByteBuffer, T) -> Void) {
        writeKafkaArrayCount(array.count, compact: compact)
        for e in array { element(&self, e) }
    }

    @inlinable
    public mutating func writeKafkaNullableArray<T>(_ array: [T]?, compact: Bool, _ element: (inout ByteBuffer, T) -> Void) {
        guard let array else {
            writeKafkaArrayCount(nil, compact: compact)
            return
        }
        writeKafkaArray(array, compact: compact, element)
    }
}
