import CSnappy

/// Snappy through the reference library (raw blocks), and the xerial stream framing that Kafka's Java client
/// (snappy-java `SnappyOutputStream`) and librdkafka write, which the library does not know.
///
/// Xerial framing: the 8-byte magic `82 'S' 'N' 'A' 'P' 'P' 'Y' 00`, big-endian int32 version and minimum
/// compatible version (1, 1), then blocks, each a big-endian int32 length followed by that many bytes of a raw
/// snappy stream. Blocks are independent.
enum Snappy {
    private static let xerialMagic: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00]
    private static let xerialHeaderSize = 16
    /// The uncompressed size of each xerial block, snappy-java's default.
    static let xerialBlockSize = 32 * 1024

    // MARK: Decompression

    static func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws -> [UInt8] {
        guard input.count > 0 else { throw corrupt("empty input") }
        let isXerial = input.count >= xerialHeaderSize && input.prefix(8).elementsEqual(xerialMagic)
        let out = OutputBuffer(codec: .snappy, limit: limit, initialCapacity: min(limit, input.count * 3))
        if !isXerial {
            try decodeRaw(input, into: out)
            return out.toArray()
        }
        // The version fields are not checked: snappy-java itself only requires them to be readable.
        var pos = xerialHeaderSize
        while pos < input.count {
            guard input.count - pos >= 4 else { throw corrupt("truncated xerial block length") }
            let length = Int(loadBE32(input.baseAddress!, pos))
            pos += 4
            guard length <= input.count - pos else { throw corrupt("xerial block length \(length) runs past the input") }
            try decodeRaw(UnsafeRawBufferPointer(rebasing: input[pos..<pos + length]), into: out)
            pos += length
        }
        return out.toArray()
    }

    /// Decodes one raw snappy stream, appending to `out`.
    static func decodeRaw(_ block: UnsafeRawBufferPointer, into out: OutputBuffer) throws {
        guard let src = block.baseAddress, block.count > 0 else { throw corrupt("empty snappy block") }
        var length = 0
        guard snappy_uncompressed_length(src.assumingMemoryBound(to: CChar.self), block.count, &length) == SNAPPY_OK else {
            throw corrupt("bad uncompressed length varint")
        }
        // No element expands more than 64 output bytes per 3 input bytes (a 2-byte-offset copy), so a claimed
        // length beyond that is a lie; checking it first keeps hostile lengths from allocating anything.
        guard length <= block.count * 22 else { throw corrupt("uncompressed length \(length) is impossible for \(block.count) bytes") }
        try out.reserve(length)
        var written = length
        let status = snappy_uncompress(src.assumingMemoryBound(to: CChar.self), block.count,
                                       UnsafeMutableRawPointer(out.base + out.count).assumingMemoryBound(to: CChar.self), &written)
        guard status == SNAPPY_OK, written == length else { throw corrupt("invalid snappy block") }
        out.count += length
    }

    private static func corrupt(_ reason: String) -> KafkaCompressionError {
        .corruptInput(codec: .snappy, reason: reason)
    }

    // MARK: Compression

    /// Compresses into the xerial framing with `xerialBlockSize` blocks, as the Java client does.
    static func compressXerial(_ input: UnsafeRawBufferPointer) throws -> [UInt8] {
        let blockCount = max(1, (input.count + xerialBlockSize - 1) / xerialBlockSize)
        let capacity = xerialHeaderSize + blockCount * (4 + snappy_max_compressed_length(xerialBlockSize))
        return try [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
            let out = UnsafeMutableRawPointer(buffer.baseAddress!)
            count = 0
            func writeBE32(_ value: UInt32, at offset: Int) {
                out.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
            }
            for (i, byte) in xerialMagic.enumerated() { buffer[i] = byte }
            writeBE32(1, at: 8)
            writeBE32(1, at: 12)
            var op = xerialHeaderSize
            // At least one block, even for empty input: decoders such as kafka-python only recognise the
            // framing when something follows the header.
            var start = 0
            repeat {
                let blockLength = min(xerialBlockSize, input.count - start)
                var written = capacity - op - 4
                let status = withUnsafeBytes(of: UInt8(0)) { empty in
                    let source = (input.baseAddress.map { $0 + start } ?? empty.baseAddress!).assumingMemoryBound(to: CChar.self)
                    return snappy_compress(source, blockLength, (out + op + 4).assumingMemoryBound(to: CChar.self), &written)
                }
                guard status == SNAPPY_OK else {
                    throw KafkaCompressionError.internalError(codec: .snappy, reason: "snappy_compress returned \(status.rawValue)")
                }
                writeBE32(UInt32(written), at: op)
                op += 4 + written
                start += blockLength
            } while start < input.count
            count = op
        }
    }
}
