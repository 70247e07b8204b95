import NIOCore
import Testing
@testable import ZooKeeperClient

/// The session state machine with an injected clock and no sockets.
@Suite struct SessionStateMachineTests {
    let servers: [ZooKeeperConnectString.Server] = [.init(host: "a", port: 1), .init(host: "b", port: 2), .init(host: "c", port: 3)]
    let t0 = NIODeadline.uptimeNanoseconds(10_000_000_000)

    func machine(renew: Bool = false, chroot: String = "") -> ZooKeeperSessionMachine {
        ZooKeeperSessionMachine(configuration: .init(servers: servers, chroot: chroot, sessionTimeout: .milliseconds(6000),
                                                     reconnectBackoff: .milliseconds(100), renewExpiredSession: renew))
    }

    static func connectResponse(timeOut: Int32, session: Int64, passwd: [UInt8] = Array(1...16)) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeJuteInt(0); b.writeJuteInt(timeOut); b.writeJuteLong(session); b.writeJuteBuffer(passwd); b.writeJuteBool(false)
        return b
    }

    static func replyHeader(xid: Int32, zxid: Int64, err: Int32 = 0) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeJuteInt(xid); b.writeJuteLong(zxid); b.writeJuteInt(err)
        return b
    }

    static func statReply(xid: Int32, zxid: Int64, version: Int32) -> ByteBuffer {
        var b = replyHeader(xid: xid, zxid: zxid)
        ZooKeeperStat(version: version).write(to: &b)
        return b
    }

    static func notification(type: Int32, path: String) -> ByteBuffer {
        var b = replyHeader(xid: -1, zxid: -1)
        b.writeJuteInt(type); b.writeJuteInt(3); b.writeJuteString(path)
        return b
    }

    /// The ConnectRequest inside a `.send` action.
    static func connectRequest(_ actions: [ZooKeeperSessionMachine.Action]) -> (zxid: Int64, timeout: Int32, session: Int64, passwd: [UInt8])? {
        guard case var .send(b, _)? = actions.first else { return nil }
        b.moveReaderIndex(forwardBy: 4)
        guard (try? b.readJuteInt()) == 0, let zxid = try? b.readJuteLong(), let to = try? b.readJuteInt(),
              let s = try? b.readJuteLong(), let p = (try? b.readJuteBuffer()) ?? nil else { return nil }
        return (zxid, to, s, p)
    }

    /// The (xid, type) of a request frame.
    static func header(_ a: ZooKeeperSessionMachine.Action?) -> (Int32, Int32)? {
        guard case var .send(b, _)? = a else { return nil }
        b.moveReaderIndex(forwardBy: 4)
        guard let x = try? b.readJuteInt(), let t = try? b.readJuteInt() else { return nil }
        return (x, t)
    }

    /// Connects on connection `c` (already asked for) with session 0x55.
    func handshake(_ m: inout ZooKeeperSessionMachine, connection c: Int, now: NIODeadline, timeOut: Int32 = 6000) -> [ZooKeeperSessionMachine.Action] {
        _ = m.connectionEstablished(connection: c, now: now)
        return m.received(Self.connectResponse(timeOut: timeOut, session: 0x55), connection: c, now: now)
    }

    @Test func connectsAndNegotiatesTheTimeout() {
        var m = machine()
        let timeout = TimeAmount.milliseconds(2000)  // 6 s divided among 3 servers
        #expect(m.start(now: t0) == [.state(.connecting), .connect(servers[0], connection: 1, timeout: timeout)])
        let hello = m.connectionEstablished(connection: 1, now: t0)
        let req = Self.connectRequest(hello)
        #expect(req?.session == 0 && req?.timeout == 6000 && req?.passwd == Array(repeating: 0, count: 16) && req?.zxid == 0)
        #expect(m.received(Self.connectResponse(timeOut: 4000, session: 0x55), connection: 1, now: t0) == [.state(.connected)])
        #expect(m.sessionId == 0x55 && m.negotiatedTimeoutMs == 4000 && m.password == Array(1...16))
        // Pings follow the negotiated timeout: a third of 4 s.
        #expect(m.tick(now: t0 + .milliseconds(1300)) == [])
        let ping = m.tick(now: t0 + .milliseconds(1334))
        #expect(ping.count == 1 && Self.header(ping.first)! == (-2, 11))
        #expect(m.received(Self.replyHeader(xid: -2, zxid: 9), connection: 1, now: t0 + .milliseconds(1340)) == [])
        #expect(m.tick(now: t0 + .milliseconds(2000)) == [])
    }

    @Test func unansweredConnectionMovesToTheNextServerWithTheSameSession() throws {
        var m = machine()
        _ = m.start(now: t0)
        _ = handshake(&m, connection: 1, now: t0)
        // A request in flight and a watch set.
        let get = m.submit(.getData("/x", watch: true), id: 7, watch: 70, now: t0)
        #expect(Self.header(get.first)! == (1, 4))
        var r = Self.replyHeader(xid: 1, zxid: 0x20)
        r.writeJuteBuffer([1]); ZooKeeperStat(version: 3).write(to: &r)
        #expect(m.received(r, connection: 1, now: t0) == [.complete(7, .success(.data([1], ZooKeeperStat(version: 3))))])
        _ = m.submit(.exists("/y", watch: false), id: 8, now: t0 + .seconds(1))
        // Pings go out, nothing comes back: after 2/3 of 6 s the connection is given up.
        _ = m.tick(now: t0 + .seconds(2))
        #expect(m.tick(now: t0 + .milliseconds(3999)).allSatisfy { if case .send = $0 { return true } else { return false } })
        let lost = m.tick(now: t0 + .seconds(4))
        #expect(lost == [.close(connection: 1), .complete(8, .failure(ZooKeeperError(.connectionLoss, path: "/y"))),
                         .state(.disconnected), .connect(servers[1], connection: 2, timeout: .milliseconds(2000))])
        // Submitted while disconnected: waits for the connection.
        #expect(m.submit(.sync("/z"), id: 9, now: t0 + .seconds(4)) == [])
        let hello = m.connectionEstablished(connection: 2, now: t0 + .seconds(4))
        let req = Self.connectRequest(hello)
        #expect(req?.session == 0x55 && req?.passwd == Array(1...16) && req?.zxid == 0x20)
        let back = m.received(Self.connectResponse(timeOut: 6000, session: 0x55), connection: 2, now: t0 + .seconds(4))
        #expect(back.first == .state(.connected) && back.count == 3)
        // SetWatches first (xid -8, op 101) with the data watch from zxid 0x20, then the waiting request.
        guard case var .send(sw, 2) = back[1] else { Issue.record("no SetWatches"); return }
        sw.moveReaderIndex(forwardBy: 4)
        let (xid, type, zxid) = (try sw.readJuteInt(), try sw.readJuteInt(), try sw.readJuteLong())
        #expect(xid == -8 && type == 101 && zxid == 0x20)
        let (data, exist, child) = (try sw.readJuteStrings(), try sw.readJuteStrings(), try sw.readJuteStrings())
        #expect(data == ["/x"] && exist.isEmpty && child.isEmpty)
        #expect(Self.header(back[2])!.1 == 9)
        // The re-armed watch fires once.
        let fired = m.received(Self.notification(type: 3, path: "/x"), connection: 2, now: t0 + .seconds(5))
        #expect(fired == [.watch([70], ZooKeeperWatchedEvent(type: .nodeDataChanged, state: .connected, path: "/x"))])
        #expect(m.received(Self.notification(type: 3, path: "/x"), connection: 2, now: t0 + .seconds(5)) == [])
    }

    @Test func everyServerDownMeansAPauseThenAnotherRound() {
        var m = machine()
        _ = m.start(now: t0)
        #expect(m.connectionClosed(connection: 1, now: t0) == [.connect(servers[1], connection: 2, timeout: .milliseconds(2000))])
        #expect(m.connectionClosed(connection: 2, now: t0) == [.connect(servers[2], connection: 3, timeout: .milliseconds(2000))])
        #expect(m.connectionClosed(connection: 3, now: t0) == [])
        #expect(m.tick(now: t0 + .milliseconds(50)) == [])
        #expect(m.tick(now: t0 + .milliseconds(100)) == [.connect(servers[0], connection: 4, timeout: .milliseconds(2000))])
        // Stale events of old connections are ignored.
        #expect(m.connectionEstablished(connection: 2, now: t0) == [])
        // A connection attempt that takes too long is abandoned.
        #expect(m.tick(now: t0 + .milliseconds(2100)) == [.close(connection: 4), .connect(servers[1], connection: 5, timeout: .milliseconds(2000))])
        #expect(m.state == .connecting)
    }

    @Test func requestsWaitingForAConnectionTimeOut() {
        var m = machine()
        _ = m.start(now: t0)
        #expect(m.submit(.exists("/a", watch: false), id: 1, now: t0) == [])
        // (The connection attempt itself is abandoned after 2 s; the request keeps waiting.)
        #expect(!m.tick(now: t0 + .milliseconds(5999)).contains { if case .complete = $0 { return true } else { return false } })
        let out = m.tick(now: t0 + .seconds(6))
        #expect(out.contains(.complete(1, .failure(ZooKeeperError(.requestTimeout, path: "/a")))))
    }

    @Test func expiredSessionIsReportedAndEndsWatchesAndRequests() {
        var m = machine()
        _ = m.start(now: t0)
        _ = handshake(&m, connection: 1, now: t0)
        _ = m.submit(.getChildren2("/brokers/ids", watch: true), id: 1, watch: 11, now: t0)
        var r = Self.replyHeader(xid: 1, zxid: 5)
        r.writeJuteStrings(["1"]); ZooKeeperStat().write(to: &r)
        _ = m.received(r, connection: 1, now: t0)
        _ = m.connectionClosed(connection: 1, now: t0 + .seconds(1))
        _ = m.submit(.create("/e", data: [], mode: .ephemeral), id: 2, now: t0 + .seconds(1))
        _ = m.connectionEstablished(connection: 2, now: t0 + .seconds(8))
        let expired = m.received(Self.connectResponse(timeOut: 0, session: 0, passwd: Array(repeating: 0, count: 16)), connection: 2, now: t0 + .seconds(8))
        #expect(expired == [
            .close(connection: 2), .complete(2, .failure(ZooKeeperError(.sessionExpired, path: "/e"))),
            .watch([11], ZooKeeperWatchedEvent(type: .none, state: .expired, path: "/brokers/ids")), .state(.expired),
        ])
        #expect(m.submit(.sync("/"), id: 3, now: t0 + .seconds(9)) == [.complete(3, .failure(ZooKeeperError(.sessionExpired, path: "/")))])
        #expect(m.tick(now: t0 + .seconds(20)) == [])
    }

    @Test func renewingClientStartsANewSessionAfterExpiry() {
        var m = machine(renew: true)
        _ = m.start(now: t0)
        _ = handshake(&m, connection: 1, now: t0)
        _ = m.connectionClosed(connection: 1, now: t0)
        _ = m.connectionEstablished(connection: 2, now: t0)
        let out = m.received(Self.connectResponse(timeOut: 0, session: 0), connection: 2, now: t0)
        #expect(out == [.close(connection: 2), .state(.expired), .state(.connecting), .connect(servers[2], connection: 3, timeout: .milliseconds(2000))])
        let req = Self.connectRequest(m.connectionEstablished(connection: 3, now: t0))
        #expect(req?.session == 0 && req?.passwd == Array(repeating: 0, count: 16))
        #expect(m.received(Self.connectResponse(timeOut: 6000, session: 0x66), connection: 3, now: t0) == [.state(.connected)])
        #expect(m.sessionId == 0x66)
    }

    @Test func repliesOutOfOrderDropTheConnection() {
        var m = machine()
        _ = m.start(now: t0)
        _ = handshake(&m, connection: 1, now: t0)
        _ = m.submit(.sync("/a"), id: 1, now: t0)
        let out = m.received(Self.replyHeader(xid: 99, zxid: 1), connection: 1, now: t0)
        #expect(out.prefix(3) == [.close(connection: 1), .complete(1, .failure(ZooKeeperError(.connectionLoss, path: "/a"))), .state(.disconnected)])
    }

    @Test func errorsAreTypedAndExistsOnAMissingNodeSetsAnExistWatch() {
        var m = machine(chroot: "/samsa")
        _ = m.start(now: t0)
        _ = handshake(&m, connection: 1, now: t0)
        _ = m.submit(.exists("/n", watch: true), id: 1, watch: 10, now: t0)
        _ = m.submit(.setData("/n", data: [], version: 3), id: 2, now: t0)
        #expect(m.received(Self.replyHeader(xid: 1, zxid: 4, err: -101), connection: 1, now: t0)
            == [.complete(1, .failure(ZooKeeperError(.noNode, path: "/n")))])
        #expect(m.received(Self.replyHeader(xid: 2, zxid: 4, err: -103), connection: 1, now: t0)
            == [.complete(2, .failure(ZooKeeperError(.badVersion, path: "/n")))])
        // The server speaks chrooted paths; the watcher hears the client's.
        #expect(m.received(Self.notification(type: 1, path: "/samsa/n"), connection: 1, now: t0)
            == [.watch([10], ZooKeeperWatchedEvent(type: .nodeCreated, state: .connected, path: "/n"))])
        #expect(ZooKeeperError.Code(rawCode: -4) == .connectionLoss && ZooKeeperError.Code(rawCode: -7) == .operationTimeout)
        #expect(ZooKeeperError.Code(rawCode: -4) != ZooKeeperError.Code(rawCode: -101))
        #expect(ZooKeeperError.Code.connectionLoss.isTransient && !ZooKeeperError.Code.noNode.isTransient)
    }

    @Test func closeSendsCloseSessionAndFailsWaitingRequests() {
        var m = machine()
        _ = m.start(now: t0)
        _ = handshake(&m, connection: 1, now: t0)
        let out = m.close(now: t0)
        #expect(out.count == 1 && Self.header(out.first)! == (1, -11))
        #expect(m.submit(.sync("/"), id: 5, now: t0) == [.complete(5, .failure(ZooKeeperError(.closed, path: "/")))])
        // No answer: closed anyway after the grace period.
        #expect(m.tick(now: t0 + .seconds(2)) == [.close(connection: 1), .state(.closed)])
    }

    @Test func connectStrings() throws {
        let cs = try ZooKeeperConnectString("h1:2181, h2:2182,h3/samsa/a/")
        #expect(cs.servers == [.init(host: "h1", port: 2181), .init(host: "h2", port: 2182), .init(host: "h3", port: 2181)])
        #expect(cs.chroot == "/samsa/a" && cs.description == "h1:2181,h2:2182,h3:2181/samsa/a")
        #expect(try ZooKeeperConnectString("[::1]:2000").servers == [.init(host: "::1", port: 2000)])
        #expect(throws: ZooKeeperConnectStringError.self) { try ZooKeeperConnectString("h1:x") }
        #expect(throws: ZooKeeperConnectStringError.self) { try ZooKeeperConnectString("/chroot") }
        #expect(throws: ZooKeeperConnectStringError.self) { try ZooKeeperConnectString("h1:99999") }
    }
}
