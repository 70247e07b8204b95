import DequeModule
import KafkaProtocol
import KafkaWire
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One TCP connection to a broker: requests are pipelined, responses matched in order by
/// correlation id. API versions are negotiated when it opens (ApiVersions).
final class BrokerConnection: Sendable {
    let nodeId: Int32
    let address: String
    let channel: any Channel
    private let nextCorrelationId = Atomic<Int32>(0)
    private let versions: Mutex<[Int16: ClosedRange<Int16>]>
    let clientId: String

    private init(nodeId: Int32, address: String, channel: any Channel, clientId: String) {
        self.nodeId = nodeId
        self.address = address
        self.channel = channel
        self.clientId = clientId
        self.versions = Mutex([:])
    }

    var isActive: Bool { channel.isActive }

    static func connect(host: String, port: Int, nodeId: Int32, clientId: String, group: any EventLoopGroup,
                        timeoutMs: Int64 = 10_000) async throws -> BrokerConnection {
        let address = "\(host):\(port)"
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.milliseconds(timeoutMs))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 4 << 20))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maximumFrameSize: Int(Int32.max))))
                        try channel.pipeline.syncOperations.addHandler(ResponseMatcher(address: address))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw KafkaClientError.connectionFailed(servers: [address], reason: Self.describe(connectError: error))
        }
        let connection = BrokerConnection(nodeId: nodeId, address: address, channel: channel, clientId: clientId)
        do {
            try await connection.negotiateVersions()
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// A short reason for a failed connect ("Connection refused", "timed out").
    static func describe(connectError error: any Error) -> String {
        var e: any Error = error
        if let multi = error as? NIOConnectionError, let first = multi.connectionErrors.first { e = first.error }
        if let io = e as? IOError { return String(cString: strerror(io.errnoCode)) }
        if case ChannelError.connectTimeout = e { return "timed out" }
        return "\(e)"
    }

    /// ApiVersions v3 (falling back to v0, as Kafka clients do when the broker is older).
    private func negotiateVersions() async throws {
        var response = try await send(ApiVersionsRequest(clientSoftwareName: "samsa-swift", clientSoftwareVersion: "0.1.0"), version: 3)
        if response.errorCode == KafkaErrorCode.unsupportedVersion.rawValue {
            response = try await send(ApiVersionsRequest(), version: 0)
        }
        try KafkaClientError.check(response.errorCode, broker: nodeId)
        var map: [Int16: ClosedRange<Int16>] = [:]
        for k in response.apiKeys where k.minVersion <= k.maxVersion { map[k.apiKey] = k.minVersion...k.maxVersion }
        versions.withLock { $0 = map }
    }

    /// The highest version of `api` both sides speak, within `range`.
    func version(_ api: ApiKey, _ range: ClosedRange<Int16>) throws -> Int16 {
        guard let broker = versions.withLock({ $0[api.rawValue] }) else {
            throw KafkaClientError.unsupportedVersion(api: api.name, broker: address)
        }
        let v = min(range.upperBound, broker.upperBound)
        guard v >= max(range.lowerBound, broker.lowerBound) else { throw KafkaClientError.unsupportedVersion(api: api.name, broker: address) }
        return v
    }

    /// Sends a request and waits for its response.
    func send<R: KafkaRequest>(_ request: R, version: Int16) async throws -> R.Response {
        try await sendFuture(request, version: version).get()
    }

    /// Sends at the best common version within `range`.
    func send<R: KafkaRequest>(_ request: R, range: ClosedRange<Int16>) async throws -> R.Response {
        try await send(request, version: try version(R.apiKey, range))
    }

    func sendFuture<R: KafkaRequest>(_ request: R, version: Int16) -> EventLoopFuture<R.Response> {
        let correlationId = nextCorrelationId.wrappingAdd(1, ordering: .relaxed).oldValue
        var frame = channel.allocator.buffer(capacity: 256)
        request.writeFrame(into: &frame, version: version, correlationId: correlationId, clientId: clientId)
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        let registration = OutgoingRequest.Registration()
        let address = self.address
        // A write on a connection that just closed never reaches the ResponseMatcher (its handlers
        // are gone): fail the response here in that case; otherwise the matcher owns the promise.
        let request = OutgoingRequest(frame: frame, correlationId: correlationId, promise: promise, registration: registration)
        submit(request).whenFailure { _ in
            if !registration.registered { promise.fail(KafkaClientError.connectionClosed(broker: address)) }
        }
        return promise.futureResult.flatMapThrowing { body in
            do {
                return try R.Response.decodeFrame(body, version: version).response
            } catch {
                throw KafkaClientError.malformedResponse("\(R.Response.self) v\(version) from \(address): \(error)")
            }
        }
    }

    /// Sends a request that gets no response (produce with acks=0); completes once written.
    func sendWithoutResponse<R: KafkaRequest>(_ request: R, version: Int16) -> EventLoopFuture<Void> {
        let correlationId = nextCorrelationId.wrappingAdd(1, ordering: .relaxed).oldValue
        var frame = channel.allocator.buffer(capacity: 256)
        request.writeFrame(into: &frame, version: version, correlationId: correlationId, clientId: clientId)
        return submit(OutgoingRequest(frame: frame, correlationId: correlationId, promise: nil, registration: nil))
    }

    /// Writes through the event loop's task queue even when called on the loop, so requests reach
    /// the socket in the order they were submitted (a direct write on the loop would overtake
    /// writes other threads queued a moment earlier).
    private func submit(_ request: OutgoingRequest) -> EventLoopFuture<Void> {
        let channel = self.channel
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.eventLoop.execute { channel.writeAndFlush(request, promise: written) }
        return written.futureResult
    }

    func close() {
        channel.close(promise: nil)
    }
}

struct OutgoingRequest: Sendable {
    var frame: ByteBuffer
    var correlationId: Int32
    /// nil: no response expected.
    var promise: EventLoopPromise<ByteBuffer>?
    /// Set by the ResponseMatcher (on the event loop) once it owns `promise`.
    var registration: Registration?

    final class Registration: @unchecked Sendable {
        var registered = false
    }
}

/// Matches response frames to requests, in order, on the channel's event loop.
final class ResponseMatcher: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = OutgoingRequest
    typealias OutboundOut = ByteBuffer

    private var pending = Deque<(Int32, EventLoopPromise<ByteBuffer>)>()
    private let address: String

    init(address: String) { self.address = address }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard let responsePromise = request.promise else {
            context.write(wrapOutboundOut(request.frame), promise: promise)
            return
        }
        request.registration?.registered = true
        pending.append((request.correlationId, responsePromise))
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenFailure { [self] _ in
            if let i = pending.firstIndex(where: { $0.0 == request.correlationId }) {
                pending.remove(at: i).1.fail(KafkaClientError.connectionClosed(broker: address))
            }
        }
        written.futureResult.cascade(to: promise)
        context.write(wrapOutboundOut(request.frame), promise: written)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let (expected, promise) = pending.popFirst() else {
            context.fireErrorCaught(KafkaClientError.malformedResponse("unexpected response from \(address)"))
            return
        }
        let correlationId = frame.getInteger(at: frame.readerIndex, endianness: .big, as: Int32.self)
        guard correlationId == expected else {
            promise.fail(KafkaClientError.malformedResponse("correlation id \(correlationId ?? -1), expected \(expected), from \(address)"))
            context.close(promise: nil)
            return
        }
        promise.succeed(frame)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll()
        context.close(promise: nil)
    }

    private func failAll() {
        while let (_, promise) = pending.popFirst() { promise.fail(KafkaClientError.connectionClosed(broker: address)) }
    }
}
