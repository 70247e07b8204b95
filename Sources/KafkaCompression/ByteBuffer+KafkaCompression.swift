import NIOCore

extension KafkaCompression {
    /// Decompresses the readable bytes of `input` (its reader index is not moved).
    public static func decompress(_ codec: KafkaCompressionCodec, _ input: ByteBuffer, maxOutput: Int) throws -> ByteBuffer {
        let bytes = try input.withUnsafeReadableBytes { try decompress(codec, $0, maxOutput: maxOutput) }
        return ByteBuffer(bytes: bytes)
    }

    /// Compresses the readable bytes of `input` (its reader index is not moved).
    public static func compress(_ codec: KafkaCompressionCodec, _ input: ByteBuffer, level: Int? = nil) throws -> ByteBuffer {
        let bytes = try input.withUnsafeReadableBytes { try compress(codec, $0, level: level) }
        return ByteBuffer(bytes: bytes)
    }
}
