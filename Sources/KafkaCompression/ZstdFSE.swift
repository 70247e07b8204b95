/// A finite state entropy (tANS) decoding table (RFC 8878 §4.1). Each of the `1 << accuracyLog` states
/// decodes to a symbol; the next state is `baseline + read(bitCount)`.
struct FSETable: Sendable {
    let accuracyLog: Int
    /// Per state: symbol in bits 0...7, bit count in bits 8...15, baseline in bits 16...31.
    let entries: [UInt32]

    @inline(__always) static func symbol(_ entry: UInt32) -> Int { Int(entry & 0xFF) }
    @inline(__always) static func bitCount(_ entry: UInt32) -> Int { Int((entry >> 8) & 0xFF) }
    @inline(__always) static func baseline(_ entry: UInt32) -> Int { Int(entry >> 16) }

    private init(accuracyLog: Int, entries: [UInt32]) {
        self.accuracyLog = accuracyLog
        self.entries = entries
    }

    /// The one-state table of RLE mode: every sequence uses `symbol`, and no bits are read.
    static func rle(_ symbol: UInt8) -> FSETable {
        FSETable(accuracyLog: 0, entries: [UInt32(symbol)])
    }

    /// Builds the decoding table for a normalized distribution (probabilities summing to `1 << accuracyLog`,
    /// -1 meaning "less than 1", which takes one state).
    init(distribution: [Int16], accuracyLog: Int) throws {
        let tableSize = 1 << accuracyLog
        var symbols = [UInt8](repeating: 0, count: tableSize)
        var nextState = [Int](repeating: 0, count: distribution.count)
        // "Less than 1" symbols take the last states, one each.
        var highest = tableSize - 1
        for (symbol, probability) in distribution.enumerated() {
            if probability == -1 {
                guard highest >= 0 else { throw zstdCorrupt("FSE distribution overflows its table") }
                symbols[highest] = UInt8(symbol)
                highest -= 1
                nextState[symbol] = 1
            } else {
                nextState[symbol] = Int(probability)
            }
        }
        // Spread the other symbols over the remaining states with the format's fixed step.
        let step = (tableSize >> 1) + (tableSize >> 3) + 3
        let mask = tableSize - 1
        var position = 0
        for (symbol, probability) in distribution.enumerated() where probability > 0 {
            for _ in 0..<Int(probability) {
                symbols[position] = UInt8(symbol)
                repeat { position = (position + step) & mask } while position > highest
            }
        }
        guard position == 0 else { throw zstdCorrupt("FSE distribution does not fill its table") }
        // A symbol with probability p owns p states; they take the values p...2p-1 in state order, each
        // reading enough bits to land in the table.
        var entries = [UInt32](repeating: 0, count: tableSize)
        for state in 0..<tableSize {
            let symbol = Int(symbols[state])
            let x = nextState[symbol]
            nextState[symbol] += 1
            let bitCount = accuracyLog - (Int.bitWidth - 1 - x.leadingZeroBitCount)
            let baseline = (x << bitCount) - tableSize
            entries[state] = UInt32(symbol) | UInt32(bitCount) << 8 | UInt32(baseline) << 16
        }
        self.init(accuracyLog: accuracyLog, entries: entries)
    }

    /// Reads an FSE table description (RFC 8878 §4.1.1) from the start of `bytes`; returns the table and the
    /// bytes the description took.
    static func read(_ bytes: UnsafeRawBufferPointer, maxSymbol: Int, maxAccuracyLog: Int) throws -> (FSETable, Int) {
        guard !bytes.isEmpty else { throw zstdCorrupt("missing FSE table description") }
        var reader = ForwardBitReader(bytes)
        let accuracyLog = reader.read(4) + 5
        guard accuracyLog <= maxAccuracyLog else { throw zstdCorrupt("FSE accuracy log \(accuracyLog) too large") }
        // `remaining` is the probability still to hand out, plus one. Each value takes just enough bits to
        // express 0...remaining, with the smaller values of the range taking one bit less.
        var remaining = (1 << accuracyLog) + 1
        var threshold = 1 << accuracyLog
        var bitCount = accuracyLog + 1
        var distribution: [Int16] = []
        while remaining > 1 {
            guard distribution.count <= maxSymbol else { throw zstdCorrupt("FSE distribution has too many symbols") }
            let maxSmall = 2 * threshold - 1 - remaining
            var value: Int
            if reader.peek(bitCount - 1) < maxSmall {
                value = reader.read(bitCount - 1)
            } else {
                value = reader.read(bitCount)
                if value >= threshold { value -= maxSmall }
            }
            let probability = value - 1
            remaining -= abs(probability)
            guard remaining >= 1 else { throw zstdCorrupt("FSE probabilities exceed the table size") }
            distribution.append(Int16(probability))
            if probability == 0 {
                // Zero probabilities are followed by 2-bit repeat counts of further zeros; 3 means "and more".
                while true {
                    let repeats = reader.read(2)
                    distribution.append(contentsOf: repeatElement(0, count: repeats))
                    guard distribution.count <= maxSymbol + 1 else { throw zstdCorrupt("FSE distribution has too many symbols") }
                    if repeats != 3 { break }
                }
            }
            while remaining < threshold {
                bitCount -= 1
                threshold >>= 1
            }
        }
        let used = reader.bytesConsumed
        guard used <= bytes.count else { throw zstdCorrupt("truncated FSE table description") }
        return (try FSETable(distribution: distribution, accuracyLog: accuracyLog), used)
    }
}

func zstdCorrupt(_ reason: String) -> KafkaCompressionError {
    .corruptInput(codec: .zstd, reason: reason)
}
