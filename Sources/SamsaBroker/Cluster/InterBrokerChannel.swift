import DequeModule
import KafkaProtocol
import KafkaWire
import NIOCore
import NIOPosix
import Synchronization

/// Why an inter-broker request failed.
struct InterBrokerError: Error, CustomStringConvertible {
    var description: String
}

/// One connection from this broker to another (controller → broker requests, follower fetches,
/// AlterPartition to the controller): pipelined requests matched to responses in order. The
/// response's bytes are handed to the caller undecoded when it asks (follower fetch appends the
/// record batches straight from the received buffer, with no copy).
final class InterBrokerChannel: Sendable {
    let address: String
    private let channel: any Channel
    private let nextCorrelationId = Atomic<Int32>(1)
    private let clientId: String

    private init(address: String, channel: any Channel, clientId: String) {
        self.address = address
        self.channel = channel
        self.clientId = clientId
    }

    var isActive: Bool { channel.isActive }

    static func connect(host: String, port: Int, clientId: String, group: any EventLoopGroup, timeoutMs: Int64 = 5_000) async throws -> InterBrokerChannel {
        let address = "\(host):\(port)"
        do {
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(.milliseconds(timeoutMs))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 4 << 20))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maximumFrameSize: Int(Int32.max))))
                        try channel.pipeline.syncOperations.addHandler(InterBrokerMatcher(address: address))
                    }
                }
                .connect(host: host, port: port).get()
            return InterBrokerChannel(address: address, channel: channel, clientId: clientId)
        } catch {
            throw InterBrokerError(description: "cannot connect to broker at \(address): \(error)")
        }
    }

    /// Sends a request and returns its decoded response (failing after `timeoutMs`).
    func send<R: KafkaRequest>(_ request: R, version: Int16, timeoutMs: Int64 = 30_000) async throws -> R.Response {
        let frame = try await sendRaw(request, version: version, timeoutMs: timeoutMs)
        do {
            return try R.Response.decodeFrame(frame, version: version).response
        } catch {
            throw InterBrokerError(description: "malformed \(R.Response.self) v\(version) from \(address): \(error)")
        }
    }

    /// Sends a request; the response frame (correlation id first) as received.
    func sendRaw<R: KafkaRequest>(_ request: R, version: Int16, timeoutMs: Int64) async throws -> ByteBuffer {
        let correlationId = nextCorrelationId.wrappingAdd(1, ordering: .relaxed).oldValue
        var frame = channel.allocator.buffer(capacity: 256)
        request.writeFrame(into: &frame, version: version, correlationId: correlationId, clientId: clientId)
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        let channel = self.channel, address = self.address
        let timeout = channel.eventLoop.scheduleTask(in: .milliseconds(timeoutMs)) {
            promise.fail(InterBrokerError(description: "request to \(address) timed out after \(timeoutMs) ms"))
            channel.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in timeout.cancel() }
        channel.eventLoop.execute {
            channel.writeAndFlush(InterBrokerMatcher.Outgoing(frame: frame, correlationId: correlationId, promise: promise), promise: nil)
        }
        return try await promise.futureResult.get()
    }

    func close() { channel.close(promise: nil) }
}

/// Matches response frames to requests, in order, on the channel's event loop.
final class InterBrokerMatcher: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Outgoing
    typealias OutboundOut = ByteBuffer

    struct Outgoing: Sendable {
        var frame: ByteBuffer
        var correlationId: Int32
        var promise: EventLoopPromise<ByteBuffer>
    }

    private var pending = Deque<(Int32, EventLoopPromise<ByteBuffer>)>()
    private var closed = false
    private let address: String

    init(address: String) { self.address = address }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let out = unwrapOutboundIn(data)
        guard !closed else {
            out.promise.fail(InterBrokerError(description: "connection to \(address) closed"))
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        pending.append((out.correlationId, out.promise))
        context.write(wrapOutboundOut(out.frame), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let (expected, promise) = pending.popFirst() else { return }
        let correlationId = frame.getInteger(at: frame.readerIndex, endianness: .big, as: Int32.self)
        guard correlationId == expected else {
            promise.fail(InterBrokerError(description: "correlation id \(correlationId ?? -1), expected \(expected), from \(address)"))
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
        closed = true
        while let (_, promise) = pending.popFirst() { promise.fail(InterBrokerError(description: "connection to \(address) closed")) }
    }
}
