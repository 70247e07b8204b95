// Byte-level helpers shared by the codecs.

/// Copies an LZ77 match: `length` bytes starting `offset` bytes back from `dst + position` (the caller has
/// checked `0 < offset <= position` and that the destination has room). Overlapping matches (offset < length)
/// repeat the last `offset` bytes, which is what every LZ77 format here means by them.
///
/// `dst` must be an `OutputBuffer`'s storage: copies go in 8-byte steps and may write up to 7 bytes past the
/// match, into bytes that are not yet output (its slack covers the end of the buffer).
@inline(__always)
func copyMatch(_ dst: UnsafeMutablePointer<UInt8>, at position: Int, offset: Int, length: Int) {
    let out = UnsafeMutableRawPointer(dst + position)
    let source = out - offset
    if offset >= 8 {
        // Each 8-byte step reads bytes at least 8 behind the ones it writes, so they are final already.
        var i = 0
        repeat {
            out.storeBytes(of: source.loadUnaligned(fromByteOffset: i, as: UInt64.self), toByteOffset: i, as: UInt64.self)
            i += 8
        } while i < length
    } else if offset == 1 {
        out.initializeMemory(as: UInt8.self, repeating: source.load(as: UInt8.self), count: length)
    } else {
        // Copy from `source` in chunks no longer than the distance already written: each chunk only reads bytes
        // that are final, and the distance doubles with every chunk.
        var done = 0
        while done < length {
            let chunk = min(offset + done, length - done)
            (out + done).copyMemory(from: source, byteCount: chunk)
            done += chunk
        }
    }
}

/// Little-endian loads from raw bytes (the caller checks bounds).
@inline(__always)
func loadLE16(_ p: UnsafeRawPointer, _ i: Int) -> Int {
    Int(p.load(fromByteOffset: i, as: UInt8.self)) | Int(p.load(fromByteOffset: i + 1, as: UInt8.self)) << 8
}

@inline(__always)
func loadLE32(_ p: UnsafeRawPointer, _ i: Int) -> UInt32 {
    UInt32(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt32.self))
}

@inline(__always)
func loadLE64(_ p: UnsafeRawPointer, _ i: Int) -> UInt64 {
    UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
}

@inline(__always)
func loadBE32(_ p: UnsafeRawPointer, _ i: Int) -> UInt32 {
    UInt32(bigEndian: p.loadUnaligned(fromByteOffset: i, as: UInt32.self))
}

/// How many bytes at `a` and `b` agree, comparing no further than `limit - a` bytes (so `a` stays below
/// `limit`; the caller guarantees `b < a`, so `b` does too).
@inline(__always)
func commonLength(_ p: UnsafeRawPointer, _ a: Int, _ b: Int, limit: Int) -> Int {
    var i = a
    var j = b
    while i + 8 <= limit {
        let diff = loadLE64(p, i) ^ loadLE64(p, j)
        if diff != 0 { return i - a + diff.trailingZeroBitCount >> 3 }
        i += 8
        j += 8
    }
    while i < limit && p.load(fromByteOffset: i, as: UInt8.self) == p.load(fromByteOffset: j, as: UInt8.self) {
        i += 1
        j += 1
    }
    return i - a
}

extension Array where Element == UInt8 {
    mutating func appendLE32(_ v: UInt32) {
        append(UInt8(truncatingIfNeeded: v))
        append(UInt8(truncatingIfNeeded: v >> 8))
        append(UInt8(truncatingIfNeeded: v >> 16))
        append(UInt8(truncatingIfNeeded: v >> 24))
    }

    mutating func appendBE32(_ v: UInt32) {
        append(UInt8(truncatingIfNeeded: v >> 24))
        append(UInt8(truncatingIfNeeded: v >> 16))
        append(UInt8(truncatingIfNeeded: v >> 8))
        append(UInt8(truncatingIfNeeded: v))
    }
}
