// Compression and decompression throughput and ratio per codec, on fixed payloads (not a rigorous benchmark):
//   swift run -c release samsa-bench-compression            # markdown table on stdout
//   swift run -c release samsa-bench-compression interop DIR
// With `interop DIR`, writes our compressors' output for a few inputs instead (NAME.plain, NAME.CODEC) for
// Tests/KafkaCompressionTests/Fixtures/generate.py verify DIR to decode with the reference libraries.
//
// Payloads (4 MiB each, deterministic): JSON-like text records, and "random-ish" binary records (fixed-width
// fields: increasing timestamps, ids from a small set, flags, and 24 random bytes each). Every measurement is
// the best of 5 rounds of at least 0.2 s each; MB/s is uncompressed bytes (10^6) per second in both
// directions, ratio is uncompressed / compressed size.
import Foundation
import KafkaCompression

/// JSON-like log records: words from a small vocabulary with numbers.
func makeTextLikeInput(size: Int) -> [UInt8] {
    let words = ["kafka", "record", "batch", "offset", "partition", "topic", "producer", "consumer", "timestamp",
                 "key", "value", "header", "leader", "epoch", "broker", "segment", "index", "commit", "fetch"]
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
    var text = ""
    text.reserveCapacity(size + 64)
    while text.utf8.count < size {
        text += "{\"\(words[Int(next() % UInt64(words.count))])\": \(next() % 100_000), "
        text += "\"\(words[Int(next() % UInt64(words.count))])\": \"\(words[Int(next() % UInt64(words.count))])\"}\n"
    }
    return Array(text.utf8.prefix(size))
}

func pseudoRandomBytes(_ count: Int, seed: UInt64 = 0x2545_F491_4F6C_DD1D) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}

/// Binary records of 48 bytes: 8-byte timestamp (increasing by small steps), 4-byte id from 64 values,
/// 4-byte flags from 4 values, 8-byte counter, 24 random bytes. About half the bytes are random.
func makeBinaryInput(size: Int) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(size + 48)
    var state: UInt64 = 0xD1B5_4A32_D192_ED03
    func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 11
    }
    func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }
    var timestamp: UInt64 = 1_764_633_600_000
    var counter: UInt64 = 0
    while out.count < size {
        timestamp += next() % 7
        counter += 1
        append(timestamp)
        append(UInt32(truncatingIfNeeded: 1000 + next() % 64))
        append(UInt32(truncatingIfNeeded: 1 << (next() % 4)))
        append(counter)
        for _ in 0..<3 { append(next()) }
    }
    return Array(out.prefix(size))
}

func writeInteropFiles(to directory: URL) throws {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let text = makeTextLikeInput(size: 1 << 20)
    var mixed: [UInt8] = []
    for i in 0..<40 {
        switch i % 3 {
        case 0: mixed += text[(i * 20_000)..<(i * 20_000 + 30_000)]
        case 1: mixed += pseudoRandomBytes(5_000 + i * 100)
        default: mixed += [UInt8](repeating: UInt8(i), count: 1_000 * i)
        }
    }
    let inputs: [(String, [UInt8])] = [
        ("empty", []), ("one", [0x42]), ("zeros", [UInt8](repeating: 0, count: 300_000)),
        ("random", pseudoRandomBytes(100_000)), ("text", text), ("mixed", mixed),
        ("binary", makeBinaryInput(size: 1 << 20)),
        // Over 8 MiB: zstd frames with a window smaller than the content rather than a single segment.
        ("big", makeTextLikeInput(size: 8 << 20) + pseudoRandomBytes(1 << 20)),
    ]
    for (name, bytes) in inputs {
        try Data(bytes).write(to: directory.appendingPathComponent("\(name).plain"))
        for codec in KafkaCompressionCodec.allCases where codec != .none {
            let compressed = try KafkaCompression.compress(codec, bytes)
            try Data(compressed).write(to: directory.appendingPathComponent("\(name).\(codec)"))
        }
    }
    print("wrote \(inputs.count) inputs x 4 codecs to \(directory.path)")
}

let arguments = CommandLine.arguments
if arguments.count == 3 && arguments[1] == "interop" {
    try writeInteropFiles(to: URL(fileURLWithPath: arguments[2]))
    exit(0)
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// The best rate (MB/s of `bytes` per run) over 5 rounds of at least 0.2 s each.
func bestRate(bytes: Int, _ body: () throws -> Void) rethrows -> Double {
    try body()  // warm-up
    var best = 0.0
    for _ in 0..<5 {
        var runs = 0
        let start = now()
        var elapsed = 0.0
        repeat {
            try body()
            runs += 1
            elapsed = now() - start
        } while elapsed < 0.2
        best = max(best, Double(bytes * runs) / elapsed / 1e6)
    }
    return best
}

/// What is measured: a codec at a level (nil: the codec's default).
struct Setting {
    let codec: KafkaCompressionCodec
    let level: Int?
    var label: String { "\(codec)" + (level.map { " level \($0)" } ?? " (default level)") }
}

/// `BENCH_LEVELS=1` adds settings at explicit levels (only meaningful where the codec honours levels).
var settings: [Setting] = [
    Setting(codec: .gzip, level: nil), Setting(codec: .snappy, level: nil),
    Setting(codec: .lz4, level: nil), Setting(codec: .zstd, level: nil),
]
if ProcessInfo.processInfo.environment["BENCH_LEVELS"] == "1" {
    settings += [
        Setting(codec: .gzip, level: 1), Setting(codec: .lz4, level: 1),
        Setting(codec: .zstd, level: 1), Setting(codec: .zstd, level: 9),
    ]
}

/// `BENCH_CHUNK=16384` compresses each payload in independent chunks of that size (like record batches)
/// instead of as one 4 MiB buffer.
let chunkSize = Int(ProcessInfo.processInfo.environment["BENCH_CHUNK"] ?? "") ?? (4 << 20)
/// `BENCH_CODECS=zstd,lz4` measures only those codecs.
if let only = ProcessInfo.processInfo.environment["BENCH_CODECS"] {
    let names = Set(only.split(separator: ",").map(String.init))
    settings = settings.filter { names.contains($0.codec.description) }
}
let payloads: [(name: String, bytes: [UInt8])] = [
    ("JSON-like text", makeTextLikeInput(size: 4 << 20)),
    ("random-ish binary", makeBinaryInput(size: 4 << 20)),
]
let chunkLabel = chunkSize >= 4 << 20 ? "" : ", \(chunkSize)-byte chunks"
print("| payload (4 MiB\(chunkLabel)) | codec | ratio | compress MB/s | decompress MB/s |")
print("|---|---|---:|---:|---:|")
for payload in payloads {
    let input = payload.bytes
    let chunks = stride(from: 0, to: input.count, by: chunkSize).map { Array(input[$0..<min($0 + chunkSize, input.count)]) }
    for setting in settings {
        let compressed = try chunks.map { try KafkaCompression.compress(setting.codec, $0, level: setting.level) }
        for (chunk, frame) in zip(chunks, compressed) {
            let decoded = try KafkaCompression.decompress(setting.codec, frame, maxOutput: chunk.count)
            precondition(decoded == chunk, "\(setting.label) does not round-trip")
        }
        let compressRate = try bestRate(bytes: input.count) {
            for chunk in chunks { _ = try KafkaCompression.compress(setting.codec, chunk, level: setting.level) }
        }
        let decompressRate = try bestRate(bytes: input.count) {
            for (chunk, frame) in zip(chunks, compressed) {
                let output = try KafkaCompression.decompress(setting.codec, frame, maxOutput: chunk.count)
                precondition(output.count == chunk.count)
            }
        }
        let compressedBytes = compressed.reduce(0) { $0 + $1.count }
        print(String(format: "| %@ | %@ | %.2f | %.0f | %.0f |", payload.name, setting.label,
                     Double(input.count) / Double(compressedBytes), compressRate, decompressRate))
    }
}
