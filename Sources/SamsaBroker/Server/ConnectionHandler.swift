import KafkaProtocol
import Logging
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Facts about one client connection that handlers may read or record.
public final class ConnectionInfo: Sendable {
    public let id: UInt64
    public let remoteAddress: String
    /// The client's host as Kafka reports it in group descriptions ("/127.0.0.1").
    public let remoteHost: String
    private let software = Mutex<(name: String, version: String)?>(nil)

    init(id: UInt64, remoteAddress: String, remoteHost: String) {
        self.id = id
        self.remoteAddress = remoteAddress
        self.remoteHost = remoteHost
    }

    /// The client's software name and version (ApiVersions v3+, KIP-511).
    public var clientSoftware: (name: String, version: String)? {
        get { software.withLock { $0 } }
        set { software.withLock { $0 = newValue } }
    }
}

/// Carries out the `ConnectionStateMachine`'s decisions on a NIO channel: decodes request frames,
/// dispatches them to the handler registry, writes responses (file regions included) in order,
/// and pauses reading when too many requests are in flight.
final class KafkaConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private var machine: ConnectionStateMachine
    private let registry: HandlerRegistry
    private let connection: ConnectionInfo
    private let logger: Logger
    private var readPending = false

    init(registry: HandlerRegistry, connection: ConnectionInfo, maxInFlight: Int, logger: Logger) {
        self.registry = registry
        self.connection = connection
        self.logger = logger
        self.machine = ConnectionStateMachine(maxInFlight: maxInFlight)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let (action, output) = machine.receive(frame)
        if case let .start(slot) = action { start(slot, frame, context: context) }
        apply(output, context: context)
    }

    private func start(_ slot: ConnectionStateMachine.Slot, _ bytes: ByteBuffer, context: ChannelHandlerContext) {
        let frame: KafkaRequestFrame
        do { frame = try KafkaRequestFrame(parsing: bytes) } catch {
            fail("unreadable request header: \(error)", context: context)
            return
        }
        let requestContext = RequestContext(header: frame.header, eventLoop: context.eventLoop, connection: connection)
        switch registry.dispatch(frame, context: requestContext) {
        case let .now(payload):
            apply(machine.complete(slot, response: payload), context: context)
        case let .later(future, barrier):
            if barrier { machine.markBarrier(slot) }
            future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                switch result {
                case let .success(payload):
                    self.apply(self.machine.complete(slot, response: payload), context: context)
                    self.startHeld(context: context)
                case let .failure(error):
                    self.fail("request \(frame.apiKey?.name ?? "?") failed: \(error)", context: context)
                }
            }
        case let .close(reason):
            fail(reason, context: context)
        }
    }

    private func startHeld(context: ChannelHandlerContext) {
        while let (slot, frame) = machine.nextHeld() {
            start(slot, frame, context: context)
        }
    }

    private func apply(_ output: ConnectionStateMachine.Output, context: ChannelHandlerContext) {
        for case let .parts(_, handles) in output.discard { for h in handles { try? h.close() } }
        guard context.channel.isActive else {
            for case let .parts(_, handles) in output.write { for h in handles { try? h.close() } }
            return
        }
        for payload in output.write {
            switch payload {
            case let .buffer(buffer):
                context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
            case let .parts(parts, handles):
                for part in parts.dropLast() { context.write(wrapOutboundOut(part), promise: nil) }
                if let last = parts.last {
                    let promise = context.eventLoop.makePromise(of: Void.self)
                    promise.futureResult.whenComplete { _ in for h in handles { try? h.close() } }
                    context.write(wrapOutboundOut(last), promise: promise)
                } else {
                    for h in handles { try? h.close() }
                }
            }
        }
        if !output.write.isEmpty { context.flush() }
        if output.resumeReading, readPending {
            readPending = false
            context.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        if machine.readingPaused {
            readPending = true
        } else {
            context.read()
        }
    }

    private func fail(_ reason: String, context: ChannelHandlerContext) {
        logger.warning("closing connection", metadata: ["client": "\(connection.remoteAddress)", "reason": "\(reason)"])
        machine.close()
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? IOError, e.errnoCode == ECONNRESET || e.errnoCode == EPIPE {
            context.close(promise: nil)
            return
        }
        fail("\(error)", context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        machine.close()
        context.fireChannelInactive()
    }
}
