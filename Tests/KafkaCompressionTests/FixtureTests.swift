import Testing
@testable import KafkaCompression

/// Files compressed by the reference implementations (python-snappy/kafka-python, lz4, zstandard, gzip).
@Suite("Interop fixtures")
struct FixtureTests {
    @Test func manifestIsComplete() {
        #expect(Fixtures.manifest.count >= 30)
        for codec in [KafkaCompressionCodec.gzip, .snappy, .lz4, .zstd] {
            #expect(Fixtures.manifest.contains { $0.codec == codec })
        }
    }

    @Test("reference output decodes to the plaintext", arguments: Fixtures.manifest)
    func decode(entry: Fixtures.Entry) throws {
        let compressed = try Fixtures.bytes(entry.file)
        let plaintext = try Fixtures.plaintext(entry.plaintextFile)
        let output = try KafkaCompression.decompress(entry.codec, compressed, maxOutput: plaintext.count)
        #expect(output == plaintext)
        if !plaintext.isEmpty {
            #expect(throws: KafkaCompressionError.outputLimitExceeded(codec: entry.codec, limit: plaintext.count - 1)) {
                try KafkaCompression.decompress(entry.codec, compressed, maxOutput: plaintext.count - 1)
            }
        }
    }

    @Test("a flipped bit in a checksummed fixture is caught",
          arguments: ["medium.independent.checksums.lz4", "large.l1.zst", "small.l6.gz"])
    func checksums(file: String) throws {
        let entry = try #require(Fixtures.manifest.first { $0.file == file })
        var compressed = try Fixtures.bytes(file)
        // The last byte belongs to the content checksum (gzip: the ISIZE trailer).
        compressed[compressed.count - 1] ^= 0x01
        #expect(throws: KafkaCompressionError.self) {
            try KafkaCompression.decompress(entry.codec, compressed, maxOutput: 1 << 20)
        }
    }
}
