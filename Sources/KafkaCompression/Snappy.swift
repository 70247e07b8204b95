/// Snappy: raw blocks (written from the snappy format description) and the xerial stream framing that
/// Kafka's Java client (snappy-java `SnappyOutputStream`) and librdkafka write.
///
/// Raw format: the uncompressed length as a little-endian base-128 varint, then elements whose tag byte's low
/// two bits select: 00 literal, 01 copy with 1-byte offset (11-bit offset, length 4...11), 10 copy with 2-byte
/// offset (length 1...64), 11 copy with 4-byte offset (length 1...64).
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
        guard let src = block.baseAddress?.assumingMemoryBound(to: UInt8.self), block.count > 0 else {
            throw corrupt("empty snappy block")
        }
        let end = block.count
        // Uncompressed length: varint of at most 5 bytes holding a 32-bit value.
        var length = 0
        var ip = 0
        var shift = 0
        while true {
            guard ip < end, shift <= 28 else { throw corrupt("bad uncompressed length varint") }
            let byte = Int(src[ip])
            ip += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80 { break }
            shift += 7
        }
        guard length <= Int(UInt32.max) else { throw corrupt("uncompressed length exceeds 32 bits") }
        // No element expands more than 64 output bytes per 3 input bytes (a 2-byte-offset copy), so a claimed
        // length beyond that is a lie; checking it first keeps hostile lengths from allocating anything.
        guard length <= (end - ip) * 22 else { throw corrupt("uncompressed length \(length) is impossible for \(end) bytes") }
        try out.reserve(length)
        let dst = out.base + out.count
        var op = 0
        while ip < end {
            let tag = Int(src[ip])
            ip += 1
            switch tag & 3 {
            case 0:
                // Literal: length-1 in the upper six bits, or in the next 1...4 bytes when those bits are 60...63.
                var literalLength = (tag >> 2) + 1
                if literalLength > 60 {
                    let extraBytes = literalLength - 60
                    guard end - ip >= extraBytes else { throw corrupt("truncated literal length") }
                    var value = 0
                    for i in 0..<extraBytes { value |= Int(src[ip + i]) << (8 * i) }
                    ip += extraBytes
                    literalLength = value + 1
                }
                guard literalLength <= end - ip else { throw corrupt("literal runs past the input") }
                guard literalLength <= length - op else { throw corrupt("literal runs past the uncompressed length") }
                (dst + op).update(from: src + ip, count: literalLength)
                ip += literalLength
                op += literalLength
            default:
                let copyLength: Int
                let offset: Int
                switch tag & 3 {
                case 1:
                    guard ip < end else { throw corrupt("truncated copy") }
                    copyLength = ((tag >> 2) & 7) + 4
                    offset = (tag >> 5) << 8 | Int(src[ip])
                    ip += 1
                case 2:
                    guard end - ip >= 2 else { throw corrupt("truncated copy") }
                    copyLength = (tag >> 2) + 1
                    offset = loadLE16(src, ip)
                    ip += 2
                default:
                    guard end - ip >= 4 else { throw corrupt("truncated copy") }
                    copyLength = (tag >> 2) + 1
                    offset = Int(loadLE32(src, ip))
                    ip += 4
                }
                guard offset > 0, offset <= op else { throw corrupt("copy offset \(offset) out of range") }
                guard copyLength <= length - op else { throw corrupt("copy runs past the uncompressed length") }
                copyMatch(dst, at: op, offset: offset, length: copyLength)
                op += copyLength
            }
        }
        guard op == length else { throw corrupt("decoded \(op) bytes but the header says \(length)") }
        out.count += length
    }

    private static func corrupt(_ reason: String) -> KafkaCompressionError {
        .corruptInput(codec: .snappy, reason: reason)
    }

    // MARK: Compression

    /// Compresses into the xerial framing with `xerialBlockSize` blocks, as the Java client does.
    static func compressXerial(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        var output = xerialMagic
        output.appendBE32(1)
        output.appendBE32(1)
        let blockCount = max(1, (input.count + xerialBlockSize - 1) / xerialBlockSize)
        output.reserveCapacity(xerialHeaderSize + blockCount * (4 + maxCompressedLength(xerialBlockSize)))
        var table = [UInt16](repeating: 0, count: 1 << maxHashBits)
        // At least one block, even for empty input: decoders such as kafka-python only recognise the framing
        // when something follows the header.
        var start = 0
        repeat {
            let blockEnd = min(start + xerialBlockSize, input.count)
            let lengthPosition = output.count
            output.appendBE32(0)
            table.withUnsafeMutableBufferPointer { table in
                compressRaw(UnsafeRawBufferPointer(rebasing: input[start..<blockEnd]), table: table, into: &output)
            }
            let blockLength = UInt32(output.count - lengthPosition - 4)
            for i in 0..<4 { output[lengthPosition + i] = UInt8(truncatingIfNeeded: blockLength >> (24 - 8 * i)) }
            start = blockEnd
        } while start < input.count
        return output
    }

    /// The largest raw stream `compressRaw` can produce for `n` input bytes (snappy's classic bound).
    static func maxCompressedLength(_ n: Int) -> Int { 32 + n + n / 6 }

    private static let maxHashBits = 14
    /// Inputs this close to the end are emitted as literals: the matcher loads 4 bytes past its position.
    private static let inputMargin = 15

    /// Compresses `input` (at most 64 KiB, so every offset fits two bytes) as one raw snappy stream appended to
    /// `output`. Greedy matching with a hash table of the last position each 4-byte sequence was seen at; when
    /// no match turns up for a while, the search skips ahead faster through incompressible data.
    static func compressRaw(_ input: UnsafeRawBufferPointer, table: UnsafeMutableBufferPointer<UInt16>, into output: inout [UInt8]) {
        precondition(input.count <= 65536)
        let n = input.count
        // Varint uncompressed length.
        var value = n
        while value >= 0x80 {
            output.append(UInt8(value & 0x7F | 0x80))
            value >>= 7
        }
        output.append(UInt8(value))
        guard let src = input.baseAddress else { return }
        if n < inputMargin + 1 {
            emitLiteral(src, 0, n, into: &output)
            return
        }
        // A table just big enough for the input, up to 2^maxHashBits entries.
        var hashBits = 8
        while hashBits < maxHashBits && (1 << hashBits) < n { hashBits += 1 }
        let shift = UInt32(32 - hashBits)
        let tableSize = 1 << hashBits
        table.baseAddress!.update(repeating: 0, count: tableSize)
        @inline(__always) func hash(_ position: Int) -> Int {
            Int((loadLE32(src, position) &* 0x1E35_A7BD) >> shift)
        }

        let ipLimit = n - inputMargin
        var anchor = 0  // first byte not yet emitted
        var ip = 1
        outer: while true {
            // Find a 4-byte match for ip.
            var skip = 32
            var candidate = 0
            while true {
                if ip > ipLimit { break outer }
                let h = hash(ip)
                candidate = Int(table[h])
                table[h] = UInt16(ip)
                if loadLE32(src, candidate) == loadLE32(src, ip) { break }
                ip += skip >> 5
                skip += 1
            }
            emitLiteral(src, anchor, ip - anchor, into: &output)
            // Emit copies for as long as the position right after a copy starts another match.
            repeat {
                let matchEnd = ip + 4 + commonLength(src, ip + 4, candidate + 4, limit: n)
                emitCopy(offset: ip - candidate, length: matchEnd - ip, into: &output)
                ip = matchEnd
                anchor = ip
                if ip > ipLimit { break outer }
                table[hash(ip - 1)] = UInt16(ip - 1)
                let h = hash(ip)
                candidate = Int(table[h])
                table[h] = UInt16(ip)
            } while loadLE32(src, candidate) == loadLE32(src, ip)
            ip += 1
        }
        if anchor < n { emitLiteral(src, anchor, n - anchor, into: &output) }
    }

    private static func emitLiteral(_ src: UnsafeRawPointer, _ start: Int, _ count: Int, into output: inout [UInt8]) {
        guard count > 0 else { return }
        let n = count - 1
        if n < 60 {
            output.append(UInt8(n << 2))
        } else {
            var extraBytes = 1
            while extraBytes < 4 && n >> (8 * extraBytes) != 0 { extraBytes += 1 }
            output.append(UInt8((59 + extraBytes) << 2))
            for i in 0..<extraBytes { output.append(UInt8(truncatingIfNeeded: n >> (8 * i))) }
        }
        output.append(contentsOf: UnsafeRawBufferPointer(start: src + start, count: count))
    }

    private static func emitCopy(offset: Int, length: Int, into output: inout [UInt8]) {
        var remaining = length
        // Split long copies into 64-byte pieces, keeping at least 4 bytes for the last one.
        while remaining >= 68 {
            emitCopy2(offset: offset, length: 64, into: &output)
            remaining -= 64
        }
        if remaining > 64 {
            emitCopy2(offset: offset, length: 60, into: &output)
            remaining -= 60
        }
        if remaining < 12 && offset < 2048 {
            // 1-byte offset form: length 4...11, offset's high three bits in the tag.
            output.append(UInt8((offset >> 8) << 5 | (remaining - 4) << 2 | 1))
            output.append(UInt8(offset & 0xFF))
        } else {
            emitCopy2(offset: offset, length: remaining, into: &output)
        }
    }

    private static func emitCopy2(offset: Int, length: Int, into output: inout [UInt8]) {
        output.append(UInt8((length - 1) << 2 | 2))
        output.append(UInt8(offset & 0xFF))
        output.append(UInt8(offset >> 8))
    }
}
