import Logging
import NIOCore
import NIOPosix

/// Called once when a watch fires (or ends: session expired, client closed).
public typealias ZooKeeperWatcher = @Sendable (ZooKeeperWatchedEvent) -> Void

/// No server of the ensemble answered within the connection timeout.
public struct ZooKeeperConnectError: Error, Sendable, Equatable, CustomStringConvertible {
    public var connectString: String
    public var timeoutMs: Int64
    public var lastState: ZooKeeperSessionState?

    public var description: String {
        if lastState == .expired { return "ZooKeeper session at \(connectString) expired while connecting" }
        if lastState == .closed { return "ZooKeeper client for \(connectString) closed while connecting" }
        return "cannot connect to ZooKeeper at \(connectString) within \(timeoutMs) ms"
    }
}

/// A ZooKeeper client on SwiftNIO. The session logic is `ZooKeeperSessionMachine` (no I/O); this
/// class opens the connections it asks for, writes its frames, runs its clock and hands results,
/// watch events and state changes to the callers. Everything runs on one event loop.
///
///     let zk = try ZooKeeperClient(connectString: "h1:2181,h2:2181,h3:2181/samsa", sessionTimeout: .seconds(18))
///     try await zk.connect(timeout: .seconds(18))
///     let path = try await zk.create("/brokers/ids/1", data: json, mode: .ephemeral)
public final class ZooKeeperClient: Sendable {
    public let connectString: ZooKeeperConnectString
    private let driver: Driver
    private var loop: any EventLoop { driver.loop }

    /// - Parameters:
    ///   - sessionTimeout: asked of the server (which bounds it by its min/max session timeout).
    ///   - requestTimeout: how long a request may wait for a connection (default: the session timeout).
    ///   - renewExpiredSession: after an expiry, start a new session instead of failing every request.
    public init(connectString: String, sessionTimeout: TimeAmount = .seconds(18), requestTimeout: TimeAmount? = nil,
                renewExpiredSession: Bool = false, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "samsa.zookeeper")) throws {
        let parsed = try ZooKeeperConnectString(connectString)
        self.connectString = parsed
        let config = ZooKeeperSessionMachine.Configuration(
            servers: parsed.servers, chroot: parsed.chroot, sessionTimeout: sessionTimeout,
            requestTimeout: requestTimeout, renewExpiredSession: renewExpiredSession)
        driver = Driver(loop: eventLoopGroup.next(), machine: ZooKeeperSessionMachine(configuration: config), logger: logger)
    }

    deinit {
        let driver = self.driver
        driver.loop.execute { driver.shutdown() }
    }

    // MARK: session

    /// Starts the session and waits until it is connected.
    public func connect(timeout: TimeAmount) async throws {
        let driver = self.driver
        let cs = connectString.description
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, any Error>) in
            driver.loop.execute {
                driver.start()
                if driver.machine.state == .connected { cont.resume(); return }
                let id = driver.addConnectWaiter(cont)
                driver.loop.scheduleTask(in: timeout) {
                    driver.failConnectWaiter(id, ZooKeeperConnectError(connectString: cs, timeoutMs: timeout.nanoseconds / 1_000_000,
                                                                       lastState: driver.machine.state))
                }
            }
        }
    }

    /// The session's states: the current one first, then every change, until the client closes.
    public func sessionStates() -> AsyncStream<ZooKeeperSessionState> {
        let (stream, continuation) = AsyncStream.makeStream(of: ZooKeeperSessionState.self, bufferingPolicy: .unbounded)
        let driver = self.driver
        driver.loop.execute { driver.addStateObserver(continuation) }
        return stream
    }

    /// The session id (0 before the first connection).
    public var sessionId: Int64 {
        get async { await onLoop { $0.machine.sessionId } }
    }

    public var state: ZooKeeperSessionState? {
        get async { await onLoop { $0.machine.state } }
    }

    /// The server of the current connection.
    public var currentServer: ZooKeeperConnectString.Server? {
        get async { await onLoop { $0.machine.currentServer } }
    }

    /// The session timeout the server granted, in ms.
    public var negotiatedSessionTimeoutMs: Int32 {
        get async { await onLoop { $0.machine.negotiatedTimeoutMs } }
    }

    /// Ends the session (its ephemeral nodes go at once) and the client.
    public func close() async {
        let driver = self.driver
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            driver.loop.execute { driver.close(cont) }
        }
    }

    // MARK: operations

    /// Creates a node; returns its path (with the sequence number for sequential nodes).
    @discardableResult
    public func create(_ path: String, data: [UInt8] = [], mode: ZooKeeperCreateMode = .persistent) async throws -> String {
        guard case let .created(p) = try await submit(.create(path, data: data, mode: mode), watcher: nil) else { throw malformed(path) }
        return p
    }

    /// Deletes a node; `version` -1 matches any version.
    public func delete(_ path: String, version: Int32 = -1) async throws {
        _ = try await submit(.delete(path, version: version), watcher: nil)
    }

    /// The node's stat, or nil when there is none. `watch` fires when it is created, changed or deleted.
    public func exists(_ path: String, watch: ZooKeeperWatcher? = nil) async throws -> ZooKeeperStat? {
        do {
            guard case let .stat(s) = try await submit(.exists(path, watch: watch != nil), watcher: watch) else { throw malformed(path) }
            return s
        } catch let e as ZooKeeperError where e.code == .noNode {
            return nil
        }
    }

    /// The node's data and stat. `watch` fires when it changes or is deleted.
    public func getData(_ path: String, watch: ZooKeeperWatcher? = nil) async throws -> (data: [UInt8], stat: ZooKeeperStat) {
        guard case let .data(d, s) = try await submit(.getData(path, watch: watch != nil), watcher: watch) else { throw malformed(path) }
        return (d, s)
    }

    /// Replaces the data when the version matches (-1: any); returns the new stat.
    @discardableResult
    public func setData(_ path: String, data: [UInt8], version: Int32 = -1) async throws -> ZooKeeperStat {
        guard case let .stat(s) = try await submit(.setData(path, data: data, version: version), watcher: nil) else { throw malformed(path) }
        return s
    }

    /// The node's children (names, unsorted as the server keeps them) and stat (getChildren2).
    /// `watch` fires when a child is added or removed, or the node is deleted.
    public func getChildren(_ path: String, watch: ZooKeeperWatcher? = nil) async throws -> (children: [String], stat: ZooKeeperStat) {
        guard case let .children(c, s) = try await submit(.getChildren2(path, watch: watch != nil), watcher: watch) else { throw malformed(path) }
        return (c, s)
    }

    /// Waits until the server this client is connected to has caught up with the leader for `path`.
    public func sync(_ path: String) async throws {
        _ = try await submit(.sync(path), watcher: nil)
    }

    /// Applies the operations atomically: all succeed or none is applied (the first failing
    /// operation's error is thrown, with its path).
    @discardableResult
    public func multi(_ ops: [ZooKeeperMultiOp]) async throws -> [ZooKeeperMultiResult] {
        guard !ops.isEmpty else { return [] }
        guard case let .multi(r) = try await submit(.multi(ops), watcher: nil) else { throw malformed(ops[0].path) }
        return r
    }

    /// Creates `path` and its missing parents as persistent nodes (existing ones are fine).
    public func createParents(of path: String) async throws {
        var prefix = ""
        let parts = path.split(separator: "/")
        for part in parts.dropLast() {
            prefix += "/" + part
            do { try await create(prefix) } catch let e as ZooKeeperError where e.code == .nodeExists {}
        }
    }

    private func malformed(_ path: String) -> ZooKeeperError { ZooKeeperError(.malformedReply, path: path) }

    private func submit(_ request: ZooKeeperRequest, watcher: ZooKeeperWatcher?) async throws -> ZooKeeperResponse {
        let driver = self.driver
        return try await withCheckedThrowingContinuation { (cont: CheckedContinuation<ZooKeeperResponse, any Error>) in
            driver.loop.execute { driver.submit(request, watcher: watcher, continuation: cont) }
        }
    }

    private func onLoop<T: Sendable>(_ body: @escaping @Sendable (Driver) -> T) async -> T {
        let driver = self.driver
        return await withCheckedContinuation { (cont: CheckedContinuation<T, Never>) in
            driver.loop.execute { cont.resume(returning: body(driver)) }
        }
    }
}

/// Carries out the session machine's actions; used only on `loop`.
final class Driver: @unchecked Sendable {
    let loop: any EventLoop
    var machine: ZooKeeperSessionMachine
    let logger: Logger
    private var channels: [Int: any Channel] = [:]
    private var wanted: Int?
    /// Waiting callers, with the watcher id of their request and whether that request is an exists
    /// (the only one that sets a watch when the node is missing).
    private var requests: [ZooKeeperSessionMachine.RequestID: (CheckedContinuation<ZooKeeperResponse, any Error>, ZooKeeperSessionMachine.WatchID?, Bool)] = [:]
    private var watchers: [ZooKeeperSessionMachine.WatchID: ZooKeeperWatcher] = [:]
    private var observers: [Int: AsyncStream<ZooKeeperSessionState>.Continuation] = [:]
    private var connectWaiters: [Int: CheckedContinuation<Void, any Error>] = [:]
    private var closeWaiters: [CheckedContinuation<Void, Never>] = []
    private var nextId: UInt64 = 1
    private var nextObserver = 0
    private var timer: RepeatedTask?
    private var started = false

    init(loop: any EventLoop, machine: ZooKeeperSessionMachine, logger: Logger) {
        self.loop = loop
        self.machine = machine
        self.logger = logger
    }

    var now: NIODeadline { .now() }

    func start() {
        guard !started else { return }
        started = true
        let tick = TimeAmount.milliseconds(max(10, min(100, machine.configuration.sessionTimeout.nanoseconds / 1_000_000 / 20)))
        timer = loop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { [self] _ in
            perform(machine.tick(now: now))
        }
        perform(machine.start(now: now))
    }

    func submit(_ request: ZooKeeperRequest, watcher: ZooKeeperWatcher?, continuation: CheckedContinuation<ZooKeeperResponse, any Error>) {
        start()
        let id = nextId
        nextId += 1
        var watchId: ZooKeeperSessionMachine.WatchID?
        if let watcher {
            watchId = id
            watchers[id] = watcher
        }
        var isExists = false
        if case .exists = request { isExists = true }
        requests[id] = (continuation, watchId, isExists)
        perform(machine.submit(request, id: id, watch: watchId, now: now))
    }

    func addConnectWaiter(_ c: CheckedContinuation<Void, any Error>) -> Int {
        nextObserver += 1
        connectWaiters[nextObserver] = c
        return nextObserver
    }

    func failConnectWaiter(_ id: Int, _ error: any Error) {
        connectWaiters.removeValue(forKey: id)?.resume(throwing: error)
    }

    func addStateObserver(_ c: AsyncStream<ZooKeeperSessionState>.Continuation) {
        if let s = machine.state { c.yield(s) }
        if machine.state == .closed { c.finish(); return }
        nextObserver += 1
        let id = nextObserver
        observers[id] = c
        c.onTermination = { [self] _ in loop.execute { self.observers[id] = nil } }
    }

    func close(_ cont: CheckedContinuation<Void, Never>) {
        if machine.state == .closed || !started {
            if !started {
                started = true
                perform(machine.close(now: now))
            }
            cont.resume()
            return
        }
        closeWaiters.append(cont)
        perform(machine.close(now: now))
    }

    /// The client object is gone: drop everything without waiting.
    func shutdown() {
        if machine.state != .closed { perform(machine.close(now: now)) }
        for (_, ch) in channels { ch.close(promise: nil) }
        channels = [:]
        timer?.cancel()
    }

    func perform(_ actions: [ZooKeeperSessionMachine.Action]) {
        for action in actions {
            switch action {
            case let .connect(server, connection, timeout):
                open(server, connection: connection, timeout: timeout)
            case let .send(frame, connection):
                channels[connection]?.writeAndFlush(frame, promise: nil)
            case let .close(connection):
                if wanted == connection { wanted = nil }
                channels.removeValue(forKey: connection)?.close(promise: nil)
            case let .complete(id, result):
                guard let (cont, watchId, isExists) = requests.removeValue(forKey: id) else { continue }
                if let watchId {
                    // Keep the watcher only when the server set the watch.
                    var kept = false
                    if case .success = result { kept = true }
                    if case let .failure(e) = result, e.code == .noNode, isExists { kept = true }
                    if !kept { watchers[watchId] = nil }
                }
                cont.resume(with: result.mapError { $0 as any Error })
            case let .watch(ids, event):
                for id in ids {
                    if let w = watchers.removeValue(forKey: id) { w(event) }
                }
            case let .state(s):
                logger.info("ZooKeeper session \(s)", metadata: [
                    "session": "0x\(String(UInt64(bitPattern: machine.sessionId), radix: 16))",
                    "server": "\(machine.currentServer.map(\.description) ?? "-")",
                ])
                for (_, o) in observers { o.yield(s) }
                if s == .connected {
                    let waiters = connectWaiters
                    connectWaiters = [:]
                    for (_, w) in waiters { w.resume() }
                }
                if s == .closed {
                    for (_, o) in observers { o.finish() }
                    observers = [:]
                    timer?.cancel()
                    timer = nil
                    let waiters = connectWaiters
                    connectWaiters = [:]
                    for (_, w) in waiters { w.resume(throwing: ZooKeeperError(.closed)) }
                    let closers = closeWaiters
                    closeWaiters = []
                    for c in closers { c.resume() }
                }
                if s == .expired && !machine.configuration.renewExpiredSession {
                    let waiters = connectWaiters
                    connectWaiters = [:]
                    for (_, w) in waiters { w.resume(throwing: ZooKeeperError(.sessionExpired)) }
                }
            }
        }
    }

    private func open(_ server: ZooKeeperConnectString.Server, connection: Int, timeout: TimeAmount) {
        wanted = connection
        let driver = self
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ZooKeeperFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(ZooKeeperChannelHandler(driver: driver, connection: connection))
                }
            }
            .connect(host: server.host, port: server.port)
            .hop(to: loop)
            .assumeIsolatedUnsafeUnchecked()
            .whenComplete { result in
                switch result {
                case let .success(channel):
                    guard driver.wanted == connection else { channel.close(promise: nil); return }
                    driver.channels[connection] = channel
                    driver.perform(driver.machine.connectionEstablished(connection: connection, now: driver.now))
                case let .failure(error):
                    driver.logger.debug("ZooKeeper connect to \(server) failed: \(error)")
                    driver.perform(driver.machine.connectionClosed(connection: connection, now: driver.now))
                }
            }
    }

    func received(_ frame: ByteBuffer, connection: Int) {
        perform(machine.received(frame, connection: connection, now: now))
    }

    func closed(connection: Int) {
        channels[connection] = nil
        perform(machine.connectionClosed(connection: connection, now: now))
    }
}

/// 4-byte big-endian length, then the frame.
struct ZooKeeperFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    static let maximumFrameSize = 64 << 20

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int32.self) else { return .needMoreData }
        guard length >= 0, Int(length) <= Self.maximumFrameSize else { throw JuteError.invalid("frame length \(length)") }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}

final class ZooKeeperChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let driver: Driver
    let connection: Int

    init(driver: Driver, connection: Int) {
        self.driver = driver
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        driver.received(unwrapInboundIn(data), connection: connection)
    }

    func channelInactive(context: ChannelHandlerContext) {
        driver.closed(connection: connection)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
