import NIOCore
import Testing
@testable import KafkaCompression

@Suite("Round trips")
struct RoundTripTests {
    static let codecs = KafkaCompressionCodec.allCases

    @Test("compress then decompress gives the input back", arguments: codecs)
    func roundTrip(codec: KafkaCompressionCodec) throws {
        for (name, input) in TestInputs.all {
            let compressed = try KafkaCompression.compress(codec, input)
            let output = try KafkaCompression.decompress(codec, compressed, maxOutput: input.count)
            #expect(output == input, "\(codec) \(name)")
        }
    }

    @Test("decompression stops at maxOutput", arguments: codecs)
    func outputLimit(codec: KafkaCompressionCodec) throws {
        let input = TestInputs.text(50_000, seed: 9)
        let compressed = try KafkaCompression.compress(codec, input)
        #expect(try KafkaCompression.decompress(codec, compressed, maxOutput: input.count) == input)
        #expect(throws: KafkaCompressionError.outputLimitExceeded(codec: codec, limit: input.count - 1)) {
            try KafkaCompression.decompress(codec, compressed, maxOutput: input.count - 1)
        }
    }

    @Test("gzip levels", arguments: [-1, 1, 6, 9])
    func gzipLevels(level: Int) throws {
        let input = TestInputs.text(100_000, seed: 4)
        let compressed = try KafkaCompression.compress(.gzip, input, level: level)
        #expect(Array(compressed.prefix(2)) == [0x1F, 0x8B])
        #expect(try KafkaCompression.decompress(.gzip, compressed, maxOutput: input.count) == input)
    }

    @Test("levels outside Kafka's ranges are refused",
          arguments: [(KafkaCompressionCodec.gzip, 0), (.gzip, 10), (.gzip, -2), (.lz4, 0), (.lz4, 18), (.zstd, 23),
                      (.zstd, -131073), (.snappy, 1), (.none, 1)])
    func invalidLevels(codec: KafkaCompressionCodec, level: Int) {
        #expect(!KafkaCompression.isValidLevel(codec, level))
        #expect(throws: KafkaCompressionError.invalidLevel(codec: codec, level: level)) {
            try KafkaCompression.compress(codec, [1, 2, 3], level: level)
        }
    }

    @Test func kafkaLevelDefaultsAndRanges() {
        #expect(KafkaCompression.defaultLevel(.gzip) == -1)
        #expect(KafkaCompression.levelRange(.gzip) == 1...9)
        #expect(KafkaCompression.defaultLevel(.lz4) == 9)
        #expect(KafkaCompression.levelRange(.lz4) == 1...17)
        #expect(KafkaCompression.defaultLevel(.zstd) == 3)
        #expect(KafkaCompression.levelRange(.zstd) == -131_072...22)
        #expect(KafkaCompression.defaultLevel(.snappy) == nil && KafkaCompression.levelRange(.snappy) == nil)
    }

    @Test("every level in range round-trips, and higher levels compress better",
          arguments: [(KafkaCompressionCodec.gzip, [1, 5, 9]), (.lz4, [1, 3, 9, 12, 17]), (.zstd, [-5, 1, 3, 9, 19, 22])])
    func levels(codec: KafkaCompressionCodec, levels: [Int]) throws {
        let input = TestInputs.mixed(seed: 8)
        var sizes: [Int] = []
        for level in levels {
            let compressed = try KafkaCompression.compress(codec, input, level: level)
            #expect(try KafkaCompression.decompress(codec, compressed, maxOutput: input.count) == input, "\(codec) level \(level)")
            sizes.append(compressed.count)
        }
        // The fastest level in the list compresses least, the strongest most (levels in between may tie).
        #expect(sizes.first! > sizes.last!, "\(codec) sizes by level: \(sizes)")
        #expect(try KafkaCompression.compress(codec, input) == KafkaCompression.compress(codec, input, level: KafkaCompression.defaultLevel(codec)))
    }

    @Test("ByteBuffer conveniences", arguments: codecs)
    func byteBuffer(codec: KafkaCompressionCodec) throws {
        var buffer = ByteBuffer()
        buffer.writeString("ignored prefix")
        buffer.moveReaderIndex(forwardBy: 14)
        buffer.writeBytes(TestInputs.text(10_000, seed: 5))
        let compressed = try KafkaCompression.compress(codec, buffer)
        let output = try KafkaCompression.decompress(codec, compressed, maxOutput: 10_000)
        #expect(output == buffer)
    }

    @Test func snappyWritesJavaClientFraming() throws {
        let input = TestInputs.text(100_000, seed: 6)
        let compressed = try KafkaCompression.compress(.snappy, input)
        #expect(Array(compressed.prefix(16)) == [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1])
        // Blocks of at most 32 KiB uncompressed: 100,000 bytes make 4 blocks.
        var pos = 16
        var blocks = 0
        while pos < compressed.count {
            let length = compressed[pos..<pos + 4].reduce(0) { $0 << 8 | Int($1) }
            let block = Array(compressed[pos + 4..<pos + 4 + length])
            let plain = try KafkaCompression.decompress(.snappy, block, maxOutput: 32 * 1024)
            #expect(plain.count == min(32 * 1024, input.count - blocks * 32 * 1024))
            pos += 4 + length
            blocks += 1
        }
        #expect(blocks == 4)
    }

    @Test func lz4FrameHeader() throws {
        let compressed = try KafkaCompression.compress(.lz4, [UInt8]("hello".utf8))
        // Magic, FLG (version 1, independent blocks, content checksum), BD (64 KiB), header checksum.
        #expect(Array(compressed.prefix(6)) == [0x04, 0x22, 0x4D, 0x18, 0x64, 0x40])
        let expected = [UInt8]([0x64, 0x40]).withUnsafeBytes { UInt8(truncatingIfNeeded: XXHash32.hash($0) >> 8) }
        #expect(compressed[6] == expected)
    }

    @Test("compressors actually compress", arguments: [KafkaCompressionCodec.gzip, .snappy, .lz4, .zstd])
    func ratio(codec: KafkaCompressionCodec) throws {
        let input = TestInputs.text(200_000, seed: 7)
        let compressed = try KafkaCompression.compress(codec, input)
        #expect(compressed.count < input.count / 2, "\(codec): \(compressed.count) bytes")
    }

    @Test("many small varied inputs", arguments: [KafkaCompressionCodec.snappy, .lz4, .zstd])
    func manySmallInputs(codec: KafkaCompressionCodec) throws {
        var rng = SeededGenerator(seed: 99)
        for i in 0..<300 {
            let size = Int.random(in: 0...5000, using: &rng)
            let input = switch i % 3 {
            case 0: TestInputs.text(size, seed: rng.next())
            case 1: TestInputs.random(size, seed: rng.next()).map { $0 & 0x0F }  // small alphabet
            default: TestInputs.repetitive(size)
            }
            let compressed = try KafkaCompression.compress(codec, input)
            #expect(try KafkaCompression.decompress(codec, compressed, maxOutput: input.count) == input, "\(codec) #\(i)")
        }
    }

    @Test func zstdBeyondSingleSegment() throws {
        // Over 8 MiB: at the default level the frame's window (2 MiB) is smaller than the content, so the frame
        // is not a single segment.
        var input = TestInputs.mixed(seed: 21)
        while input.count <= 9 << 20 { input += TestInputs.mixed(seed: UInt64(input.count)) }
        let compressed = try KafkaCompression.compress(.zstd, input)
        #expect(compressed[4] & 0x20 == 0)
        #expect(try KafkaCompression.decompress(.zstd, compressed, maxOutput: input.count) == input)
    }

    @Test func zstdRunsBecomeRLEBlocks() throws {
        // 1 MiB of one byte: eight RLE blocks of 4 bytes each, plus the frame header.
        let input = [UInt8](repeating: 7, count: 1 << 20)
        let compressed = try KafkaCompression.compress(.zstd, input)
        #expect(compressed.count < 100)
    }
}

@Suite("xxHash")
struct XXHashTests {
    // Reference values from the xxhash Python package.
    static let vectors: [(input: [UInt8], xxh32: UInt32)] = [
        ([], 0x02CC_5D05),
        (Array("a".utf8), 0x550D_7456),
        (Array("abc".utf8), 0x32D1_53FF),
        (Array(String(repeating: "0123456789abcdef", count: 3).utf8), 0xA012_2A3D),
        ((0..<512).map { UInt8($0 & 0xFF) }, 0xF319_D2C7),
    ]

    @Test func knownValues() {
        for vector in Self.vectors {
            vector.input.withUnsafeBytes { bytes in
                #expect(XXHash32.hash(bytes) == vector.xxh32)
            }
        }
        #expect(Array("abc".utf8).withUnsafeBytes { XXHash32.hash($0, seed: 1) } == 0xAA3D_A8FF)
    }
}
