import CLZ4

/// The LZ4 frame format (what Kafka's magic-2 batches carry) through the reference library's lz4frame API.
///
/// Decoding accepts what the frame API accepts: concatenated and skippable frames, linked or independent
/// blocks, block and content checksums (verified), a content size (checked). The legacy frame format is
/// refused as unsupported, as Kafka never writes it.
///
/// Encoding writes one frame as the Java client does: independent 64 KiB blocks; plus a content checksum.
/// Levels follow Kafka's `compression.lz4.level` (KIP-390): 1...17, default 9. liblz4 uses its fast
/// compressor for levels 1 and 2 and LZ4HC from level 3 (levels above 12 compress as 12).
enum LZ4Frame {
    static let minLevel = 1
    static let maxLevel = 17
    static let defaultLevel = 9

    private static let legacyMagic: UInt32 = 0x184C_2102
    private static let chunkSize = 256 * 1024

    // MARK: Decompression

    /// Reused decompression contexts (their buffers are bounded by the largest block size, 4 MiB).
    private static let decompressionContexts = ContextPool(
        capacity: 4,
        create: {
            var dctx: OpaquePointer?
            guard LZ4F_isError(LZ4F_createDecompressionContext(&dctx, UInt32(LZ4F_VERSION))) == 0 else { return nil }
            return dctx
        },
        destroy: { _ = LZ4F_freeDecompressionContext($0) }, size: { _ in 0 })

    static func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws -> [UInt8] {
        guard input.count > 0 else { throw corrupt("empty input") }
        return try decompressionContexts.withContext(codec: .lz4) { dctx in
            // A pooled context may be mid-frame or failed from a previous call: start clean.
            LZ4F_resetDecompressionContext(dctx)
            return try decompress(input, limit: limit, dctx: dctx)
        }
    }

    private static func decompress(_ input: UnsafeRawBufferPointer, limit: Int, dctx: OpaquePointer) throws -> [UInt8] {
        let base = input.baseAddress!
        let out = OutputBuffer(codec: .lz4, limit: limit, initialCapacity: min(limit, input.count * 3 + 64))
        var pos = 0
        var atFrameStart = true
        var probe: UInt8 = 0
        while true {
            if atFrameStart {
                if pos == input.count { return out.toArray() }
                if input.count - pos >= 4, loadLE32(base, pos) == legacyMagic {
                    throw KafkaCompressionError.unsupportedFeature(codec: .lz4, feature: "legacy frame format")
                }
            }
            let room = min(chunkSize, out.remainingLimit)
            var consumed = input.count - pos
            var produced: Int
            let result: Int
            if room > 0 {
                try out.reserve(room)
                produced = room
                result = LZ4F_decompress(dctx, out.base + out.count, &produced, base + pos, &consumed, nil)
                out.count += produced
            } else {
                // At the limit: decode into a one-byte probe; any byte means the output is too large.
                produced = 1
                result = withUnsafeMutablePointer(to: &probe) { LZ4F_decompress(dctx, $0, &produced, base + pos, &consumed, nil) }
                if produced > 0 { throw KafkaCompressionError.outputLimitExceeded(codec: .lz4, limit: limit) }
            }
            if LZ4F_isError(result) != 0 { throw corrupt(String(cString: LZ4F_getErrorName(result))) }
            pos += consumed
            atFrameStart = result == 0
            // Mid-frame with every input byte consumed and room left over: nothing more can come.
            if !atFrameStart, pos == input.count, produced < max(room, 1) { throw corrupt("truncated frame") }
        }
    }

    private static func corrupt(_ reason: String) -> KafkaCompressionError {
        .corruptInput(codec: .lz4, reason: reason)
    }

    // MARK: Compression

    static func compress(_ input: UnsafeRawBufferPointer, level: Int?) throws -> [UInt8] {
        let level = level ?? defaultLevel
        guard (minLevel...maxLevel).contains(level) else { throw KafkaCompressionError.invalidLevel(codec: .lz4, level: level) }
        var preferences = LZ4F_preferences_t()
        preferences.frameInfo.blockSizeID = LZ4F_max64KB
        preferences.frameInfo.blockMode = LZ4F_blockIndependent
        preferences.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled
        preferences.compressionLevel = Int32(level)
        let bound = LZ4F_compressFrameBound(input.count, &preferences)
        return try [UInt8](unsafeUninitializedCapacity: bound) { buffer, count in
            let written = LZ4F_compressFrame(buffer.baseAddress, bound, input.baseAddress, input.count, &preferences)
            if LZ4F_isError(written) != 0 {
                count = 0
                throw KafkaCompressionError.internalError(codec: .lz4, reason: String(cString: LZ4F_getErrorName(written)))
            }
            count = written
        }
    }
}
