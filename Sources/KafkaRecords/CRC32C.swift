import CCRC32C
import NIOCore

/// CRC32C (Castagnoli), the checksum of Kafka record batches. Uses the CPU's CRC32 instruction
/// (SSE4.2 on x86_64, the CRC extension on ARMv8) when present, chosen at run time, else a
/// portable slicing-by-8 table implementation.
public enum CRC32C {
    /// Which implementation `checksum` uses on this machine: "sse4.2", "armv8-crc" or "portable".
    public static var implementation: String { String(cString: samsa_crc32c_implementation()) }

    public static var hardwareAvailable: Bool { samsa_crc32c_hardware_available() != 0 }

    /// Continues `crc` (0 to start) over `bytes`.
    @inlinable
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        samsa_crc32c(crc, bytes.baseAddress, bytes.count)
    }

    /// CRC32C of the readable bytes of `buffer`.
    @inlinable
    public static func checksum(_ buffer: ByteBuffer) -> UInt32 {
        buffer.withUnsafeReadableBytes { update(0, $0) }
    }

    /// CRC32C of `length` bytes of `buffer` starting at absolute index `index`.
    @inlinable
    public static func checksum(_ buffer: ByteBuffer, at index: Int, length: Int) -> UInt32 {
        buffer.withUnsafeReadableBytes { raw in
            let start = index - buffer.readerIndex
            return update(0, UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)]))
        }
    }

    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        if let crc = bytes.withContiguousStorageIfAvailable({ update(0, UnsafeRawBufferPointer($0)) }) { return crc }
        return Array(bytes).withUnsafeBytes { update(0, $0) }
    }
}
