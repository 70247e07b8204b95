/// Huffman coding of zstd literals for the compressor (RFC 8878 §4.2): code lengths of at most 11 bits,
/// described by 4-bit weights written directly, and four interleaved-free streams behind a jump table.
struct HuffmanEncoder {
    /// Code length per byte value (0: absent).
    private var lengths = [Int](repeating: 0, count: 256)
    /// Code per byte value, `lengths[symbol]` bits long.
    private var codes = [Int](repeating: 0, count: 256)
    private let maxBits: Int
    /// The highest byte value present: its weight is implied, the weights before it are written.
    private let lastSymbol: Int

    private static let maxCodeLength = 11
    /// Direct weights fit 128 entries (header byte 128...255); more would need FSE-compressed weights.
    private static let maxDirectWeights = 128

    /// Builds a code for `literals`, or nil when the direct weight format cannot describe it (a single
    /// distinct byte, or byte values above 128).
    init?(_ literals: UnsafeBufferPointer<UInt8>) {
        var counts = [Int](repeating: 0, count: 256)
        for byte in literals { counts[Int(byte)] += 1 }
        guard let last = counts.lastIndex(where: { $0 > 0 }), last <= Self.maxDirectWeights,
              counts.count(where: { $0 > 0 }) > 1 else { return nil }
        lastSymbol = last
        // Huffman code lengths; while the longest exceeds the limit, flatten the counts and try again
        // (all-equal counts give a balanced tree of at most 8 levels, so this ends).
        var scaled = counts
        var lengths = Self.codeLengths(scaled)
        while lengths.max()! > Self.maxCodeLength {
            scaled = scaled.map { $0 == 0 ? 0 : ($0 + 1) / 2 }
            lengths = Self.codeLengths(scaled)
        }
        self.lengths = lengths
        maxBits = lengths.max()!
        // Canonical codes as the decoder rebuilds them: by increasing weight (decreasing length), then by
        // byte value, each taking the next 2^(weight-1) slots of a maxBits-bit table.
        var next = 0
        for length in stride(from: maxBits, through: 1, by: -1) {
            for symbol in 0..<256 where lengths[symbol] == length {
                codes[symbol] = next >> (maxBits - length)
                next += 1 << (maxBits - length)
            }
        }
    }

    /// Huffman code lengths (a complete code) for the symbols with non-zero counts.
    private static func codeLengths(_ counts: [Int]) -> [Int] {
        // Nodes 0..<256 are leaves; merged nodes follow. Merge the two lightest nodes until one is left.
        var weight = counts
        var parent = [Int](repeating: -1, count: 256)
        var active = (0..<256).filter { counts[$0] > 0 }
        while active.count > 1 {
            active.sort { weight[$0] > weight[$1] }
            let a = active.removeLast()
            let b = active.removeLast()
            let node = weight.count
            weight.append(weight[a] + weight[b])
            parent.append(-1)
            parent[a] = node
            parent[b] = node
            active.append(node)
        }
        return (0..<256).map { symbol in
            guard counts[symbol] > 0 else { return 0 }
            var depth = 0
            var node = symbol
            while parent[node] >= 0 {
                node = parent[node]
                depth += 1
            }
            return depth
        }
    }

    /// The literals section (header, tree description, jump table, four streams), or nil when it would not
    /// be smaller than `rawSize`.
    func literalsSection(_ literals: UnsafeBufferPointer<UInt8>, rawSize: Int) -> [UInt8]? {
        var payload: [UInt8] = []
        // Tree description: 127 + number of weights, then two 4-bit weights per byte, first in the high nibble.
        payload.append(UInt8(127 + lastSymbol))
        for i in stride(from: 0, to: lastSymbol, by: 2) {
            let high = weight(i)
            let low = i + 1 < lastSymbol ? weight(i + 1) : 0
            payload.append(UInt8(high << 4 | low))
        }
        // Four streams of ceil(n/4) literals (the last takes the rest), behind three 16-bit sizes.
        let n = literals.count
        let segment = (n + 3) / 4
        let streams = (0..<4).map { i in
            encodeStream(UnsafeBufferPointer(rebasing: literals[min(n, i * segment)..<min(n, (i + 1) * segment)]))
        }
        for stream in streams.dropLast() {
            guard stream.count < 65536 else { return nil }
            payload.append(UInt8(stream.count & 0xFF))
            payload.append(UInt8(stream.count >> 8))
        }
        for stream in streams { payload += stream }

        // Header: type 2 (compressed), 4 streams, regenerated and compressed sizes of 10, 14 or 18 bits.
        let largest = max(n, payload.count)
        let (sizeFormat, sizeBits, headerSize) = largest < 1024 ? (1, 10, 3) : largest < 16384 ? (2, 14, 4) : (3, 18, 5)
        guard largest < 1 << 18, headerSize + payload.count < rawSize else { return nil }
        let header = 2 | sizeFormat << 2 | n << 4 | payload.count << (4 + sizeBits)
        return (0..<headerSize).map { UInt8(truncatingIfNeeded: header >> (8 * $0)) } + payload
    }

    private func weight(_ symbol: Int) -> Int { lengths[symbol] == 0 ? 0 : maxBits + 1 - lengths[symbol] }

    /// One stream: the decoder reads it backwards, so the last literal is written first.
    private func encodeStream(_ literals: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var writer = BackwardBitWriter()
        for byte in literals.reversed() {
            writer.write(codes[Int(byte)], bits: lengths[Int(byte)])
        }
        return writer.finish()
    }
}
