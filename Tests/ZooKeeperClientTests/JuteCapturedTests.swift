import Foundation
import NIOCore
import Testing
@testable import ZooKeeperClient

/// Frames captured from Debian's ZooKeeper 3.8 server and its Java CLI (see Fixtures/README.md).
struct Capture {
    struct Frame { var fromClient: Bool; var bytes: [UInt8] }
    /// One entry per TCP connection, in capture order.
    var connections: [[Frame]] = []

    static let shared: Capture = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/captured-frames.txt")
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        var c = Capture()
        for line in text.split(separator: "\n") {
            if line == "# connection" { c.connections.append([]); continue }
            if line.hasPrefix("#") { continue }
            let parts = line.split(separator: " ")
            guard parts.count == 2, !c.connections.isEmpty else { continue }
            c.connections[c.connections.count - 1].append(Frame(fromClient: parts[0] == "C", bytes: hexBytes(parts[1])))
        }
        return c
    }()

    /// The client frames of connection `i` (the ConnectRequest first).
    func client(_ i: Int) -> [[UInt8]] { connections[i].filter(\.fromClient).map(\.bytes) }
    func server(_ i: Int) -> [[UInt8]] { connections[i].filter { !$0.fromClient }.map(\.bytes) }
}

func hexBytes<S: StringProtocol>(_ s: S) -> [UInt8] {
    var out: [UInt8] = []
    var it = s.utf8.makeIterator()
    while let a = it.next(), let b = it.next() {
        out.append(UInt8(String(decoding: [a, b], as: UTF8.self), radix: 16)!)
    }
    return out
}

func body(_ frame: ByteBuffer) -> [UInt8] {
    var f = frame
    f.moveReaderIndex(forwardBy: 4)
    return Array(f.readableBytesView)
}

func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

@Suite struct JuteCapturedTests {
    let capture = Capture.shared

    @Test func captureIsLoaded() {
        #expect(capture.connections.count == 16)
    }

    @Test func connectRequestMatchesJavaClient() {
        var b = ByteBuffer()
        ConnectRequest(lastZxidSeen: 0, timeOut: 30_000, sessionId: 0, passwd: Array(repeating: 0, count: 16)).write(to: &b)
        #expect(Array(b.readableBytesView) == capture.client(0)[0])
    }

    @Test func connectResponseFromServer() throws {
        var b = buffer(capture.server(0)[0])
        let r = try ConnectResponse.read(from: &b)
        #expect(r.protocolVersion == 0 && r.timeOut == 30_000 && r.sessionId == 0x0100_0007_2341_0000)
        #expect(r.passwd.count == 16 && !r.readOnly && b.readableBytes == 0)
    }

    /// Each request as the Java CLI wrote it (connection index, request, xid).
    @Test(arguments: [
        (0, ZooKeeperRequest.create("/samsa", data: Array("hello".utf8), mode: .persistent)),
        (1, .create("/samsa/eph-", data: Array("x".utf8), mode: .ephemeralSequential)),
        (2, .getData("/samsa", watch: false)),
        (3, .setData("/samsa", data: Array("world".utf8), version: -1)),
        (4, .setData("/samsa", data: Array("nope".utf8), version: 7)),
        (5, .getChildren2("/samsa", watch: false)),
        (6, .exists("/samsa", watch: false)),
        (7, .exists("/missing", watch: false)),
        (8, .sync("/samsa")),
        (10, .delete("/samsa", version: -1)),
        (11, .delete("/missing", version: 5)),
        (12, .create("/w", data: Array("v0".utf8), mode: .persistent)),
    ] as [(Int, ZooKeeperRequest)])
    func requestMatchesJavaClient(connection: Int, request: ZooKeeperRequest) {
        #expect(body(request.frame(xid: 1)) == capture.client(connection)[1])
    }

    @Test func containerCreateMatchesJavaClientExceptNullData() {
        // zkCli sends null data (-1) for `create -c /cont`; the Swift client always sends a buffer.
        var expected = capture.client(9)[1]
        let frame = body(ZooKeeperRequest.create("/cont", data: [], mode: .container).frame(xid: 1))
        #expect(Array(expected[0..<4]) == [0, 0, 0, 1] && Array(expected[4..<8]) == [0, 0, 0, 19])
        expected.replaceSubrange(17..<21, with: [0, 0, 0, 0])
        #expect(frame == expected)
    }

    func reply(_ connection: Int, index: Int = 1) throws -> (ReplyHeader, ByteBuffer) {
        var b = buffer(capture.server(connection)[index])
        return (try ReplyHeader.read(from: &b), b)
    }

    @Test func responsesFromServer() throws {
        var (h, b) = try reply(0)
        #expect(h.xid == 1 && h.err == 0)
        #expect(try ZooKeeperRequest.create("/samsa", data: [], mode: .persistent).readResponse(from: &b) == .created(path: "/samsa"))

        (h, b) = try reply(1)
        #expect(try ZooKeeperRequest.create("/samsa/eph-", data: [], mode: .ephemeralSequential).readResponse(from: &b)
            == .created(path: "/samsa/eph-0000000000"))

        (h, b) = try reply(2)
        guard case let .data(data, stat) = try ZooKeeperRequest.getData("/samsa", watch: false).readResponse(from: &b) else {
            Issue.record("getData"); return
        }
        #expect(data == Array("hello".utf8) && stat.version == 0 && stat.dataLength == 5 && stat.czxid == 2 && stat.ephemeralOwner == 0)
        #expect(stat.numChildren == 1 && stat.ctime == 0x1a2_35ab_92d1)

        (h, b) = try reply(3)
        guard case let .stat(s) = try ZooKeeperRequest.setData("/samsa", data: [], version: -1).readResponse(from: &b) else {
            Issue.record("setData"); return
        }
        #expect(s.version == 1 && s.mzxid == 7 && s.dataLength == 5)

        (h, _) = try reply(4)
        #expect(h.err == -103 && ZooKeeperError.Code(rawCode: h.err) == .badVersion)

        (h, b) = try reply(5)
        guard case let .children(children, cstat) = try ZooKeeperRequest.getChildren2("/samsa", watch: false).readResponse(from: &b) else {
            Issue.record("getChildren2"); return
        }
        #expect(children == ["eph-0000000000"] && cstat.numChildren == 1 && cstat.cversion == 1)

        (h, b) = try reply(6)
        guard case let .stat(es) = try ZooKeeperRequest.exists("/samsa", watch: false).readResponse(from: &b) else {
            Issue.record("exists"); return
        }
        #expect(es.version == 1)

        (h, _) = try reply(7)
        #expect(ZooKeeperError.Code(rawCode: h.err) == .noNode)

        (h, b) = try reply(8)
        #expect(try ZooKeeperRequest.sync("/samsa").readResponse(from: &b) == .synced(path: "/samsa"))

        (h, b) = try reply(9)
        #expect(try ZooKeeperRequest.create("/cont", data: [], mode: .container).readResponse(from: &b) == .created(path: "/cont"))
        #expect(b.readableBytes == 0)

        (h, _) = try reply(10)
        #expect(ZooKeeperError.Code(rawCode: h.err) == .notEmpty)
        (h, _) = try reply(11)
        #expect(ZooKeeperError.Code(rawCode: h.err) == .noNode)
    }

    @Test func chrootIsAddedToRequestsAndRemovedFromReplies() throws {
        // The Java CLI's create of /samsa/eph- equals a chrooted client's create of /eph-.
        let chrooted = ZooKeeperRequest.create("/eph-", data: Array("x".utf8), mode: .ephemeralSequential)
        #expect(body(chrooted.frame(xid: 1, chroot: "/samsa")) == capture.client(1)[1])
        var (_, b) = try reply(1)
        #expect(try chrooted.readResponse(from: &b, chroot: "/samsa") == .created(path: "/eph-0000000000"))
    }

    @Test func multiRequestsAndReplies() throws {
        let failing = ZooKeeperRequest.multi([.create("/m1", data: Array("a".utf8)), .check("/w", version: 99)])
        #expect(body(failing.frame(xid: 1)) == capture.client(15)[1])
        var (h, b) = try reply(15)
        #expect(h.err == 0)
        #expect(throws: ZooKeeperError(.badVersion, path: "/w")) { try failing.readResponse(from: &b) }

        let ok = ZooKeeperRequest.multi([.create("/m1", data: Array("a".utf8)), .check("/w", version: 1),
                                         .setData("/w", data: Array("v2".utf8), version: 1), .delete("/m1")])
        #expect(body(ok.frame(xid: 2)) == capture.client(15)[2])
        (h, b) = try reply(15, index: 2)
        let r = try ok.readResponse(from: &b)
        guard case let .multi(results) = r, results.count == 4, case let .set(stat) = results[2] else {
            Issue.record("multi \(r)"); return
        }
        #expect(results[0] == .created(path: "/m1") && results[1] == .checked && results[3] == .deleted && stat.version == 2)
    }

    /// The watch session replayed through the session machine: its frames are byte for byte the
    /// Java client's, and the server's notification reaches the watcher once.
    @Test func watchSessionReplayedThroughTheMachine() throws {
        let conn = 13
        let client = capture.client(conn), server = capture.server(conn)
        let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var m = ZooKeeperSessionMachine(configuration: .init(servers: [.init(host: "127.0.0.1", port: 2181)], sessionTimeout: .seconds(30)))
        _ = m.start(now: t0)
        guard case let .send(connect, 1)? = m.connectionEstablished(connection: 1, now: t0).first else { Issue.record("no connect"); return }
        #expect(body(connect) == client[0])
        #expect(m.received(buffer(server[0]), connection: 1, now: t0) == [.state(.connected)])
        #expect(m.sessionId == 0x0100_0007_2341_000d && m.negotiatedTimeoutMs == 30_000)

        guard case let .send(get, 1)? = m.submit(.getData("/w", watch: true), id: 1, watch: 100, now: t0).first,
              case let .send(ls, 1)? = m.submit(.getChildren2("/w", watch: true), id: 2, watch: 200, now: t0).first else {
            Issue.record("no sends"); return
        }
        #expect(body(get) == client[1] && body(ls) == client[2])
        guard case let .complete(1, .success(.data(d, _)))? = m.received(buffer(server[1]), connection: 1, now: t0).first else {
            Issue.record("getData"); return
        }
        #expect(d == Array("v0".utf8))
        guard case .complete(2, .success(.children([], _)))? = m.received(buffer(server[2]), connection: 1, now: t0).first else {
            Issue.record("getChildren2"); return
        }
        #expect(m.lastZxid == 0x16)
        // NodeDataChanged on /w: the data watcher only (the child watcher waits for child changes).
        #expect(m.received(buffer(server[3]), connection: 1, now: t0)
            == [.watch([100], ZooKeeperWatchedEvent(type: .nodeDataChanged, state: .connected, path: "/w"))])
        #expect(m.received(buffer(server[3]), connection: 1, now: t0) == [])  // once
        guard case let .send(close, 1)? = m.close(now: t0).first else { Issue.record("no close"); return }
        #expect(body(close) == client[3])
        let end = m.received(buffer(server[4]), connection: 1, now: t0)
        #expect(end.contains(.close(connection: 1)) && end.last == .state(.closed))
        #expect(end.contains(.watch([200], ZooKeeperWatchedEvent(type: .none, state: .closed, path: "/w"))))
    }

    /// The idle session: the machine pings after a third of the timeout, as the Java client did.
    @Test func pingMatchesJavaClient() {
        let conn = 14
        let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var m = ZooKeeperSessionMachine(configuration: .init(servers: [.init(host: "127.0.0.1", port: 2181)], sessionTimeout: .seconds(30)))
        _ = m.start(now: t0)
        _ = m.connectionEstablished(connection: 1, now: t0)
        _ = m.received(buffer(capture.server(conn)[0]), connection: 1, now: t0)
        #expect(m.tick(now: t0 + .seconds(9)) == [])
        guard case let .send(ping, 1)? = m.tick(now: t0 + .seconds(10)).first else { Issue.record("no ping"); return }
        #expect(body(ping) == capture.client(conn)[2])
        #expect(m.received(buffer(capture.server(conn)[2]), connection: 1, now: t0 + .seconds(10)) == [])
        #expect(m.lastZxid == 0x26)
    }
}
