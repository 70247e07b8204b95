import CZstd

/// zstd (RFC 8878) through the reference library, libzstd.
///
/// Decompression walks the input frame by frame (concatenated and skippable frames are accepted, as the
/// zstd tool does). A frame that names its content size is decoded in one call into a buffer of exactly that
/// size (after checking it against the caller's limit); a frame without one (streamed by its writer, as
/// zstd-jni's `ZstdOutputStream` in the Java client does) goes through the streaming decoder in bounded
/// chunks. Dictionaries are not supported: Kafka never uses them.
enum Zstd {
    /// Kafka's range and default (`compression.zstd.level`, KIP-390): libzstd's own.
    static var minLevel: Int { Int(ZSTD_minCLevel()) }
    static var maxLevel: Int { Int(ZSTD_maxCLevel()) }
    static let defaultLevel = 3

    private static let skippableMagicMask: UInt32 = 0xFFFF_FFF0
    private static let skippableMagic: UInt32 = 0x184D_2A50
    /// The largest window a frame may ask for: libzstd's default limit (128 MiB), as zstd-jni uses.
    private static let windowLogMax: Int32 = 27
    private static let chunkSize = 256 * 1024

    private static let decompressionContexts = ContextPool(
        create: {
            guard let dctx = ZSTD_createDCtx() else { return nil }
            guard ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, windowLogMax)) == 0 else {
                ZSTD_freeDCtx(dctx)
                return nil
            }
            return dctx
        },
        destroy: { ZSTD_freeDCtx($0) }, size: { ZSTD_sizeof_DCtx($0) })
    private static let compressionContexts = ContextPool(
        create: { ZSTD_createCCtx() }, destroy: { ZSTD_freeCCtx($0) }, size: { ZSTD_sizeof_CCtx($0) })

    static func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws -> [UInt8] {
        guard input.count > 0 else { throw corrupt("empty input") }
        return try decompressionContexts.withContext(codec: .zstd) { dctx in
            // A pooled context may hold a previous call's state (even a failed one): start clean.
            try check(ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only))
            return try decompress(input, limit: limit, dctx: dctx)
        }
    }

    private static func decompress(_ input: UnsafeRawBufferPointer, limit: Int, dctx: OpaquePointer) throws -> [UInt8] {
        let base = input.baseAddress!
        let out = OutputBuffer(codec: .zstd, limit: limit, initialCapacity: min(limit, input.count * 4 + 64))
        var pos = 0
        while pos < input.count {
            let frame = UnsafeRawBufferPointer(start: base + pos, count: input.count - pos)
            guard frame.count >= 4 else { throw corrupt("truncated frame magic") }
            if loadLE32(base, pos) & skippableMagicMask == skippableMagic {
                guard frame.count >= 8 else { throw corrupt("truncated skippable frame") }
                let size = Int(loadLE32(base, pos + 4))
                guard size <= frame.count - 8 else { throw corrupt("skippable frame runs past the input") }
                pos += 8 + size
                continue
            }
            let dictionary = ZSTD_getDictID_fromFrame(frame.baseAddress, frame.count)
            if dictionary != 0 {
                throw KafkaCompressionError.unsupportedFeature(codec: .zstd, feature: "dictionary \(dictionary)")
            }
            // The claimed size is checked before anything else, so a frame claiming more than the limit costs
            // nothing (a truthful one would exceed it; a lying one is corrupt).
            let contentSize = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
            if contentSize == ZSTD_CONTENTSIZE_ERROR { throw corrupt("bad frame header") }
            let sizeKnown = contentSize != ZSTD_CONTENTSIZE_UNKNOWN
            if sizeKnown, contentSize > UInt64(out.remainingLimit) {
                throw KafkaCompressionError.outputLimitExceeded(codec: .zstd, limit: limit)
            }
            let frameSize = ZSTD_findFrameCompressedSize(frame.baseAddress, frame.count)
            if ZSTD_isError(frameSize) != 0 { throw corrupt(errorName(frameSize)) }
            let frameBytes = UnsafeRawBufferPointer(start: frame.baseAddress, count: frameSize)
            if sizeKnown {
                let size = Int(contentSize)
                try out.reserve(size)
                let written = ZSTD_decompressDCtx(dctx, out.base + out.count, size, frameBytes.baseAddress, frameBytes.count)
                if ZSTD_isError(written) != 0 { throw corrupt(errorName(written)) }
                guard written == size else { throw corrupt("frame holds \(written) bytes but its header says \(size)") }
                out.count += size
            } else {
                try decodeStreaming(frameBytes, dctx: dctx, into: out)
            }
            pos += frameSize
        }
        return out.toArray()
    }

    /// Decodes one frame of unknown content size in chunks, never writing past the output's limit.
    private static func decodeStreaming(_ frame: UnsafeRawBufferPointer, dctx: OpaquePointer, into out: OutputBuffer) throws {
        try check(ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only))
        var inBuffer = ZSTD_inBuffer(src: frame.baseAddress, size: frame.count, pos: 0)
        var probe: UInt8 = 0
        while true {
            let room = min(chunkSize, out.remainingLimit)
            let result: Int
            var produced = 0
            if room > 0 {
                try out.reserve(room)
                var outBuffer = ZSTD_outBuffer(dst: out.base + out.count, size: room, pos: 0)
                result = ZSTD_decompressStream(dctx, &outBuffer, &inBuffer)
                produced = outBuffer.pos
                out.count += produced
            } else {
                // At the limit: decode into a one-byte probe; any byte means the output is too large.
                result = withUnsafeMutablePointer(to: &probe) { pointer in
                    var outBuffer = ZSTD_outBuffer(dst: pointer, size: 1, pos: 0)
                    let r = ZSTD_decompressStream(dctx, &outBuffer, &inBuffer)
                    produced = outBuffer.pos
                    return r
                }
                if produced > 0 { throw KafkaCompressionError.outputLimitExceeded(codec: .zstd, limit: out.limit) }
            }
            if ZSTD_isError(result) != 0 { throw corrupt(errorName(result)) }
            if result == 0 { return }  // frame complete and flushed
            // Every input byte consumed and room left over, yet the frame is not complete: it is cut short.
            if inBuffer.pos == inBuffer.size, produced < max(room, 1) { throw corrupt("truncated frame") }
        }
    }

    static func compress(_ input: UnsafeRawBufferPointer, level: Int?) throws -> [UInt8] {
        let level = level ?? defaultLevel
        guard (minLevel...maxLevel).contains(level) else { throw KafkaCompressionError.invalidLevel(codec: .zstd, level: level) }
        return try compressionContexts.withContext(codec: .zstd) { cctx in
            // Parameters stick to a context: reset them all before setting this call's level.
            try check(ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters))
            try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, Int32(level)))
            return try compress(input, cctx: cctx)
        }
    }

    private static func compress(_ input: UnsafeRawBufferPointer, cctx: OpaquePointer) throws -> [UInt8] {
        let bound = ZSTD_compressBound(input.count)
        return try [UInt8](unsafeUninitializedCapacity: bound) { buffer, count in
            // The one-shot call records the content size in the frame header (decoders then size their output
            // exactly); no checksum, as the Java client writes (the batch CRC covers the compressed bytes).
            let written = ZSTD_compress2(cctx, buffer.baseAddress, bound, input.baseAddress, input.count)
            if ZSTD_isError(written) != 0 {
                count = 0
                throw KafkaCompressionError.internalError(codec: .zstd, reason: errorName(written))
            }
            count = written
        }
    }

    private static func check(_ result: Int) throws {
        if ZSTD_isError(result) != 0 { throw KafkaCompressionError.internalError(codec: .zstd, reason: errorName(result)) }
    }

    private static func errorName(_ code: Int) -> String { String(cString: ZSTD_getErrorName(code)) }

    private static func corrupt(_ reason: String) -> KafkaCompressionError {
        .corruptInput(codec: .zstd, reason: reason)
    }
}
