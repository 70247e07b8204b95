import KafkaProtocol
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The TCP listener: one `KafkaConnectionHandler` per connection behind a frame decoder that
/// enforces `socket.request.max.bytes`.
public final class KafkaServer: Sendable {
    private let group: any EventLoopGroup
    private let registry: HandlerRegistry
    private let maxFrameSize: Int
    private let maxInFlight: Int
    private let logger: Logger
    private let channel = Mutex<(any Channel)?>(nil)
    private let nextConnectionId = Atomic<UInt64>(0)

    public init(group: any EventLoopGroup, registry: HandlerRegistry, maxFrameSize: Int, maxInFlight: Int, logger: Logger) {
        self.group = group
        self.registry = registry
        self.maxFrameSize = maxFrameSize
        self.maxInFlight = maxInFlight
        self.logger = logger
    }

    /// Binds and starts accepting; returns the bound port (useful with port 0).
    public func start(host: String, port: Int) async throws -> Int {
        let registry = self.registry, maxFrameSize = self.maxFrameSize, maxInFlight = self.maxInFlight, logger = self.logger
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 1 << 20))
            .childChannelInitializer { [self] channel in
                let id = self.nextConnectionId.wrappingAdd(1, ordering: .relaxed).newValue
                let info = ConnectionInfo(id: id, remoteAddress: channel.remoteAddress.map { "\($0)" } ?? "?",
                                          remoteHost: "/" + (channel.remoteAddress?.ipAddress ?? "unknown"))
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maximumFrameSize: maxFrameSize)))
                    try channel.pipeline.syncOperations.addHandler(
                        KafkaConnectionHandler(registry: registry, connection: info, maxInFlight: maxInFlight, logger: logger))
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
