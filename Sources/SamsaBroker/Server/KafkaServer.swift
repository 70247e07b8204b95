import KafkaProtocol
import KafkaWire
import Logging
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The server's resource limits, with Kafka's setting names.
public struct ServerLimits: Sendable {
    /// `socket.request.max.bytes`: the largest request frame.
    public var maxFrameSize: Int = KafkaFraming.defaultMaximumFrameSize
    /// `queued.max.requests`: unanswered requests per connection before it stops reading.
    public var maxInFlight: Int = 500
    /// `queued.max.request.bytes`: bytes of requests held broker-wide (nil: unbounded).
    public var maxRequestBytes: Int?
    /// `connections.max.idle.ms`.
    public var maxIdleMs: Int64? = 600_000
    /// `max.connections`: connections open at once (new ones beyond it are closed at once).
    public var maxConnections: Int = .max
    /// `max.connections.per.ip`, with `max.connections.per.ip.overrides` (`host:count,...`).
    public var maxConnectionsPerIp: Int = .max
    public var maxConnectionsPerIpOverrides: [String: Int] = [:]

    public init() {}
}

/// Counts open connections, overall and per client address.
final class ConnectionCounter: Sendable {
    private let counts = Mutex<(total: Int, perIp: [String: Int])>((0, [:]))

    /// Counts a new connection from `ip` unless a limit is reached; returns why not otherwise.
    func admit(_ ip: String, limits: ServerLimits) -> String? {
        counts.withLock { c in
            if c.total >= limits.maxConnections { return "max.connections (\(limits.maxConnections)) reached" }
            let perIp = limits.maxConnectionsPerIpOverrides[ip] ?? limits.maxConnectionsPerIp
            if c.perIp[ip, default: 0] >= perIp { return "max.connections.per.ip (\(perIp)) reached for \(ip)" }
            c.total += 1
            c.perIp[ip, default: 0] += 1
            return nil
        }
    }

    func release(_ ip: String) {
        counts.withLock { c in
            c.total -= 1
            c.perIp[ip, default: 1] -= 1
            if c.perIp[ip] == 0 { c.perIp.removeValue(forKey: ip) }
        }
    }

    var total: Int { counts.withLock { $0.total } }
}

/// On the listening socket: when `accept` fails because the process or the system is out of
/// descriptors (or memory), stop accepting for a moment instead of retrying at once, and log it —
/// once per interval, with how many accepts failed meanwhile. (NIO leaves the listening socket
/// registered after a failed accept, and the pending connection keeps it readable, so without
/// this the event loop calls accept in a tight loop and spins a core.) Turning `autoRead` off
/// takes the socket out of the poll set; turning it back on after the back-off retries.
final class AcceptBackoffHandler: ChannelInboundHandler {
    typealias InboundIn = Channel

    private let logger: Logger
    private let backoff: TimeAmount
    private var paused = false
    private var failures = 0
    private var lastLog: NIODeadline?

    init(logger: Logger, backoff: TimeAmount = .milliseconds(250)) {
        self.logger = logger
        self.backoff = backoff
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let e = error as? IOError, [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(e.errnoCode) else {
            context.fireErrorCaught(error)
            return
        }
        failures += 1
        let now = NIODeadline.now()
        if lastLog.map({ now - $0 >= .seconds(10) }) ?? true {
            var limit = rlimit()
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            logger.error("cannot accept connections: \(e.description); pausing accepts (this is logged at most every 10 s)",
                         metadata: ["failed accepts": "\(failures)", "open file limit": "\(limit.rlim_cur)"])
            lastLog = now
            failures = 0
        }
        guard !paused else { return }
        paused = true
        let options = context.channel.syncOptions
        try? options?.setOption(.autoRead, value: false)
        let loop = context.eventLoop
        let boxed = NIOLoopBound((self, context), eventLoop: loop)
        loop.scheduleTask(in: backoff) {
            let (handler, context) = boxed.value
            handler.paused = false
            try? context.channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }
}

/// The TCP listener: one `KafkaConnectionHandler` per connection.
public final class KafkaServer: Sendable {
    private let group: any EventLoopGroup
    private let registry: HandlerRegistry
    private let limits: ServerLimits
    private let logger: Logger
    private let channel = Mutex<(any Channel)?>(nil)
    private let nextConnectionId = Atomic<UInt64>(0)
    let connections = ConnectionCounter()
    public let pool: RequestMemoryPool

    public init(group: any EventLoopGroup, registry: HandlerRegistry, limits: ServerLimits, logger: Logger) {
        self.group = group
        self.registry = registry
        self.limits = limits
        self.logger = logger
        self.pool = RequestMemoryPool(limit: limits.maxRequestBytes)
    }

    public var openConnections: Int { connections.total }

    /// Binds and starts accepting; returns the bound port (useful with port 0).
    public func start(host: String, port: Int) async throws -> Int {
        let registry = self.registry, limits = self.limits, logger = self.logger, pool = self.pool, counter = self.connections
        let connectionLimits = ConnectionLimits(maxFrameSize: limits.maxFrameSize, maxInFlight: limits.maxInFlight, maxIdleMs: limits.maxIdleMs)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler(logger: logger))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 1 << 20))
            // Responses waiting in the socket's send path beyond 1 MiB make the connection
            // unwritable, and an unwritable connection reads no more requests until it drains.
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
            .childChannelInitializer { [self] channel in
                let ip = channel.remoteAddress?.ipAddress ?? "unknown"
                if let refused = counter.admit(ip, limits: limits) {
                    logger.warning("refusing connection: \(refused)", metadata: ["client": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
                    return channel.close()
                }
                channel.closeFuture.whenComplete { _ in counter.release(ip) }
                let id = self.nextConnectionId.wrappingAdd(1, ordering: .relaxed).newValue
                let info = ConnectionInfo(id: id, remoteAddress: channel.remoteAddress.map { "\($0)" } ?? "?", remoteHost: "/" + ip)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        KafkaConnectionHandler(registry: registry, connection: info, limits: connectionLimits, pool: pool, logger: logger))
                }
            }
        let server = try await bootstrap.bind(host: host, port: port).get()
        channel.withLock { $0 = server }
        return server.localAddress?.port ?? port
    }

    public func stop() async {
        guard let server = channel.withLock({ $0 }) else { return }
        try? await server.close()
    }
}
