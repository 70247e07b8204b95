import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import Synchronization
import ZooKeeperClient

/// Test support shared by the ZooKeeper client and store tests.
///
/// A real ZooKeeper ensemble (Debian's zookeeper 3.8) started with scripts/zookeeper.sh in a
/// temporary folder; stopped and removed by `shutdown()`.
public final class Ensemble: Sendable {
    public let dir: String
    public let ports: [Int]
    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/zookeeper.sh").path

    public var connectString: String { ports.map { "127.0.0.1:\($0)" }.joined(separator: ",") }

    public init(nodes: Int) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-zk-\(UUID().uuidString)").path
        _ = try Self.run(["start", dir, "--nodes", "\(nodes)"])
        let env = try String(contentsOfFile: dir + "/ensemble.env", encoding: .utf8)
        var ports: [Int] = []
        for i in 1...nodes {
            guard let line = env.split(separator: "\n").first(where: { $0.hasPrefix("CLIENT_PORT_\(i)=") }),
                  let port = Int(line.split(separator: "=")[1]) else { throw EnsembleError("no port for node \(i) in \(dir)") }
            ports.append(port)
        }
        self.ports = ports
    }

    /// The node (1-based) listening on `port`.
    public func node(port: Int) -> Int? { ports.firstIndex(of: port).map { $0 + 1 } }

    public func stop(node: Int) throws { _ = try Self.run(["stop", dir, "--node", "\(node)"]) }
    public func start(node: Int) throws { _ = try Self.run(["start", dir, "--node", "\(node)"]) }

    public func shutdown() {
        _ = try? Self.run(["stop", dir])
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Runs the script (posix_spawn + waitpid) with its output in files: the servers it starts
    /// inherit the output descriptors, so a pipe would never reach end-of-file while they run.
    @discardableResult
    public static func run(_ args: [String]) throws -> String {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-zk-run-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: base + ".out")
            try? FileManager.default.removeItem(atPath: base + ".err")
        }
        let quoted = ([script] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let command = "exec /bin/bash \(quoted) >'\(base).out' 2>'\(base).err' </dev/null"
        let words: [String] = ["/bin/bash", "-c", command]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        // The calling thread (a Swift concurrency worker) blocks most signals, and a child inherits
        // that mask: `timeout` in the script would never get its SIGALRM. Start with none blocked.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGALRM, SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT, SIGUSR1, SIGUSR2] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/bash", nil, &attr, argv, environ)
        guard rc == 0 else { throw EnsembleError("cannot run zookeeper.sh: errno \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let stdout = (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? ""
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            let stderr = (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? ""
            throw EnsembleError("zookeeper.sh \(args.joined(separator: " ")) failed: \(stderr)")
        }
        return stdout
    }
}

public struct EnsembleError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

/// Polls `condition` until it holds or `timeout` passes (then records false).
public func eventually(_ timeout: Duration = .seconds(15), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// A value behind a lock, shareable between tasks.
public final class Locked<T: Sendable>: Sendable {
    private let mutex: Mutex<T>
    public init(_ value: T) { mutex = Mutex(value) }
    public func withLock<R: Sendable>(_ body: (inout T) -> R) -> R { mutex.withLock { body(&$0) } }
}

/// Records a client's session states.
public final class StateRecorder: Sendable {
    private let states = Locked<[ZooKeeperSessionState]>([])
    private let task: Task<Void, Never>

    public init(_ client: ZooKeeperClient) {
        let stream = client.sessionStates()
        let states = self.states
        task = Task { for await s in stream { states.withLock { $0.append(s) } } }
    }

    public var all: [ZooKeeperSessionState] { states.withLock { $0 } }
    public var last: ZooKeeperSessionState? { all.last }
    public func count(_ s: ZooKeeperSessionState) -> Int { all.filter { $0 == s }.count }
    deinit { task.cancel() }
}

/// Collects watch events.
public final class WatchLog: Sendable {
    public init() {}
    private let events = Locked<[ZooKeeperWatchedEvent]>([])
    public var watcher: ZooKeeperWatcher { { [events] e in events.withLock { $0.append(e) } } }
    public var all: [ZooKeeperWatchedEvent] { events.withLock { $0 } }
}

/// A TCP proxy on a free loopback port in front of one server; `cut()` closes its connections and
/// refuses new ones (a network partition between the client and the ensemble), `restore()` ends it.
public final class PartitionProxy: @unchecked Sendable {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let target: Int
    private var server: (any Channel)!
    // Touched only on the proxy's single event loop.
    private var open: [ObjectIdentifier: any Channel] = [:]
    private var isCut = false
    public var port: Int { server.localAddress!.port! }
    var loop: any EventLoop { group.next() }

    public init(target: Int) throws {
        self.target = target
        let proxy = self
        server = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture { proxy.accept(child) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    private func accept(_ child: any Channel) {
        if isCut { child.close(promise: nil); return }
        let inbound = Forwarder()
        try? child.pipeline.syncOperations.addHandler(inbound)
        open[ObjectIdentifier(child)] = child
        child.closeFuture.whenComplete { [self] _ in loop.execute { self.open[ObjectIdentifier(child)] = nil } }
        ClientBootstrap(group: group)
            .channelInitializer { upstream in
                upstream.eventLoop.makeCompletedFuture {
                    let outbound = Forwarder()
                    outbound.peer = child
                    try upstream.pipeline.syncOperations.addHandler(outbound)
                }
            }
            .connect(host: "127.0.0.1", port: target)
            .whenComplete { [self] result in
                switch result {
                case let .success(upstream):
                    if isCut || !child.isActive { upstream.close(promise: nil); child.close(promise: nil); return }
                    open[ObjectIdentifier(upstream)] = upstream
                    upstream.closeFuture.whenComplete { [self] _ in loop.execute { self.open[ObjectIdentifier(upstream)] = nil } }
                    inbound.connect(upstream)
                case .failure:
                    child.close(promise: nil)
                }
            }
    }

    public func cut() throws {
        try loop.submit { [self] in
            isCut = true
            for (_, c) in open { c.close(promise: nil) }
        }.wait()
    }

    public func restore() throws {
        try loop.submit { [self] in isCut = false }.wait()
    }

    public func shutdown() {
        try? cut()
        try? server.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// Copies bytes to `peer`; buffers them until the peer exists. Used on the proxy's one loop.
final class Forwarder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var peer: (any Channel)?
    private var buffered: [ByteBuffer] = []

    func connect(_ peer: any Channel) {
        self.peer = peer
        for b in buffered { peer.write(b, promise: nil) }
        buffered = []
        peer.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let b = unwrapInboundIn(data)
        if let peer { peer.writeAndFlush(b, promise: nil) } else { buffered.append(b) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer?.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
