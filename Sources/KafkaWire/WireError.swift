/// Why bytes could not be decoded as Kafka protocol data. Decoders throw this instead of trapping,
/// so hostile or truncated input can never crash the process.
public enum KafkaWireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The buffer ended before a value of `needed` bytes could be read (`available` were left).
    case truncated(needed: Int, available: Int)
    /// A length or count field holds a value that cannot be right (negative where null is not
    /// allowed, or larger than the bytes that remain).
    case invalidLength(Int64, field: String)
    /// A varint ran past its maximum size (5 bytes for 32 bits, 10 for 64).
    case varintTooLong
    /// A null was found where the schema does not allow it at this version.
    case unexpectedNull(field: String)
    /// The message version is not one this code knows.
    case unsupportedVersion(api: String, version: Int16)
    /// The API key of a request is unknown.
    case unknownApiKey(Int16)
    /// A frame's size prefix is negative or above the configured maximum.
    case frameTooLarge(size: Int64, maximum: Int)
    /// A record batch or message set uses a format that is not supported.
    case unsupportedFormat(String)
    /// A structural problem not covered above.
    case malformed(String)

    public var description: String {
        switch self {
        case let .truncated(needed, available):
            return "truncated input: needed \(needed) bytes, \(available) available"
        case let .invalidLength(length, field):
            return "invalid length \(length) for \(field)"
        case .varintTooLong:
            return "varint longer than its maximum size"
        case let .unexpectedNull(field):
            return "null \(field) where the schema does not allow null"
        case let .unsupportedVersion(api, version):
            return "\(api) version \(version) is not supported"
        case let .unknownApiKey(key):
            return "unknown API key \(key)"
        case let .frameTooLarge(size, maximum):
            return "frame size \(size) is outside 0...\(maximum)"
        case let .unsupportedFormat(what):
            return "unsupported format: \(what)"
        case let .malformed(what):
            return "malformed input: \(what)"
        }
    }
}
