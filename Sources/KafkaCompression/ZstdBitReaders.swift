/// Reads a zstd backward bitstream (RFC 8878 §4.1): the stream is written forwards but read from its end.
/// The last byte's highest set bit is a marker, and bits are consumed from just below it towards the first
/// byte's lowest bit. Reading past the start yields zero bits and leaves `bitsLeft` negative ("overflow"),
/// which callers check for rather than the reader throwing mid-decode.
struct BackwardBitReader {
    private let base: UnsafePointer<UInt8>
    private let count: Int
    /// Stream bits not yet consumed: bits `0..<bitsLeft`, numbered from the first byte's lowest bit.
    private(set) var bitsLeft: Int

    init(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, let last = bytes.last else {
            throw KafkaCompressionError.corruptInput(codec: .zstd, reason: "empty bitstream")
        }
        guard last != 0 else {
            throw KafkaCompressionError.corruptInput(codec: .zstd, reason: "bitstream lacks its end marker")
        }
        self.base = base.assumingMemoryBound(to: UInt8.self)
        count = bytes.count
        bitsLeft = count * 8 - last.leadingZeroBitCount - 1
    }

    /// True once more bits were consumed than the stream holds.
    var overflowed: Bool { bitsLeft < 0 }

    /// The next `n` bits (0...56) without consuming them, most significant first.
    @inline(__always)
    func peek(_ n: Int) -> Int {
        let start = bitsLeft - n
        guard start >= 0 else { return peekPastStart(n) }
        let byteIndex = start >> 3
        let word = byteIndex + 8 <= count ? loadLE64(base, byteIndex) : loadTail(byteIndex)
        return Int(truncatingIfNeeded: (word >> UInt64(start & 7)) & ((1 << UInt64(n)) &- 1))
    }

    @inline(__always)
    mutating func skip(_ n: Int) { bitsLeft -= n }

    @inline(__always)
    mutating func read(_ n: Int) -> Int {
        let value = peek(n)
        bitsLeft -= n
        return value
    }

    /// The bits that remain, padded below with zeros to `n` bits.
    private func peekPastStart(_ n: Int) -> Int {
        guard bitsLeft > 0 else { return 0 }
        return peek(bitsLeft) << (n - bitsLeft)
    }

    private func loadTail(_ byteIndex: Int) -> UInt64 {
        var word: UInt64 = 0
        for i in byteIndex..<count { word |= UInt64(base[i]) << UInt64(8 * (i - byteIndex)) }
        return word
    }
}

/// Reads bits forwards, lowest bit of the first byte first: the layout of FSE table descriptions.
/// Bits past the end read as zero; `bytesConsumed` tells the caller whether that happened.
struct ForwardBitReader {
    private let bytes: UnsafeRawBufferPointer
    private(set) var bitPosition = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Bytes touched so far (partially read bytes count).
    var bytesConsumed: Int { (bitPosition + 7) >> 3 }

    /// The next `n` bits (0...24) without consuming them.
    func peek(_ n: Int) -> Int {
        let byteIndex = bitPosition >> 3
        var word = 0
        for i in 0..<4 where byteIndex + i < bytes.count {
            word |= Int(bytes[byteIndex + i]) << (8 * i)
        }
        return (word >> (bitPosition & 7)) & ((1 << n) - 1)
    }

    mutating func read(_ n: Int) -> Int {
        let value = peek(n)
        bitPosition += n
        return value
    }
}
