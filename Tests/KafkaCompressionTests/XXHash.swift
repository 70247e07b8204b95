// xxHash32, written from the xxHash specification: the tests build LZ4 frame headers by hand with it (the
// library computes its own checksums).

enum XXHash32 {
    private static func loadLE32(_ p: UnsafeRawPointer, _ i: Int) -> UInt32 {
        UInt32(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt32.self))
    }

    private static let prime1: UInt32 = 0x9E37_79B1
    private static let prime2: UInt32 = 0x85EB_CA77
    private static let prime3: UInt32 = 0xC2B2_AE3D
    private static let prime4: UInt32 = 0x27D4_EB2F
    private static let prime5: UInt32 = 0x1656_67B1

    @inline(__always)
    private static func rotl(_ x: UInt32, _ r: UInt32) -> UInt32 { (x << r) | (x >> (32 - r)) }

    @inline(__always)
    private static func round(_ acc: UInt32, _ lane: UInt32) -> UInt32 {
        rotl(acc &+ lane &* prime2, 13) &* prime1
    }

    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        let n = bytes.count
        // An empty buffer may have no base address; nothing is read from it then.
        let p = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
        var i = 0
        var h: UInt32
        if n >= 16 {
            var v1 = seed &+ prime1 &+ prime2
            var v2 = seed &+ prime2
            var v3 = seed
            var v4 = seed &- prime1
            while i + 16 <= n {
                v1 = round(v1, loadLE32(p, i))
                v2 = round(v2, loadLE32(p, i + 4))
                v3 = round(v3, loadLE32(p, i + 8))
                v4 = round(v4, loadLE32(p, i + 12))
                i += 16
            }
            h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
        } else {
            h = seed &+ prime5
        }
        h = h &+ UInt32(truncatingIfNeeded: n)
        while i + 4 <= n {
            h = rotl(h &+ loadLE32(p, i) &* prime3, 17) &* prime4
            i += 4
        }
        while i < n {
            h = rotl(h &+ UInt32(p.load(fromByteOffset: i, as: UInt8.self)) &* prime5, 11) &* prime1
            i += 1
        }
        h ^= h >> 15
        h = h &* prime2
        h ^= h >> 13
        h = h &* prime3
        h ^= h >> 16
        return h
    }
}
