import NIOCore

/// Jute, ZooKeeper's record encoding (zookeeper.jute): big-endian `int`/`long`, one-byte `boolean`,
/// `ustring`/`buffer` as an int length then bytes (-1 = null), `vector` as an int count then items.
public enum JuteError: Error, Sendable, Equatable, CustomStringConvertible {
    case truncated(String)
    case invalid(String)

    public var description: String {
        switch self {
        case let .truncated(what): return "truncated jute record: \(what)"
        case let .invalid(what): return "invalid jute record: \(what)"
        }
    }
}

extension ByteBuffer {
    mutating func writeJuteInt(_ v: Int32) { writeInteger(v, endianness: .big) }
    mutating func writeJuteLong(_ v: Int64) { writeInteger(v, endianness: .big) }
    mutating func writeJuteBool(_ v: Bool) { writeInteger(v ? 1 : 0, as: UInt8.self) }
    mutating func writeJuteString(_ s: String?) {
        guard let s else { writeJuteInt(-1); return }
        let bytes = Array(s.utf8)
        writeJuteInt(Int32(bytes.count))
        writeBytes(bytes)
    }
    mutating func writeJuteBuffer(_ b: [UInt8]?) {
        guard let b else { writeJuteInt(-1); return }
        writeJuteInt(Int32(b.count))
        writeBytes(b)
    }
    mutating func writeJuteStrings(_ v: [String]) {
        writeJuteInt(Int32(v.count))
        for s in v { writeJuteString(s) }
    }

    mutating func readJuteInt(_ what: @autoclosure () -> String = "int") throws -> Int32 {
        guard let v = readInteger(endianness: .big, as: Int32.self) else { throw JuteError.truncated(what()) }
        return v
    }
    mutating func readJuteLong(_ what: @autoclosure () -> String = "long") throws -> Int64 {
        guard let v = readInteger(endianness: .big, as: Int64.self) else { throw JuteError.truncated(what()) }
        return v
    }
    mutating func readJuteBool(_ what: @autoclosure () -> String = "boolean") throws -> Bool {
        guard let v = readInteger(as: UInt8.self) else { throw JuteError.truncated(what()) }
        return v != 0
    }
    mutating func readJuteBuffer(_ what: @autoclosure () -> String = "buffer") throws -> [UInt8]? {
        let n = try readJuteInt(what())
        if n < 0 { return nil }
        guard let bytes = readBytes(length: Int(n)) else { throw JuteError.truncated(what()) }
        return bytes
    }
    mutating func readJuteString(_ what: @autoclosure () -> String = "ustring") throws -> String? {
        guard let bytes = try readJuteBuffer(what()) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
    mutating func readJuteStrings(_ what: @autoclosure () -> String = "vector<ustring>") throws -> [String] {
        let n = try readJuteInt(what())
        if n <= 0 { return [] }
        guard Int(n) <= readableBytes / 4 else { throw JuteError.invalid("\(what()) claims \(n) items") }
        var out: [String] = []
        out.reserveCapacity(Int(n))
        for _ in 0..<n { out.append(try readJuteString(what()) ?? "") }
        return out
    }
}

/// A node's metadata (`org.apache.zookeeper.data.Stat`).
public struct ZooKeeperStat: Sendable, Equatable, Hashable {
    public var czxid: Int64
    public var mzxid: Int64
    public var ctime: Int64
    public var mtime: Int64
    public var version: Int32
    public var cversion: Int32
    public var aversion: Int32
    /// The owning session of an ephemeral node, 0 otherwise.
    public var ephemeralOwner: Int64
    public var dataLength: Int32
    public var numChildren: Int32
    public var pzxid: Int64

    public init(czxid: Int64 = 0, mzxid: Int64 = 0, ctime: Int64 = 0, mtime: Int64 = 0, version: Int32 = 0, cversion: Int32 = 0,
                aversion: Int32 = 0, ephemeralOwner: Int64 = 0, dataLength: Int32 = 0, numChildren: Int32 = 0, pzxid: Int64 = 0) {
        self.czxid = czxid
        self.mzxid = mzxid
        self.ctime = ctime
        self.mtime = mtime
        self.version = version
        self.cversion = cversion
        self.aversion = aversion
        self.ephemeralOwner = ephemeralOwner
        self.dataLength = dataLength
        self.numChildren = numChildren
        self.pzxid = pzxid
    }

    public static func read(from b: inout ByteBuffer) throws -> ZooKeeperStat {
        ZooKeeperStat(czxid: try b.readJuteLong("stat"), mzxid: try b.readJuteLong("stat"), ctime: try b.readJuteLong("stat"),
                      mtime: try b.readJuteLong("stat"), version: try b.readJuteInt("stat"), cversion: try b.readJuteInt("stat"),
                      aversion: try b.readJuteInt("stat"), ephemeralOwner: try b.readJuteLong("stat"),
                      dataLength: try b.readJuteInt("stat"), numChildren: try b.readJuteInt("stat"), pzxid: try b.readJuteLong("stat"))
    }

    public func write(to b: inout ByteBuffer) {
        b.writeJuteLong(czxid); b.writeJuteLong(mzxid); b.writeJuteLong(ctime); b.writeJuteLong(mtime)
        b.writeJuteInt(version); b.writeJuteInt(cversion); b.writeJuteInt(aversion); b.writeJuteLong(ephemeralOwner)
        b.writeJuteInt(dataLength); b.writeJuteInt(numChildren); b.writeJuteLong(pzxid)
    }
}

/// `ConnectRequest`: the first packet on every connection (no request header).
public struct ConnectRequest: Sendable, Equatable {
    public var protocolVersion: Int32 = 0
    public var lastZxidSeen: Int64
    public var timeOut: Int32
    public var sessionId: Int64
    public var passwd: [UInt8]
    public var readOnly: Bool = false

    public init(lastZxidSeen: Int64, timeOut: Int32, sessionId: Int64, passwd: [UInt8], readOnly: Bool = false) {
        self.lastZxidSeen = lastZxidSeen
        self.timeOut = timeOut
        self.sessionId = sessionId
        self.passwd = passwd
        self.readOnly = readOnly
    }

    public func write(to b: inout ByteBuffer) {
        b.writeJuteInt(protocolVersion)
        b.writeJuteLong(lastZxidSeen)
        b.writeJuteInt(timeOut)
        b.writeJuteLong(sessionId)
        b.writeJuteBuffer(passwd)
        b.writeJuteBool(readOnly)
    }
}

/// `ConnectResponse`: a negotiated `timeOut` of 0 (or less) means the session expired.
public struct ConnectResponse: Sendable, Equatable {
    public var protocolVersion: Int32
    public var timeOut: Int32
    public var sessionId: Int64
    public var passwd: [UInt8]
    public var readOnly: Bool

    public init(protocolVersion: Int32, timeOut: Int32, sessionId: Int64, passwd: [UInt8], readOnly: Bool) {
        self.protocolVersion = protocolVersion
        self.timeOut = timeOut
        self.sessionId = sessionId
        self.passwd = passwd
        self.readOnly = readOnly
    }

    public static func read(from b: inout ByteBuffer) throws -> ConnectResponse {
        let version = try b.readJuteInt("ConnectResponse")
        let timeOut = try b.readJuteInt("ConnectResponse")
        let session = try b.readJuteLong("ConnectResponse")
        let passwd = try b.readJuteBuffer("ConnectResponse") ?? []
        // Servers before 3.4 leave the readOnly byte out.
        let readOnly = b.readableBytes > 0 ? try b.readJuteBool() : false
        return ConnectResponse(protocolVersion: version, timeOut: timeOut, sessionId: session, passwd: passwd, readOnly: readOnly)
    }
}

/// `ReplyHeader`: precedes every reply.
public struct ReplyHeader: Sendable, Equatable {
    public var xid: Int32
    public var zxid: Int64
    public var err: Int32

    public static func read(from b: inout ByteBuffer) throws -> ReplyHeader {
        ReplyHeader(xid: try b.readJuteInt("ReplyHeader"), zxid: try b.readJuteLong("ReplyHeader"), err: try b.readJuteInt("ReplyHeader"))
    }
}

/// Special xids.
public enum ZooKeeperXid {
    public static let notification: Int32 = -1
    public static let ping: Int32 = -2
    public static let auth: Int32 = -4
    public static let setWatches: Int32 = -8
}

/// Operation codes (`RequestHeader.type`).
public enum ZooKeeperOpCode {
    public static let create: Int32 = 1
    public static let delete: Int32 = 2
    public static let exists: Int32 = 3
    public static let getData: Int32 = 4
    public static let setData: Int32 = 5
    public static let getChildren: Int32 = 8
    public static let sync: Int32 = 9
    public static let ping: Int32 = 11
    public static let getChildren2: Int32 = 12
    public static let check: Int32 = 13
    public static let multi: Int32 = 14
    public static let create2: Int32 = 15
    public static let createContainer: Int32 = 19
    public static let setWatches: Int32 = 101
    public static let closeSession: Int32 = -11
    public static let error: Int32 = -1
}
