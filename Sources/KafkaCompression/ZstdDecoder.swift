/// Zstandard decompression (RFC 8878): frames, skippable frames, raw/RLE/compressed blocks, Huffman
/// literals, FSE sequences, repeat offsets and the optional xxHash64 content checksum. Dictionaries are not
/// supported (a frame naming one is refused).
enum ZstdDecoder {
    static let frameMagic: UInt32 = 0xFD2F_B528
    /// 0x184D2A50...0x184D2A5F: skippable frames.
    private static let skippableMagicMask: UInt32 = 0xFFFF_FFF0
    private static let skippableMagic: UInt32 = 0x184D_2A50
    /// Block_Maximum_Size: no block holds or produces more.
    static let maxBlockSize = 128 * 1024

    static func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws -> [UInt8] {
        guard let base = input.baseAddress, input.count > 0 else { throw zstdCorrupt("empty input") }
        let out = OutputBuffer(codec: .zstd, limit: limit, initialCapacity: min(limit, input.count * 4))
        let literals = UnsafeMutablePointer<UInt8>.allocate(capacity: maxBlockSize)
        defer { literals.deallocate() }
        var pos = 0
        while pos < input.count {
            guard input.count - pos >= 4 else { throw zstdCorrupt("truncated frame magic") }
            let magic = loadLE32(base, pos)
            if magic == frameMagic {
                var frame = FrameDecoder(input: input, out: out, literalBuffer: literals)
                pos = try frame.decode(from: pos + 4)
            } else if magic & skippableMagicMask == skippableMagic {
                guard input.count - pos >= 8 else { throw zstdCorrupt("truncated skippable frame") }
                let size = Int(loadLE32(base, pos + 4))
                guard size <= input.count - pos - 8 else { throw zstdCorrupt("skippable frame runs past the input") }
                pos += 8 + size
            } else {
                throw zstdCorrupt("bad frame magic 0x\(String(magic, radix: 16))")
            }
        }
        return out.toArray()
    }
}

/// The state of one frame: entropy tables and repeat offsets carry over from block to block.
private struct FrameDecoder {
    let input: UnsafeRawBufferPointer
    let out: OutputBuffer
    /// Scratch for literals that are not stored raw in the input (RLE or Huffman-coded), one block's worth.
    let literalBuffer: UnsafeMutablePointer<UInt8>

    /// Output position where this frame's content starts: matches may not reach before it.
    var frameStart = 0
    var huffman: HuffmanTable?
    var literalLengthTable: FSETable?
    var offsetTable: FSETable?
    var matchLengthTable: FSETable?
    var repeatOffsets = (1, 4, 8)

    init(input: UnsafeRawBufferPointer, out: OutputBuffer, literalBuffer: UnsafeMutablePointer<UInt8>) {
        self.input = input
        self.out = out
        self.literalBuffer = literalBuffer
    }

    /// Decodes the frame whose header starts at `start` (just after the magic); returns the position after it.
    mutating func decode(from start: Int) throws -> Int {
        let base = input.baseAddress!
        let n = input.count
        var pos = start
        guard pos < n else { throw zstdCorrupt("truncated frame header") }
        let descriptor = input[pos]
        pos += 1
        let contentSizeFlag = Int(descriptor >> 6)
        let singleSegment = descriptor & 0x20 != 0
        guard descriptor & 0x08 == 0 else { throw zstdCorrupt("reserved frame header bit set") }
        let hasChecksum = descriptor & 0x04 != 0
        let dictionaryIDSize = [0, 1, 2, 4][Int(descriptor & 3)]
        let contentSizeSize = [singleSegment ? 1 : 0, 2, 4, 8][contentSizeFlag]
        let headerRest = (singleSegment ? 0 : 1) + dictionaryIDSize + contentSizeSize
        guard n - pos >= headerRest else { throw zstdCorrupt("truncated frame header") }
        // The window descriptor only matters to decoders that keep a window; the whole output stays in
        // memory here, so it is skipped (matches are checked against the frame start instead).
        if !singleSegment { pos += 1 }
        var dictionaryID: UInt64 = 0
        for i in 0..<dictionaryIDSize { dictionaryID |= UInt64(input[pos + i]) << (8 * i) }
        pos += dictionaryIDSize
        guard dictionaryID == 0 else {
            throw KafkaCompressionError.unsupportedFeature(codec: .zstd, feature: "dictionary \(dictionaryID)")
        }
        var contentSize: UInt64?
        if contentSizeSize > 0 {
            var value: UInt64 = 0
            for i in 0..<contentSizeSize { value |= UInt64(input[pos + i]) << (8 * i) }
            contentSize = contentSizeSize == 2 ? value + 256 : value
            pos += contentSizeSize
        }

        frameStart = out.count
        var lastBlock = false
        while !lastBlock {
            guard n - pos >= 3 else { throw zstdCorrupt("truncated block header") }
            let header = Int(input[pos]) | Int(input[pos + 1]) << 8 | Int(input[pos + 2]) << 16
            pos += 3
            lastBlock = header & 1 != 0
            let size = header >> 3
            guard size <= ZstdDecoder.maxBlockSize else { throw zstdCorrupt("block size \(size) exceeds 128 KiB") }
            switch (header >> 1) & 3 {
            case 0:  // raw
                guard size <= n - pos else { throw zstdCorrupt("truncated raw block") }
                try out.append(UnsafeRawBufferPointer(rebasing: input[pos..<pos + size]))
                pos += size
            case 1:  // RLE: one byte, repeated `size` times
                guard pos < n else { throw zstdCorrupt("truncated RLE block") }
                try out.append(repeating: input[pos], count: size)
                pos += 1
            case 2:
                guard size <= n - pos else { throw zstdCorrupt("truncated compressed block") }
                try decodeCompressedBlock(UnsafeRawBufferPointer(rebasing: input[pos..<pos + size]))
                pos += size
            default:
                throw zstdCorrupt("reserved block type")
            }
        }

        let content = UnsafeRawBufferPointer(start: out.base + frameStart, count: out.count - frameStart)
        if let contentSize, contentSize != UInt64(content.count) {
            throw zstdCorrupt("frame holds \(content.count) bytes but its header says \(contentSize)")
        }
        if hasChecksum {
            guard n - pos >= 4 else { throw zstdCorrupt("truncated content checksum") }
            let expected = loadLE32(base, pos)
            guard UInt32(truncatingIfNeeded: XXHash64.hash(content)) == expected else {
                throw zstdCorrupt("content checksum mismatch")
            }
            pos += 4
        }
        return pos
    }

    // MARK: Compressed blocks

    private mutating func decodeCompressedBlock(_ block: UnsafeRawBufferPointer) throws {
        let (literals, literalCount, literalsSize) = try decodeLiterals(block)
        try decodeSequences(UnsafeRawBufferPointer(rebasing: block[literalsSize...]), literals: literals, literalCount: literalCount)
    }

    /// Decodes the literals section at the start of `block`; returns the literals, their count and the
    /// section's size. Raw literals are used in place; the others are decoded into `literalBuffer`.
    private mutating func decodeLiterals(_ block: UnsafeRawBufferPointer) throws -> (UnsafePointer<UInt8>, Int, Int) {
        guard let first = block.first else { throw zstdCorrupt("empty compressed block") }
        let blockBase = block.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let b0 = Int(first)
        let type = b0 & 3
        let sizeFormat = (b0 >> 2) & 3
        @inline(__always) func byte(_ i: Int) -> Int { Int(block[i]) }

        if type < 2 {
            // Raw (0) or RLE (1): a 5-, 12- or 20-bit regenerated size.
            let headerSize: Int
            let size: Int
            switch sizeFormat {
            case 0, 2:
                headerSize = 1
                size = b0 >> 3
            case 1:
                headerSize = 2
                guard block.count >= headerSize else { throw zstdCorrupt("truncated literals header") }
                size = b0 >> 4 | byte(1) << 4
            default:
                headerSize = 3
                guard block.count >= headerSize else { throw zstdCorrupt("truncated literals header") }
                size = b0 >> 4 | byte(1) << 4 | byte(2) << 12
            }
            guard size <= ZstdDecoder.maxBlockSize else { throw zstdCorrupt("literals exceed 128 KiB") }
            if type == 0 {
                guard size <= block.count - headerSize else { throw zstdCorrupt("truncated raw literals") }
                return (blockBase + headerSize, size, headerSize + size)
            }
            guard block.count > headerSize else { throw zstdCorrupt("truncated RLE literals") }
            literalBuffer.update(repeating: block[headerSize], count: size)
            return (UnsafePointer(literalBuffer), size, headerSize + 1)
        }

        // Compressed (2) or treeless (3, reusing the previous Huffman table): sizes of 10, 14 or 18 bits.
        let streamCount = sizeFormat == 0 ? 1 : 4
        let headerSize = [3, 3, 4, 5][sizeFormat]
        let sizeBits = [10, 10, 14, 18][sizeFormat]
        guard block.count >= headerSize else { throw zstdCorrupt("truncated literals header") }
        var header = 0
        for i in 0..<headerSize { header |= byte(i) << (8 * i) }
        let mask = (1 << sizeBits) - 1
        let regeneratedSize = (header >> 4) & mask
        let compressedSize = (header >> (4 + sizeBits)) & mask
        guard regeneratedSize <= ZstdDecoder.maxBlockSize else { throw zstdCorrupt("literals exceed 128 KiB") }
        guard compressedSize <= block.count - headerSize else { throw zstdCorrupt("truncated compressed literals") }
        var section = UnsafeRawBufferPointer(rebasing: block[headerSize..<headerSize + compressedSize])

        let table: HuffmanTable
        if type == 2 {
            let (newTable, treeSize) = try HuffmanTable.read(section)
            table = newTable
            huffman = newTable
            section = UnsafeRawBufferPointer(rebasing: section[treeSize...])
        } else {
            guard let previous = huffman else { throw zstdCorrupt("treeless literals without a previous Huffman table") }
            table = previous
        }

        if streamCount == 1 {
            try table.decodeStream(section, count: regeneratedSize, into: literalBuffer)
        } else {
            // A jump table of three 16-bit stream sizes (the fourth takes the rest); each stream but the last
            // regenerates ceil(size / 4) literals.
            guard section.count >= 6 else { throw zstdCorrupt("truncated literals jump table") }
            let sizes = [loadLE16(section.baseAddress!, 0), loadLE16(section.baseAddress!, 2), loadLE16(section.baseAddress!, 4)]
            let lastSize = section.count - 6 - sizes[0] - sizes[1] - sizes[2]
            guard lastSize >= 0 else { throw zstdCorrupt("literals jump table exceeds the section") }
            let segment = (regeneratedSize + 3) / 4
            guard 3 * segment <= regeneratedSize else { throw zstdCorrupt("too few literals for four streams") }
            var streamStart = 6
            for i in 0..<4 {
                let streamSize = i < 3 ? sizes[i] : lastSize
                let count = i < 3 ? segment : regeneratedSize - 3 * segment
                let stream = UnsafeRawBufferPointer(rebasing: section[streamStart..<streamStart + streamSize])
                try table.decodeStream(stream, count: count, into: literalBuffer + i * segment)
                streamStart += streamSize
            }
        }
        return (UnsafePointer(literalBuffer), regeneratedSize, headerSize + compressedSize)
    }

    // MARK: Sequences

    /// Decodes the sequences section and executes it: literals and matches are appended to the output.
    private mutating func decodeSequences(_ section: UnsafeRawBufferPointer, literals: UnsafePointer<UInt8>, literalCount: Int) throws {
        guard let b0 = section.first.map(Int.init) else { throw zstdCorrupt("missing sequences section") }
        var pos: Int
        let sequenceCount: Int
        if b0 < 128 {
            sequenceCount = b0
            pos = 1
        } else if b0 < 255 {
            guard section.count >= 2 else { throw zstdCorrupt("truncated sequence count") }
            sequenceCount = (b0 - 128) << 8 + Int(section[1])
            pos = 2
        } else {
            guard section.count >= 3 else { throw zstdCorrupt("truncated sequence count") }
            sequenceCount = Int(section[1]) + Int(section[2]) << 8 + 0x7F00
            pos = 3
        }
        if sequenceCount == 0 {
            guard pos == section.count else { throw zstdCorrupt("bytes after an empty sequences section") }
            try out.append(UnsafeRawBufferPointer(start: literals, count: literalCount))
            return
        }

        guard pos < section.count else { throw zstdCorrupt("missing symbol compression modes") }
        let modes = Int(section[pos])
        pos += 1
        guard modes & 3 == 0 else { throw zstdCorrupt("reserved symbol compression mode bits set") }
        let literalLengths = try symbolTable(mode: (modes >> 6) & 3, kind: .literalLength, section, &pos, previous: literalLengthTable)
        let offsets = try symbolTable(mode: (modes >> 4) & 3, kind: .offset, section, &pos, previous: offsetTable)
        let matchLengths = try symbolTable(mode: (modes >> 2) & 3, kind: .matchLength, section, &pos, previous: matchLengthTable)
        literalLengthTable = literalLengths
        offsetTable = offsets
        matchLengthTable = matchLengths

        var reader = try BackwardBitReader(UnsafeRawBufferPointer(rebasing: section[pos...]))
        // What this block may still write: the block maximum, or less if the caller's limit is nearer.
        let room = min(ZstdDecoder.maxBlockSize, out.remainingLimit)
        try out.reserve(room)
        let dst = out.base
        var op = out.count
        let opLimit = op + room
        let frameStart = frameStart
        func overrun() -> KafkaCompressionError {
            room < ZstdDecoder.maxBlockSize ? .outputLimitExceeded(codec: .zstd, limit: out.limit) : zstdCorrupt("block decodes past 128 KiB")
        }
        var (rep1, rep2, rep3) = repeatOffsets
        var literalPosition = 0

        try literalLengths.entries.withUnsafeBufferPointer { llEntries in
            try offsets.entries.withUnsafeBufferPointer { ofEntries in
                try matchLengths.entries.withUnsafeBufferPointer { mlEntries in
                    try SequenceCodes.literalLength.withUnsafeBufferPointer { llCodes in
                        try SequenceCodes.matchLength.withUnsafeBufferPointer { mlCodes in
                            var llState = reader.read(literalLengths.accuracyLog)
                            var ofState = reader.read(offsets.accuracyLog)
                            var mlState = reader.read(matchLengths.accuracyLog)
                            for index in 0..<sequenceCount {
                                let llEntry = llEntries[llState]
                                let ofEntry = ofEntries[ofState]
                                let mlEntry = mlEntries[mlState]
                                // Extra bits come in the order offset, match length, literal length.
                                let offsetCode = FSETable.symbol(ofEntry)
                                let offsetValue = 1 << offsetCode + reader.read(offsetCode)
                                let mlCode = mlCodes[FSETable.symbol(mlEntry)]
                                let matchLength = Int(mlCode & 0xFFFFFF) + reader.read(Int(mlCode >> 24))
                                let llCode = llCodes[FSETable.symbol(llEntry)]
                                let literalLength = Int(llCode & 0xFFFFFF) + reader.read(Int(llCode >> 24))

                                // Offset values 1...3 select repeat offsets (shifted by one when there are no
                                // literals); larger values are offsets plus 3.
                                let offset: Int
                                if offsetValue > 3 {
                                    offset = offsetValue - 3
                                    (rep1, rep2, rep3) = (offset, rep1, rep2)
                                } else {
                                    switch offsetValue + (literalLength == 0 ? 1 : 0) {
                                    case 1:
                                        offset = rep1
                                    case 2:
                                        offset = rep2
                                        (rep1, rep2) = (rep2, rep1)
                                    case 3:
                                        offset = rep3
                                        (rep1, rep2, rep3) = (rep3, rep1, rep2)
                                    default:
                                        offset = rep1 - 1
                                        (rep1, rep2, rep3) = (offset, rep1, rep2)
                                    }
                                }

                                guard literalLength <= literalCount - literalPosition else {
                                    throw zstdCorrupt("sequence uses more literals than the block has")
                                }
                                guard literalLength + matchLength <= opLimit - op else { throw overrun() }
                                (dst + op).update(from: literals + literalPosition, count: literalLength)
                                op += literalLength
                                literalPosition += literalLength
                                guard offset > 0, offset <= op - frameStart else {
                                    throw zstdCorrupt("match offset \(offset) out of range")
                                }
                                copyMatch(dst, at: op, offset: offset, length: matchLength)
                                op += matchLength

                                if index + 1 < sequenceCount {
                                    // States update in the order literal length, match length, offset.
                                    llState = FSETable.baseline(llEntry) + reader.read(FSETable.bitCount(llEntry))
                                    mlState = FSETable.baseline(mlEntry) + reader.read(FSETable.bitCount(mlEntry))
                                    ofState = FSETable.baseline(ofEntry) + reader.read(FSETable.bitCount(ofEntry))
                                }
                            }
                        }
                    }
                }
            }
        }
        guard reader.bitsLeft == 0 else { throw zstdCorrupt("sequences bitstream size does not match its sequences") }
        let rest = literalCount - literalPosition
        guard rest <= opLimit - op else { throw overrun() }
        (dst + op).update(from: literals + literalPosition, count: rest)
        op += rest
        out.count = op
        repeatOffsets = (rep1, rep2, rep3)
    }

    /// Reads the decoding table of one symbol kind for the given compression mode.
    private func symbolTable(mode: Int, kind: SequenceCodes.Kind, _ section: UnsafeRawBufferPointer, _ pos: inout Int,
                             previous: FSETable?) throws -> FSETable {
        switch mode {
        case 0:
            return kind.predefinedTable
        case 1:
            guard pos < section.count else { throw zstdCorrupt("truncated RLE symbol") }
            let symbol = section[pos]
            guard Int(symbol) <= kind.maxSymbol else { throw zstdCorrupt("RLE symbol \(symbol) out of range") }
            pos += 1
            return .rle(symbol)
        case 2:
            let (table, used) = try FSETable.read(UnsafeRawBufferPointer(rebasing: section[pos...]),
                                                  maxSymbol: kind.maxSymbol, maxAccuracyLog: kind.maxAccuracyLog)
            pos += used
            return table
        default:
            guard let previous else { throw zstdCorrupt("repeat mode without a previous table") }
            return previous
        }
    }
}

/// The literal length, match length and offset code tables of RFC 8878 §3.1.1.3.2.1.
enum SequenceCodes {
    enum Kind {
        case literalLength, offset, matchLength

        var maxSymbol: Int {
            switch self {
            case .literalLength: 35
            case .offset: 31
            case .matchLength: 52
            }
        }

        var maxAccuracyLog: Int {
            switch self {
            case .literalLength: 9
            case .offset: 8
            case .matchLength: 9
            }
        }

        var predefinedTable: FSETable {
            switch self {
            case .literalLength: SequenceCodes.predefinedLiteralLengths
            case .offset: SequenceCodes.predefinedOffsets
            case .matchLength: SequenceCodes.predefinedMatchLengths
            }
        }
    }

    /// Per literal length code: baseline in the low 24 bits, extra bit count in the high 8.
    static let literalLength: [UInt32] = pack(
        baselines: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                    16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024, 2048, 4096,
                    8192, 16384, 32768, 65536],
        extraBits: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12,
                    13, 14, 15, 16])

    /// Per match length code: baseline in the low 24 bits, extra bit count in the high 8.
    static let matchLength: [UInt32] = pack(
        baselines: [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
                    19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
                    35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051,
                    4099, 8195, 16387, 32771, 65539],
        extraBits: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11,
                    12, 13, 14, 15, 16])

    private static func pack(baselines: [UInt32], extraBits: [UInt32]) -> [UInt32] {
        zip(baselines, extraBits).map { $0 | $1 << 24 }
    }

    // The predefined distributions (RFC 8878 §3.1.1.3.2.2), used by compression mode 0.
    static let predefinedLiteralLengths = try! FSETable(distribution: [
        4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1,
        2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1,
        -1, -1, -1, -1,
    ], accuracyLog: 6)

    static let predefinedMatchLengths = try! FSETable(distribution: [
        1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1,
        -1, -1, -1, -1, -1,
    ], accuracyLog: 6)

    static let predefinedOffsets = try! FSETable(distribution: [
        1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1,
    ], accuracyLog: 5)
}
