import KafkaProtocol
import KafkaWire
import NIOCore

/// What a handler knows about the request beyond its body.
public struct RequestContext: Sendable {
    public let header: RequestHeader
    public var apiVersion: Int16 { header.requestApiVersion }
    public let eventLoop: any EventLoop
    public let connection: ConnectionInfo
}

/// How a handler answers: now, later, with a pre-encoded payload (zero-copy fetch), or not at all.
public enum HandlerOutcome<Response: KafkaResponse>: Sendable {
    case respond(Response)
    case later(EventLoopFuture<Response>)
    case payload(EventLoopFuture<ResponsePayload>)
    /// No response is sent (produce with acks=0).
    case noResponse
}

/// One Kafka API served by the broker. One type (and file) per API under Handlers/.
public protocol APIHandler: Sendable {
    associatedtype Request: KafkaRequest
    /// Versions served and advertised in ApiVersions.
    var versions: ClosedRange<Int16> { get }
    /// Whether later requests on the same connection must wait until this one completes.
    var isBarrier: Bool { get }
    func handle(_ request: Request, context: RequestContext) -> HandlerOutcome<Request.Response>
}

extension APIHandler {
    public var isBarrier: Bool { false }
}

/// The result of dispatching one request frame.
public enum DispatchResult: Sendable {
    case now(ResponsePayload?)
    case later(EventLoopFuture<ResponsePayload?>, barrier: Bool)
    /// The request cannot be answered (unknown API, unsupported version, malformed): close the connection.
    case close(String)
}

/// The APIs this broker serves. It drives the ApiVersions response, so what is advertised is
/// exactly what is registered.
public struct HandlerRegistry: Sendable {
    struct Entry: Sendable {
        var versions: ClosedRange<Int16>
        var dispatch: @Sendable (KafkaRequestFrame, RequestContext) -> DispatchResult
    }

    private var entries: [Int16: Entry] = [:]

    public init() {}

    public mutating func register<H: APIHandler>(_ handler: H) {
        let versions = handler.versions
        precondition(H.Request.validVersions.contains(versions.lowerBound) && H.Request.validVersions.contains(versions.upperBound))
        entries[H.Request.apiKey.rawValue] = Entry(versions: versions) { frame, context in
            let request: H.Request
            do { request = try frame.decodeBody(as: H.Request.self) } catch {
                return .close("malformed \(H.Request.apiKey.name) v\(frame.apiVersion) request: \(error)")
            }
            let version = frame.apiVersion, correlationId = frame.correlationId
            @Sendable func encode(_ response: H.Request.Response) -> ResponsePayload {
                var buffer = ByteBuffer()
                response.writeFrame(into: &buffer, version: version, correlationId: correlationId)
                return .buffer(buffer)
            }
            switch handler.handle(request, context: context) {
            case let .respond(response): return .now(encode(response))
            case let .later(future): return .later(future.map { encode($0) }, barrier: handler.isBarrier)
            case let .payload(future): return .later(future.map { $0 }, barrier: handler.isBarrier)
            case .noResponse: return .now(nil)
            }
        }
    }

    /// Every registered API with its versions, by API key.
    public var supported: [(key: Int16, versions: ClosedRange<Int16>)] {
        entries.map { ($0.key, $0.value.versions) }.sorted { $0.key < $1.key }
    }

    public func versions(of key: ApiKey) -> ClosedRange<Int16>? { entries[key.rawValue]?.versions }

    public func dispatch(_ frame: KafkaRequestFrame, context: RequestContext) -> DispatchResult {
        guard let entry = entries[frame.header.requestApiKey] else {
            return .close("unsupported API key \(frame.header.requestApiKey)")
        }
        guard entry.versions.contains(frame.apiVersion) else {
            if frame.apiKey == .apiVersions {
                // A too-new ApiVersions gets a v0 answer with the supported list so the client can downgrade.
                var response = ApiVersionsResponse(errorCode: KafkaErrorCode.unsupportedVersion.rawValue)
                response.apiKeys = supported.map { .init(apiKey: $0.key, minVersion: $0.versions.lowerBound, maxVersion: $0.versions.upperBound) }
                var buffer = ByteBuffer()
                response.writeFrame(into: &buffer, version: 0, correlationId: frame.correlationId)
                return .now(.buffer(buffer))
            }
            return .close("unsupported version \(frame.apiVersion) of \(frame.apiKey?.name ?? "API \(frame.header.requestApiKey)")")
        }
        return entry.dispatch(frame, context)
    }
}
