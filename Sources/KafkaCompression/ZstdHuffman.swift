/// Huffman decoding of zstd literals (RFC 8878 §4.2): a table indexed by the next `maxBits` bits of a
/// backward bitstream.
struct HuffmanTable: Sendable {
    /// Longest code length (1...11).
    let maxBits: Int
    /// `1 << maxBits` entries: symbol in the low byte, code length in the high byte.
    let entries: [UInt16]

    private static let maxCodeLength = 11
    /// The largest weight symbol an FSE-compressed weight list may use.
    private static let maxWeightSymbol = 12
    private static let weightsMaxAccuracyLog = 6

    /// Reads a Huffman tree description from the start of `bytes`; returns the table and the bytes it took.
    static func read(_ bytes: UnsafeRawBufferPointer) throws -> (HuffmanTable, Int) {
        guard let header = bytes.first else { throw zstdCorrupt("missing Huffman tree description") }
        var weights: [UInt8]
        let used: Int
        if header < 128 {
            // FSE-compressed weights in the next `header` bytes.
            used = 1 + Int(header)
            guard used <= bytes.count else { throw zstdCorrupt("truncated Huffman weights") }
            weights = try decodeWeights(UnsafeRawBufferPointer(rebasing: bytes[1..<used]))
        } else {
            // header - 127 weights of 4 bits each, the first in the high nibble.
            let count = Int(header) - 127
            used = 1 + (count + 1) / 2
            guard used <= bytes.count else { throw zstdCorrupt("truncated Huffman weights") }
            weights = (0..<count).map { i in
                let byte = bytes[1 + i / 2]
                return i % 2 == 0 ? byte >> 4 : byte & 0x0F
            }
        }
        return (try HuffmanTable(weights: &weights), used)
    }

    /// Decodes FSE-compressed weights: two interleaved states sharing one backward bitstream.
    private static func decodeWeights(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
        let (table, descriptionSize) = try FSETable.read(bytes, maxSymbol: maxWeightSymbol, maxAccuracyLog: weightsMaxAccuracyLog)
        var reader = try BackwardBitReader(UnsafeRawBufferPointer(rebasing: bytes[descriptionSize...]))
        var weights: [UInt8] = []
        try table.entries.withUnsafeBufferPointer { entries in
            var state1 = reader.read(table.accuracyLog)
            var state2 = reader.read(table.accuracyLog)
            @inline(__always) func decode(_ state: inout Int) -> UInt8 {
                let entry = entries[state]
                state = FSETable.baseline(entry) + reader.read(FSETable.bitCount(entry))
                return UInt8(FSETable.symbol(entry))
            }
            // Alternate states; once an update reads past the stream start, the other state's symbol is the last.
            while true {
                guard weights.count < 254 else { throw zstdCorrupt("too many Huffman weights") }
                weights.append(decode(&state1))
                if reader.overflowed {
                    weights.append(decode(&state2))
                    break
                }
                weights.append(decode(&state2))
                if reader.overflowed {
                    weights.append(decode(&state1))
                    break
                }
            }
        }
        return weights
    }

    /// Builds the table from the weights of all symbols but the last, whose weight is implied: it brings the
    /// total of `2^(weight-1)` to the next power of two. `weights` gets that last weight appended.
    private init(weights: inout [UInt8]) throws {
        guard weights.count <= 255 else { throw zstdCorrupt("too many Huffman weights") }
        var total = 0
        for weight in weights where weight > 0 {
            guard weight <= Self.maxCodeLength else { throw zstdCorrupt("Huffman weight \(weight) too large") }
            total += 1 << (weight - 1)
        }
        guard total > 0 else { throw zstdCorrupt("Huffman weights are all zero") }
        let maxBits = Int.bitWidth - total.leadingZeroBitCount  // highest bit of total, plus one
        guard maxBits <= Self.maxCodeLength else { throw zstdCorrupt("Huffman codes longer than 11 bits") }
        let leftover = (1 << maxBits) - total
        guard leftover.nonzeroBitCount == 1 else { throw zstdCorrupt("Huffman weights do not complete a tree") }
        weights.append(UInt8(leftover.trailingZeroBitCount + 1))

        // Codes are handed out from 0 upwards, lowest weight (longest code) first and by symbol within a
        // weight; a symbol of weight w owns 2^(w-1) consecutive entries.
        var entries = [UInt16](repeating: 0, count: 1 << maxBits)
        var position = 0
        for weight in 1...maxBits {
            let span = 1 << (weight - 1)
            let codeLength = UInt16(maxBits + 1 - weight) << 8
            for (symbol, w) in weights.enumerated() where Int(w) == weight {
                for i in position..<position + span { entries[i] = codeLength | UInt16(symbol) }
                position += span
            }
        }
        self.maxBits = maxBits
        self.entries = entries
    }

    /// Decodes exactly `count` symbols from one Huffman stream into `dst`; the stream must be fully used.
    func decodeStream(_ stream: UnsafeRawBufferPointer, count: Int, into dst: UnsafeMutablePointer<UInt8>) throws {
        var reader = try BackwardBitReader(stream)
        let maxBits = maxBits
        entries.withUnsafeBufferPointer { entries in
            for i in 0..<count {
                let entry = entries[reader.peek(maxBits)]
                dst[i] = UInt8(truncatingIfNeeded: entry)
                reader.skip(Int(entry >> 8))
            }
        }
        guard reader.bitsLeft == 0 else { throw zstdCorrupt("Huffman stream size does not match its symbols") }
    }
}
