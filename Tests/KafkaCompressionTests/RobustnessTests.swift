import Testing
@testable import KafkaCompression

/// Malformed input must throw `KafkaCompressionError`, never trap, hang or allocate without bound.
@Suite("Robustness")
struct RobustnessTests {
    static let mutationsPerCodec = 20_000

    /// Valid compressed inputs to mutate: our own output plus the smaller reference fixtures.
    static func seeds(_ codec: KafkaCompressionCodec) throws -> [[UInt8]] {
        var seeds = try [
            TestInputs.text(3000, seed: 11), TestInputs.random(500, seed: 12), TestInputs.repetitive(2000), [0x42],
        ].map { try KafkaCompression.compress(codec, $0) }
        for entry in Fixtures.manifest where entry.codec == codec {
            let bytes = try Fixtures.bytes(entry.file)
            if bytes.count <= 12_000 { seeds.append(bytes) }
        }
        return seeds
    }

    /// One random corruption: bit flips, byte overwrites, truncation, insertion, deletion or duplication.
    static func mutate(_ input: [UInt8], using rng: inout SeededGenerator) -> [UInt8] {
        var bytes = input
        let edits = Int.random(in: 1...3, using: &rng)
        for _ in 0..<edits where !bytes.isEmpty {
            let position = Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<7, using: &rng) {
            case 0, 1:
                bytes[position] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
            case 2:
                bytes[position] = UInt8.random(in: 0...255, using: &rng)
            case 3:
                bytes[position] = [0x00, 0xFF, 0x7F, 0x80][Int.random(in: 0..<4, using: &rng)]
            case 4:
                bytes.removeLast(bytes.count - position)
            case 5:
                bytes.insert(contentsOf: TestInputs.random(Int.random(in: 1...8, using: &rng), seed: rng.next()), at: position)
            default:
                let end = min(bytes.count, position + Int.random(in: 1...64, using: &rng))
                if Bool.random(using: &rng) {
                    bytes.removeSubrange(position..<end)
                } else {
                    bytes.insert(contentsOf: bytes[position..<end], at: Int.random(in: 0...bytes.count, using: &rng))
                }
            }
        }
        return bytes
    }

    @Test("mutated inputs decode or throw", arguments: [KafkaCompressionCodec.gzip, .snappy, .lz4, .zstd])
    func mutations(codec: KafkaCompressionCodec) throws {
        let seeds = try Self.seeds(codec)
        var rng = SeededGenerator(seed: 0xC0DEC + UInt64(codec.rawValue))
        var decoded = 0
        var rejected = 0
        for _ in 0..<Self.mutationsPerCodec {
            let seed = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
            let input = Self.mutate(seed, using: &rng)
            do {
                let output = try KafkaCompression.decompress(codec, input, maxOutput: 1 << 20)
                #expect(output.count <= 1 << 20)
                decoded += 1
            } catch is KafkaCompressionError {
                rejected += 1
            }
        }
        print("MUTATIONS \(codec): \(decoded) decoded, \(rejected) rejected")
        #expect(decoded + rejected == Self.mutationsPerCodec)
        #expect(rejected > Self.mutationsPerCodec / 2, "\(codec): only \(rejected) rejected")
    }

    @Test("arbitrary bytes decode or throw", arguments: [KafkaCompressionCodec.gzip, .snappy, .lz4, .zstd])
    func garbage(codec: KafkaCompressionCodec) {
        var rng = SeededGenerator(seed: 77)
        for length in 0..<2000 {
            let input = TestInputs.random(length % 200, seed: rng.next())
            _ = try? KafkaCompression.decompress(codec, input, maxOutput: 1 << 16)
        }
    }

    @Test func hostileSnappyLength() {
        // A varint claiming 4 GiB - 1 followed by a few bytes: rejected before any allocation, even with no limit.
        let input: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00, 0x41]
        #expect(throws: KafkaCompressionError.self) { try KafkaCompression.decompress(.snappy, input, maxOutput: Int.max) }
        #expect(throws: KafkaCompressionError.outputLimitExceeded(codec: .snappy, limit: 1000)) {
            // 1 MiB claimed and plausible for the input size (many long copies) but over the caller's limit.
            try KafkaCompression.decompress(.snappy, [0x80, 0x80, 0x40] + [UInt8](repeating: 0xFE, count: 60_000), maxOutput: 1000)
        }
        // Xerial block length claiming 2 GiB.
        let xerial: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1, 0x7F, 0xFF, 0xFF, 0xFF, 0]
        #expect(throws: KafkaCompressionError.self) { try KafkaCompression.decompress(.snappy, xerial, maxOutput: Int.max) }
    }

    @Test func hostileLZ4Sizes() throws {
        // A frame claiming a 2^62-byte content size and a 4 MiB block that is really one byte.
        var frame: [UInt8] = [0x04, 0x22, 0x4D, 0x18, 0x68, 0x70, 0, 0, 0, 0, 0, 0, 0, 0x40]
        let checksum = frame[4..<14].withUnsafeBytes { UInt8(truncatingIfNeeded: XXHash32.hash($0) >> 8) }
        frame.append(checksum)
        frame += [0x00, 0x00, 0x40, 0x00]  // block size 4 MiB, but the input ends
        #expect(throws: KafkaCompressionError.self) { try KafkaCompression.decompress(.lz4, frame, maxOutput: Int.max) }
    }

    @Test func hostileZstdSizes() throws {
        // Frame content size 2^40 claimed; then RLE blocks of 128 KiB each: stopped by the caller's limit.
        var frame: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0xE0]  // FCS 8 bytes, single segment
        frame += [0, 0, 0, 0, 0, 1, 0, 0]
        for _ in 0..<100 {
            let header = (128 * 1024) << 3 | 1 << 1  // RLE, not last
            frame += [UInt8(header & 0xFF), UInt8(header >> 8 & 0xFF), UInt8(header >> 16), 0x61]
        }
        #expect(throws: KafkaCompressionError.outputLimitExceeded(codec: .zstd, limit: 1 << 20)) {
            try KafkaCompression.decompress(.zstd, frame, maxOutput: 1 << 20)
        }
        // The same frame with an unbounded limit fails on the missing last block, not on memory.
        #expect(throws: KafkaCompressionError.self) { try KafkaCompression.decompress(.zstd, frame, maxOutput: 64 << 20) }
    }

    @Test func gzipBombIsStopped() throws {
        let bomb = try KafkaCompression.compress(.gzip, [UInt8](repeating: 0, count: 20 << 20))
        #expect(bomb.count < 30_000)
        #expect(throws: KafkaCompressionError.outputLimitExceeded(codec: .gzip, limit: 1 << 20)) {
            try KafkaCompression.decompress(.gzip, bomb, maxOutput: 1 << 20)
        }
    }

    @Test func zstdDictionaryIsUnsupported() {
        // Frame header with a 1-byte dictionary ID of 7.
        let frame: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x21, 0x07, 0x00, 0x01, 0x00, 0x00]
        #expect(throws: KafkaCompressionError.unsupportedFeature(codec: .zstd, feature: "dictionary 7")) {
            try KafkaCompression.decompress(.zstd, frame, maxOutput: 100)
        }
    }

    /// Contexts are pooled: one left mid-frame by a failed call must not affect the next call, on any thread.
    @Test("a failed decode leaves no state behind", arguments: [
        ("medium.streamed.zst", KafkaCompressionCodec.zstd), ("medium.l22.nosize.zst", .zstd), ("large.l3.nochecksum.zst", .zstd),
        ("medium.linked.nochecksum.lz4", .lz4), ("medium.independent.checksums.lz4", .lz4),
    ])
    func failuresDoNotPoisonPooledContexts(file: String, codec: KafkaCompressionCodec) async throws {
        let entry = try #require(Fixtures.manifest.first { $0.file == file })
        let compressed = try Fixtures.bytes(file)
        let plaintext = try Fixtures.plaintext(entry.plaintextFile)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask { () async throws -> Void in
                    for round in 0..<25 {
                        // Cut mid-frame, or over the limit: both fail part-way through the frame.
                        let cut = Array(compressed.prefix(compressed.count / 2 + worker + round))
                        #expect(throws: KafkaCompressionError.self) { try KafkaCompression.decompress(codec, cut, maxOutput: plaintext.count) }
                        #expect(throws: KafkaCompressionError.self) {
                            try KafkaCompression.decompress(codec, compressed, maxOutput: plaintext.count / 3)
                        }
                        #expect(try KafkaCompression.decompress(codec, compressed, maxOutput: plaintext.count) == plaintext)
                    }
                }
            }
            try await group.waitForAll()
        }
        // Compression contexts too: levels never leak from one call into the next.
        let input = TestInputs.text(40_000, seed: 31)
        let fast = try KafkaCompression.compress(codec, input, level: 1)
        _ = try KafkaCompression.compress(codec, input, level: codec == .zstd ? 19 : 12)
        #expect(try KafkaCompression.compress(codec, input, level: 1) == fast)
    }

    @Test func emptyInputIsCorrupt() throws {
        for codec in [KafkaCompressionCodec.gzip, .snappy, .lz4, .zstd] {
            #expect(throws: KafkaCompressionError.self) { try KafkaCompression.decompress(codec, [], maxOutput: 100) }
        }
        #expect(try KafkaCompression.decompress(.none, [], maxOutput: 0) == [])
    }
}
