import KafkaWire
import NIOCore

/// Kafka's framing: every request and response is a 4-byte big-endian size followed by that
/// many bytes. This is the sans-IO part; `KafkaFrameDecoder` runs it inside a NIO pipeline.
public enum KafkaFraming {
    /// Kafka's `socket.request.max.bytes` default: 100 MiB.
    public static let defaultMaximumFrameSize = 104_857_600

    /// Takes the next complete frame (without its size prefix) off the front of `buffer`, or
    /// returns nil if more bytes are needed. Throws `frameTooLarge` as soon as the size prefix is
    /// read, before any of the frame arrives, so a hostile size never makes anyone buffer it.
    public static func nextFrame(in buffer: inout ByteBuffer, maximumFrameSize: Int = defaultMaximumFrameSize) throws -> ByteBuffer? {
        guard let size = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int32.self) else { return nil }
        guard size >= 0, Int(size) <= maximumFrameSize else {
            throw KafkaWireError.frameTooLarge(size: Int64(size), maximum: maximumFrameSize)
        }
        guard buffer.readableBytes >= 4 + Int(size) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer.readSlice(length: Int(size))!
    }

    /// Writes a frame: reserves the size prefix, lets `body` write, then fills the size in.
    public static func writeFrame(into buffer: inout ByteBuffer, _ body: (inout ByteBuffer) -> Void) {
        let sizeIndex = buffer.writerIndex
        buffer.writeInteger(Int32(0))
        body(&buffer)
        buffer.setInteger(Int32(buffer.writerIndex - sizeIndex - 4), at: sizeIndex, endianness: .big)
    }
}

/// NIO decoder turning a byte stream into Kafka frames (size prefix removed).
public struct KafkaFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer
    public let maximumFrameSize: Int

    public init(maximumFrameSize: Int = KafkaFraming.defaultMaximumFrameSize) {
        self.maximumFrameSize = maximumFrameSize
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try KafkaFraming.nextFrame(in: &buffer, maximumFrameSize: maximumFrameSize) else {
            return .needMoreData
        }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// A request frame split into its header and body. The body stays undecoded so that the
/// broker can answer unsupported versions and unknown APIs without decoding it.
public struct KafkaRequestFrame: Sendable {
    public var header: RequestHeader
    /// 0, 1 or 2; 2 for flexible request versions (KIP-482).
    public var headerVersion: Int16
    /// nil when the API key is not one Kafka defines.
    public var apiKey: ApiKey?
    public var body: ByteBuffer

    public var apiVersion: Int16 { header.requestApiVersion }
    public var correlationId: Int32 { header.correlationId }

    /// Splits `frame` (a whole frame without its size prefix). The header version follows from
    /// the API key and version; for a version newer than the schema's, the open-ended flexible
    /// range applies, as in Kafka, so that e.g. ApiVersions v99 still yields its correlation id.
    public init(parsing frame: ByteBuffer) throws {
        var buffer = frame
        guard let rawKey = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int16.self),
              let version = buffer.getInteger(at: buffer.readerIndex + 2, endianness: .big, as: Int16.self)
        else {
            throw KafkaWireError.truncated(needed: 4, available: buffer.readableBytes)
        }
        apiKey = ApiKey(rawValue: rawKey)
        headerVersion = apiKey?.requestHeaderVersion(version) ?? 1
        header = try RequestHeader(from: &buffer, version: headerVersion)
        body = buffer
    }

    /// Decodes the body as the generated request type of its API.
    public func decodeBody(strict: Bool = false) throws -> any KafkaRequest {
        guard let apiKey else { throw KafkaWireError.unknownApiKey(header.requestApiKey) }
        return try Self.decode(apiKey.requestType, from: body, version: apiVersion, strict: strict)
    }

    /// Decodes the body as `type`. Bytes after the end of the body are ignored, as Kafka ignores
    /// them (librdkafka 2.x sends three extra bytes in its all-topics Metadata v12 request);
    /// `strict` refuses them instead.
    public func decodeBody<R: KafkaRequest>(as type: R.Type, strict: Bool = false) throws -> R {
        try Self.decode(type, from: body, version: apiVersion, strict: strict)
    }

    static func decode<R: KafkaRequest>(_ type: R.Type, from body: ByteBuffer, version: Int16, strict: Bool = false) throws -> R {
        var buffer = body
        let request = try R(from: &buffer, version: version)
        guard !strict || buffer.readableBytes == 0 else {
            throw KafkaWireError.malformed("\(buffer.readableBytes) bytes after the end of \(R.self) v\(version)")
        }
        return request
    }
}

extension KafkaRequest {
    /// Writes this request as a whole frame (size, header, body).
    public func writeFrame(into buffer: inout ByteBuffer, version: Int16, correlationId: Int32, clientId: String?) {
        let header = RequestHeader(requestApiKey: Self.apiKey.rawValue, requestApiVersion: version,
                                   correlationId: correlationId, clientId: clientId)
        KafkaFraming.writeFrame(into: &buffer) { buffer in
            header.write(to: &buffer, version: Self.apiKey.requestHeaderVersion(version))
            self.write(to: &buffer, version: version)
        }
    }
}

extension KafkaResponse {
    /// Writes this response as a whole frame (size, response header, body).
    public func writeFrame(into buffer: inout ByteBuffer, version: Int16, correlationId: Int32) {
        KafkaFraming.writeFrame(into: &buffer) { buffer in
            ResponseHeader(correlationId: correlationId)
                .write(to: &buffer, version: Self.apiKey.responseHeaderVersion(version))
            self.write(to: &buffer, version: version)
        }
    }

    /// Reads a response frame's header and body (frame without its size prefix).
    public static func decodeFrame(_ frame: ByteBuffer, version: Int16) throws -> (correlationId: Int32, response: Self) {
        var buffer = frame
        let header = try ResponseHeader(from: &buffer, version: apiKey.responseHeaderVersion(version))
        let response = try Self(from: &buffer, version: version)
        guard buffer.readableBytes == 0 else {
            throw KafkaWireError.malformed("\(buffer.readableBytes) bytes after the end of \(Self.self) v\(version)")
        }
        return (header.correlationId, response)
    }
}
