import KafkaWire
import NIOCore

/// A struct of the Kafka protocol: decodes from and encodes to a ByteBuffer at a given version.
/// Fields absent from a version keep their schema defaults; unknown tagged fields are kept.
public protocol KafkaStruct: Sendable, Equatable {
    /// Decodes at `version`; throws `KafkaWireError` on malformed input.
    init(from buffer: inout ByteBuffer, version: Int16) throws
    /// Encodes at `version`. Fields not in that version are skipped.
    func write(to buffer: inout ByteBuffer, version: Int16)
}

/// A top-level message (request, response, header or data record) with its version ranges.
public protocol KafkaMessage: KafkaStruct {
    static var validVersions: ClosedRange<Int16> { get }
    static var flexibleVersions: ClosedRange<Int16>? { get }
}

extension KafkaMessage {
    public static func isFlexible(_ version: Int16) -> Bool { flexibleVersions?.contains(version) ?? false }

    /// Encodes into a new buffer.
    public func encoded(version: Int16) -> ByteBuffer {
        var buffer = ByteBuffer()
        write(to: &buffer, version: version)
        return buffer
    }
}

public protocol KafkaRequest: KafkaMessage {
    associatedtype Response: KafkaResponse
    static var apiKey: ApiKey { get }
}

public protocol KafkaResponse: KafkaMessage {
    static var apiKey: ApiKey { get }
}

extension ApiKey {
    /// Request header version for a request of this API at `version` (KIP-482): 2 when the
    /// request version is flexible, else 1 (0 only for ControlledShutdown v0).
    public func requestHeaderVersion(_ version: Int16) -> Int16 {
        if requestFlexibleVersions?.contains(version) ?? false { return 2 }
        if self == .controlledShutdown && version == 0 { return 0 }
        return 1
    }

    /// Response header version: 1 when the response version is flexible, else 0. ApiVersions
    /// responses always use 0 so that a client that sent a too-new version can still read them.
    public func responseHeaderVersion(_ version: Int16) -> Int16 {
        if self == .apiVersions { return 0 }
        return (responseFlexibleVersions?.contains(version) ?? false) ? 1 : 0
    }
}
