import Foundation
import Logging
import NIOCore
import NIOPosix
import SamsaBroker
import Synchronization

/// A real broker in this process on an ephemeral port with a temporary data directory.
func withBroker(_ overrides: [String: String] = [:], advertisedPort: Int? = nil,
                _ body: (_ bootstrap: String, _ broker: Broker) async throws -> Void) async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-client-\(UUID().uuidString)").path
    var values = ["listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": dir, "group.initial.rebalance.delay.ms": "0",
                  "group.min.session.timeout.ms": "1000"]
    if let advertisedPort { values["advertised.listeners"] = "PLAINTEXT://127.0.0.1:\(advertisedPort)" }
    for (k, v) in overrides { values[k] = v }
    var logger = Logger(label: "test-broker")
    logger.logLevel = .warning
    let broker = try await Broker.start(config: try BrokerConfig(values), logger: logger)
    do {
        try await body("127.0.0.1:\(broker.boundPort)", broker)
    } catch {
        await broker.shutdown()
        throw error
    }
    await broker.shutdown()
}

/// A TCP proxy that forwards to a broker and, when `cutEvery` is set, closes a connection after
/// every `cutEvery` responses have come back from the broker — dropping that response, so the
/// client never learns whether its request was applied.
final class ChaosProxy: Sendable {
    let port: Int
    private let server: any Channel
    private let target = Target()
    let cutEvery: Int

    final class Target: Sendable {
        let port = Mutex<Int>(0)
    }

    init(cutEvery: Int) async throws {
        self.cutEvery = cutEvery
        let targetBox = target
        let cutCounter = Counter()
        let group = MultiThreadedEventLoopGroup.singleton
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { inbound in
                let port = targetBox.port.withLock { $0 }
                return ClientBootstrap(group: inbound.eventLoop).connect(host: "127.0.0.1", port: port).flatMap { outbound in
                    let (a, b) = GlueHandler.matchedPair(cutEvery: cutEvery, counter: cutCounter)
                    return inbound.pipeline.addHandler(a).and(outbound.pipeline.addHandler(b)).map { _ in }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        self.server = server
        self.port = server.localAddress!.port!
        counter = cutCounter
    }

    private let counter: Counter
    var cutCount: Int { counter.value.load(ordering: .relaxed) }

    func forward(to port: Int) { target.port.withLock { $0 = port } }

    func close() async { try? await server.close() }

    final class Counter: Sendable {
        let value = Atomic<Int>(0)
        let responses = Atomic<Int>(0)
    }
}

/// Copies bytes between two channels; the broker side counts response frames and cuts both
/// connections instead of forwarding every `cutEvery`-th one.
final class GlueHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private let isBrokerSide: Bool
    private let cutEvery: Int
    private let counter: ChaosProxy.Counter
    private var pending = ByteBuffer()

    private init(isBrokerSide: Bool, cutEvery: Int, counter: ChaosProxy.Counter) {
        self.isBrokerSide = isBrokerSide
        self.cutEvery = cutEvery
        self.counter = counter
    }

    static func matchedPair(cutEvery: Int, counter: ChaosProxy.Counter) -> (GlueHandler, GlueHandler) {
        let client = GlueHandler(isBrokerSide: false, cutEvery: cutEvery, counter: counter)
        let broker = GlueHandler(isBrokerSide: true, cutEvery: cutEvery, counter: counter)
        client.partner = broker
        broker.partner = client
        return (client, broker)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil; partner = nil }

    private func partnerWrite(_ buffer: ByteBuffer) {
        guard let ctx = partner?.context else { return }
        ctx.eventLoop.execute { ctx.writeAndFlush(NIOAny(buffer), promise: nil) }
    }

    private func closeBoth() {
        context?.close(promise: nil)
        if let ctx = partner?.context { ctx.eventLoop.execute { ctx.close(promise: nil) } }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        guard isBrokerSide, cutEvery > 0 else { partnerWrite(buffer); return }
        // Forward whole response frames, dropping the cut ones.
        pending.writeBuffer(&buffer)
        while let size = pending.getInteger(at: pending.readerIndex, as: Int32.self), pending.readableBytes >= 4 + Int(size) {
            let frame = pending.readSlice(length: 4 + Int(size))!
            let n = counter.responses.wrappingAdd(1, ordering: .relaxed).newValue
            if n % cutEvery == 0 {
                counter.value.wrappingAdd(1, ordering: .relaxed)
                closeBoth()
                return
            }
            partnerWrite(frame)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let ctx = partner?.context { ctx.eventLoop.execute { ctx.close(promise: nil) } }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { closeBoth() }
}

/// A deadline for a test's wait loop, so that a regression fails the test instead of hanging CI.
struct TestDeadline {
    struct Expired: Error, CustomStringConvertible {
        let what: String
        let seconds: Double
        var description: String { "gave up after \(seconds) s waiting for \(what)" }
    }

    let seconds: Double
    private let end: ContinuousClock.Instant

    init(seconds: Double = 30) {
        self.seconds = seconds
        end = .now + .milliseconds(Int(seconds * 1000))
    }

    /// Throws once the deadline has passed.
    func check(_ what: @autoclosure () -> String) throws {
        if ContinuousClock.now >= end { throw Expired(what: what(), seconds: seconds) }
    }
}
