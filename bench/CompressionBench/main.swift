// Rough decompression throughput per codec on a 4 MiB text-like input (not a rigorous benchmark):
//   swift build -c release && .build/release/compression-bench
// With `interop DIR`, writes our compressors' output for a few inputs instead (NAME.plain, NAME.CODEC) for
// Tests/KafkaCompressionTests/Fixtures/generate.py verify DIR to decode with the reference libraries.
import Foundation
import KafkaCompression

/// Text-like data: words from a small vocabulary with numbers, like JSON-ish log records.
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

func pseudoRandomBytes(_ count: Int) -> [UInt8] {
    var state: UInt64 = 0x2545_F491_4F6C_DD1D
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
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
        // Over 8 MiB: zstd frames with an explicit window rather than a single segment.
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

/// Our zstd encoder is minimal, so decompressing its output says little; when the zstd command-line tool is
/// installed, the zstd numbers also cover a reference-compressed frame (`zstd -3`).
func referenceZstd(_ input: [UInt8]) -> [UInt8]? {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("compression-bench-\(getpid()).txt")
    defer {
        try? FileManager.default.removeItem(at: path)
        try? FileManager.default.removeItem(at: path.appendingPathExtension("zst"))
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["zstd", "-q", "-f", "-3", path.path]
    do {
        try Data(input).write(to: path)
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return [UInt8](try Data(contentsOf: path.appendingPathExtension("zst")))
    } catch {
        return nil
    }
}

/// Prints the ratio and the mean decompression rate over 10 runs (after one warm-up run).
func measure(_ label: String, _ codec: KafkaCompressionCodec, input: [UInt8], compressed: [UInt8], compressSeconds: Double?) throws {
    let megabytes = Double(input.count) / 1_000_000
    _ = try KafkaCompression.decompress(codec, compressed, maxOutput: input.count)
    let runs = 10
    let start = Date()
    for _ in 0..<runs {
        let output = try KafkaCompression.decompress(codec, compressed, maxOutput: input.count)
        precondition(output.count == input.count)
    }
    let seconds = Date().timeIntervalSince(start) / Double(runs)
    let compressRate = compressSeconds.map { String(format: "%7.1f MB/s", megabytes / $0) } ?? "      n/a  "
    print(String(format: "%@ ratio %5.2f  compress %@  decompress %7.1f MB/s",
                 label.padding(toLength: 15, withPad: " ", startingAt: 0),
                 Double(input.count) / Double(compressed.count), compressRate, megabytes / seconds))
}

let input = makeTextLikeInput(size: 4 * 1024 * 1024)
print("input: \(input.count) bytes of text-like data")
for codec in KafkaCompressionCodec.allCases where codec != .none {
    let compressed = try KafkaCompression.compress(codec, input)
    let compressStart = Date()
    for _ in 0..<3 { _ = try KafkaCompression.compress(codec, input) }
    let compressSeconds = Date().timeIntervalSince(compressStart) / 3
    try measure(codec.description, codec, input: input, compressed: compressed, compressSeconds: compressSeconds)
}
if let reference = referenceZstd(input) {
    try measure("zstd (zstd -3)", .zstd, input: input, compressed: reference, compressSeconds: nil)
} else {
    print("zstd command-line tool not found: skipped decompressing a reference zstd frame")
}
