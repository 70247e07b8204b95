/// Zstandard compression (RFC 8878), kept simple:
/// - greedy LZ77 matching with a hash table of 4-byte sequences (like the LZ4 compressor here), matches
///   reaching anywhere back in the window; no repeat offsets;
/// - literals Huffman-coded when their byte values allow the direct 4-bit weight format (all below 129, as in
///   text), raw otherwise;
/// - literal length, offset and match length codes FSE-coded per block with RLE, a distribution fitted to the
///   block, or the predefined one for blocks with few sequences; no table reuse between blocks.
/// A block that would not shrink is stored raw, or as RLE when it is one repeated byte. On text this lands
/// between LZ4 and zstd level 1 in ratio.
///
/// Frame layout: magic, header with the exact content size (single segment up to `maxWindowLog`, else an
/// explicit window), the blocks, and the xxHash64 content checksum.
enum ZstdEncoder {
    /// Matches reach back at most 8 MiB, a window every decoder accepts.
    private static let maxWindowLog = 23
    private static let hashLog = 16
    private static let minMatch = 4

    static func compress(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        let n = input.count
        var output: [UInt8] = []
        output.reserveCapacity(n / 2 + 64)
        output.appendLE32(ZstdDecoder.frameMagic)
        let window = writeFrameHeader(contentSize: n, into: &output)

        // Last position of each hashed 4-byte sequence, absolute in the input (-1: none yet).
        var table = [Int](repeating: -1, count: 1 << hashLog)
        var blockStart = 0
        repeat {
            let blockEnd = min(blockStart + ZstdDecoder.maxBlockSize, n)
            let last = blockEnd == n
            table.withUnsafeMutableBufferPointer { table in
                encodeBlock(input, blockStart..<blockEnd, last: last, window: window, table: table, into: &output)
            }
            blockStart = blockEnd
        } while blockStart < n
        output.appendLE32(UInt32(truncatingIfNeeded: XXHash64.hash(input)))
        return output
    }

    /// Writes the frame header descriptor and fields; returns the window size matches must stay within.
    private static func writeFrameHeader(contentSize n: Int, into output: inout [UInt8]) -> Int {
        let checksumFlag: UInt8 = 0x04
        if n <= 1 << maxWindowLog {
            // Single segment: the window is the whole content, whose size field is 1, 2, 4 or 8 bytes.
            let singleSegment: UInt8 = 0x20
            switch n {
            case ..<256:
                output.append(singleSegment | checksumFlag)
                output.append(UInt8(n))
            case ..<(65536 + 256):
                output.append(1 << 6 | singleSegment | checksumFlag)
                appendLittleEndian(UInt64(n - 256), bytes: 2, to: &output)
            default:
                output.append(2 << 6 | singleSegment | checksumFlag)
                appendLittleEndian(UInt64(n), bytes: 4, to: &output)
            }
            return max(n, 1)
        }
        let sizeFlag: UInt8 = n <= Int(UInt32.max) ? 2 : 3
        output.append(sizeFlag << 6 | checksumFlag)
        output.append(UInt8(maxWindowLog - 10) << 3)  // window descriptor: exponent, mantissa 0
        appendLittleEndian(UInt64(n), bytes: sizeFlag == 2 ? 4 : 8, to: &output)
        return 1 << maxWindowLog
    }

    private static func appendLittleEndian(_ value: UInt64, bytes: Int, to output: inout [UInt8]) {
        for i in 0..<bytes { output.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
    }

    private struct LZSequence {
        var literalLength: Int
        var matchLength: Int
        var offset: Int
    }

    /// Compresses one block of at most 128 KiB, falling back to a raw or RLE block when that is smaller.
    private static func encodeBlock(_ input: UnsafeRawBufferPointer, _ range: Range<Int>, last: Bool, window: Int,
                                    table: UnsafeMutableBufferPointer<Int>, into output: inout [UInt8]) {
        let block = UnsafeRawBufferPointer(rebasing: input[range])
        let lastFlag = last ? 1 : 0
        if let first = block.first, block.count > 1, block.allSatisfy({ $0 == first }) {
            appendLittleEndian(UInt64(block.count << 3 | 1 << 1 | lastFlag), bytes: 3, to: &output)
            output.append(first)
            return
        }
        var literals: [UInt8] = []
        let sequences = findSequences(input, range, window: window, table: table, literals: &literals)
        var body: [UInt8] = []
        body.reserveCapacity(block.count)
        writeLiterals(literals, into: &body)
        writeSequences(sequences, into: &body)
        if body.count < block.count {
            appendLittleEndian(UInt64(body.count << 3 | 2 << 1 | lastFlag), bytes: 3, to: &output)
            output.append(contentsOf: body)
        } else {
            appendLittleEndian(UInt64(block.count << 3 | lastFlag), bytes: 3, to: &output)
            output.append(contentsOf: block)
        }
    }

    /// Greedy parsing of `range`: matches may start in earlier blocks (within the window) but end inside
    /// this one. Literals not covered by a match are appended to `literals`.
    private static func findSequences(_ input: UnsafeRawBufferPointer, _ range: Range<Int>, window: Int,
                                      table: UnsafeMutableBufferPointer<Int>, literals: inout [UInt8]) -> [LZSequence] {
        var sequences: [LZSequence] = []
        let src = input.baseAddress!
        let end = range.upperBound
        let shift = UInt32(32 - hashLog)
        @inline(__always) func hash(_ position: Int) -> Int {
            Int((loadLE32(src, position) &* 2_654_435_761) >> shift)
        }
        var anchor = range.lowerBound
        var ip = range.lowerBound
        // Room to load 4 bytes at every candidate position.
        let searchLimit = end - minMatch
        while ip <= searchLimit {
            let h = hash(ip)
            var candidate = table[h]
            table[h] = ip
            guard candidate >= 0, ip - candidate < window, loadLE32(src, candidate) == loadLE32(src, ip) else {
                // Step faster through data that keeps failing to match.
                ip += 1 + (ip - anchor) >> 8
                continue
            }
            var start = ip
            while start > anchor && candidate > 0
                && src.load(fromByteOffset: start - 1, as: UInt8.self) == src.load(fromByteOffset: candidate - 1, as: UInt8.self) {
                start -= 1
                candidate -= 1
            }
            let length = ip - start + minMatch + commonLength(src, ip + minMatch, candidate + (ip - start) + minMatch, limit: end)
            literals.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[anchor..<start]))
            sequences.append(LZSequence(literalLength: start - anchor, matchLength: length, offset: start - candidate))
            ip = start + length
            anchor = ip
            if ip - 2 <= searchLimit { table[hash(ip - 2)] = ip - 2 }
        }
        literals.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[anchor..<end]))
        return sequences
    }

    /// Below this many literals, a Huffman table costs more than it saves.
    private static let minHuffmanLiterals = 64

    /// Writes the literals section: Huffman-coded when that is smaller, else raw.
    private static func writeLiterals(_ literals: [UInt8], into body: inout [UInt8]) {
        let size = literals.count
        let rawSize = size + (size < 32 ? 1 : size < 4096 ? 2 : 3)
        if size >= minHuffmanLiterals {
            let section = literals.withUnsafeBufferPointer { literals in
                HuffmanEncoder(literals)?.literalsSection(literals, rawSize: rawSize)
            }
            if let section {
                body += section
                return
            }
        }
        // Raw: type 0 with a 5-, 12- or 20-bit size.
        if size < 32 {
            body.append(UInt8(size << 3))
        } else if size < 4096 {
            body.append(UInt8(1 << 2 | (size & 0xF) << 4))
            body.append(UInt8(size >> 4))
        } else {
            body.append(UInt8(3 << 2 | (size & 0xF) << 4))
            body.append(UInt8((size >> 4) & 0xFF))
            body.append(UInt8(size >> 12))
        }
        body.append(contentsOf: literals)
    }

    /// Sequences section: each symbol kind gets the predefined distribution, RLE, or a distribution fitted
    /// to this block.
    private static func writeSequences(_ sequences: [LZSequence], into body: inout [UInt8]) {
        let count = sequences.count
        if count < 128 {
            body.append(UInt8(count))
        } else if count < 0x7F00 {
            body.append(UInt8(count >> 8 + 128))
            body.append(UInt8(count & 0xFF))
        } else {
            body.append(255)
            body.append(UInt8((count - 0x7F00) & 0xFF))
            body.append(UInt8((count - 0x7F00) >> 8))
        }
        guard count > 0 else { return }

        let codes = sequences.map(SymbolCodes.init)
        let (llMode, llDescription, ll) = chooseTable(codes.map(\.literalLength), kind: .literalLength)
        let (ofMode, ofDescription, of) = chooseTable(codes.map(\.offset), kind: .offset)
        let (mlMode, mlDescription, ml) = chooseTable(codes.map(\.matchLength), kind: .matchLength)
        body.append(UInt8(llMode << 6 | ofMode << 4 | mlMode << 2))
        body += llDescription
        body += ofDescription
        body += mlDescription
        var writer = BackwardBitWriter()
        // The decoder reads the stream backwards, so it is written from the last sequence to the first, each
        // field in the reverse of the order the decoder reads it.
        let lastCodes = codes[count - 1]
        var llState = ll.initialState(lastCodes.literalLength)
        var ofState = of.initialState(lastCodes.offset)
        var mlState = ml.initialState(lastCodes.matchLength)
        lastCodes.writeExtraBits(to: &writer)
        for index in stride(from: count - 2, through: 0, by: -1) {
            let c = codes[index]
            ofState = of.encode(c.offset, nextState: ofState, to: &writer)
            mlState = ml.encode(c.matchLength, nextState: mlState, to: &writer)
            llState = ll.encode(c.literalLength, nextState: llState, to: &writer)
            c.writeExtraBits(to: &writer)
        }
        writer.write(mlState, bits: ml.accuracyLog)
        writer.write(ofState, bits: of.accuracyLog)
        writer.write(llState, bits: ll.accuracyLog)
        body.append(contentsOf: writer.finish())
    }

    /// Below this many sequences, a fitted distribution costs more to describe than it saves.
    private static let minSequencesForFittedTables = 64

    /// Picks the compression mode for one symbol kind: returns the mode, the table description to send
    /// (empty for predefined) and the encoder.
    private static func chooseTable(_ symbols: [Int], kind: SequenceCodes.Kind) -> (Int, [UInt8], FSEEncoder) {
        let symbolCount = kind.maxSymbol + 1
        var counts = [Int](repeating: 0, count: symbolCount)
        for symbol in symbols { counts[symbol] += 1 }
        let distinct = counts.count { $0 > 0 }
        if distinct == 1, let symbol = counts.firstIndex(where: { $0 > 0 }) {
            return (1, [UInt8(symbol)], FSEEncoder(.rle(UInt8(symbol)), symbolCount: symbolCount))
        }
        if symbols.count >= minSequencesForFittedTables,
           let (distribution, accuracyLog) = normalize(counts, total: symbols.count, maxAccuracyLog: kind.maxAccuracyLog),
           let table = try? FSETable(distribution: distribution, accuracyLog: accuracyLog) {
            return (2, describe(distribution, accuracyLog: accuracyLog), FSEEncoder(table, symbolCount: symbolCount))
        }
        // The predefined distributions cover every code a sequence of ours can produce.
        let predefined = FSEEncoder.predefined(kind)
        return (0, [], predefined)
    }

    /// Scales symbol counts to probabilities summing to `1 << accuracyLog`, each present symbol at least 1.
    private static func normalize(_ counts: [Int], total: Int, maxAccuracyLog: Int) -> ([Int16], Int)? {
        let distinct = counts.count { $0 > 0 }
        let highBit = Int.bitWidth - 1 - (total - 1).leadingZeroBitCount
        // A table about a quarter of the sequence count, within the format's bounds and big enough to give
        // every symbol a state.
        var accuracyLog = min(maxAccuracyLog, max(5, highBit - 2))
        while 1 << accuracyLog < 2 * distinct && accuracyLog < maxAccuracyLog { accuracyLog += 1 }
        let tableSize = 1 << accuracyLog
        var distribution = counts.map { count -> Int16 in
            count == 0 ? 0 : Int16(max(1, (count * tableSize + total / 2) / total))
        }
        // Put the rounding error on the most frequent symbol.
        let sum = distribution.reduce(0) { $0 + Int($1) }
        let largest = counts.indices.max { counts[$0] < counts[$1] }!
        let adjusted = Int(distribution[largest]) + tableSize - sum
        guard adjusted >= 1 else { return nil }
        distribution[largest] = Int16(adjusted)
        // Trailing zero probabilities are not sent.
        while distribution.last == 0 { distribution.removeLast() }
        return (distribution, accuracyLog)
    }

    /// Writes an FSE table description (RFC 8878 §4.1.1), the inverse of `FSETable.read`.
    private static func describe(_ distribution: [Int16], accuracyLog: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        var container = 0
        var bitCount = 0
        func write(_ value: Int, _ bits: Int) {
            container |= value << bitCount
            bitCount += bits
            while bitCount >= 8 {
                bytes.append(UInt8(truncatingIfNeeded: container))
                container >>= 8
                bitCount -= 8
            }
        }
        write(accuracyLog - 5, 4)
        var remaining = (1 << accuracyLog) + 1
        var threshold = 1 << accuracyLog
        var bits = accuracyLog + 1
        var symbol = 0
        while remaining > 1 {
            let probability = Int(distribution[symbol])
            let value = probability + 1
            // Values below `maxSmall` take one bit less; the reader tells them apart by their low bits.
            let maxSmall = 2 * threshold - 1 - remaining
            if value < maxSmall {
                write(value, bits - 1)
            } else {
                write(value < threshold ? value : value + maxSmall, bits)
            }
            remaining -= abs(probability)
            symbol += 1
            if probability == 0 {
                // Runs of further zeros: 2-bit counts, 3 meaning "3, and another count follows".
                var zeros = 0
                while distribution[symbol + zeros] == 0 { zeros += 1 }
                symbol += zeros
                while zeros >= 3 {
                    write(3, 2)
                    zeros -= 3
                }
                write(zeros, 2)
            }
            while remaining < threshold {
                bits -= 1
                threshold >>= 1
            }
        }
        if bitCount > 0 { bytes.append(UInt8(truncatingIfNeeded: container)) }
        return bytes
    }

    /// A sequence as codes plus extra bits (RFC 8878 §3.1.1.3.2.1).
    private struct SymbolCodes {
        let literalLength: Int
        let literalLengthExtra: Int
        let matchLength: Int
        let matchLengthExtra: Int
        let offset: Int
        let offsetExtra: Int

        init(_ sequence: LZSequence) {
            let ll = sequence.literalLength
            literalLength = ll < 64 ? Self.literalLengthCodes[ll] : Self.highBit(ll) + 19
            literalLengthExtra = ll - Int(SequenceCodes.literalLength[literalLength] & 0xFF_FFFF)
            let ml = sequence.matchLength
            matchLength = ml - 3 < 128 ? Self.matchLengthCodes[ml - 3] : Self.highBit(ml - 3) + 36
            matchLengthExtra = ml - Int(SequenceCodes.matchLength[matchLength] & 0xFF_FFFF)
            // Offset values 1...3 mean repeat offsets; real offsets are sent as offset + 3.
            let offsetValue = sequence.offset + 3
            offset = Self.highBit(offsetValue)
            offsetExtra = offsetValue - 1 << offset
        }

        /// The decoder reads offset, match length, literal length extra bits: written in reverse.
        func writeExtraBits(to writer: inout BackwardBitWriter) {
            writer.write(literalLengthExtra, bits: Int(SequenceCodes.literalLength[literalLength] >> 24))
            writer.write(matchLengthExtra, bits: Int(SequenceCodes.matchLength[matchLength] >> 24))
            writer.write(offsetExtra, bits: offset)
        }

        private static func highBit(_ value: Int) -> Int { Int.bitWidth - 1 - value.leadingZeroBitCount }

        /// The largest code whose baseline is at most the value, for small values.
        private static func codes(_ table: [UInt32], upTo count: Int, bias: Int) -> [Int] {
            (0..<count).map { value in table.lastIndex { Int($0 & 0xFF_FFFF) <= value + bias }! }
        }

        static let literalLengthCodes = codes(SequenceCodes.literalLength, upTo: 64, bias: 0)
        static let matchLengthCodes = codes(SequenceCodes.matchLength, upTo: 128, bias: 3)
    }
}

/// Encodes symbols with an FSE table, walking the decoder's state machine backwards: for a symbol and the
/// state the decoder must reach next, it picks the state of that symbol whose range of successors holds it.
struct FSEEncoder: Sendable {
    let accuracyLog: Int
    private let decoderEntries: [UInt32]
    /// `transitions[symbol << accuracyLog | next]`: the state that decodes `symbol` and can move to `next`.
    private let transitions: [UInt16]
    private let firstStates: [UInt16]

    init(_ table: FSETable, symbolCount: Int) {
        accuracyLog = table.accuracyLog
        decoderEntries = table.entries
        let size = 1 << accuracyLog
        var transitions = [UInt16](repeating: 0, count: symbolCount << accuracyLog)
        var firstStates = [UInt16](repeating: 0, count: symbolCount)
        for state in stride(from: size - 1, through: 0, by: -1) {
            let entry = table.entries[state]
            let symbol = FSETable.symbol(entry)
            firstStates[symbol] = UInt16(state)
            // A symbol's states have disjoint successor ranges that together cover the whole table.
            let base = FSETable.baseline(entry)
            for next in base..<base + 1 << FSETable.bitCount(entry) {
                transitions[symbol << accuracyLog | next] = UInt16(state)
            }
        }
        self.transitions = transitions
        self.firstStates = firstStates
    }

    /// A state to end on (the decoder's last state, which it never leaves).
    func initialState(_ symbol: Int) -> Int { Int(firstStates[symbol]) }

    /// Writes the bits that take the decoder from the returned state (which decodes `symbol`) to `nextState`.
    func encode(_ symbol: Int, nextState: Int, to writer: inout BackwardBitWriter) -> Int {
        let state = Int(transitions[symbol << accuracyLog | nextState])
        let entry = decoderEntries[state]
        writer.write(nextState - FSETable.baseline(entry), bits: FSETable.bitCount(entry))
        return state
    }

    private static let literalLengths = FSEEncoder(SequenceCodes.predefinedLiteralLengths, symbolCount: 36)
    private static let offsets = FSEEncoder(SequenceCodes.predefinedOffsets, symbolCount: 29)
    private static let matchLengths = FSEEncoder(SequenceCodes.predefinedMatchLengths, symbolCount: 53)

    static func predefined(_ kind: SequenceCodes.Kind) -> FSEEncoder {
        switch kind {
        case .literalLength: literalLengths
        case .offset: offsets
        case .matchLength: matchLengths
        }
    }
}

/// Writes a backward bitstream (see `BackwardBitReader`): bits go in lowest first, so the last bits written
/// are the first read; `finish` adds the end marker bit.
struct BackwardBitWriter {
    private var bytes: [UInt8] = []
    private var container: UInt64 = 0
    private var count = 0

    /// Appends the low `bits` bits of `value` (at most 32 bits).
    mutating func write(_ value: Int, bits: Int) {
        container |= (UInt64(truncatingIfNeeded: value) & ((1 << UInt64(bits)) &- 1)) << UInt64(count)
        count += bits
        while count >= 8 {
            bytes.append(UInt8(truncatingIfNeeded: container))
            container >>= 8
            count -= 8
        }
    }

    mutating func finish() -> [UInt8] {
        write(1, bits: 1)
        if count > 0 { bytes.append(UInt8(truncatingIfNeeded: container)) }
        return bytes
    }
}
