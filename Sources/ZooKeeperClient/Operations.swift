import NIOCore

/// How a node is created (`CreateRequest.flags`).
public enum ZooKeeperCreateMode: Int32, Sendable, Equatable {
    case persistent = 0
    /// Deleted when the creating session ends.
    case ephemeral = 1
    /// The server appends a 10-digit, monotonically increasing counter to the name.
    case persistentSequential = 2
    case ephemeralSequential = 3
    /// Deleted by the server once its last child is gone.
    case container = 4

    public var isEphemeral: Bool { self == .ephemeral || self == .ephemeralSequential }
    public var isSequential: Bool { self == .persistentSequential || self == .ephemeralSequential }
}

/// One operation of a `multi` (applied atomically: all or none).
public enum ZooKeeperMultiOp: Sendable, Equatable {
    case create(String, data: [UInt8], mode: ZooKeeperCreateMode = .persistent)
    /// version -1: any version.
    case delete(String, version: Int32 = -1)
    case setData(String, data: [UInt8], version: Int32 = -1)
    /// Fails the multi unless the node's version is `version`.
    case check(String, version: Int32)

    var path: String {
        switch self {
        case let .create(p, _, _), let .delete(p, _), let .setData(p, _, _), let .check(p, _): return p
        }
    }

    func withPath(_ p: String) -> ZooKeeperMultiOp {
        switch self {
        case let .create(_, d, m): return .create(p, data: d, mode: m)
        case let .delete(_, v): return .delete(p, version: v)
        case let .setData(_, d, v): return .setData(p, data: d, version: v)
        case let .check(_, v): return .check(p, version: v)
        }
    }
}

/// The result of one operation of a successful `multi`.
public enum ZooKeeperMultiResult: Sendable, Equatable {
    case created(path: String)
    case deleted
    case set(ZooKeeperStat)
    case checked
}

/// A request, with paths as the caller gives them (the session adds the chroot).
public enum ZooKeeperRequest: Sendable, Equatable {
    case create(String, data: [UInt8], mode: ZooKeeperCreateMode)
    case delete(String, version: Int32)
    case exists(String, watch: Bool)
    case getData(String, watch: Bool)
    case setData(String, data: [UInt8], version: Int32)
    case getChildren2(String, watch: Bool)
    case sync(String)
    case multi([ZooKeeperMultiOp])

    public var opCode: Int32 {
        switch self {
        case let .create(_, _, mode): return mode == .container ? ZooKeeperOpCode.createContainer : ZooKeeperOpCode.create
        case .delete: return ZooKeeperOpCode.delete
        case .exists: return ZooKeeperOpCode.exists
        case .getData: return ZooKeeperOpCode.getData
        case .setData: return ZooKeeperOpCode.setData
        case .getChildren2: return ZooKeeperOpCode.getChildren2
        case .sync: return ZooKeeperOpCode.sync
        case .multi: return ZooKeeperOpCode.multi
        }
    }

    /// The path the request is about (a multi's first path).
    public var path: String? {
        switch self {
        case let .create(p, _, _), let .delete(p, _), let .exists(p, _), let .getData(p, _), let .setData(p, _, _),
             let .getChildren2(p, _), let .sync(p):
            return p
        case let .multi(ops): return ops.first?.path
        }
    }

    var watch: Bool {
        switch self {
        case let .exists(_, w), let .getData(_, w), let .getChildren2(_, w): return w
        default: return false
        }
    }

    /// The open ACL: world:anyone with all permissions.
    static func writeOpenACL(_ b: inout ByteBuffer) {
        b.writeJuteInt(1)
        b.writeJuteInt(31)
        b.writeJuteString("world")
        b.writeJuteString("anyone")
    }

    /// Writes the request record (after the RequestHeader), with `chroot` prefixed to every path.
    public func writeBody(to b: inout ByteBuffer, chroot: String = "") {
        switch self {
        case let .create(path, data, mode):
            b.writeJuteString(Self.serverPath(chroot, path))
            b.writeJuteBuffer(data)
            Self.writeOpenACL(&b)
            b.writeJuteInt(mode.rawValue)
        case let .delete(path, version):
            b.writeJuteString(Self.serverPath(chroot, path))
            b.writeJuteInt(version)
        case let .exists(path, watch), let .getData(path, watch), let .getChildren2(path, watch):
            b.writeJuteString(Self.serverPath(chroot, path))
            b.writeJuteBool(watch)
        case let .setData(path, data, version):
            b.writeJuteString(Self.serverPath(chroot, path))
            b.writeJuteBuffer(data)
            b.writeJuteInt(version)
        case let .sync(path):
            b.writeJuteString(Self.serverPath(chroot, path))
        case let .multi(ops):
            for op in ops {
                switch op {
                case let .create(path, data, mode):
                    b.writeJuteInt(mode == .container ? ZooKeeperOpCode.createContainer : ZooKeeperOpCode.create)
                    b.writeJuteBool(false); b.writeJuteInt(-1)
                    ZooKeeperRequest.create(path, data: data, mode: mode).writeBody(to: &b, chroot: chroot)
                case let .delete(path, version):
                    b.writeJuteInt(ZooKeeperOpCode.delete); b.writeJuteBool(false); b.writeJuteInt(-1)
                    ZooKeeperRequest.delete(path, version: version).writeBody(to: &b, chroot: chroot)
                case let .setData(path, data, version):
                    b.writeJuteInt(ZooKeeperOpCode.setData); b.writeJuteBool(false); b.writeJuteInt(-1)
                    ZooKeeperRequest.setData(path, data: data, version: version).writeBody(to: &b, chroot: chroot)
                case let .check(path, version):
                    b.writeJuteInt(ZooKeeperOpCode.check); b.writeJuteBool(false); b.writeJuteInt(-1)
                    b.writeJuteString(Self.serverPath(chroot, path))
                    b.writeJuteInt(version)
                }
            }
            b.writeJuteInt(-1); b.writeJuteBool(true); b.writeJuteInt(-1)
        }
    }

    /// A whole frame: length, RequestHeader {xid, type}, body.
    public func frame(xid: Int32, chroot: String = "") -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: 64)
        b.writeJuteInt(0)  // length, patched below
        b.writeJuteInt(xid)
        b.writeJuteInt(opCode)
        writeBody(to: &b, chroot: chroot)
        b.setInteger(Int32(b.readableBytes - 4), at: 0, endianness: .big)
        return b
    }

    /// Decodes the reply body (after a ReplyHeader with err 0); `chroot` is removed from returned paths.
    /// A multi whose operations failed throws the first failing operation's error.
    public func readResponse(from b: inout ByteBuffer, chroot: String = "") throws -> ZooKeeperResponse {
        switch self {
        case .create(_, _, let mode):
            let path = try b.readJuteString("CreateResponse") ?? ""
            if mode == .container { _ = try ZooKeeperStat.read(from: &b) }
            return .created(path: Self.strip(chroot, from: path))
        case .delete:
            return .empty
        case .exists, .setData:
            return .stat(try ZooKeeperStat.read(from: &b))
        case .getData:
            let data = try b.readJuteBuffer("GetDataResponse") ?? []
            return .data(data, try ZooKeeperStat.read(from: &b))
        case .getChildren2:
            let children = try b.readJuteStrings("GetChildren2Response")
            return .children(children, try ZooKeeperStat.read(from: &b))
        case .sync:
            return .synced(path: Self.strip(chroot, from: try b.readJuteString("SyncResponse") ?? ""))
        case let .multi(ops):
            var results: [ZooKeeperMultiResult] = []
            var index = 0
            while true {
                let type = try b.readJuteInt("MultiHeader")
                let done = try b.readJuteBool("MultiHeader")
                let err = try b.readJuteInt("MultiHeader")
                if done { break }
                switch type {
                case ZooKeeperOpCode.error:
                    let code = try b.readJuteInt("ErrorResponse")
                    let e = code != 0 ? code : err
                    if e != 0 && e != -2 {
                        throw ZooKeeperError(.init(rawCode: e), path: index < ops.count ? ops[index].path : nil)
                    }
                case ZooKeeperOpCode.create:
                    results.append(.created(path: Self.strip(chroot, from: try b.readJuteString("CreateResponse") ?? "")))
                case ZooKeeperOpCode.create2, ZooKeeperOpCode.createContainer:
                    let p = try b.readJuteString("Create2Response") ?? ""
                    _ = try ZooKeeperStat.read(from: &b)
                    results.append(.created(path: Self.strip(chroot, from: p)))
                case ZooKeeperOpCode.delete: results.append(.deleted)
                case ZooKeeperOpCode.setData: results.append(.set(try ZooKeeperStat.read(from: &b)))
                case ZooKeeperOpCode.check: results.append(.checked)
                default: throw JuteError.invalid("multi result type \(type)")
                }
                index += 1
            }
            // Every op rolled back with RuntimeInconsistency but no other cause: report that.
            if results.count < ops.count { throw ZooKeeperError(.runtimeInconsistency, path: ops.first?.path) }
            return .multi(results)
        }
    }

    /// The path the server knows: the chroot, then the client's path ("/" is the chroot itself).
    static func serverPath(_ chroot: String, _ path: String) -> String {
        guard !chroot.isEmpty else { return path }
        return path == "/" ? chroot : chroot + path
    }

    static func strip(_ chroot: String, from path: String) -> String {
        guard !chroot.isEmpty else { return path }
        if path == chroot { return "/" }
        if path.hasPrefix(chroot + "/") { return String(path.dropFirst(chroot.count)) }
        return path
    }
}

/// A decoded reply.
public enum ZooKeeperResponse: Sendable, Equatable {
    case created(path: String)
    case empty
    case stat(ZooKeeperStat)
    case data([UInt8], ZooKeeperStat)
    case children([String], ZooKeeperStat)
    case synced(path: String)
    case multi([ZooKeeperMultiResult])
}

/// `SetWatches` (op 101, xid -8): re-arms the watches of a session on a new connection; the server
/// fires at once those whose node changed after `relativeZxid`.
public struct SetWatchesRequest: Sendable, Equatable {
    public var relativeZxid: Int64
    public var dataWatches: [String]
    public var existWatches: [String]
    public var childWatches: [String]

    public func frame() -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: 64)
        b.writeJuteInt(0)
        b.writeJuteInt(ZooKeeperXid.setWatches)
        b.writeJuteInt(ZooKeeperOpCode.setWatches)
        b.writeJuteLong(relativeZxid)
        b.writeJuteStrings(dataWatches)
        b.writeJuteStrings(existWatches)
        b.writeJuteStrings(childWatches)
        b.setInteger(Int32(b.readableBytes - 4), at: 0, endianness: .big)
        return b
    }
}

/// What a watch reports (`WatcherEvent`).
public struct ZooKeeperWatchedEvent: Sendable, Equatable {
    public enum EventType: Sendable, Equatable {
        case none, nodeCreated, nodeDeleted, nodeDataChanged, nodeChildrenChanged
        case dataWatchRemoved, childWatchRemoved, persistentWatchRemoved
        case unknown(Int32)

        public init(rawValue: Int32) {
            switch rawValue {
            case -1: self = .none
            case 1: self = .nodeCreated
            case 2: self = .nodeDeleted
            case 3: self = .nodeDataChanged
            case 4: self = .nodeChildrenChanged
            case 5: self = .dataWatchRemoved
            case 6: self = .childWatchRemoved
            case 7: self = .persistentWatchRemoved
            default: self = .unknown(rawValue)
            }
        }
    }

    public var type: EventType
    /// The session's state when the event was sent (`syncConnected` for node events; `expired`
    /// when the watch ended because the session expired, `closed` when the client was closed).
    public var state: ZooKeeperSessionState
    public var path: String

    public init(type: EventType, state: ZooKeeperSessionState, path: String) {
        self.type = type
        self.state = state
        self.path = path
    }

    static func read(from b: inout ByteBuffer, chroot: String) throws -> ZooKeeperWatchedEvent {
        let type = try b.readJuteInt("WatcherEvent")
        _ = try b.readJuteInt("WatcherEvent")  // keeper state: SyncConnected for node events
        let path = try b.readJuteString("WatcherEvent") ?? ""
        return ZooKeeperWatchedEvent(type: EventType(rawValue: type), state: .connected,
                                     path: ZooKeeperRequest.strip(chroot, from: path))
    }

    /// The server path (chroot included) as read from the wire.
    static func rawPath(of b: ByteBuffer) -> String? {
        var c = b
        guard (try? c.readJuteInt()) != nil, (try? c.readJuteInt()) != nil else { return nil }
        return (try? c.readJuteString()) ?? nil
    }
}

/// The session as the owner sees it.
public enum ZooKeeperSessionState: Sendable, Equatable {
    /// Looking for a server (first connection, or after `expired` when the client renews sessions).
    case connecting
    case connected
    /// The connection broke; the session lives on on the servers until its timeout, and the client
    /// is reconnecting to another server with the same session id and password.
    case disconnected
    /// The ensemble ended the session: its ephemeral nodes and watches are gone.
    case expired
    case closed
}
