import KafkaProtocol
import KafkaWire
import Logging
import NIOCore
import SamsaStorage
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
    /// Work to run when the connection closes, by key (registering a key twice keeps one).
    private let closeHandlers = Mutex<[String: @Sendable () -> Void]?>([:])

    init(id: UInt64, remoteAddress: String, remoteHost: String) {
        self.id = id
        self.remoteAddress = remoteAddress
        self.remoteHost = remoteHost
    }

    /// Runs `body` once when the connection closes (at once if it already has). A handler keeping
    /// per-connection state registers its cleanup here under its own key.
    public func whenClosed(_ key: String, _ body: @escaping @Sendable () -> Void) {
        let registered = closeHandlers.withLock { handlers -> Bool in
            guard handlers != nil else { return false }
            if handlers![key] == nil { handlers![key] = body }
            return true
        }
        if !registered { body() }
    }

    func closed() {
        let handlers = closeHandlers.withLock { h -> [String: @Sendable () -> Void] in
            defer { h = nil }
            return h ?? [:]
        }
        for body in handlers.values { body() }
    }

    /// The client's software name and version (ApiVersions v3+, KIP-511).
    public var clientSoftware: (name: String, version: String)? {
        get { software.withLock { $0 } }
        set { software.withLock { $0 = newValue } }
    }
}

/// Per-connection limits the server hands to each connection.
struct ConnectionLimits: Sendable {
    var maxFrameSize: Int
    var maxInFlight: Int
    /// `connections.max.idle.ms`; nil or <= 0: never closed for idleness.
    var maxIdleMs: Int64?
}

/// Carries out the `ConnectionStateMachine`'s decisions on a NIO channel: cuts the byte stream
/// into request frames (reserving each frame's size in the broker-wide memory pool as soon as its
/// size prefix arrives), dispatches them to the handler registry, writes responses (file ranges
/// with sendfile) in order, and stops reading while the state machine says so. Closes the
/// connection after `connections.max.idle.ms` without traffic.
final class KafkaConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private var machine: ConnectionStateMachine
    private let registry: HandlerRegistry
    private let connection: ConnectionInfo
    private let logger: Logger
    private let limits: ConnectionLimits
    private let pool: RequestMemoryPool
    private var readPending = false
    private var cumulation: ByteBuffer?
    /// Bytes of this connection's frames reserved in the pool (the partial frame included).
    private var reserved = 0
    /// The size reserved for the frame whose size prefix has arrived but not all of its bytes.
    private var partialFrameReserved: Int?
    private var lastActivity: NIODeadline = .now()
    private var idleTimer: Scheduled<Void>?
    private var waitingForMemory = false

    init(registry: HandlerRegistry, connection: ConnectionInfo, limits: ConnectionLimits, pool: RequestMemoryPool, logger: Logger) {
        self.registry = registry
        self.connection = connection
        self.logger = logger
        self.limits = limits
        self.pool = pool
        self.machine = ConnectionStateMachine(maxInFlight: limits.maxInFlight)
    }

    // MARK: Inbound: bytes to frames

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        lastActivity = .now()
        if cumulation == nil {
            cumulation = bytes
        } else {
            cumulation!.writeBuffer(&bytes)
        }
        processFrames(context: context)
    }

    /// Starts the complete frames received so far, stopping as soon as the state machine pauses
    /// reading (the rest waits in `cumulation` until it resumes), so one read of many small
    /// requests cannot queue more than `maxInFlight` of them or hold the event loop.
    private func processFrames(context: ChannelHandlerContext) {
        while var buffer = cumulation, !machine.isClosed, !machine.readingPaused {
            // A frame's size is reserved from the pool as soon as its size prefix is here; while
            // the pool is exhausted the connection waits right there, holding nothing (as Kafka
            // allocates a request's buffer only when its pool has room).
            if partialFrameReserved == nil, let size = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int32.self),
               size >= 0, Int(size) <= limits.maxFrameSize {
                if pool.isExhausted {
                    memoryExhausted(context: context)
                    return
                }
                partialFrameReserved = Int(size) + 4
                reserved += Int(size) + 4
                pool.reserve(Int(size) + 4)
            }
            let frame: ByteBuffer?
            do {
                frame = try KafkaFraming.nextFrame(in: &buffer, maximumFrameSize: limits.maxFrameSize)
            } catch {
                fail("\(error)", context: context)
                return
            }
            guard let frame else { break }
            partialFrameReserved = nil
            cumulation = buffer.readableBytes == 0 ? nil : buffer
            let (action, output) = machine.receive(frame)
            if case let .start(slot) = action { start(slot, frame, context: context) }
            apply(output, context: context)
        }
        if let c = cumulation, c.readerIndex > 65536 {
            var compacted = c
            compacted.discardReadBytes()
            cumulation = compacted
        }
    }

    private func start(_ slot: ConnectionStateMachine.Slot, _ bytes: ByteBuffer, context: ChannelHandlerContext) {
        let size = bytes.readableBytes + 4
        let frame: KafkaRequestFrame
        do { frame = try KafkaRequestFrame(parsing: bytes) } catch {
            fail("unreadable request header: \(error)", context: context)
            return
        }
        let requestContext = RequestContext(header: frame.header, eventLoop: context.eventLoop, connection: connection)
        switch registry.dispatch(frame, context: requestContext) {
        case let .now(payload):
            releaseFrame(size)
            apply(machine.complete(slot, response: payload), context: context)
        case let .later(future, barrier):
            if barrier { machine.markBarrier(slot) }
            future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                self.releaseFrame(size)
                switch result {
                case let .success(payload):
                    self.apply(self.machine.complete(slot, response: payload), context: context)
                    self.startHeld(context: context)
                case let .failure(error):
                    self.fail("request \(frame.apiKey?.name ?? "?") failed: \(error)", context: context)
                }
            }
        case let .close(reason):
            releaseFrame(size)
            fail(reason, context: context)
        }
    }

    private func releaseFrame(_ size: Int) {
        let n = min(size, reserved)
        reserved -= n
        pool.release(n)
    }

    private func startHeld(context: ChannelHandlerContext) {
        while let (slot, frame) = machine.nextHeld() {
            start(slot, frame, context: context)
        }
    }

    // MARK: Outbound: responses and reading

    private func apply(_ output: ConnectionStateMachine.Output, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        for payload in output.write {
            lastActivity = .now()
            switch payload {
            case let .buffer(buffer):
                context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
            case let .parts(parts):
                for part in parts {
                    switch part {
                    case let .bytes(b):
                        context.write(wrapOutboundOut(.byteBuffer(b)), promise: nil)
                    case let .file(file, position, length):
                        // sendfile from the segment's own descriptor: the handle only borrows it
                        // (ownership is given back once written), and the box, captured until then,
                        // keeps it open.
                        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: file.fd)
                        let promise = context.eventLoop.makePromise(of: Void.self)
                        promise.futureResult.whenComplete { _ in
                            withExtendedLifetime(file) { _ = try? handle.takeDescriptorOwnership() }
                        }
                        context.write(wrapOutboundOut(.fileRegion(FileRegion(fileHandle: handle, readerIndex: position, endIndex: position + length))),
                                      promise: promise)
                    }
                }
            }
        }
        if !output.write.isEmpty { context.flush() }
        if output.resumeReading {
            // Frames already received go first; the socket is read again only if they leave room.
            if cumulation != nil { processFrames(context: context) }
            if readPending, !machine.readingPaused {
                readPending = false
                context.read()
            }
        }
    }

    func read(context: ChannelHandlerContext) {
        if machine.readingPaused {
            readPending = true
        } else if partialFrameReserved == nil, pool.isExhausted {
            readPending = true
            memoryExhausted(context: context)
        } else {
            context.read()
        }
    }

    /// The pool is exhausted: stop reading until memory is released.
    private func memoryExhausted(context: ChannelHandlerContext) {
        apply(machine.memoryChanged(exhausted: true), context: context)
        guard !waitingForMemory else { return }
        waitingForMemory = true
        let loop = context.eventLoop
        let boxed = NIOLoopBound((self, context), eventLoop: loop)
        pool.whenAvailable {
            loop.execute {
                let (handler, context) = boxed.value
                handler.waitingForMemory = false
                if handler.pool.isExhausted {
                    handler.memoryExhausted(context: context)
                } else {
                    handler.apply(handler.machine.memoryChanged(exhausted: false), context: context)
                }
            }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        apply(machine.writabilityChanged(context.channel.isWritable), context: context)
        context.fireChannelWritabilityChanged()
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { scheduleIdleCheck(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        scheduleIdleCheck(context: context)
        context.fireChannelActive()
    }

    private func scheduleIdleCheck(context: ChannelHandlerContext) {
        guard idleTimer == nil, let idleMs = limits.maxIdleMs, idleMs > 0 else { return }
        let idle = TimeAmount.milliseconds(idleMs)
        let loop = context.eventLoop
        let boxed = NIOLoopBound((self, context), eventLoop: loop)
        func arm(_ at: NIODeadline) {
            let (handler, _) = boxed.value
            handler.idleTimer = loop.scheduleTask(deadline: at) {
                let (handler, context) = boxed.value
                handler.idleTimer = nil
                guard !handler.machine.isClosed else { return }
                if handler.machine.isQuiet, NIODeadline.now() - handler.lastActivity >= idle {
                    handler.logger.debug("closing idle connection", metadata: ["client": "\(handler.connection.remoteAddress)"])
                    handler.close(context: context)
                } else {
                    arm(handler.lastActivity + idle)
                }
            }
        }
        arm(lastActivity + idle)
    }

    private func fail(_ reason: String, context: ChannelHandlerContext) {
        logger.warning("closing connection", metadata: ["client": "\(connection.remoteAddress)", "reason": "\(reason)"])
        close(context: context)
    }

    private func close(context: ChannelHandlerContext) {
        releaseAll()
        context.close(promise: nil)
    }

    private func releaseAll() {
        _ = machine.close()
        connection.closed()
        idleTimer?.cancel()
        idleTimer = nil
        cumulation = nil
        partialFrameReserved = nil
        pool.release(reserved)
        reserved = 0
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? IOError, e.errnoCode == ECONNRESET || e.errnoCode == EPIPE {
            close(context: context)
            return
        }
        fail("\(error)", context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        releaseAll()
        context.fireChannelInactive()
    }
}
