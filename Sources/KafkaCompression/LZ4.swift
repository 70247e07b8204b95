/// LZ4 blocks and the LZ4 frame format (what Kafka's magic-2 batches carry), written from the LZ4 block and
/// frame format descriptions.
///
/// Block: a series of sequences. A token byte holds the literal count (high nibble) and the match length
/// minus 4 (low nibble); a nibble of 15 continues in following bytes (each added, until one is not 255).
/// Then the literals, a little-endian 16-bit offset and the match length's extra bytes. The last sequence
/// has literals only.
///
/// Frame: magic 0x184D2204, a descriptor (FLG, BD, optional 8-byte content size, optional 4-byte dictionary
/// id, header checksum byte = second byte of xxHash32 of the descriptor), blocks (little-endian 32-bit size
/// whose high bit marks an uncompressed block, data, optional xxHash32 of the data), a zero end mark and an
/// optional xxHash32 of the whole content.
enum LZ4Frame {
    private static let magic: UInt32 = 0x184D_2204
    private static let legacyMagic: UInt32 = 0x184C_2102
    /// 0x184D2A50...0x184D2A5F: skippable frames.
    private static let skippableMagicMask: UInt32 = 0xFFFF_FFF0
    private static let skippableMagic: UInt32 = 0x184D_2A50

    // FLG bits.
    private static let flagBlockIndependence: UInt8 = 0x20
    private static let flagBlockChecksum: UInt8 = 0x10
    private static let flagContentSize: UInt8 = 0x08
    private static let flagContentChecksum: UInt8 = 0x04
    private static let flagDictionaryID: UInt8 = 0x01

    /// The block size of frames we write (BD code 4).
    static let blockSize = 64 * 1024

    // MARK: Decompression

    static func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws -> [UInt8] {
        guard let base = input.baseAddress, input.count > 0 else { throw corrupt("empty input") }
        let out = OutputBuffer(codec: .lz4, limit: limit, initialCapacity: min(limit, input.count * 3))
        var pos = 0
        while pos < input.count {
            guard input.count - pos >= 4 else { throw corrupt("truncated frame magic") }
            let frameMagic = loadLE32(base, pos)
            if frameMagic & skippableMagicMask == skippableMagic {
                guard input.count - pos >= 8 else { throw corrupt("truncated skippable frame") }
                let size = Int(loadLE32(base, pos + 4))
                guard size <= input.count - pos - 8 else { throw corrupt("skippable frame runs past the input") }
                pos += 8 + size
            } else if frameMagic == magic {
                pos = try decodeFrame(input, at: pos + 4, into: out)
            } else if frameMagic == legacyMagic {
                throw KafkaCompressionError.unsupportedFeature(codec: .lz4, feature: "legacy frame format")
            } else {
                throw corrupt("bad frame magic 0x\(String(frameMagic, radix: 16))")
            }
        }
        return out.toArray()
    }

    /// Decodes one frame whose descriptor starts at `start`; returns the position after the frame.
    private static func decodeFrame(_ input: UnsafeRawBufferPointer, at start: Int, into out: OutputBuffer) throws -> Int {
        let base = input.baseAddress!
        let n = input.count
        guard n - start >= 3 else { throw corrupt("truncated frame descriptor") }
        let flg = input[start]
        let bd = input[start + 1]
        guard flg >> 6 == 1 else {
            throw KafkaCompressionError.unsupportedFeature(codec: .lz4, feature: "frame version \(flg >> 6)")
        }
        guard flg & 0x02 == 0, bd & 0x8F == 0 else { throw corrupt("reserved descriptor bits set") }
        let blockMaxCode = Int(bd >> 4) & 7
        guard blockMaxCode >= 4 else { throw corrupt("invalid block maximum size code \(blockMaxCode)") }
        // 4: 64 KiB, 5: 256 KiB, 6: 1 MiB, 7: 4 MiB.
        let blockMax = 1 << (8 + 2 * blockMaxCode)
        let descriptorLength = 2 + (flg & flagContentSize != 0 ? 8 : 0) + (flg & flagDictionaryID != 0 ? 4 : 0)
        guard n - start >= descriptorLength + 1 else { throw corrupt("truncated frame descriptor") }
        let descriptor = UnsafeRawBufferPointer(rebasing: input[start..<start + descriptorLength])
        let headerChecksum = UInt8(truncatingIfNeeded: XXHash32.hash(descriptor) >> 8)
        guard headerChecksum == input[start + descriptorLength] else { throw corrupt("header checksum mismatch") }
        guard flg & flagDictionaryID == 0 else {
            throw KafkaCompressionError.unsupportedFeature(codec: .lz4, feature: "dictionary")
        }
        let contentSize: UInt64? = flg & flagContentSize != 0 ? loadLE64(base, start + 2) : nil
        let independent = flg & flagBlockIndependence != 0
        let blockChecksums = flg & flagBlockChecksum != 0

        var pos = start + descriptorLength + 1
        let frameStart = out.count
        while true {
            guard n - pos >= 4 else { throw corrupt("truncated block header") }
            let word = loadLE32(base, pos)
            pos += 4
            if word == 0 { break }  // end mark
            let size = Int(word & 0x7FFF_FFFF)
            guard size <= blockMax else { throw corrupt("block of \(size) bytes exceeds the frame's maximum \(blockMax)") }
            guard size + (blockChecksums ? 4 : 0) <= n - pos else { throw corrupt("truncated block") }
            let block = UnsafeRawBufferPointer(rebasing: input[pos..<pos + size])
            pos += size
            if blockChecksums {
                guard XXHash32.hash(block) == loadLE32(base, pos) else { throw corrupt("block checksum mismatch") }
                pos += 4
            }
            if word & 0x8000_0000 != 0 {
                try out.append(block)
            } else {
                // Linked blocks may refer back into earlier blocks of the same frame.
                try decodeBlock(block, into: out, maxSize: blockMax, historyStart: independent ? out.count : frameStart)
            }
        }
        let content = UnsafeRawBufferPointer(start: out.base + frameStart, count: out.count - frameStart)
        if flg & flagContentChecksum != 0 {
            guard n - pos >= 4 else { throw corrupt("truncated content checksum") }
            guard XXHash32.hash(content) == loadLE32(base, pos) else { throw corrupt("content checksum mismatch") }
            pos += 4
        }
        if let contentSize, contentSize != UInt64(content.count) {
            throw corrupt("frame holds \(content.count) bytes but its header says \(contentSize)")
        }
        return pos
    }

    /// Decodes one compressed block, appending at most `maxSize` bytes to `out`. Matches may reach back to
    /// output position `historyStart`.
    static func decodeBlock(_ block: UnsafeRawBufferPointer, into out: OutputBuffer, maxSize: Int, historyStart: Int) throws {
        guard let src = block.baseAddress?.assumingMemoryBound(to: UInt8.self), block.count > 0 else {
            throw corrupt("empty compressed block")
        }
        let end = block.count
        // No sequence yields more than 255 bytes per input byte, so this bounds what a block can produce.
        let bound = min(maxSize, end * 255)
        let room = min(bound, out.remainingLimit)
        try out.reserve(room)
        let dst = out.base
        var op = out.count
        let opLimit = op + room
        func overrun() -> KafkaCompressionError {
            room < bound ? .outputLimitExceeded(codec: .lz4, limit: out.limit) : corrupt("block decodes past its maximum size")
        }
        var ip = 0
        while true {
            guard ip < end else { throw corrupt("truncated sequence") }
            let token = Int(src[ip])
            ip += 1
            var literalLength = token >> 4
            if literalLength == 15 {
                while true {
                    guard ip < end else { throw corrupt("truncated literal length") }
                    let byte = Int(src[ip])
                    ip += 1
                    literalLength += byte
                    if byte != 255 { break }
                }
            }
            guard literalLength <= end - ip else { throw corrupt("literals run past the block") }
            guard literalLength <= opLimit - op else { throw overrun() }
            (dst + op).update(from: src + ip, count: literalLength)
            ip += literalLength
            op += literalLength
            if ip == end { break }  // the last sequence has no match

            guard end - ip >= 2 else { throw corrupt("truncated match offset") }
            let offset = loadLE16(src, ip)
            ip += 2
            guard offset > 0, offset <= op - historyStart else { throw corrupt("match offset \(offset) out of range") }
            var matchLength = token & 15
            if matchLength == 15 {
                while true {
                    guard ip < end else { throw corrupt("truncated match length") }
                    let byte = Int(src[ip])
                    ip += 1
                    matchLength += byte
                    if byte != 255 { break }
                }
            }
            matchLength += 4
            guard matchLength <= opLimit - op else { throw overrun() }
            copyMatch(dst, at: op, offset: offset, length: matchLength)
            op += matchLength
        }
        out.count = op
    }

    private static func corrupt(_ reason: String) -> KafkaCompressionError {
        .corruptInput(codec: .lz4, reason: reason)
    }

    // MARK: Compression

    /// Writes one frame: independent 64 KiB blocks, no block checksums, a content checksum, no content size.
    static func compress(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        let blockCount = (input.count + blockSize - 1) / blockSize
        var output: [UInt8] = []
        output.reserveCapacity(7 + blockCount * (4 + maxCompressedLength(blockSize)) + 8)
        output.appendLE32(magic)
        let descriptor: [UInt8] = [
            0x40 | flagBlockIndependence | flagContentChecksum,  // FLG: version 01
            0x40,  // BD: block maximum size code 4 = 64 KiB
        ]
        output.append(contentsOf: descriptor)
        output.append(UInt8(truncatingIfNeeded: descriptor.withUnsafeBytes { XXHash32.hash($0) } >> 8))

        var scratch = [UInt8](repeating: 0, count: maxCompressedLength(blockSize))
        var table = [Int32](repeating: 0, count: 1 << hashBits)
        var start = 0
        while start < input.count {
            let block = UnsafeRawBufferPointer(rebasing: input[start..<min(start + blockSize, input.count)])
            let compressedLength = scratch.withUnsafeMutableBytes { dst in
                table.withUnsafeMutableBufferPointer { compressBlock(block, table: $0, into: dst) }
            }
            if compressedLength < block.count {
                output.appendLE32(UInt32(compressedLength))
                output.append(contentsOf: scratch[0..<compressedLength])
            } else {
                output.appendLE32(UInt32(block.count) | 0x8000_0000)
                output.append(contentsOf: block)
            }
            start += block.count
        }
        output.appendLE32(0)
        output.appendLE32(XXHash32.hash(input))
        return output
    }

    /// The most `compressBlock` writes for `n` input bytes.
    static func maxCompressedLength(_ n: Int) -> Int { n + n / 255 + 16 }

    private static let hashBits = 13
    /// The last 5 bytes of a block are always literals.
    private static let lastLiterals = 5
    /// The last match must start at least 12 bytes before the end of the block.
    private static let matchStartMargin = 12
    private static let minMatch = 4

    /// Compresses one independent block (at most 64 KiB, so offsets fit 16 bits) into `dst`, which holds at
    /// least `maxCompressedLength(input.count)` bytes; returns the bytes written. Greedy: a hash table keeps the
    /// last position of each 4-byte sequence; runs without a match make the search step grow.
    static func compressBlock(_ input: UnsafeRawBufferPointer, table: UnsafeMutableBufferPointer<Int32>, into dst: UnsafeMutableRawBufferPointer) -> Int {
        let n = input.count
        let out = dst.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var op = 0
        var anchor = 0  // first byte not yet emitted

        func emitLength(_ value: Int) {
            var rest = value
            while rest >= 255 {
                out[op] = 255
                op += 1
                rest -= 255
            }
            out[op] = UInt8(rest)
            op += 1
        }
        func emitLiterals(upTo end: Int, token matchNibble: Int) {
            let count = end - anchor
            out[op] = UInt8(min(count, 15) << 4 | matchNibble)
            op += 1
            if count >= 15 { emitLength(count - 15) }
            if count > 0 {
                (out + op).update(from: input.baseAddress!.assumingMemoryBound(to: UInt8.self) + anchor, count: count)
                op += count
            }
        }

        if n > matchStartMargin, let src = input.baseAddress {
            table.baseAddress!.update(repeating: 0, count: table.count)
            let shift = UInt32(32 - hashBits)
            @inline(__always) func hash(_ position: Int) -> Int {
                Int((loadLE32(src, position) &* 2_654_435_761) >> shift)
            }
            let matchEndLimit = n - lastLiterals
            let matchStartLimit = n - matchStartMargin
            var ip = 1
            search: while true {
                // Find a match for ip.
                var attempts = 1 << 6
                var candidate = 0
                while true {
                    if ip > matchStartLimit { break search }
                    let h = hash(ip)
                    candidate = Int(table[h])
                    table[h] = Int32(ip)
                    if ip - candidate <= 65535 && loadLE32(src, candidate) == loadLE32(src, ip) { break }
                    ip += attempts >> 6
                    attempts += 1
                }
                // Extend backwards over literals not yet emitted, then forwards.
                while ip > anchor && candidate > 0
                    && src.load(fromByteOffset: ip - 1, as: UInt8.self) == src.load(fromByteOffset: candidate - 1, as: UInt8.self) {
                    ip -= 1
                    candidate -= 1
                }
                let matchLength = minMatch + commonLength(src, ip + minMatch, candidate + minMatch, limit: matchEndLimit)
                let code = matchLength - minMatch
                emitLiterals(upTo: ip, token: min(code, 15))
                let offset = ip - candidate
                out[op] = UInt8(offset & 0xFF)
                out[op + 1] = UInt8(offset >> 8)
                op += 2
                if code >= 15 { emitLength(code - 15) }
                ip += matchLength
                anchor = ip
                if ip > matchStartLimit { break }
                table[hash(ip - 2)] = Int32(ip - 2)
            }
        }
        emitLiterals(upTo: n, token: 0)
        return op
    }
}
