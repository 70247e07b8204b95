import NIOCore

/// The Java client's key partitioner: `toPositive(murmur2(key)) % partitions`, so the same key
/// lands in the same partition whichever client produced it.
public enum Murmur2 {
    /// Kafka's `Utils.murmur2` (MurmurHash2, seed 0x9747b28c) over the key bytes.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        let length = bytes.count
        var h: UInt32 = 0x9747_b28c ^ UInt32(truncatingIfNeeded: length)
        let quads = length / 4
        for i in 0..<quads {
            var k = UInt32(bytes[i * 4]) | UInt32(bytes[i * 4 + 1]) << 8 | UInt32(bytes[i * 4 + 2]) << 16 | UInt32(bytes[i * 4 + 3]) << 24
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
        }
        let tail = quads * 4
        switch length % 4 {
        case 3:
            h ^= UInt32(bytes[tail + 2]) << 16
            fallthrough
        case 2:
            h ^= UInt32(bytes[tail + 1]) << 8
            fallthrough
        case 1:
            h ^= UInt32(bytes[tail])
            h = h &* m
        default:
            break
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    public static func hash(_ key: ByteBuffer) -> Int32 { key.withUnsafeReadableBytes { hash($0) } }

    public static func hash(_ key: [UInt8]) -> Int32 { key.withUnsafeBytes { hash($0) } }

    /// The partition of a keyed record among `partitionCount`.
    public static func partition(for key: ByteBuffer, partitionCount: Int32) -> Int32 {
        (hash(key) & 0x7fff_ffff) % partitionCount
    }
}
