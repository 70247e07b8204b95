/// The compression codec of a Kafka record batch: the low three bits of the batch `attributes` field.
public enum KafkaCompressionCodec: Int16, Sendable, CaseIterable, CustomStringConvertible {
    case none = 0
    case gzip = 1
    case snappy = 2
    case lz4 = 3
    case zstd = 4

    public var description: String {
        switch self {
        case .none: "none"
        case .gzip: "gzip"
        case .snappy: "snappy"
        case .lz4: "lz4"
        case .zstd: "zstd"
        }
    }
}

/// Why a codec refused its input.
public enum KafkaCompressionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The compressed input is malformed, truncated or fails a checksum.
    case corruptInput(codec: KafkaCompressionCodec, reason: String)
    /// Decompressing would produce more than the caller's `maxOutput` bytes.
    case outputLimitExceeded(codec: KafkaCompressionCodec, limit: Int)
    /// The input is well formed but uses a feature this implementation does not support (e.g. zstd dictionaries).
    case unsupportedFeature(codec: KafkaCompressionCodec, feature: String)
    /// The requested compression level is not valid for the codec.
    case invalidLevel(codec: KafkaCompressionCodec, level: Int)
    /// The compression library failed for a reason unrelated to the input (e.g. zlib out of memory).
    case internalError(codec: KafkaCompressionCodec, reason: String)

    public var description: String {
        switch self {
        case .corruptInput(let codec, let reason):
            "\(codec) input is corrupt: \(reason)"
        case .outputLimitExceeded(let codec, let limit):
            "\(codec) decompressed output exceeds the limit of \(limit) bytes"
        case .unsupportedFeature(let codec, let feature):
            "\(codec) input uses an unsupported feature: \(feature)"
        case .invalidLevel(let codec, let level):
            "\(level) is not a valid \(codec) compression level"
        case .internalError(let codec, let reason):
            "\(codec) internal error: \(reason)"
        }
    }
}

/// Compression and decompression of the `records` section of Kafka record batches (magic 2), byte-compatible
/// with the Java client, librdkafka and kafka-python, through the reference C libraries (zlib, libzstd, liblz4,
/// libsnappy; the Kafka-specific framing around snappy is in Swift):
/// - gzip: RFC 1952 streams (zlib streams are accepted too; concatenated members are decoded in sequence).
/// - snappy: the xerial framing the Java client and librdkafka write, or raw snappy, on input; xerial on output.
/// - lz4: the LZ4 frame format (concatenated and skippable frames accepted); independent 64 KiB blocks on output.
/// - zstd: RFC 8878 frames (concatenated and skippable frames accepted, no dictionaries).
public enum KafkaCompression {
    /// Decompresses a Kafka batch's records section.
    ///
    /// `maxOutput` bounds the output: input that would decompress to more throws
    /// `KafkaCompressionError.outputLimitExceeded`, and memory use stays proportional to `maxOutput`
    /// (and to the input), whatever sizes the input claims.
    public static func decompress(_ codec: KafkaCompressionCodec, _ input: UnsafeRawBufferPointer, maxOutput: Int) throws -> [UInt8] {
        let limit = max(0, maxOutput)
        switch codec {
        case .none:
            guard input.count <= limit else { throw KafkaCompressionError.outputLimitExceeded(codec: .none, limit: limit) }
            return Array(input)
        case .gzip:
            return try Gzip.decompress(input, limit: limit)
        case .snappy:
            return try Snappy.decompress(input, limit: limit)
        case .lz4:
            return try LZ4Frame.decompress(input, limit: limit)
        case .zstd:
            return try Zstd.decompress(input, limit: limit)
        }
    }

    /// Compresses a Kafka batch's records section.
    ///
    /// `level` (KIP-390; nil means the codec's default) is checked against Kafka's range for the codec, and an
    /// invalid one throws `KafkaCompressionError.invalidLevel`:
    /// - gzip (`compression.gzip.level`): 1...9, or -1 for zlib's default (6); default -1.
    /// - lz4 (`compression.lz4.level`): 1...17, default 9.
    /// - zstd (`compression.zstd.level`): libzstd's range (-131072...22), default 3.
    /// - snappy and none have no levels: `level` must be nil.
    public static func compress(_ codec: KafkaCompressionCodec, _ input: UnsafeRawBufferPointer, level: Int? = nil) throws -> [UInt8] {
        try checkLevel(codec, level)
        switch codec {
        case .none:
            return Array(input)
        case .gzip:
            return try Gzip.compress(input, level: level)
        case .snappy:
            return try Snappy.compressXerial(input)
        case .lz4:
            return try LZ4Frame.compress(input, level: level)
        case .zstd:
            return try Zstd.compress(input, level: level)
        }
    }

    /// The levels a codec accepts (Kafka's ranges), or nil when it has none.
    public static func levelRange(_ codec: KafkaCompressionCodec) -> ClosedRange<Int>? {
        switch codec {
        case .gzip: Gzip.minLevel...Gzip.maxLevel
        case .lz4: LZ4Frame.minLevel...LZ4Frame.maxLevel
        case .zstd: Zstd.minLevel...Zstd.maxLevel
        case .none, .snappy: nil
        }
    }

    /// The level a codec uses when none is given (Kafka's defaults), or nil when it has none.
    public static func defaultLevel(_ codec: KafkaCompressionCodec) -> Int? {
        switch codec {
        case .gzip: Gzip.defaultLevel
        case .lz4: LZ4Frame.defaultLevel
        case .zstd: Zstd.defaultLevel
        case .none, .snappy: nil
        }
    }

    /// Whether `level` is valid for `codec` (nil always is), as Kafka's config validators decide.
    public static func isValidLevel(_ codec: KafkaCompressionCodec, _ level: Int?) -> Bool {
        guard let level else { return true }
        if codec == .gzip && level == Gzip.defaultLevel { return true }
        return levelRange(codec)?.contains(level) ?? false
    }

    /// Throws `invalidLevel` unless `isValidLevel(codec, level)`.
    public static func checkLevel(_ codec: KafkaCompressionCodec, _ level: Int?) throws {
        guard isValidLevel(codec, level) else { throw KafkaCompressionError.invalidLevel(codec: codec, level: level ?? 0) }
    }

    /// `decompress(_:_:maxOutput:)` for an array.
    public static func decompress(_ codec: KafkaCompressionCodec, _ input: [UInt8], maxOutput: Int) throws -> [UInt8] {
        try input.withUnsafeBytes { try decompress(codec, $0, maxOutput: maxOutput) }
    }

    /// `compress(_:_:level:)` for an array.
    public static func compress(_ codec: KafkaCompressionCodec, _ input: [UInt8], level: Int? = nil) throws -> [UInt8] {
        try input.withUnsafeBytes { try compress(codec, $0, level: level) }
    }
}
