// Byte-level helpers for the framing code around the C libraries (the caller checks bounds).

@inline(__always)
func loadLE32(_ p: UnsafeRawPointer, _ i: Int) -> UInt32 {
    UInt32(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt32.self))
}

@inline(__always)
func loadBE32(_ p: UnsafeRawPointer, _ i: Int) -> UInt32 {
    UInt32(bigEndian: p.loadUnaligned(fromByteOffset: i, as: UInt32.self))
}
