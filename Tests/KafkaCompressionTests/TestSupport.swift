import Foundation
@testable import KafkaCompression

/// A small deterministic PRNG (SplitMix64), so every "random" test input is reproducible.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum TestInputs {
    static func random(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    /// Text-like lines from a small vocabulary.
    static func text(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = SeededGenerator(seed: seed)
        let words = ["alpha", "beta", "gamma", "kafka", "record", "offset", "partition", "leader", "commit", "fetch",
                     "{\"key\": ", "\"value\"", ", ", "\n", "12345", "2024-06-11"]
        var out: [UInt8] = []
        out.reserveCapacity(count + 16)
        while out.count < count {
            out += Array(words[Int.random(in: 0..<words.count, using: &rng)].utf8)
            out.append(0x20)
        }
        return Array(out.prefix(count))
    }

    static func repetitive(_ count: Int) -> [UInt8] {
        let pattern = Array("abcabcabd".utf8)
        return (0..<count).map { pattern[$0 % pattern.count] }
    }

    /// 1 MiB of segments of text, random bytes, byte runs and repeats of earlier data.
    static func mixed(seed: UInt64) -> [UInt8] {
        var rng = SeededGenerator(seed: seed)
        var out: [UInt8] = []
        let size = 1 << 20
        out.reserveCapacity(size + 70_000)
        while out.count < size {
            let length = Int.random(in: 1...60_000, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: out += text(length, seed: rng.next())
            case 1: out += random(length, seed: rng.next())
            case 2: out += [UInt8](repeating: UInt8.random(in: 0...255, using: &rng), count: length)
            default:
                let start = out.isEmpty ? 0 : Int.random(in: 0..<out.count, using: &rng)
                out += out[start..<min(out.count, start + length)]
            }
        }
        return Array(out.prefix(size))
    }

    /// The named inputs every codec round-trips.
    static let all: [(name: String, bytes: [UInt8])] = [
        ("empty", []),
        ("one byte", [0x42]),
        ("repetitive 300 KiB", repetitive(300 * 1024)),
        ("zeros 200 KiB", [UInt8](repeating: 0, count: 200 * 1024)),
        ("random 100 KiB", random(100 * 1024, seed: 1)),
        ("text 70 KiB", text(70 * 1024, seed: 2)),
        ("mixed 1 MiB", mixed(seed: 3)),
    ]
}

/// The committed interop fixtures (see Fixtures/README.md).
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    struct Entry: Sendable, CustomStringConvertible {
        let codec: KafkaCompressionCodec
        let file: String
        let plaintextFile: String
        var description: String { file }
    }

    static let manifest: [Entry] = {
        let text = (try? String(contentsOf: directory.appendingPathComponent("manifest.tsv"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map { line in
            let fields = line.split(separator: "\t").map(String.init)
            let codec: KafkaCompressionCodec = switch fields[0] {
            case "gzip": .gzip
            case "snappy": .snappy
            case "lz4": .lz4
            default: .zstd
            }
            return Entry(codec: codec, file: fields[1], plaintextFile: fields[2])
        }
    }()

    static func bytes(_ file: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(file)))
    }

    /// Plaintexts are stored gzip-compressed (made by Python's gzip module).
    static func plaintext(_ file: String) throws -> [UInt8] {
        try KafkaCompression.decompress(.gzip, bytes(file), maxOutput: 1 << 24)
    }
}
