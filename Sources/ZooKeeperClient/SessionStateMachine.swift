import NIOCore

/// A ZooKeeper session without I/O: every input (a connection opened or closed, a frame received,
/// a request submitted, the clock) returns the actions to carry out (open a connection to a server,
/// send a frame, close a connection, complete a request, deliver watch events, report the session
/// state). `ZooKeeperClient` runs it on one event loop; the tests drive it with an injected clock.
///
/// - Connect: a bare ConnectRequest (session id 0 the first time; afterwards the session id and
///   password, so the session, its ephemeral nodes and watches survive a move to another server).
///   A negotiated timeout of 0 means the session expired.
/// - Connected: a ping (xid -2) when nothing was sent for a third of the negotiated timeout; a
///   connection on which nothing arrived for two thirds of it is given up and the next server tried.
/// - Replies come back in xid order. Requests in flight when a connection breaks fail with
///   `connectionLoss`; requests submitted while disconnected wait for the next connection (or fail
///   with `requestTimeout`).
/// - Watches (data, exists, child) are kept by server path and fire once; after a reconnect they are
///   re-armed with SetWatches (xid -8) from the last zxid seen, so no change is missed. When the
///   session expires every watch gets one event with state `expired`.
public struct ZooKeeperSessionMachine: Sendable {
    public typealias RequestID = UInt64
    public typealias WatchID = UInt64

    public struct Configuration: Sendable {
        public var servers: [ZooKeeperConnectString.Server]
        /// "" or a path every request is relative to.
        public var chroot: String
        /// The session timeout asked for (the server bounds it by its min/max session timeout).
        public var sessionTimeout: TimeAmount
        /// How long a request may wait for a connection; nil: the session timeout.
        public var requestTimeout: TimeAmount?
        /// The pause after every server of the list failed in a row.
        public var reconnectBackoff: TimeAmount
        /// After the session expired, start a new session (reported as `connecting`, then
        /// `connected`) instead of staying expired.
        public var renewExpiredSession: Bool

        public init(servers: [ZooKeeperConnectString.Server], chroot: String = "", sessionTimeout: TimeAmount,
                    requestTimeout: TimeAmount? = nil, reconnectBackoff: TimeAmount = .milliseconds(100),
                    renewExpiredSession: Bool = false) {
            self.servers = servers
            self.chroot = chroot
            self.sessionTimeout = sessionTimeout
            self.requestTimeout = requestTimeout
            self.reconnectBackoff = reconnectBackoff
            self.renewExpiredSession = renewExpiredSession
        }
    }

    public enum Action: Sendable, Equatable {
        /// Open a TCP connection to `server`; report back with `connectionEstablished` or
        /// `connectionClosed` quoting `connection`.
        case connect(ZooKeeperConnectString.Server, connection: Int, timeout: TimeAmount)
        /// Write a frame (length prefix included) on the connection.
        case send(ByteBuffer, connection: Int)
        case close(connection: Int)
        case complete(RequestID, Result<ZooKeeperResponse, ZooKeeperError>)
        /// Deliver `event` to each watcher, once.
        case watch([WatchID], ZooKeeperWatchedEvent)
        case state(ZooKeeperSessionState)
    }

    enum Phase: Equatable {
        case idle
        case connecting(connection: Int, deadline: NIODeadline)
        case handshaking(connection: Int, deadline: NIODeadline)
        case connected(connection: Int)
        case waiting(until: NIODeadline)
        case closing(connection: Int, xid: Int32, deadline: NIODeadline)
        case expired
        case closed
    }

    struct Pending: Sendable {
        var id: RequestID
        var request: ZooKeeperRequest
        var watch: WatchID?
        var deadline: NIODeadline
    }

    struct InFlight: Sendable {
        var xid: Int32
        var id: RequestID
        var request: ZooKeeperRequest
        var watch: WatchID?
    }

    public let configuration: Configuration
    private(set) var phase: Phase = .idle
    public private(set) var sessionId: Int64 = 0
    public private(set) var password: [UInt8] = Array(repeating: 0, count: 16)
    public private(set) var lastZxid: Int64 = 0
    /// The timeout the server granted (ms); 0 before the first connection.
    public private(set) var negotiatedTimeoutMs: Int32 = 0
    /// The server of the current (or last) connection.
    public private(set) var currentServer: ZooKeeperConnectString.Server?
    public private(set) var reportedState: ZooKeeperSessionState?

    private var connectionSeq = 0
    private var nextServer = 0
    private var attemptsSinceConnected = 0
    private var nextXid: Int32 = 1
    private var pending: [Pending] = []
    private var inFlight: [InFlight] = []
    private var lastSend = NIODeadline.uptimeNanoseconds(0)
    private var lastReceive = NIODeadline.uptimeNanoseconds(0)
    /// Watchers by server path.
    private(set) var dataWatches: [String: [WatchID]] = [:]
    private(set) var existWatches: [String: [WatchID]] = [:]
    private(set) var childWatches: [String: [WatchID]] = [:]

    public init(configuration: Configuration) {
        precondition(!configuration.servers.isEmpty, "a ZooKeeper session needs at least one server")
        self.configuration = configuration
    }

    public var state: ZooKeeperSessionState? { reportedState }
    var chroot: String { configuration.chroot }
    var sessionTimeout: TimeAmount {
        negotiatedTimeoutMs > 0 ? .milliseconds(Int64(negotiatedTimeoutMs)) : configuration.sessionTimeout
    }
    /// A connection attempt (TCP connect, then the ConnectResponse) gets the session timeout divided
    /// among the servers, as ZooKeeper's Java client does (at least 500 ms).
    var connectTimeout: TimeAmount {
        max(.milliseconds(500), .nanoseconds(configuration.sessionTimeout.nanoseconds / Int64(configuration.servers.count)))
    }
    var pingInterval: TimeAmount { .nanoseconds(sessionTimeout.nanoseconds / 3) }
    var readTimeout: TimeAmount { .nanoseconds(sessionTimeout.nanoseconds * 2 / 3) }
    var hasWatches: Bool { !dataWatches.isEmpty || !existWatches.isEmpty || !childWatches.isEmpty }
    public var pendingCount: Int { pending.count + inFlight.count }

    // MARK: inputs

    /// Starts looking for a server.
    public mutating func start(now: NIODeadline) -> [Action] {
        guard phase == .idle else { return [] }
        var actions = report(.connecting)
        actions += beginAttempt(now: now)
        return actions
    }

    public mutating func connectionEstablished(connection: Int, now: NIODeadline) -> [Action] {
        guard case let .connecting(c, _) = phase, c == connection else { return [] }
        phase = .handshaking(connection: c, deadline: now + connectTimeout)
        var b = ByteBufferAllocator().buffer(capacity: 64)
        b.writeJuteInt(0)
        ConnectRequest(lastZxidSeen: lastZxid, timeOut: Int32(configuration.sessionTimeout.nanoseconds / 1_000_000),
                       sessionId: sessionId, passwd: password).write(to: &b)
        b.setInteger(Int32(b.readableBytes - 4), at: 0, endianness: .big)
        lastSend = now
        lastReceive = now
        return [.send(b, connection: c)]
    }

    /// The connection failed to open, or closed (by either side).
    public mutating func connectionClosed(connection: Int, now: NIODeadline) -> [Action] {
        switch phase {
        case let .connecting(c, _), let .handshaking(c, _):
            guard c == connection else { return [] }
            return nextAttempt(now: now)
        case let .connected(c):
            guard c == connection else { return [] }
            return lostConnection(now: now, close: false)
        case let .closing(c, _, _):
            guard c == connection else { return [] }
            return finishClose(close: false)
        default:
            return []
        }
    }

    /// A frame (without its length prefix) arrived on `connection`.
    public mutating func received(_ frame: ByteBuffer, connection: Int, now: NIODeadline) -> [Action] {
        var frame = frame
        switch phase {
        case let .handshaking(c, _):
            guard c == connection else { return [] }
            lastReceive = now
            guard let response = try? ConnectResponse.read(from: &frame) else {
                return [.close(connection: c)] + nextAttempt(now: now)
            }
            return handshakeDone(response, connection: c, now: now)
        case let .connected(c), let .closing(c, _, _):
            guard c == connection else { return [] }
            lastReceive = now
            return reply(&frame, connection: c, now: now)
        default:
            return []
        }
    }

    /// Submits a request; `watch` sets a watch (getData, exists, getChildren2) owned by that id.
    public mutating func submit(_ request: ZooKeeperRequest, id: RequestID, watch: WatchID? = nil, now: NIODeadline) -> [Action] {
        switch phase {
        case .closed, .closing:
            return [.complete(id, .failure(ZooKeeperError(.closed, path: request.path)))]
        case .expired:
            return [.complete(id, .failure(ZooKeeperError(.sessionExpired, path: request.path)))]
        case let .connected(c):
            return [send(request, id: id, watch: watch, connection: c, now: now)]
        case .idle, .connecting, .handshaking, .waiting:
            pending.append(Pending(id: id, request: request, watch: watch,
                                   deadline: now + (configuration.requestTimeout ?? configuration.sessionTimeout)))
            return []
        }
    }

    /// The clock: connection attempts that take too long, pings, dead connections, the pause between
    /// rounds of attempts, requests waiting too long for a connection.
    public mutating func tick(now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        switch phase {
        case let .connecting(c, deadline), let .handshaking(c, deadline):
            if now >= deadline { actions += [.close(connection: c)] + nextAttempt(now: now) }
        case let .connected(c):
            if now - lastReceive >= readTimeout {
                actions += lostConnection(now: now, close: true)
            } else if now - lastSend >= pingInterval {
                var b = ByteBufferAllocator().buffer(capacity: 12)
                b.writeJuteInt(8)
                b.writeJuteInt(ZooKeeperXid.ping)
                b.writeJuteInt(ZooKeeperOpCode.ping)
                lastSend = now
                actions.append(.send(b, connection: c))
            }
        case let .waiting(until):
            if now >= until { actions += beginAttempt(now: now) }
        case let .closing(_, _, deadline):
            if now >= deadline { actions += finishClose(close: true) }
        case .idle, .expired, .closed:
            break
        }
        var kept: [Pending] = []
        for p in pending {
            if now >= p.deadline {
                actions.append(.complete(p.id, .failure(ZooKeeperError(.requestTimeout, path: p.request.path))))
            } else {
                kept.append(p)
            }
        }
        pending = kept
        return actions
    }

    /// Closes the session: a CloseSession request when connected (the server deletes the
    /// ephemeral nodes at once), then the connection.
    public mutating func close(now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        for p in pending { actions.append(.complete(p.id, .failure(ZooKeeperError(.closed, path: p.request.path)))) }
        pending = []
        switch phase {
        case let .connected(c):
            let xid = takeXid()
            var b = ByteBufferAllocator().buffer(capacity: 12)
            b.writeJuteInt(8)
            b.writeJuteInt(xid)
            b.writeJuteInt(ZooKeeperOpCode.closeSession)
            lastSend = now
            phase = .closing(connection: c, xid: xid, deadline: now + .seconds(2))
            actions.append(.send(b, connection: c))
            return actions
        case let .connecting(c, _), let .handshaking(c, _):
            actions.append(.close(connection: c))
        case .closing, .closed:
            return actions
        case .idle, .waiting, .expired:
            break
        }
        phase = .closed
        return actions + failInFlight(.closed) + endWatches(state: .closed) + report(.closed)
    }

    /// Drops a watcher (its owner lost interest); the server-side watch stays until it fires.
    public mutating func removeWatcher(_ id: WatchID) {
        for path in Array(dataWatches.keys) { remove(id, path, from: &dataWatches) }
        for path in Array(existWatches.keys) { remove(id, path, from: &existWatches) }
        for path in Array(childWatches.keys) { remove(id, path, from: &childWatches) }
    }

    // MARK: internals

    private mutating func report(_ s: ZooKeeperSessionState) -> [Action] {
        guard reportedState != s else { return [] }
        reportedState = s
        return [.state(s)]
    }

    private mutating func takeXid() -> Int32 {
        let x = nextXid
        nextXid = nextXid == Int32.max ? 1 : nextXid + 1
        return x
    }

    private mutating func beginAttempt(now: NIODeadline) -> [Action] {
        connectionSeq += 1
        let server = configuration.servers[nextServer % configuration.servers.count]
        nextServer = (nextServer + 1) % configuration.servers.count
        attemptsSinceConnected += 1
        currentServer = server
        phase = .connecting(connection: connectionSeq, deadline: now + connectTimeout)
        return [.connect(server, connection: connectionSeq, timeout: connectTimeout)]
    }

    /// The next server, or a pause once every server failed in a row.
    private mutating func nextAttempt(now: NIODeadline) -> [Action] {
        if attemptsSinceConnected >= configuration.servers.count {
            attemptsSinceConnected = 0
            phase = .waiting(until: now + configuration.reconnectBackoff)
            return []
        }
        return beginAttempt(now: now)
    }

    private mutating func lostConnection(now: NIODeadline, close: Bool) -> [Action] {
        guard case let .connected(c) = phase else { return [] }
        var actions: [Action] = close ? [.close(connection: c)] : []
        actions += failInFlight(.connectionLoss)
        actions += report(.disconnected)
        actions += nextAttempt(now: now)
        return actions
    }

    private mutating func failInFlight(_ code: ZooKeeperError.Code) -> [Action] {
        let failed = inFlight.map { Action.complete($0.id, .failure(ZooKeeperError(code, path: $0.request.path))) }
        inFlight = []
        return failed
    }

    private mutating func finishClose(close: Bool) -> [Action] {
        guard case let .closing(c, _, _) = phase else { return [] }
        phase = .closed
        return (close ? [.close(connection: c)] : []) + failInFlight(.closed) + endWatches(state: .closed) + report(.closed)
    }

    /// One event with `state` to every watcher, then no watches.
    private mutating func endWatches(state: ZooKeeperSessionState) -> [Action] {
        var byPath: [String: [WatchID]] = [:]
        for map in [dataWatches, existWatches, childWatches] {
            for (path, ids) in map { byPath[path, default: []] += ids }
        }
        dataWatches = [:]
        existWatches = [:]
        childWatches = [:]
        return byPath.keys.sorted().map { path in
            .watch(Self.unique(byPath[path]!), ZooKeeperWatchedEvent(type: .none, state: state, path: ZooKeeperRequest.strip(chroot, from: path)))
        }
    }

    private mutating func handshakeDone(_ response: ConnectResponse, connection c: Int, now: NIODeadline) -> [Action] {
        if response.timeOut <= 0 {
            // The session expired while we were away.
            var actions: [Action] = [.close(connection: c)]
            actions += failInFlight(.sessionExpired)
            for p in pending { actions.append(.complete(p.id, .failure(ZooKeeperError(.sessionExpired, path: p.request.path)))) }
            pending = []
            actions += endWatches(state: .expired)
            actions += report(.expired)
            sessionId = 0
            password = Array(repeating: 0, count: 16)
            negotiatedTimeoutMs = 0
            if configuration.renewExpiredSession {
                attemptsSinceConnected = 0
                actions += report(.connecting)
                actions += beginAttempt(now: now)
            } else {
                phase = .expired
            }
            return actions
        }
        sessionId = response.sessionId
        password = response.passwd
        negotiatedTimeoutMs = response.timeOut
        phase = .connected(connection: c)
        attemptsSinceConnected = 0
        var actions = report(.connected)
        if hasWatches {
            let setWatches = SetWatchesRequest(relativeZxid: lastZxid, dataWatches: dataWatches.keys.sorted(),
                                               existWatches: existWatches.keys.sorted(), childWatches: childWatches.keys.sorted())
            actions.append(.send(setWatches.frame(), connection: c))
            lastSend = now
        }
        let waiting = pending
        pending = []
        for p in waiting { actions.append(send(p.request, id: p.id, watch: p.watch, connection: c, now: now)) }
        return actions
    }

    private mutating func send(_ request: ZooKeeperRequest, id: RequestID, watch: WatchID?, connection c: Int, now: NIODeadline) -> Action {
        let xid = takeXid()
        inFlight.append(InFlight(xid: xid, id: id, request: request, watch: request.watch ? watch : nil))
        lastSend = now
        return .send(request.frame(xid: xid, chroot: chroot), connection: c)
    }

    private mutating func reply(_ frame: inout ByteBuffer, connection c: Int, now: NIODeadline) -> [Action] {
        guard let header = try? ReplyHeader.read(from: &frame) else {
            return lostConnection(now: now, close: true)
        }
        if header.zxid > 0 && header.zxid > lastZxid { lastZxid = header.zxid }
        switch header.xid {
        case ZooKeeperXid.notification:
            return notification(&frame)
        case ZooKeeperXid.ping, ZooKeeperXid.setWatches, ZooKeeperXid.auth:
            return []
        default:
            break
        }
        if case let .closing(_, xid, _) = phase, header.xid == xid {
            return finishClose(close: true)
        }
        guard let first = inFlight.first, first.xid == header.xid else {
            // Replies come in xid order; anything else means the stream is broken.
            return lostConnection(now: now, close: true)
        }
        inFlight.removeFirst()
        let path = first.request.path
        if header.err != 0 {
            let code = ZooKeeperError.Code(rawCode: header.err)
            if code == .noNode, case let .exists(p, true) = first.request, let w = first.watch {
                existWatches[ZooKeeperRequest.serverPath(chroot, p), default: []].append(w)
            }
            return [.complete(first.id, .failure(ZooKeeperError(code, path: path)))]
        }
        do {
            let response = try first.request.readResponse(from: &frame, chroot: chroot)
            if let w = first.watch {
                switch first.request {
                case let .getData(p, _), let .exists(p, _): dataWatches[ZooKeeperRequest.serverPath(chroot, p), default: []].append(w)
                case let .getChildren2(p, _): childWatches[ZooKeeperRequest.serverPath(chroot, p), default: []].append(w)
                default: break
                }
            }
            return [.complete(first.id, .success(response))]
        } catch let e as ZooKeeperError {
            return [.complete(first.id, .failure(e))]
        } catch {
            return [.complete(first.id, .failure(ZooKeeperError(.malformedReply, path: path)))]
        }
    }

    private mutating func notification(_ frame: inout ByteBuffer) -> [Action] {
        guard let type = try? frame.readJuteInt(), (try? frame.readJuteInt()) != nil,
              let rawPath = (try? frame.readJuteString()) ?? nil else { return [] }
        let event = ZooKeeperWatchedEvent(type: .init(rawValue: type), state: .connected,
                                          path: ZooKeeperRequest.strip(chroot, from: rawPath))
        var ids: [WatchID] = []
        switch event.type {
        case .nodeCreated, .nodeDataChanged:
            ids += dataWatches.removeValue(forKey: rawPath) ?? []
            ids += existWatches.removeValue(forKey: rawPath) ?? []
        case .nodeDeleted:
            ids += dataWatches.removeValue(forKey: rawPath) ?? []
            ids += existWatches.removeValue(forKey: rawPath) ?? []
            ids += childWatches.removeValue(forKey: rawPath) ?? []
        case .nodeChildrenChanged:
            ids += childWatches.removeValue(forKey: rawPath) ?? []
        default:
            return []
        }
        return ids.isEmpty ? [] : [.watch(Self.unique(ids), event)]
    }

    private func remove(_ id: WatchID, _ path: String, from map: inout [String: [WatchID]]) {
        guard var ids = map[path] else { return }
        ids.removeAll { $0 == id }
        map[path] = ids.isEmpty ? nil : ids
    }

    private static func unique(_ ids: [WatchID]) -> [WatchID] {
        var seen = Set<WatchID>()
        return ids.filter { seen.insert($0).inserted }
    }
}
